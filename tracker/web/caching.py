"""The app's database and what its cached figures are drawn from: one connection per server process (a cursor per
thread), the framework in force, and the generations that a save moves on, so that a save draws again only the
figures it changed. In server mode, what other servers saved reaches the caches as the copy follows PostgreSQL."""

import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from data_models import Framework
from tracker.core.config import settings
from tracker.records.setup import open_configured
from tracker.storage.database import Cursor, Database

log = logging.getLogger("milestone.web")
R = TypeVar("R")


@st.cache_resource(show_spinner=False)
def _database(db_path: str, framework_path: str) -> tuple[Database, Framework]:
    # keyed by the paths, so tests with their own database files never share a connection
    global _server_mode
    db, framework = open_configured(settings())
    on_follow = getattr(db, "on_follow", None)  # server mode's copy: what other servers saved names what it changed
    if on_follow is not None:
        on_follow(_followed)
        _server_mode = True
    return db, framework


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
warm_wanted = threading.Event()


def generation_of(topics: tuple[str, ...]) -> tuple[int, ...]:
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
        warm_wanted.set()  # the committee home's agenda changed: the server draws it again (keep_warm)


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
        log.warning("could not follow PostgreSQL: %s", exc)


def drawn_from(topics: tuple[str, ...], learner_id: object = None, cohort: object = None) -> tuple[str, ...]:
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
        drawn = drawn_from(topics, asked.get("learner_id"), asked.get("cohort"))
        return run(str(settings().db_path), query.__name__, generation_of(drawn), *args, **kwargs)

    return call


_priors_learned = {"records": -1, "at": 0.0}  # the program's records generation the priors were last learned at


def priors_generation() -> tuple[int, ...]:
    """The priors are averages and fits over every learner of the program, which one rating barely moves: after
    saves they are learned again once they are PRIORS_SECONDS old, so a save does not make every learner's
    forecast be drawn again; an import (EVERYTHING) has them learned again at once."""
    everything, records = generation_of((RECORDS,))
    with _generations_lock:
        learned = _priors_learned
        if records != learned["records"] and time.monotonic() - learned["at"] >= PRIORS_SECONDS:
            learned["records"], learned["at"] = records, time.monotonic()
        return (everything, int(learned["records"]))
