"""The thin Streamlit layer of the engine: the cached database, cached queries, and the signed-in viewer."""

import datetime as dt
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pandas as pd
import streamlit as st

from data_models import Framework
from tracker import (
    access,
    accounts,
    actions,
    charts,
    coverage,
    forecast,
    overdue,
    plan_queries,
    queries,
    revision,
    server_paths,
)
from tracker.access import Viewer
from tracker.config import settings
from tracker.setup import open_configured
from tracker.store import Cursor, Database
from tracker.text import frame_csv

log = logging.getLogger("milestone.web")
COOKIE = server_paths.COOKIE
TOKEN_KEY = "auth.token"  # noqa: S105 - a session-state key, not a secret
P = ParamSpec("P")
R = TypeVar("R")


@st.cache_resource(show_spinner=False)
def _database(db_path: str, framework_path: str) -> tuple[Database, Framework]:
    # keyed by the paths, so tests with their own database files never share a connection
    global _server_mode
    cfg = settings()
    if cfg.server_url:
        from tracker import replica

        replica.on_follow(_followed)
        _server_mode = True
    return open_configured(cfg)


def database() -> tuple[Database, Framework]:
    cfg = settings()
    return _database(str(cfg.db_path), str(cfg.framework_path))


def cursor() -> Cursor:
    return database()[0].cursor()


def framework() -> Framework:
    return database()[1]


# ---- what a save changes -------------------------------------------------------------------------
# Every cached figure says what it is drawn from, and every save says what it changed: a figure's cache key holds
# the generation of each thing it is drawn from, so a save gives new keys to the figures it changed and leaves
# every other cached figure standing (the stale entries age out of the cache). What a figure is drawn from:
# - one learner's records (a query asked about one learner): `learner:ID`;
# - one cohort's records (a query asked about one cohort): `cohort:ID`;
# - the records of the program (any other figure of ratings, evidence and standings): RECORDS;
# - review meetings, agendas, drafts and decisions: REVIEW; people and their advisors: PEOPLE;
# - and always EVERYTHING, which an import, a sign-off or a save that names nothing changes.
EVERYTHING = "everything"
RECORDS = "records"
REVIEW = "review"
PEOPLE = "people"
ACCOUNTS = "accounts"  # sign-in accounts: no cached figure is drawn from them
PRIORS_SECONDS = 300.0  # the forecast's program-wide priors follow the records at most this late (see priors())

_generations: dict[str, int] = {}
_generations_lock = threading.Lock()
_warm_wanted = threading.Event()


def _generation(topics: tuple[str, ...]) -> tuple[int, ...]:
    with _generations_lock:
        return tuple(_generations.get(t, 0) for t in (EVERYTHING, *topics))


def learner_records(learner_id: str) -> tuple[str, ...]:
    """What a save of one learner's ratings or evidence changes: that learner's figures, their cohort's, and the
    program's."""
    row = cursor().execute("SELECT cohort FROM learners WHERE id = ?", [learner_id]).fetchone()
    cohort = (f"cohort:{row[0]}",) if row else ()
    return (f"learner:{learner_id}", *cohort, RECORDS)


def saved(*changed: str) -> None:
    """Call after every write, naming what it changed (`learner_records(id)`, REVIEW, ACCOUNTS, ...); a write that
    names nothing may have changed anything, and every cached figure is drawn again."""
    with _generations_lock:
        for topic in changed or (EVERYTHING,):
            _generations[topic] = _generations.get(topic, 0) + 1
    if not changed or {EVERYTHING, REVIEW, PEOPLE} & set(changed):
        _warm_wanted.set()  # the committee home's agenda changed: the server draws it again (keep_warm)


def saved_everything() -> None:
    """After a change that may touch any figure (an import)."""
    saved(EVERYTHING)


# Server mode: what another server or a command saved reaches this process when its copy follows PostgreSQL (at the
# start of every page run, and before every write); the rows that arrived name what they change.
_LEARNER_RECORDS = frozenset({"ratings", "evidence"})
_REVIEW_RECORDS = frozenset({"review_meetings", "review_agenda", "decision_drafts", "decisions", "decision_actions"})
_ACCOUNT_RECORDS = frozenset(
    {"accounts", "sessions", "sign_in_failures", "account_links", "link_requests", "reminder_sends", "audit_log"}
)
_server_mode = False  # set when the app opens a server-mode database
_MANY = 200  # past this many learners at once (an import), every figure is drawn again


def _followed(followed: Any) -> None:
    """The cache generations a follow-up changes (a tracker.replica.Followed)."""
    known = _LEARNER_RECORDS | _REVIEW_RECORDS | _ACCOUNT_RECORDS
    if followed.rebuilt or followed.tables - known or len(followed.learners) > _MANY:
        saved(EVERYTHING)  # people, plans, the framework: as the pages name them
        return
    topics: list[str] = []
    if followed.tables & _LEARNER_RECORDS:
        topics += [t for learner in sorted(followed.learners) for t in learner_records(learner)]
    if followed.tables & _REVIEW_RECORDS:
        topics += [REVIEW, *(f"learner:{learner}" for learner in followed.learners)]
    if followed.tables & _ACCOUNT_RECORDS:
        topics.append(ACCOUNTS)
    saved(*dict.fromkeys(topics))


def follow(wait: bool = False) -> None:
    """Server mode: take up what other servers and commands saved since this copy's last look (one cheap question
    to PostgreSQL when nothing changed); the embedded mode has nothing to follow. Without `wait`, a page run does
    not wait for a write of this process under way (that write follows first itself). While PostgreSQL cannot be
    reached, the pages answer from the copy as it stands."""
    if not _server_mode:
        return
    follow_copy = getattr(database()[0], "follow", None)
    if follow_copy is None:
        return
    try:
        follow_copy(wait=wait)
    except Exception as exc:  # the saves say so; the pages go on from the copy
        import logging

        logging.getLogger("milestone.web").warning("could not follow PostgreSQL: %s", exc)


def _drawn_from(topics: tuple[str, ...], learner_id: object = None, cohort: object = None) -> tuple[str, ...]:
    """RECORDS narrowed to the one learner or cohort a query is asked about."""
    if RECORDS not in topics:
        return topics
    narrowed = f"learner:{learner_id}" if learner_id else f"cohort:{cohort}" if cohort else RECORDS
    return tuple(narrowed if t == RECORDS else t for t in topics)


def cached(query: Callable[..., R], *topics: str) -> Callable[..., R]:
    """Cache a query's result per database, viewer and arguments, until a save changes what it is drawn from."""
    signature = inspect.signature(query)

    @st.cache_data(show_spinner=False, max_entries=512)
    def run(db_path: str, name: str, generation: tuple[int, ...], *args: Any, **kwargs: Any) -> R:
        return query(cursor(), *args, **kwargs)

    def call(*args: Any, **kwargs: Any) -> R:
        asked = signature.bind(None, *args, **kwargs).arguments
        drawn = _drawn_from(topics, asked.get("learner_id"), asked.get("cohort"))
        return run(str(settings().db_path), query.__name__, _generation(drawn), *args, **kwargs)

    return call


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
learner_decisions = cached(queries.learner_decisions, REVIEW)
decision_counts = cached(queries.decision_counts, REVIEW)
review_meetings = cached(queries.review_meetings, REVIEW)
meeting_agenda = cached(queries.meeting_agenda, REVIEW)
decision_drafts = cached(queries.decision_drafts, REVIEW)
committee_members = cached(queries.committee_members, PEOPLE)
staff_names = cached(queries.staff_names, PEOPLE)
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
    return plan_queries.learner_goals(cursor(), viewer, framework(), learner_id=learner_id, today=today)


def learner_goals(viewer: Viewer, learner_id: str | None = None) -> pd.DataFrame:
    """The current goals of a learner's plans with their status today (tracker/plan_queries.py), cached."""
    generation = _generation(_drawn_from((RECORDS, PEOPLE, REVIEW), learner_id))
    return _learner_goals(str(settings().db_path), generation, viewer, learner_id, dt.date.today())


def plan_coverage(viewer: Viewer, learner_id: str) -> pd.DataFrame:
    """A learner's coverage of the assessment plan this term (tracker/coverage.py); empty without a plan."""
    generation = _generation(_drawn_from((RECORDS, PEOPLE, REVIEW), learner_id))
    return _plan_coverage(str(settings().db_path), generation, viewer, learner_id, dt.date.today())


@st.cache_data(show_spinner=False, max_entries=512)
def _plan_coverage(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, learner_id: str, today: dt.date
) -> pd.DataFrame:
    return coverage.plan_coverage(cursor(), viewer, framework(), learner_id, today)


def cohort_coverage(viewer: Viewer, cohort: str | None) -> pd.DataFrame:
    """Per competency, the visible learners (of a cohort) meeting each requirement of the plan this term."""
    generation = _generation(_drawn_from((RECORDS, PEOPLE), None, cohort))
    return _cohort_coverage(str(settings().db_path), generation, viewer, cohort, dt.date.today())


@st.cache_data(show_spinner=False, max_entries=64)
def _cohort_coverage(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, cohort: str | None, today: dt.date
) -> pd.DataFrame:
    return coverage.cohort_coverage(cursor(), viewer, framework(), cohort, today)


def learners_short(viewer: Viewer, advisor: str | None = None) -> pd.DataFrame:
    """Active learners without a rating this term or short of the plan's ratings (tracker/overdue.py)."""
    return _overdue(
        str(settings().db_path), _generation((RECORDS, PEOPLE)), "learners_short", viewer, advisor, dt.date.today()
    )


def waiting_per_learner(viewer: Viewer, advisor: str | None = None) -> pd.DataFrame:
    """Learners whose self-assessments wait for review, longest waiting first (tracker/overdue.py)."""
    return _overdue(
        str(settings().db_path), _generation((RECORDS, PEOPLE)), "waiting_per_learner", viewer, advisor, dt.date.today()
    )


@st.cache_data(show_spinner=False, max_entries=128)
def _overdue(
    db_path: str, generation: tuple[int, ...], name: str, viewer: Viewer, advisor: str | None, today: dt.date
) -> pd.DataFrame:
    if name == "learners_short":
        return overdue.learners_short(cursor(), viewer, framework(), advisor=advisor, today=today)
    return overdue.waiting_per_learner(cursor(), viewer, framework(), advisor=advisor, today=today)


def completion(viewer: Viewer, by: str) -> pd.DataFrame:
    """Completion this term per advisor or per cohort, for coordinators (tracker/overdue.py)."""
    return _completion(str(settings().db_path), viewer, by, dt.date.today())


def _completion(db_path: str, viewer: Viewer, by: str, today: dt.date) -> pd.DataFrame:
    return _completion_tables(db_path, _generation((RECORDS, PEOPLE)), viewer, today)[by]


@st.cache_data(show_spinner=False, max_entries=16)
def _completion_tables(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, today: dt.date
) -> dict[str, pd.DataFrame]:
    return overdue.completion_tables(cursor(), viewer, framework(), today)


@st.cache_data(show_spinner=False, max_entries=64)
def _proposed_agenda(
    db_path: str,
    generation: tuple[int, ...],
    visible: tuple[str, ...],
    cohort: str | None,
    brief: bool,
    _viewer: Viewer,  # not part of the key: the agenda is the same for every viewer of the same learners
) -> pd.DataFrame:
    from tracker import review

    return review.proposed_agenda(cursor(), _viewer, framework(), priors(), cohort, brief=brief)


def proposed_agenda(viewer: Viewer, cohort: str | None, brief: bool = False) -> pd.DataFrame:
    """The learners the app proposes for a review meeting, with the reasons (tracker/review.py); the committee's
    home lists the whole program's, briefly. That brief list is drawn from every learner's records: like the
    forecast's priors it follows ratings and evidence at most PRIORS_SECONDS late (at once after an import, a
    review or a change of people), so that a save does not make the next committee home draw it all again; the
    meeting page's agenda follows every save. Every committee member and coordinator sees the whole program, so
    they share one agenda, which the server draws ahead of them (keep_warm)."""
    if not access.may_organise_meetings(viewer):  # each viewer's own check (the figures are shared)
        access.require_meeting_organiser(cursor(), viewer)  # refuses, and records the refusal
    records = _priors_generation() if brief else _generation((RECORDS,))
    generation = (*_generation((REVIEW, PEOPLE)), *records)
    scope = access.scope_params(viewer)
    visible = (scope["scope"],) if scope["scope"] == access.Scope.program.value else tuple(scope.values())
    return _proposed_agenda(str(settings().db_path), generation, visible, cohort, brief, viewer)


def meeting_minutes(viewer: Viewer, meeting_id: str) -> bytes:
    from tracker import reports

    return reports.meeting_minutes(cursor(), viewer, framework(), meeting_id)


@st.cache_data(show_spinner=False, max_entries=16)
def _priors(db_path: str, generation: tuple[int, ...], as_of: int | None) -> forecast.Priors:
    # learned once per generation and term asked for: the raters' strictness reads the ratings up to that term
    return replace(queries.program_priors(cursor(), as_of), history=_history(db_path, generation, as_of))


@st.cache_data(show_spinner=False, max_entries=8)
def _history(db_path: str, generation: tuple[int, ...], as_of: int | None) -> forecast.History | None:
    return queries.learned_history(cursor(), framework(), as_of)


_priors_learned = {"records": -1, "at": 0.0}  # the program's records generation the priors were last learned at


def _priors_generation() -> tuple[int, ...]:
    """The priors are averages and fits over every learner of the program, which one rating barely moves: after
    saves they are learned again once they are PRIORS_SECONDS old, so a save does not make every learner's
    forecast be drawn again; an import (EVERYTHING) has them learned again at once."""
    everything, records = _generation((RECORDS,))
    with _generations_lock:
        learned = _priors_learned
        if records != learned["records"] and time.monotonic() - learned["at"] >= PRIORS_SECONDS:
            learned["records"], learned["at"] = records, time.monotonic()
        return (everything, int(learned["records"]))


def priors(as_of: int | None = None) -> forecast.Priors:
    """The forecast's priors, drawn from the whole program (cached; see _priors_generation)."""
    return _priors(str(settings().db_path), _priors_generation(), as_of)


@st.cache_data(show_spinner=False, max_entries=512)
def _current_term(db_path: str, generation: tuple[int, ...], learner_id: str) -> str:
    return actions.current_term(cursor(), framework(), learner_id)


def current_term(learner_id: str) -> str:
    """The term a new rating of this learner defaults to (until a save of the learner's records)."""
    return _current_term(str(settings().db_path), _generation((f"learner:{learner_id}",)), learner_id)


def learner_report(viewer: Viewer, learner_id: str) -> bytes:
    """The learner's PDF packet (tracker/reports.py), with the program's cached forecast priors."""
    from tracker import reports

    return reports.learner_report(cursor(), viewer, framework(), learner_id, priors())


def cohort_report(viewer: Viewer, cohort: str | None, as_of: int | None) -> bytes:
    from tracker import reports

    return reports.cohort_report(cursor(), viewer, framework(), cohort, as_of, priors(as_of))


@st.cache_data(show_spinner=False, max_entries=256)
def _learner_progress(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, learner_id: str
) -> queries.LearnerProgress:
    return queries.learner_progress(database()[0], viewer, learner_id, priors(), framework())


def learner_progress(viewer: Viewer, learner_id: str) -> queries.LearnerProgress:
    """Everything one learner's progress page shows (tracker/queries.py), read at once and cached until a save of
    the learner's records or decisions (or the priors are learned again)."""
    generation = _generation((f"learner:{learner_id}", REVIEW, PEOPLE)) + _priors_generation()
    return _learner_progress(str(settings().db_path), generation, viewer, learner_id)


@st.cache_data(show_spinner=False, max_entries=64)
def _graduation_risk(
    db_path: str, generation: tuple[int, ...], viewer: Viewer, cohort: str | None, as_of: int | None
) -> pd.DataFrame:
    return queries.graduation_risk(cursor(), viewer, priors(as_of), framework(), cohort=cohort, as_of=as_of)


def graduation_risk(viewer: Viewer, cohort: str | None = None, as_of: int | None = None) -> pd.DataFrame:
    """Active visible learners, least likely to reach the graduation level first."""
    generation = _generation(_drawn_from((RECORDS, PEOPLE), cohort=cohort)) + _priors_generation()
    return _graduation_risk(str(settings().db_path), generation, viewer, cohort, as_of)


@st.cache_data(show_spinner=False, max_entries=16)
def _backtest(db_path: str, generation: tuple[int, ...], viewer: Viewer, term: int | None) -> queries.Backtest:
    return queries.backtest(cursor(), viewer, framework(), term)


def backtest(viewer: Viewer, term: int | None = None) -> queries.Backtest:
    """The forecast's backtest over the graduated cohorts (committee and coordinators)."""
    return _backtest(str(settings().db_path), _generation((RECORDS,)), viewer, term)


@st.cache_data(show_spinner=False, max_entries=4)
def _framework_pending(
    db_path: str, generation: tuple[int, ...], framework_path: str, modified: float
) -> revision.Pending | None:
    return revision.pending(cursor(), Path(framework_path))


def framework_pending() -> revision.Pending | None:
    """What the configured framework file would change, when it differs from the accepted version."""
    path = settings().framework_path
    modified = path.stat().st_mtime if path.exists() else 0.0
    return _framework_pending(str(settings().db_path), _generation((RECORDS,)), str(path), modified)


@st.cache_data(show_spinner=False, max_entries=4)
def _framework_differs(db_path: str, generation: tuple[int, ...], framework_path: str, modified: float) -> bool:
    return revision.differs(cursor(), Path(framework_path))


def framework_differs() -> bool:
    """Whether the configured framework file differs from the accepted version (without reading ratings)."""
    path = settings().framework_path
    modified = path.stat().st_mtime if path.exists() else 0.0
    return _framework_differs(str(settings().db_path), _generation(()), str(path), modified)


@st.cache_data(show_spinner=False, max_entries=4)
def _framework_versions(db_path: str, generation: tuple[int, ...]) -> list[revision.Version]:
    return revision.versions(cursor())


def framework_versions() -> list[revision.Version]:
    """The accepted framework versions, oldest first."""
    return _framework_versions(str(settings().db_path), _generation(()))


# ---- charts ---------------------------------------------------------------------------------------
def chart(builder: Callable[..., Any], *args: Any, **kwargs: Any) -> dict:
    """A chart of tracker/charts.py as its Vega-Lite spec (charts.vega_lite), built once for the same data and
    arguments: building an Altair chart and checking it against the schema is most of a chart page's processor
    time, and a page drawn again draws the same charts. Charts are drawn from aggregates (a few thousand rows at
    most): Streamlit's cache hashes a frame of fewer than 50,000 rows whole."""
    return _chart(builder.__name__, *args, **kwargs)


@st.cache_data(show_spinner=False, max_entries=512)
def _chart(builder: str, *args: Any, **kwargs: Any) -> dict:
    return charts.vega_lite(getattr(charts, builder)(*args, **kwargs))


# ---- the signed-in viewer ----------------------------------------------------------------------
# The server-side session of this browser tab lives in session_state (never sent to the browser). The browser
# keeps its own session in an HttpOnly cookie, set by an HTTP route (tracker/server.py) in exchange for a
# one-time ticket, so that a reload stays signed in; no script of the page can read it.
def current_viewer() -> Viewer | None:
    """The viewer of this browser session, checked against the server-side session every run (in server mode
    after following PostgreSQL, so a sign-in or sign-out on another server holds here)."""
    follow()
    token = st.session_state.get(TOKEN_KEY) or st.context.cookies.get(COOKIE)
    viewer = accounts.viewer_for_token(cursor(), token)
    if viewer is None:
        st.session_state.pop(TOKEN_KEY, None)
        return None
    st.session_state[TOKEN_KEY] = token
    return viewer


def session_token() -> str:
    """This tab's session token (server-side; never shown)."""
    return str(st.session_state.get(TOKEN_KEY) or "")


def client_source() -> str:
    """Where a request comes from, for counting failed sign-ins: the client's address ("local" on loopback)."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "local"


def remember(token: str) -> None:
    """Sign this tab in with a new session, and have the browser fetch its cookie session on the next run."""
    old = st.context.cookies.get(COOKIE)
    if old:  # a new sign-in replaces whatever session the browser held
        accounts.sign_out(cursor(), old)
    st.session_state[TOKEN_KEY] = token
    st.session_state["auth.cookie"] = "set"


def sign_out() -> None:
    token = st.session_state.pop(TOKEN_KEY, None) or st.context.cookies.get(COOKIE)
    if token:
        accounts.sign_out(cursor(), token)
    st.session_state.clear()
    st.session_state["auth.cookie"] = "clear"


def hand_cookie_to_browser() -> None:
    """After a sign-in, the browser exchanges a one-time ticket for its HttpOnly cookie; after a sign-out, it
    asks the server to drop the cookie. Both are same-origin requests to tracker/server.py's routes."""
    action = st.session_state.pop("auth.cookie", None)
    if action == "set" and (token := st.session_state.get(TOKEN_KEY)):
        ticket = accounts.cookie_ticket(cursor(), token)
        _run_in_browser(
            f"fetch('{server_paths.SESSION}', {{method: 'POST', credentials: 'same-origin', "
            f"headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: 'ticket={ticket}'}});"
        )
    elif action == "clear":
        _run_in_browser(f"fetch('{server_paths.SIGN_OUT}', {{method: 'POST', credentials: 'same-origin'}});")


def _run_in_browser(script: str) -> None:
    # `script` is our own, holding no user text (a ticket is URL-safe base64).
    st.iframe(f"<script>{script}</script>", height=1)


def download_csv(frame: pd.DataFrame) -> bytes:
    """A table as a CSV download that no spreadsheet will run as formulas."""
    return frame_csv(frame).encode("utf-8")


def sso_configured() -> bool:
    """Single sign-on is on when .streamlit/secrets.toml has an [auth] section."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError):
        return False
    except Exception:
        return False


@st.cache_data(show_spinner=False)
def _demo_mode(db_path: str, generation: tuple[int, ...]) -> bool:
    row = (
        cursor()
        .execute("SELECT count(*) FROM audit_log WHERE action = 'account add' AND target = 'demo accounts'")
        .fetchone()
    )
    return bool(row and row[0])


def demo_mode() -> bool:
    return _demo_mode(str(settings().db_path), _generation(()))


def warm_up() -> None:
    """Pay while the server starts what the first sign-in page would: Python's table of which file holds which
    module (Streamlit walks the call stack once, on the first element any page draws, and the first walk looks up
    the file of every module loaded: about 1,800 here), and the sign-in page's own read. Then set aside from the
    garbage collector what the start loaded (modules, Altair's schema, the framework: they live as long as the
    server), so that a full collection, which holds Python's lock while every page waits, walks only what pages
    made since (0.1-0.2 s a collection before, bench/README.md, load test). And hand Python's lock on more often
    (SWITCH_SECONDS)."""
    import gc
    import inspect
    import sys

    inspect.stack()
    demo_mode()
    gc.freeze()
    sys.setswitchinterval(SWITCH_SECONDS)


# How long a thread may keep Python's lock while another waits for it (Python's default: 5 ms). A save or a query
# gives the lock up at every call into DuckDB or PostgreSQL and waits for it again while pages are drawn in other
# threads: a save of server mode makes about forty such calls. With six threads busy drawing, a save took 3.1 s
# (p50) at 5 ms and 1.2 s at 1 ms in server mode, 2.1 s and 0.4 s embedded (bench/README.md, load test).
SWITCH_SECONDS = 0.001


def keep_warm(until: threading.Event | None = None) -> None:
    """Run by the server in a thread of its own from its start: draws the committee home's whole-program agenda
    at start, after every import (or change of people or review), and when the priors are due to be learned again
    after saves (PRIORS_SECONDS), so that no committee member waits for it (at 10,000 learners it takes seconds).
    A visitor who asks while it is being drawn waits for that drawing rather than starting another. Runs until
    `until` is set (the server's: never)."""
    while until is None or not until.is_set():
        try:
            viewer = access.program_viewer(cursor())
            if viewer is not None:
                proposed_agenda(viewer, None, brief=True)
        except Exception:  # a damaged or unready database: the page that asks says so
            log.exception("could not draw the committee's agenda ahead of time")
        _warm_wanted.wait(PRIORS_SECONDS + 1)
        _warm_wanted.clear()
