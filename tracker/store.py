"""DuckDB: the connection, the schema and its migrations, and every write, each in a transaction."""

import datetime as dt
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pandas as pd

from data_models import Evidence, Framework, Learner, Rating, Staff
from data_models.base import LIST_SEPARATOR
from tracker.config import settings
from tracker.errors import DatabaseBusy, TrackerError

T = TypeVar("T")
Cursor = duckdb.DuckDBPyConnection

# Ordered, named migrations; each is applied once, in one transaction with its "applied" record.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_records",
        """
        CREATE SEQUENCE record_seq;
        CREATE TABLE framework_versions (
            framework_id VARCHAR NOT NULL, version VARCHAR NOT NULL, name VARCHAR NOT NULL,
            source_yaml VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL,
            PRIMARY KEY (framework_id, version));
        CREATE TABLE learners (
            id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, email VARCHAR NOT NULL,
            cohort VARCHAR NOT NULL, profession VARCHAR NOT NULL, start_term VARCHAR NOT NULL,
            status VARCHAR NOT NULL, advisor_id VARCHAR, recorded_at TIMESTAMP NOT NULL);
        CREATE TABLE staff (
            id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, email VARCHAR NOT NULL,
            roles VARCHAR[] NOT NULL, recorded_at TIMESTAMP NOT NULL);
        CREATE TABLE ratings (
            id VARCHAR PRIMARY KEY, learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL,
            level DECIMAL(4,1) NOT NULL, rater_id VARCHAR NOT NULL, rater_role VARCHAR NOT NULL,
            rated_on DATE NOT NULL, term VARCHAR NOT NULL, term_index SMALLINT NOT NULL,
            comment VARCHAR NOT NULL, evidence_ids VARCHAR[] NOT NULL,
            framework_version VARCHAR NOT NULL, corrects VARCHAR,
            recorded_at TIMESTAMP NOT NULL, seq BIGINT NOT NULL DEFAULT nextval('record_seq'));
        CREATE TABLE evidence (
            id VARCHAR PRIMARY KEY, learner_id VARCHAR NOT NULL, type VARCHAR NOT NULL,
            title VARCHAR NOT NULL, competency_ids VARCHAR[] NOT NULL, url VARCHAR NOT NULL,
            description VARCHAR NOT NULL, added_on DATE NOT NULL, recorded_at TIMESTAMP NOT NULL);
        CREATE TABLE audit_log (
            seq BIGINT NOT NULL DEFAULT nextval('record_seq'), occurred_at TIMESTAMP NOT NULL,
            actor VARCHAR NOT NULL, action VARCHAR NOT NULL, target VARCHAR NOT NULL, detail JSON);
        """,
    ),
    (
        "0002_framework_tables",
        """
        CREATE TABLE fw_competencies (
            competency_id VARCHAR PRIMARY KEY, competency_name VARCHAR NOT NULL,
            domain_id VARCHAR NOT NULL, domain_name VARCHAR NOT NULL,
            domain_position SMALLINT NOT NULL, position SMALLINT NOT NULL);
        CREATE TABLE fw_expected (
            competency_id VARCHAR NOT NULL, term VARCHAR NOT NULL, term_index SMALLINT NOT NULL,
            expected DECIMAL(4,1) NOT NULL, PRIMARY KEY (competency_id, term));
        CREATE TABLE fw_terms (term VARCHAR PRIMARY KEY, term_index SMALLINT NOT NULL, label VARCHAR NOT NULL);
        """,
    ),
    (
        "0003_accounts",
        """
        CREATE TABLE accounts (
            username VARCHAR PRIMARY KEY, person_id VARCHAR NOT NULL, password_hash VARCHAR,
            disabled BOOLEAN NOT NULL DEFAULT false, failed_attempts INTEGER NOT NULL DEFAULT 0,
            locked_until TIMESTAMP, created_at TIMESTAMP NOT NULL);
        CREATE TABLE sessions (
            token_hash VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL, ended_at TIMESTAMP);
        """,
    ),
    (
        "0004_term_levels",
        """
        CREATE TABLE term_levels (
            learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL, term_index SMALLINT NOT NULL,
            is_self BOOLEAN NOT NULL, level DECIMAL(4,1) NOT NULL, rated_on DATE NOT NULL);
        """,
    ),
    (
        "0005_current_levels",
        """
        CREATE TABLE current_levels (
            learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL,
            level DECIMAL(4,1), level_term SMALLINT, last_rated_on DATE,
            self_level DECIMAL(4,1), self_term SMALLINT, last_self_on DATE, previous_level DECIMAL(4,1));
        """,
    ),
    (
        # a row for every learner and competency, rated or not, with the learner's assessed term and latest
        # rating date: the standing reads one table instead of joining it to learners x competencies
        "0006_current_levels_every_competency",
        """
        DROP TABLE current_levels;
        CREATE TABLE current_levels (
            learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL,
            level DECIMAL(4,1), level_term SMALLINT, last_rated_on DATE,
            self_level DECIMAL(4,1), self_term SMALLINT, last_self_on DATE, previous_level DECIMAL(4,1),
            assessed_term SMALLINT, last_on DATE);
        """,
    ),
    (
        # The browser's cookie holds its own session (HttpOnly, set by an HTTP route), got in exchange for a
        # one-time ticket of the sign-in's session; failed sign-ins are counted per account and source.
        "0007_cookie_sessions_and_sign_in_throttle",
        """
        ALTER TABLE sessions ADD COLUMN parent_hash VARCHAR;
        ALTER TABLE sessions ADD COLUMN ticket_hash VARCHAR;
        ALTER TABLE sessions ADD COLUMN ticket_expires_at TIMESTAMP;
        CREATE TABLE sign_in_failures (username VARCHAR NOT NULL, source VARCHAR NOT NULL, failed_at TIMESTAMP NOT NULL);
        """,
    ),
    (
        # One-time links (invitations and password resets), kept only as hashes; every request for one, by a
        # coordinator or by someone who forgot their password, is counted per account and source.
        "0008_invitation_and_reset_links",
        """
        CREATE TABLE account_links (
            token_hash VARCHAR PRIMARY KEY, person_id VARCHAR NOT NULL, username VARCHAR NOT NULL,
            kind VARCHAR NOT NULL, created_by VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL, used_at TIMESTAMP, revoked_at TIMESTAMP);
        CREATE TABLE link_requests (account_key VARCHAR NOT NULL, source VARCHAR NOT NULL, requested_at TIMESTAMP NOT NULL);
        """,
    ),
    (
        # The committee's review cycle (tracker/review.py): meetings and their agendas; drafts, the working state
        # of a meeting that only the committee reads; signed decisions and their actions, never edited (a revision
        # is a new decision whose `replaces` names the one it supersedes).
        "review_meetings_and_decisions",
        """
        CREATE TABLE review_meetings (
            id VARCHAR PRIMARY KEY, title VARCHAR NOT NULL, held_on DATE NOT NULL, period VARCHAR NOT NULL,
            cohort VARCHAR, chair_id VARCHAR NOT NULL, members VARCHAR[] NOT NULL,
            created_by VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, signed_at TIMESTAMP);
        CREATE TABLE review_agenda (
            meeting_id VARCHAR NOT NULL, position SMALLINT NOT NULL, learner_id VARCHAR NOT NULL,
            reasons VARCHAR NOT NULL, PRIMARY KEY (meeting_id, learner_id));
        CREATE TABLE decision_drafts (
            meeting_id VARCHAR NOT NULL, learner_id VARCHAR NOT NULL, outcome VARCHAR, rationale VARCHAR NOT NULL,
            actions JSON NOT NULL, levels JSON NOT NULL, updated_by VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (meeting_id, learner_id));
        CREATE TABLE decisions (
            id VARCHAR PRIMARY KEY, meeting_id VARCHAR, learner_id VARCHAR NOT NULL, outcome VARCHAR NOT NULL,
            rationale VARCHAR NOT NULL, decided_on DATE NOT NULL, signed_by VARCHAR NOT NULL, replaces VARCHAR,
            recorded_at TIMESTAMP NOT NULL, seq BIGINT NOT NULL DEFAULT nextval('record_seq'));
        CREATE TABLE decision_actions (
            decision_id VARCHAR NOT NULL, position SMALLINT NOT NULL, action VARCHAR NOT NULL,
            owner_id VARCHAR NOT NULL, due_on DATE NOT NULL, PRIMARY KEY (decision_id, position));
        """,
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)

# term_levels is derived, never a record: for each learner, competency, term and kind of rater (self, or
# advisor/committee), the level of the latest rating that no correction supersedes. Every write of ratings
# refreshes the rows of the learners it touches, in its own transaction, so reads never recompute it.
TERM_LEVELS = """
    SELECT learner_id, competency_id, term_index, rater_role = 'self' AS is_self,
        -- the latest rating of the term: by date, then by the order recorded (one integer key: fast)
        arg_max(level, (date_diff('day', DATE '2000-01-01', rated_on) << 40) | seq) AS level, max(rated_on) AS rated_on
    FROM ratings
    WHERE id NOT IN (SELECT corrects FROM ratings WHERE corrects IS NOT NULL)
      AND ($learners IS NULL OR learner_id IN (SELECT unnest($learners)))
    GROUP BY ALL ORDER BY learner_id, competency_id, term_index"""


def latest_levels_ctes(source: str) -> str:
    """The `latest` and `previous` CTEs over term levels in `source` (a CTE name of ours): per learner and
    competency, the latest advisor/committee level with its term and date, the level of the term before it,
    and the latest self level. The one definition, for now (current_levels) and for a past term (queries)."""
    return f"""
    latest AS (
        SELECT learner_id, competency_id,
            max_by(level, term_index) FILTER (WHERE NOT is_self) AS level,
            max(term_index) FILTER (WHERE NOT is_self) AS level_term,
            max(rated_on) FILTER (WHERE NOT is_self) AS last_rated_on,
            max_by(level, term_index) FILTER (WHERE is_self) AS self_level,
            max(term_index) FILTER (WHERE is_self) AS self_term,
            max(rated_on) FILTER (WHERE is_self) AS last_self_on
        FROM {source} GROUP BY ALL),
    previous AS (
        SELECT p.learner_id, p.competency_id, max_by(p.level, p.term_index) AS previous_level
        FROM {source} p JOIN latest l USING (learner_id, competency_id)
        WHERE NOT p.is_self AND p.term_index < l.level_term GROUP BY ALL)"""  # noqa: S608 - `source` is our constant


def levels_select(learners: str) -> str:
    """One row per learner of `learners` (a FROM item aliased l) and competency of the framework: the latest
    levels (from the CTEs `latest` and `previous`), the learner's assessed term (the latest term with an
    advisor or committee rating) and the date of their latest rating of any kind."""
    return f"""
    SELECT l.id AS learner_id, fc.competency_id, la.level, la.level_term, la.last_rated_on,
        la.self_level, la.self_term, la.last_self_on, p.previous_level,
        max(la.level_term) OVER learner AS assessed_term,
        max(greatest(coalesce(la.last_rated_on, la.last_self_on), coalesce(la.last_self_on, la.last_rated_on))) OVER learner
            AS last_on
    FROM {learners} CROSS JOIN fw_competencies fc
    LEFT JOIN latest la ON la.learner_id = l.id AND la.competency_id = fc.competency_id
    LEFT JOIN previous p ON p.learner_id = l.id AND p.competency_id = fc.competency_id
    WINDOW learner AS (PARTITION BY l.id)"""  # noqa: S608 - `learners` is our constant


# current_levels is derived from term_levels, kept current by the same writes (and for new learners and a
# changed framework): a row for every learner and competency.
CURRENT_LEVELS = (
    "WITH t AS (SELECT * FROM term_levels WHERE $learners IS NULL OR learner_id IN (SELECT unnest($learners))),"  # noqa: S608
    + latest_levels_ctes("t")
    + levels_select("(SELECT * FROM learners WHERE $learners IS NULL OR id IN (SELECT unnest($learners))) l")
    + "\n    ORDER BY l.id, fc.competency_id"
)


def refresh_term_levels(cur: Cursor, learner_ids: Sequence[str] | None = None) -> None:
    """Recompute the derived levels of these learners (all learners when None); call inside a write."""
    ids = None if learner_ids is None else sorted(set(learner_ids))
    for table, sql in (("term_levels", TERM_LEVELS), ("current_levels", CURRENT_LEVELS)):
        cur.execute(
            f"DELETE FROM {table} WHERE $learners IS NULL OR learner_id IN (SELECT unnest($learners))",  # noqa: S608
            {"learners": ids},
        )
        cur.execute(f"INSERT INTO {table} " + sql, {"learners": ids})


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ---- connection --------------------------------------------------------------------------------
class Database:
    """One DuckDB connection per process; each thread reads and writes through its own cursor."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = _open(self.path, read_only)
        self._local = threading.local()

    def cursor(self) -> Cursor:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.con.cursor()
        return cur

    def close(self) -> None:
        self.con.close()


def _open(path: Path, read_only: bool) -> Cursor:
    try:
        # DuckDB's memory for caching and working (beyond it, large operations spill to a temporary folder)
        return duckdb.connect(str(path), read_only=read_only, config={"memory_limit": settings().memory_limit})
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            pid = re.search(r"PID (\d+)", str(exc))
            holder = f"process {pid.group(1)}" if pid else "another process"
            raise DatabaseBusy(
                f"The database {path} is open for writing in {holder}, most likely the running app. "
                "Only one program can write to it at a time: stop the other one (Ctrl+C in its terminal), "
                "then try again; or point TRACKER_DB at another file."
            ) from None
        raise TrackerError(f"Cannot open the database {path}: {exc}") from None


# ---- transactions ------------------------------------------------------------------------------
@contextmanager
def _transaction(cur: Cursor) -> Iterator[Cursor]:
    cur.execute("BEGIN TRANSACTION")
    try:
        yield cur
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


def write(cur: Cursor, work: Callable[[Cursor], T], attempts: int = 60) -> T:
    """Run `work` in one transaction; retry it when DuckDB reports a write-write conflict."""
    for attempt in range(attempts):
        try:
            with _transaction(cur):
                return work(cur)
        except duckdb.TransactionException as exc:
            if "conflict" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # noqa: S311 - jitter, not security
    raise AssertionError("unreachable")


# ---- schema ------------------------------------------------------------------------------------
def apply_migrations(cur: Cursor) -> list[str]:
    """Apply the migrations not applied yet, in order; return their names. Running it twice is a no-op."""
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    done = {row[0] for row in cur.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, (name, sql) in enumerate(MIGRATIONS, start=1):
        if version in done:
            continue

        def migrate(c: Cursor, version: int = version, name: str = name, sql: str = sql) -> None:
            c.execute(sql)
            c.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, now()])

        write(cur, migrate)
        applied.append(name)
    if {"0004_term_levels", "0005_current_levels", "0006_current_levels_every_competency"} & set(applied):
        write(cur, refresh_term_levels)
    return applied


def schema_version(cur: Cursor) -> int:
    return int(cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])  # type: ignore[index]


def sync_framework(cur: Cursor, framework: Framework, source_yaml: str) -> None:
    """Record the framework version and refresh the tables the queries join against."""
    comps = [
        (c.id, c.name, d.id, d.name, di, ci)
        for di, d in enumerate(framework.domains)
        for ci, c in enumerate(d.competencies)
    ]
    expected = [
        (cid, term, framework.term_index(term), framework.expected_level(cid, term))
        for cid in framework.competencies
        for term in framework.term_ids
    ]
    terms = [(t.id, i, t.label) for i, t in enumerate(framework.calendar.terms, start=1)]

    wanted: dict[str, list[tuple]] = {"fw_competencies": comps, "fw_expected": expected, "fw_terms": terms}

    def work(c: Cursor) -> None:
        c.execute(
            "INSERT INTO framework_versions SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS "
            "(SELECT 1 FROM framework_versions WHERE framework_id = ? AND version = ?)",
            [framework.id, framework.version, framework.name, source_yaml, now(), framework.id, framework.version],
        )
        changed = False
        for table, rows in wanted.items():
            if sorted(c.execute(f"SELECT * FROM {table}").fetchall()) == sorted(rows):  # noqa: S608 - fixed names
                continue
            changed = True
            c.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            marks = ", ".join("?" * len(rows[0]))
            c.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608 - fixed table names
        if changed:  # other competencies or targets: every learner's derived levels follow
            refresh_term_levels(c)

    write(cur, work)


def open_database(path: str | Path, framework: Framework, source_yaml: str) -> Database:
    db = Database(path)
    cur = db.cursor()
    apply_migrations(cur)
    sync_framework(cur, framework, source_yaml)
    return db


# ---- record writes (append-only) ---------------------------------------------------------------
def audit(cur: Cursor, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """Append one audit row; call inside the transaction of the write it records."""
    cur.execute(
        "INSERT INTO audit_log (occurred_at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        [now(), actor, action, target, json.dumps(detail or {}, default=str, ensure_ascii=False)],
    )


RATING_FIELDS = [
    "id",
    "learner_id",
    "competency_id",
    "level",
    "rater_id",
    "rater_role",
    "rated_on",
    "term",
    "comment",
    "evidence_ids",
    "framework_version",
    "corrects",
]


def ratings_columns(ratings: Sequence[Rating]) -> pd.DataFrame:
    """Validated ratings as columns, enums as their values."""
    frame = pd.DataFrame([r.__dict__ for r in ratings], columns=RATING_FIELDS)
    frame["rater_role"] = frame["rater_role"].map(str)
    return frame


def ratings_frame(ratings: Sequence[Rating] | pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """Rows ready for the ratings table (from models, or from validated columns): with each term's position in
    the calendar and the time recorded; levels as floats, dates as dates and evidence lists as `;`-joined text
    (ids never hold `;`), so DuckDB reads whole columns instead of Python objects."""
    frame = ratings[RATING_FIELDS].copy() if isinstance(ratings, pd.DataFrame) else ratings_columns(ratings)
    frame["term_index"] = frame["term"].map({t: framework.term_index(t) for t in framework.term_ids})
    frame["level"] = frame["level"].astype(float)
    codes, dates = pd.factorize(frame["rated_on"])
    frame["rated_on"] = np.array(list(dates), dtype="datetime64[D]")[codes] if len(frame) else []
    codes, lists = pd.factorize(frame["evidence_ids"].map(LIST_SEPARATOR.join))
    frame["evidence_ids"] = lists.to_numpy(dtype=object)[codes] if len(frame) else []
    frame["recorded_at"] = now()
    return frame


def insert_records(cur: Cursor, kind: str, records: Sequence[Learner | Staff | Evidence]) -> None:
    """Insert validated learners, staff or evidence (inside the caller's transaction)."""
    table = {"learners": "learners", "staff": "staff", "evidence": "evidence"}[kind]
    frame = pd.DataFrame([r.__dict__ for r in records])
    for column in ("status", "email"):
        if column in frame:
            frame[column] = frame[column].map(str)
    if "roles" in frame:
        frame["roles"] = frame["roles"].map(lambda roles: [str(r) for r in roles])
    frame["recorded_at"] = now()
    with registered(cur, "incoming_records", frame):
        cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_records")  # noqa: S608 - fixed table names
    if kind == "learners":  # a new learner stands "not rated" in every competency
        refresh_term_levels(cur, [r.id for r in records])


RATING_COLUMNS = (
    "id, learner_id, competency_id, level, rater_id, rater_role, rated_on, term, term_index, "
    "comment, evidence_ids, framework_version, corrects, recorded_at"
)


@contextmanager
def registered(cur: Cursor, name: str, frame: pd.DataFrame) -> Iterator[None]:
    """Expose a DataFrame to SQL as `name` for the duration of the block."""
    cur.complete()  # finish any result still open on this cursor, as DuckDB requires before registering
    cur.register(name, frame)
    try:
        yield
    finally:
        with suppress(duckdb.Error):  # in an aborted transaction; the next register replaces it
            cur.unregister(name)


def insert_ratings_frame(cur: Cursor, frame: pd.DataFrame) -> None:
    """Insert prepared rating rows (ratings_frame), sorted so one learner's ratings sit together on disk."""
    with registered(cur, "incoming_ratings", frame):
        cur.execute(
            f"INSERT INTO ratings ({RATING_COLUMNS}) SELECT * REPLACE ("  # noqa: S608 - constant columns
            "CASE WHEN evidence_ids = '' THEN []::VARCHAR[] ELSE string_split(evidence_ids, ';') END AS evidence_ids) "
            f"FROM (SELECT {RATING_COLUMNS} FROM incoming_ratings) ORDER BY learner_id, competency_id, term_index, rated_on"
        )


def add_ratings(
    cur: Cursor, ratings: Sequence[Rating], framework: Framework, actor: str, action: str = "rating"
) -> None:
    """Append ratings (a correction is a rating whose `corrects` names the one it supersedes)."""
    frame = ratings_frame(ratings, framework)

    def work(c: Cursor) -> None:
        insert_ratings_frame(c, frame)
        refresh_term_levels(c, [r.learner_id for r in ratings])
        for r in ratings:
            audit(
                c,
                actor,
                "correction" if r.corrects else action,
                r.learner_id,
                {
                    "rating_id": r.id,
                    "competency_id": r.competency_id,
                    "level": r.level,
                    "rater_role": r.rater_role.value,
                    "term": r.term,
                    "corrects": r.corrects,
                },
            )

    write(cur, work)


def add_evidence(cur: Cursor, items: Sequence[Evidence], actor: str) -> None:
    stamp = now()
    rows = [
        (e.id, e.learner_id, e.type, e.title, list(e.competency_ids), e.url, e.description, e.added_on, stamp)
        for e in items
    ]

    def work(c: Cursor) -> None:
        c.executemany("INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for e in items:
            audit(c, actor, "evidence", e.learner_id, {"evidence_id": e.id, "title": e.title})

    write(cur, work)


def learner_rows(learners: Sequence[Learner]) -> list[tuple]:
    stamp = now()
    return [
        (x.id, x.name, str(x.email), x.cohort, x.profession, x.start_term, x.status.value, x.advisor_id, stamp)
        for x in learners
    ]


def staff_rows(staff: Sequence[Staff]) -> list[tuple]:
    stamp = now()
    return [(s.id, s.name, str(s.email), [r.value for r in s.roles], stamp) for s in staff]


def set_learner_status(cur: Cursor, learner_id: str, status: str, actor: str) -> None:
    def work(c: Cursor) -> None:
        old = c.execute("SELECT status FROM learners WHERE id = ?", [learner_id]).fetchone()
        if old is None:
            raise TrackerError(f"No learner with id {learner_id!r}.")
        c.execute("UPDATE learners SET status = ? WHERE id = ?", [status, learner_id])
        audit(c, actor, "learner status", learner_id, {"from": old[0], "to": status})

    write(cur, work)
