"""Every read a page makes, each in one call: the cached queries and views of the engine (tracker/analysis,
tracker/plans, tracker/review, tracker/views), keyed by the viewer, their arguments and the generations of what
they are drawn from (tracker/web/caching.py), the chart specs, the reports as bytes, and the access checks a page
asks for. Pages never hold a cursor: every call here takes the viewer and runs on this thread's own."""

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from data_models import Framework, Role
from tracker.access import policy
from tracker.access.policy import Viewer
from tracker.accounts import account_links, account_queries
from tracker.analysis import coverage, forecast, overdue, queries
from tracker.core.config import settings
from tracker.core.errors import TrackerError
from tracker.core.text import frame_csv
from tracker.plans import plan_queries
from tracker.records import actions, exporting, importing, revision
from tracker.reports import charts, packets
from tracker.review import agendas, review_actions, review_queries
from tracker.storage import database, framework_tables
from tracker.views import progress
from tracker.web import caching
from tracker.web.caching import PEOPLE, RECORDS, REVIEW, cached, drawn_from, generation_of, priors_generation


def framework() -> Framework:
    """The framework in force (the one the database accepted)."""
    return caching.framework()


def _db() -> str:
    return str(settings().db_path)


# ---- queries, cached until a save changes what they are drawn from ------------------------------------
competency_standing = cached(queries.competency_standing, RECORDS)
level_distribution = cached(queries.level_distribution, RECORDS)
selection_totals = cached(queries.selection_totals, RECORDS, PEOPLE)
learners_behind = cached(queries.learners_behind, RECORDS)
cohort_overview = cached(queries.cohort_overview, RECORDS, PEOPLE)
furthest_behind = cached(queries.furthest_behind, RECORDS)
visible_learners = cached(queries.visible_learners, PEOPLE)
cohort_trajectory = cached(queries.cohort_trajectory, RECORDS)
rating_history = cached(queries.rating_history, RECORDS, PEOPLE)
evidence_items = cached(queries.evidence_items, RECORDS)
review_queue = cached(queries.review_queue, RECORDS)
calibration = cached(queries.calibration, RECORDS)
learner_decisions = cached(review_queries.learner_decisions, REVIEW)
decision_counts = cached(review_queries.decision_counts, REVIEW)
review_meetings = cached(review_queries.review_meetings, REVIEW)
meeting_agenda = cached(review_queries.meeting_agenda, REVIEW)
decision_drafts = cached(review_queries.decision_drafts, REVIEW)
committee_members = cached(review_queries.committee_members, PEOPLE)
staff_names = cached(review_queries.staff_names, PEOPLE)
advisee_work = cached(queries.advisee_work, RECORDS, PEOPLE)
# a goal's status reads the learner's levels, and whether its plan is open the committee's decisions; a write to a
# plan names nothing, so every figure is drawn again
learner_plans = cached(plan_queries.learner_plans, RECORDS, REVIEW)
goal_versions = cached(plan_queries.goal_versions, RECORDS)
goal_comments = cached(plan_queries.goal_comments, RECORDS)


@st.cache_data(show_spinner=False, max_entries=256)
def _learner_goals(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, learner_id: str | None, today: dt.date
) -> pd.DataFrame:
    return plan_queries.learner_goals(caching.cursor(), viewer, caching.framework(), learner_id=learner_id, today=today)


def learner_goals(viewer: Viewer, learner_id: str | None = None) -> pd.DataFrame:
    """The current goals of a learner's plans with their status today (tracker/plans/plan_queries.py), cached."""
    generation = generation_of(drawn_from((RECORDS, PEOPLE, REVIEW), learner_id))
    return _learner_goals(_db(), generation, viewer, learner_id, dt.date.today())


def goals_waiting_for_agreement(viewer: Viewer) -> pd.DataFrame:
    """The goals of open plans of the viewer's advisees whose current version nobody agreed yet."""
    return plan_queries.waiting_for_agreement(learner_goals(viewer), viewer.person_id)


def plan_coverage(viewer: Viewer, learner_id: str) -> pd.DataFrame:
    """A learner's coverage of the assessment plan this term (tracker/analysis/coverage.py); empty without a plan."""
    generation = generation_of(drawn_from((RECORDS, PEOPLE, REVIEW), learner_id))
    return _plan_coverage(_db(), generation, viewer, learner_id, dt.date.today())


@st.cache_data(show_spinner=False, max_entries=512)
def _plan_coverage(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, learner_id: str, today: dt.date
) -> pd.DataFrame:
    return coverage.plan_coverage(caching.cursor(), viewer, caching.framework(), learner_id, today)


def cohort_coverage(viewer: Viewer, cohort: str | None) -> pd.DataFrame:
    """Per competency, the visible learners (of a cohort) meeting each requirement of the plan this term."""
    generation = generation_of(drawn_from((RECORDS, PEOPLE), None, cohort))
    return _cohort_coverage(_db(), generation, viewer, cohort, dt.date.today())


@st.cache_data(show_spinner=False, max_entries=64)
def _cohort_coverage(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, cohort: str | None, today: dt.date
) -> pd.DataFrame:
    return coverage.cohort_coverage(caching.cursor(), viewer, caching.framework(), cohort, today)


def learners_short(viewer: Viewer, advisor: str | None = None) -> pd.DataFrame:
    """Active learners without a rating this term or short of the plan's ratings (tracker/analysis/overdue.py)."""
    return _overdue(_db(), generation_of((RECORDS, PEOPLE)), "learners_short", viewer, advisor, dt.date.today())


def waiting_per_learner(viewer: Viewer, advisor: str | None = None) -> pd.DataFrame:
    """Learners whose self-assessments wait for review, longest waiting first (tracker/analysis/overdue.py)."""
    return _overdue(_db(), generation_of((RECORDS, PEOPLE)), "waiting_per_learner", viewer, advisor, dt.date.today())


@st.cache_data(show_spinner=False, max_entries=128)
def _overdue(
    db_path: str, generation: tuple[int, ...], name: str, viewer: Viewer, advisor: str | None, today: dt.date
) -> pd.DataFrame:
    if name == "learners_short":
        return overdue.learners_short(caching.cursor(), viewer, caching.framework(), advisor=advisor, today=today)
    return overdue.waiting_per_learner(caching.cursor(), viewer, caching.framework(), advisor=advisor, today=today)


def completion(viewer: Viewer, by: str) -> pd.DataFrame:
    """Completion this term per advisor or per cohort, for coordinators (tracker/analysis/overdue.py)."""
    return _completion(_db(), viewer, by, dt.date.today())


def _completion(db_path: str, viewer: Viewer, by: str, today: dt.date) -> pd.DataFrame:
    return _completion_tables(db_path, generation_of((RECORDS, PEOPLE)), viewer, today)[by]


@st.cache_data(show_spinner=False, max_entries=16)
def _completion_tables(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, today: dt.date
) -> dict[str, pd.DataFrame]:
    return overdue.completion_tables(caching.cursor(), viewer, caching.framework(), today)


@st.cache_data(show_spinner=False, max_entries=64)
def _proposed_agenda(
    db_path: str,
    generation: tuple[int, ...],
    visible: tuple[str, ...],
    cohort: str | None,
    brief: bool,
    _viewer: Viewer,  # not part of the key: the agenda is the same for every viewer of the same learners
) -> pd.DataFrame:
    return agendas.proposed_agenda(caching.cursor(), _viewer, caching.framework(), priors(), cohort, brief=brief)


def proposed_agenda(viewer: Viewer, cohort: str | None, brief: bool = False) -> pd.DataFrame:
    """The learners the app proposes for a review meeting, with the reasons (tracker/review/review_actions.py); the committee's
    home lists the whole program's, briefly. That brief list is drawn from every learner's records: like the
    forecast's priors it follows ratings and evidence at most PRIORS_SECONDS late (at once after an import, a
    review or a change of people), so that a save does not make the next committee home draw it all again; the
    meeting page's agenda follows every save. Every committee member and coordinator sees the whole program, so
    they share one agenda, which the server draws ahead of them (keep_warm)."""
    if not policy.may_organise_meetings(viewer):  # each viewer's own check (the figures are shared)
        policy.require_meeting_organiser(caching.cursor(), viewer)  # refuses, and records the refusal
    records = priors_generation() if brief else generation_of((RECORDS,))
    generation = (*generation_of((REVIEW, PEOPLE)), *records)
    scope = policy.scope_params(viewer)
    visible = (scope["scope"],) if scope["scope"] == policy.Scope.program.value else tuple(scope.values())
    return _proposed_agenda(_db(), generation, visible, cohort, brief, viewer)


def meeting_minutes(viewer: Viewer, meeting_id: str) -> bytes:
    return packets.meeting_minutes(caching.cursor(), viewer, caching.framework(), meeting_id)


@st.cache_data(show_spinner=False, max_entries=16)
def _priors(db_path: str, generation: tuple[int, ...], as_of: int | None) -> forecast.Priors:
    # learned once per generation and term asked for: the raters' strictness reads the ratings up to that term
    return replace(queries.program_priors(caching.cursor(), as_of), history=_history(db_path, generation, as_of))


@st.cache_data(show_spinner=False, max_entries=8)
def _history(db_path: str, generation: tuple[int, ...], as_of: int | None) -> forecast.History | None:
    return queries.learned_history(caching.cursor(), caching.framework(), as_of)


def priors(as_of: int | None = None) -> forecast.Priors:
    """The forecast's priors, drawn from the whole program (cached; see priors_generation)."""
    return _priors(_db(), priors_generation(), as_of)


@st.cache_data(show_spinner=False, max_entries=512)
def _current_term(db_path: str, generation: tuple[int, ...], learner_id: str) -> str:
    return actions.current_term(caching.cursor(), caching.framework(), learner_id)


def current_term(learner_id: str) -> str:
    """The term a new rating of this learner defaults to (until a save of the learner's records)."""
    return _current_term(_db(), generation_of((f"learner:{learner_id}",)), learner_id)


def learner_report(viewer: Viewer, learner_id: str) -> bytes:
    """The learner's PDF packet (tracker/reports/packets.py), with the program's cached forecast priors."""
    return packets.learner_report(caching.cursor(), viewer, caching.framework(), learner_id, priors())


def cohort_report(viewer: Viewer, cohort: str | None, as_of: int | None) -> bytes:
    return packets.cohort_report(caching.cursor(), viewer, caching.framework(), cohort, as_of, priors(as_of))


@st.cache_data(show_spinner=False, max_entries=256)
def _learner_progress(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, learner_id: str, today: dt.date
) -> progress.LearnerProgress:
    return progress.learner_progress(caching.database()[0], viewer, learner_id, priors(), caching.framework(), today)


def learner_progress(viewer: Viewer, learner_id: str) -> progress.LearnerProgress:
    """Everything one learner's progress page (and the review meeting's packet) shows, in one view
    (tracker/views/progress.py), read at once and cached until a save of the learner's records, decisions or
    plans (or the priors are learned again, or the day changes)."""
    generation = generation_of((f"learner:{learner_id}", REVIEW, PEOPLE)) + priors_generation()
    return _learner_progress(_db(), generation, viewer, learner_id, dt.date.today())


@st.cache_data(show_spinner=False, max_entries=64)
def _graduation_risk(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, cohort: str | None, as_of: int | None
) -> pd.DataFrame:
    return queries.graduation_risk(
        caching.cursor(), viewer, priors(as_of), caching.framework(), cohort=cohort, as_of=as_of
    )


def graduation_risk(viewer: Viewer, cohort: str | None = None, as_of: int | None = None) -> pd.DataFrame:
    """Active visible learners, least likely to reach the graduation level first."""
    generation = generation_of(drawn_from((RECORDS, PEOPLE), cohort=cohort)) + priors_generation()
    return _graduation_risk(_db(), generation, viewer, cohort, as_of)


@st.cache_data(show_spinner=False, max_entries=16)
def _backtest(db_path: str, generation: tuple[int, ...], viewer: Viewer, term: int | None) -> queries.Backtest:
    return queries.backtest(caching.cursor(), viewer, caching.framework(), term)


def backtest(viewer: Viewer, term: int | None = None) -> queries.Backtest:
    """The forecast's backtest over the graduated cohorts (committee and coordinators)."""
    return _backtest(_db(), generation_of((RECORDS,)), viewer, term)


@st.cache_data(show_spinner=False, max_entries=4)
def _framework_pending(
    db_path: str, generation: tuple[int, ...], framework_path: str, modified: float
) -> revision.Pending | None:
    return revision.pending(caching.cursor(), Path(framework_path))


def framework_pending() -> revision.Pending | None:
    """What the configured framework file would change, when it differs from the accepted version."""
    path = settings().framework_path
    modified = path.stat().st_mtime if path.exists() else 0.0
    return _framework_pending(_db(), generation_of((RECORDS,)), str(path), modified)


@st.cache_data(show_spinner=False, max_entries=4)
def _framework_differs(db_path: str, generation: tuple[int, ...], framework_path: str, modified: float) -> bool:
    return revision.differs(caching.cursor(), Path(framework_path))


def framework_differs() -> bool:
    """Whether the configured framework file differs from the accepted version (without reading ratings)."""
    path = settings().framework_path
    modified = path.stat().st_mtime if path.exists() else 0.0
    return _framework_differs(_db(), generation_of(()), str(path), modified)


@st.cache_data(show_spinner=False, max_entries=4)
def _framework_versions(db_path: str, generation: tuple[int, ...]) -> list[framework_tables.Version]:
    return framework_tables.versions(caching.cursor())


def framework_versions() -> list[framework_tables.Version]:
    """The accepted framework versions, oldest first."""
    return _framework_versions(_db(), generation_of(()))


def crosswalk(previous: Framework, current: Framework) -> pd.DataFrame:
    """Where `previous`'s competencies went in `current`, in words."""
    return revision.crosswalk_rows(previous, current)


# ---- charts ---------------------------------------------------------------------------------------
def chart(builder: Callable[..., Any], *args: Any, **kwargs: Any) -> dict:
    """A chart of tracker/reports/charts.py as its Vega-Lite spec (charts.vega_lite), built once for the same data and
    arguments: building an Altair chart and checking it against the schema is most of a chart page's processor
    time, and a page drawn again draws the same charts. Charts are drawn from aggregates (a few thousand rows at
    most): Streamlit's cache hashes a frame of fewer than 50,000 rows whole."""
    return _chart(builder.__name__, *args, **kwargs)


@st.cache_data(show_spinner=False, max_entries=512)
def _chart(builder: str, *args: Any, **kwargs: Any) -> dict:
    return charts.vega_lite(getattr(charts, builder)(*args, **kwargs))


def download_csv(frame: pd.DataFrame) -> bytes:
    """A table as a CSV download that no spreadsheet will run as formulas."""
    return frame_csv(frame).encode("utf-8")


# ---- reads that are not cached: asked for rarely, or about accounts --------------------------------------
def account_overview(viewer: Viewer, cohort: str | None, role: str | None, state: str | None) -> pd.DataFrame:
    """Every person with the state of their account (coordinators)."""
    return account_queries.account_overview(caching.cursor(), viewer, cohort, role, state)


def account_cohorts(viewer: Viewer) -> list[str]:
    return account_queries.account_cohorts(caching.cursor(), viewer)


def audit_actions(viewer: Viewer) -> list[str]:
    return queries.audit_actions(caching.cursor(), viewer)


def audit_log(viewer: Viewer, **filters: Any) -> pd.DataFrame:
    """The audit log, newest first, filtered (coordinators)."""
    return queries.audit_log(caching.cursor(), viewer, **filters)


def export_records(viewer: Viewer, kind: str) -> bytes:
    """A coordinator's export of one kind of records, as the CSV file `import` reads back."""
    return exporting.export_records(caching.cursor(), viewer, kind).encode("utf-8")


def meeting_draft(viewer: Viewer, meeting_id: str, learner_id: str) -> review_actions.Draft:
    """What the committee has entered for one learner of a meeting so far (an empty draft before anything)."""
    drafts = decision_drafts(viewer, meeting_id).set_index("learner_id")
    if learner_id not in drafts.index:
        return review_actions.Draft()
    return review_actions.draft_from_row(drafts.loc[learner_id].to_dict())


def whole_cohort(viewer: Viewer, cohort: str) -> pd.DataFrame:
    """Every learner of a cohort, as a review meeting's agenda."""
    return agendas.whole_cohort(caching.cursor(), viewer, cohort)


def is_advisor_of_record(viewer: Viewer, learner_id: str) -> bool:
    return policy.is_advisor_of_record(caching.cursor(), viewer, learner_id)


# ---- access checks a page asks for: each refuses (PermissionDenied) and records the refusal ----------------
def require_learner(viewer: Viewer, learner_id: str) -> None:
    policy.require_learner(caching.cursor(), viewer, learner_id)


def require_role(viewer: Viewer, *roles: Role) -> None:
    policy.require_role(caching.cursor(), viewer, *roles)


def require_page(viewer: Viewer, url_path: str) -> None:
    policy.require_page(caching.cursor(), viewer, url_path)


def reports_unavailable() -> str | None:
    """Why PDF reports cannot be made on this server (their fonts are missing), or None when they can."""
    try:
        packets.find_fonts()
    except TrackerError as exc:
        return str(exc)
    return None


# ---- files and links: what a page shows of a file before it is imported, and of links to hand out ------------
ACCOUNT_STATES = account_queries.STATES


def import_kinds() -> list[str]:
    """The kinds of records a file may hold, in the order they are best imported."""
    return list(importing.KINDS)


def import_template(kind: str) -> str:
    """An empty file of one kind: the header row that an import expects."""
    return importing.template_csv(kind)


def uploaded_text(name: str, data: bytes) -> str:
    """An uploaded CSV or Excel file as CSV text (ImportProblems names what is wrong with it)."""
    return importing.uploaded_text(name, data)


def import_preview(text: str) -> pd.DataFrame:
    """The first rows of a file, as the user will see them before importing."""
    return importing.preview(text)


def links_table(issued: list[account_links.IssuedLink]) -> pd.DataFrame:
    """The links that were not mailed, to hand out."""
    return account_links.links_table(issued)


def damage(exc: BaseException) -> TrackerError | None:
    """For an error met while reading: the message that says the disk is full (free space, nothing to restore) or
    the database is damaged and how to restore it; None when it is neither (then it is a bug, and goes on up)."""
    if database.is_disk_full(exc):
        return database.disk_full(settings().db_path, exc)
    if not database.is_damage(exc):
        return None
    return database.damaged(settings().db_path, exc)
