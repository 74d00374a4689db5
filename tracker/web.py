"""The thin Streamlit layer of the engine: the cached database, cached queries, and the signed-in viewer."""

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pandas as pd
import streamlit as st

from data_models import Framework
from tracker import accounts, actions, coverage, forecast, overdue, queries, revision, server_paths
from tracker.access import Viewer
from tracker.config import settings
from tracker.setup import open_configured
from tracker.store import Cursor, Database
from tracker.text import frame_csv

COOKIE = server_paths.COOKIE
TOKEN_KEY = "auth.token"  # noqa: S105 - a session-state key, not a secret
P = ParamSpec("P")
R = TypeVar("R")


@st.cache_resource(show_spinner=False)
def _database(db_path: str, framework_path: str) -> tuple[Database, Framework]:
    # keyed by the paths, so tests with their own database files never share a connection
    return open_configured(settings())


def database() -> tuple[Database, Framework]:
    cfg = settings()
    return _database(str(cfg.db_path), str(cfg.framework_path))


def cursor() -> Cursor:
    return database()[0].cursor()


def framework() -> Framework:
    return database()[1]


def cached(query: Callable[..., R]) -> Callable[..., R]:
    """Cache a query's result per database, viewer and arguments; cleared whenever anything is saved."""

    @st.cache_data(show_spinner=False, max_entries=512)
    def run(db_path: str, name: str, *args: Any, **kwargs: Any) -> R:
        return query(cursor(), *args, **kwargs)

    def call(*args: Any, **kwargs: Any) -> R:
        return run(str(settings().db_path), query.__name__, *args, **kwargs)

    return call


competency_standing = cached(queries.competency_standing)
level_distribution = cached(queries.level_distribution)
selection_totals = cached(queries.selection_totals)
learners_behind = cached(queries.learners_behind)
cohort_overview = cached(queries.cohort_overview)
furthest_behind = cached(queries.furthest_behind)
visible_learners = cached(queries.visible_learners)
cohort_trajectory = cached(queries.cohort_trajectory)
rating_history = cached(queries.rating_history)
evidence_items = cached(queries.evidence_items)
review_queue = cached(queries.review_queue)
calibration = cached(queries.calibration)
learner_decisions = cached(queries.learner_decisions)
decision_counts = cached(queries.decision_counts)
review_meetings = cached(queries.review_meetings)
meeting_agenda = cached(queries.meeting_agenda)
decision_drafts = cached(queries.decision_drafts)
committee_members = cached(queries.committee_members)
staff_names = cached(queries.staff_names)


def plan_coverage(viewer: Viewer, learner_id: str) -> pd.DataFrame:
    """A learner's coverage of the assessment plan this term (tracker/coverage.py); empty without a plan."""
    return _plan_coverage(str(settings().db_path), viewer, learner_id, dt.date.today())


@st.cache_data(show_spinner=False, max_entries=512)
def _plan_coverage(db_path: str, viewer: Viewer, learner_id: str, today: dt.date) -> pd.DataFrame:
    return coverage.plan_coverage(cursor(), viewer, framework(), learner_id, today)


def cohort_coverage(viewer: Viewer, cohort: str | None) -> pd.DataFrame:
    """Per competency, the visible learners (of a cohort) meeting each requirement of the plan this term."""
    return _cohort_coverage(str(settings().db_path), viewer, cohort, dt.date.today())


@st.cache_data(show_spinner=False, max_entries=64)
def _cohort_coverage(db_path: str, viewer: Viewer, cohort: str | None, today: dt.date) -> pd.DataFrame:
    return coverage.cohort_coverage(cursor(), viewer, framework(), cohort, today)


def learners_short(viewer: Viewer, advisor: str | None = None) -> pd.DataFrame:
    """Active learners without a rating this term or short of the plan's ratings (tracker/overdue.py)."""
    return _overdue(str(settings().db_path), "learners_short", viewer, advisor, dt.date.today())


def waiting_per_learner(viewer: Viewer, advisor: str | None = None) -> pd.DataFrame:
    """Learners whose self-assessments wait for review, longest waiting first (tracker/overdue.py)."""
    return _overdue(str(settings().db_path), "waiting_per_learner", viewer, advisor, dt.date.today())


@st.cache_data(show_spinner=False, max_entries=128)
def _overdue(db_path: str, name: str, viewer: Viewer, advisor: str | None, today: dt.date) -> pd.DataFrame:
    if name == "learners_short":
        return overdue.learners_short(cursor(), viewer, framework(), advisor=advisor, today=today)
    return overdue.waiting_per_learner(cursor(), viewer, framework(), advisor=advisor, today=today)


def completion(viewer: Viewer, by: str) -> pd.DataFrame:
    """Completion this term per advisor or per cohort, for coordinators (tracker/overdue.py)."""
    return _completion(str(settings().db_path), viewer, by, dt.date.today())


def _completion(db_path: str, viewer: Viewer, by: str, today: dt.date) -> pd.DataFrame:
    return _completion_tables(db_path, viewer, today)[by]


@st.cache_data(show_spinner=False, max_entries=16)
def _completion_tables(db_path: str, viewer: Viewer, today: dt.date) -> dict[str, pd.DataFrame]:
    return overdue.completion_tables(cursor(), viewer, framework(), today)


def proposed_agenda(viewer: Viewer, cohort: str | None) -> pd.DataFrame:
    """The learners the app proposes for a review meeting, with the reasons (tracker/review.py)."""
    from tracker import review

    return review.proposed_agenda(cursor(), viewer, framework(), priors(), cohort)


def meeting_minutes(viewer: Viewer, meeting_id: str) -> bytes:
    from tracker import reports

    return reports.meeting_minutes(cursor(), viewer, framework(), meeting_id)


@st.cache_data(show_spinner=False, max_entries=16)
def _priors(db_path: str, as_of: int | None) -> forecast.Priors:
    # the graduated cohorts' history does not depend on the term asked for: learned once per save
    return replace(queries.program_priors(cursor(), as_of), history=_history(db_path))


@st.cache_data(show_spinner=False, max_entries=4)
def _history(db_path: str) -> forecast.History | None:
    return queries.learned_history(cursor(), framework())


def priors(as_of: int | None = None) -> forecast.Priors:
    """The forecast's priors, drawn from the whole program (cached; cleared on every save)."""
    return _priors(str(settings().db_path), as_of)


@st.cache_data(show_spinner=False, max_entries=512)
def _current_term(db_path: str, learner_id: str) -> str:
    return actions.current_term(cursor(), framework(), learner_id)


def current_term(learner_id: str) -> str:
    """The term a new rating of this learner defaults to (cleared with the other figures on every save)."""
    return _current_term(str(settings().db_path), learner_id)


def learner_report(viewer: Viewer, learner_id: str) -> bytes:
    """The learner's PDF packet (tracker/reports.py), with the program's cached forecast priors."""
    from tracker import reports

    return reports.learner_report(cursor(), viewer, framework(), learner_id, priors())


def cohort_report(viewer: Viewer, cohort: str | None, as_of: int | None) -> bytes:
    from tracker import reports

    return reports.cohort_report(cursor(), viewer, framework(), cohort, as_of, priors(as_of))


@st.cache_data(show_spinner=False, max_entries=256)
def _learner_progress(db_path: str, viewer: Viewer, learner_id: str) -> queries.LearnerProgress:
    return queries.learner_progress(database()[0], viewer, learner_id, priors(), framework())


def learner_progress(viewer: Viewer, learner_id: str) -> queries.LearnerProgress:
    """Everything one learner's progress page shows (tracker/queries.py), read at once and cached."""
    return _learner_progress(str(settings().db_path), viewer, learner_id)


@st.cache_data(show_spinner=False, max_entries=64)
def _graduation_risk(db_path: str, viewer: Viewer, cohort: str | None, as_of: int | None) -> pd.DataFrame:
    return queries.graduation_risk(cursor(), viewer, priors(as_of), framework(), cohort=cohort, as_of=as_of)


def graduation_risk(viewer: Viewer, cohort: str | None = None, as_of: int | None = None) -> pd.DataFrame:
    """Active visible learners, least likely to reach the graduation level first."""
    return _graduation_risk(str(settings().db_path), viewer, cohort, as_of)


@st.cache_data(show_spinner=False, max_entries=16)
def _backtest(db_path: str, viewer: Viewer, term: int | None) -> queries.Backtest:
    return queries.backtest(cursor(), viewer, framework(), term)


def backtest(viewer: Viewer, term: int | None = None) -> queries.Backtest:
    """The forecast's backtest over the graduated cohorts (committee and coordinators)."""
    return _backtest(str(settings().db_path), viewer, term)


@st.cache_data(show_spinner=False, max_entries=4)
def _framework_pending(db_path: str, framework_path: str, modified: float) -> revision.Pending | None:
    return revision.pending(cursor(), Path(framework_path))


def framework_pending() -> revision.Pending | None:
    """What the configured framework file would change, when it differs from the accepted version."""
    path = settings().framework_path
    modified = path.stat().st_mtime if path.exists() else 0.0
    return _framework_pending(str(settings().db_path), str(path), modified)


@st.cache_data(show_spinner=False, max_entries=4)
def _framework_differs(db_path: str, framework_path: str, modified: float) -> bool:
    return revision.differs(cursor(), Path(framework_path))


def framework_differs() -> bool:
    """Whether the configured framework file differs from the accepted version (without reading ratings)."""
    path = settings().framework_path
    modified = path.stat().st_mtime if path.exists() else 0.0
    return _framework_differs(str(settings().db_path), str(path), modified)


@st.cache_data(show_spinner=False, max_entries=4)
def _framework_versions(db_path: str) -> list[revision.Version]:
    return revision.versions(cursor())


def framework_versions() -> list[revision.Version]:
    """The accepted framework versions, oldest first."""
    return _framework_versions(str(settings().db_path))


def saved() -> None:
    """Call after every write: cached figures are stale now."""
    st.cache_data.clear()


# ---- the signed-in viewer ----------------------------------------------------------------------
# The server-side session of this browser tab lives in session_state (never sent to the browser). The browser
# keeps its own session in an HttpOnly cookie, set by an HTTP route (tracker/server.py) in exchange for a
# one-time ticket, so that a reload stays signed in; no script of the page can read it.
def current_viewer() -> Viewer | None:
    """The viewer of this browser session, checked against the server-side session every run."""
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
def _demo_mode(db_path: str) -> bool:
    row = (
        cursor()
        .execute("SELECT count(*) FROM audit_log WHERE action = 'account add' AND target = 'demo accounts'")
        .fetchone()
    )
    return bool(row and row[0])


def demo_mode() -> bool:
    return _demo_mode(str(settings().db_path))
