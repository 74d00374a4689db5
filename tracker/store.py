"""DuckDB: the connection, the schema and its migrations, and every write, each in a transaction."""

import datetime as dt
import json
import random
import re
import threading
import time
import weakref
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
from tracker.derived import CURRENT_LEVELS as CURRENT_LEVELS  # re-exported: the derived tables' old home
from tracker.derived import TERM_LEVELS as TERM_LEVELS
from tracker.derived import latest_levels_ctes as latest_levels_ctes
from tracker.derived import levels_select as levels_select
from tracker.derived import refresh_term_levels
from tracker.errors import DatabaseBusy, DatabaseDamaged, EnvironmentStop, FrameworkError, TrackerError

T = TypeVar("T")
Cursor = duckdb.DuckDBPyConnection
# the cursors of server-mode copies and the replica each writes through (filled by tracker/replica.py)
_servers: "weakref.WeakKeyDictionary[Cursor, Any]" = weakref.WeakKeyDictionary()

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
        # The database holds the accepted framework: a changed file waits for `framework upgrade`. Each version's
        # competencies, and where the earlier versions' competencies and levels went, are derived from the
        # accepted texts (tracker/revision.py); the derived levels say which rating each level came from.
        "0009_framework_revisions",
        """
        ALTER TABLE framework_versions ADD COLUMN accepted_at TIMESTAMP;
        ALTER TABLE framework_versions ADD COLUMN accepted_by VARCHAR;
        UPDATE framework_versions SET accepted_at = loaded_at, accepted_by = 'loaded';
        CREATE TABLE fw_history (
            version VARCHAR NOT NULL, competency_id VARCHAR NOT NULL, competency_name VARCHAR NOT NULL,
            domain_name VARCHAR NOT NULL, retired BOOLEAN NOT NULL, PRIMARY KEY (version, competency_id));
        CREATE TABLE fw_crosswalk (from_version VARCHAR NOT NULL, competency_id VARCHAR NOT NULL, to_competency_id VARCHAR);
        CREATE TABLE fw_level_map (
            from_version VARCHAR NOT NULL, level DECIMAL(4,1) NOT NULL, to_level DECIMAL(4,1) NOT NULL);
        ALTER TABLE term_levels ADD COLUMN from_competency_id VARCHAR;
        ALTER TABLE term_levels ADD COLUMN from_version VARCHAR;
        ALTER TABLE current_levels ADD COLUMN level_from_competency VARCHAR;
        ALTER TABLE current_levels ADD COLUMN level_from_version VARCHAR;
        """,
    ),
    (
        # The committee's review cycle (tracker/review.py): meetings and their agendas; drafts, the working state
        # of a meeting that only the committee reads; signed decisions and their actions, never edited (a revision
        # is a new decision whose `replaces` names the one it supersedes).
        "0010_review_meetings_and_decisions",
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
    (
        # Learning plans (tracker/plans.py): a plan, opened by a committee decision that requires one or by the
        # learner; its goals, never edited (a change is the goal's next version); the advisor's agreement of one
        # version; comments on a version. A decision signed before this migration that requires a plan (the
        # standard outcomes) opens its plan here.
        "0011_learning_plans",
        """
        CREATE TABLE learning_plans (
            id VARCHAR PRIMARY KEY, learner_id VARCHAR NOT NULL, decision_id VARCHAR, opened_on DATE NOT NULL,
            opened_by VARCHAR NOT NULL, recorded_at TIMESTAMP NOT NULL);
        CREATE TABLE goals (
            id VARCHAR NOT NULL, version SMALLINT NOT NULL, plan_id VARCHAR NOT NULL, learner_id VARCHAR NOT NULL,
            competency_id VARCHAR NOT NULL, target_level DECIMAL(4,1) NOT NULL, by_term VARCHAR NOT NULL,
            actions VARCHAR NOT NULL, evidence VARCHAR NOT NULL, written_by VARCHAR NOT NULL, written_on DATE NOT NULL,
            recorded_at TIMESTAMP NOT NULL, seq BIGINT NOT NULL DEFAULT nextval('record_seq'),
            PRIMARY KEY (id, version));
        CREATE TABLE goal_agreements (
            goal_id VARCHAR NOT NULL, version SMALLINT NOT NULL, agreed_by VARCHAR NOT NULL, agreed_on DATE NOT NULL,
            recorded_at TIMESTAMP NOT NULL, PRIMARY KEY (goal_id, version));
        CREATE TABLE goal_comments (
            goal_id VARCHAR NOT NULL, version SMALLINT NOT NULL, author_id VARCHAR NOT NULL, written_on DATE NOT NULL,
            comment VARCHAR NOT NULL, recorded_at TIMESTAMP NOT NULL, seq BIGINT NOT NULL DEFAULT nextval('record_seq'));
        INSERT INTO learning_plans
            SELECT 'P-' || id, learner_id, id, decided_on, signed_by, timezone('UTC', now()) FROM decisions
            WHERE outcome IN ('learning-plan', 'remediation-plan');
        """,
    ),
    (
        # The derived levels name the rater whose rating each is, so the forecast can estimate each rater's
        # strictness (docs/measurement.md, "Raters' strictness").
        "0012_term_levels_rater",
        """
        ALTER TABLE term_levels ADD COLUMN rater_id VARCHAR;
        """,
    ),
    (
        # E-mail reminders (tracker/remind.py): one digest per person and day at most, enforced by the key; a send
        # is claimed ('sending') before it goes out, then marked 'sent' or 'failed' (a failed one is tried again
        # by the next run of that day; one left 'sending' is never sent twice).
        "0013_reminder_sends",
        """
        CREATE TABLE reminder_sends (
            person_id VARCHAR NOT NULL, day DATE NOT NULL, email VARCHAR NOT NULL, status VARCHAR NOT NULL,
            items INTEGER NOT NULL, attempts INTEGER NOT NULL, first_tried_at TIMESTAMP NOT NULL,
            last_tried_at TIMESTAMP NOT NULL, sent_at TIMESTAMP, error VARCHAR,
            PRIMARY KEY (person_id, day));
        """,
    ),
    (
        # The forecast's sums, derived from term_levels and kept current by the same writes (tracker/derived.py):
        # the program-wide priors read them instead of regrouping every level of the program.
        "0014_forecast_sums",
        """
        CREATE TABLE growth_sums (
            learner_id VARCHAR NOT NULL, competency_id VARCHAR NOT NULL, term_index SMALLINT NOT NULL,
            level DOUBLE NOT NULL, n BIGINT NOT NULL, st BIGINT NOT NULL, stt BIGINT NOT NULL, sy DOUBLE NOT NULL,
            sty DOUBLE NOT NULL, syy DOUBLE NOT NULL, next_term SMALLINT);
        CREATE TABLE domain_terms (
            learner_id VARCHAR NOT NULL, term_index SMALLINT NOT NULL, domain_id VARCHAR NOT NULL, rater_id VARCHAR,
            levels BIGINT NOT NULL, total DOUBLE NOT NULL);
        """,
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ---- connection --------------------------------------------------------------------------------
class Database:
    """One DuckDB connection per process; each thread reads and writes through its own cursor."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentStop(f"Cannot make the folder of the database {path}: {exc.strerror}.") from None
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
        raise damaged(path, exc) from None
    except duckdb.Error as exc:
        raise damaged(path, exc) from None


def is_damage(exc: BaseException) -> bool:
    """Whether a DuckDB error means the file itself cannot be read (rather than a busy file or a bug)."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and (
        (isinstance(exc, duckdb.IOException) and "lock" not in text) or "corrupt" in text or "checksum" in text
    )


def damaged(path: str | Path, exc: BaseException) -> DatabaseDamaged:
    """The error for a database file DuckDB cannot read, saying how to restore it."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DatabaseDamaged(
        f"The database {path} cannot be read: it is damaged, cut short or not a Milestone database ({reason}). "
        "Restore it from a backup: stop the app, run `python -m tracker restore BACKUP.duckdb` "
        "(a file made by `python -m tracker backup --out BACKUP.duckdb`), and start the app again; "
        "or point TRACKER_DB at another file."
    )


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
    """Run `work` in one transaction; retry it when DuckDB reports a write-write conflict. In server mode the
    cursor is a copy's, and the write goes through PostgreSQL (tracker/replica.py)."""
    if _servers and (server := _servers.get(cur)) is not None:
        return server.write(cur, work)
    for attempt in range(attempts):
        # Writes run side by side; a write that has met a conflict twice takes its next turns one at a time with
        # the other such writes (and new writes wait while one holds the turn), so writers of the same learner,
        # which refresh the same derived rows, queue instead of undoing each other's work again and again.
        with _CONTENDED if attempt >= 2 else _wait_for_contended():
            try:
                with _transaction(cur):
                    return work(cur)
            except duckdb.TransactionException as exc:
                if "conflict" not in str(exc).lower() or attempt == attempts - 1:
                    raise
        # jitter, growing to half a second: a loaded machine makes each transaction longer than the first pauses
        time.sleep(random.uniform(0, min(0.01 * 1.5**attempt, 0.5)))  # noqa: S311 - jitter, not security
    raise AssertionError("unreachable")


_CONTENDED = threading.RLock()  # held by a write retrying after conflicts (see write)


@contextmanager
def _wait_for_contended() -> Iterator[None]:
    """A new write starts once no retrying write holds the turn (it does not keep it while it runs)."""
    with _CONTENDED:
        pass
    yield


# ---- schema ------------------------------------------------------------------------------------
def apply_migrations(cur: Cursor, upto: int | None = None) -> list[str]:
    """Apply the migrations not applied yet, in order (the first `upto` of them only, when given: the schema of an
    earlier version, whose derived tables the caller fills once its records are in); return their names. Running
    it twice is a no-op."""
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    done = {row[0] for row in cur.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, (name, sql) in enumerate(MIGRATIONS[:upto], start=1):
        if version in done:
            continue

        def migrate(c: Cursor, version: int = version, name: str = name, sql: str = sql) -> None:
            c.execute(sql)
            c.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, now()])

        write(cur, migrate)
        applied.append(name)
    derived = {"0004_term_levels", "0005_current_levels", "0006_current_levels_every_competency"}
    refreshing = derived | {"0009_framework_revisions", "0012_term_levels_rater", "0014_forecast_sums"}
    if upto is None and refreshing & set(applied):
        write(cur, refresh_term_levels)
    return applied


def schema_version(cur: Cursor) -> int:
    return int(cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])  # type: ignore[index]


def open_database(
    path: str | Path,
    framework: "Framework | FrameworkError",
    source_yaml: str,
    server: str = "",
    temporary_copy: bool = False,
) -> Database:
    """Open (creating, migrating) the database. A database without a framework accepts this one; otherwise the
    database's accepted framework stays in force (tracker/revision.py) whatever `framework` says. With `server` (a
    postgresql:// address), `path` is this process's copy of PostgreSQL's records (tracker/replica.py)."""
    from tracker import revision  # it writes through this module

    if not server:  # the configured database's copy opens in server mode whoever opens it
        cfg = settings()
        if cfg.server_url and Path(path) == cfg.db_path:
            server, temporary_copy = cfg.server_url, cfg.copy_temporary
    if server:
        from tracker import replica

        db: Database = replica.open_server(server, Path(path), temporary_copy)
    else:
        db = Database(path)
    try:
        cur = db.cursor()
        if not server:
            apply_migrations(cur)
        revision.sync(cur, framework, source_yaml)
    except (duckdb.Error, TrackerError) as exc:
        db.close()
        if isinstance(exc, TrackerError):
            raise
        raise damaged(path, exc) from None
    return db


# ---- record writes (append-only) ---------------------------------------------------------------
def audit(cur: Cursor, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """Append one audit row; call inside the transaction of the write it records."""
    cur.execute(
        "INSERT INTO audit_log (occurred_at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        [now(), actor, action, target, json.dumps(detail or {}, default=str, ensure_ascii=False)],
    )


# The columns of a ratings file, in order: the model's own fields (data_models.Rating is the one schema).
RATING_FIELDS = list(Rating.model_fields)


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


# The stored columns of a rating: the model's fields, with the term's position after the term, and when recorded.
_AFTER_TERM = RATING_FIELDS.index("term") + 1
RATING_COLUMNS = ", ".join([*RATING_FIELDS[:_AFTER_TERM], "term_index", *RATING_FIELDS[_AFTER_TERM:], "recorded_at"])


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


def insert_checked_ratings(cur: Cursor, table: str, framework: Framework) -> None:
    """Insert the validated ratings of a table shaped like tracker.rules.CHECK_COLUMNS (inside the caller's
    transaction), sorted so one learner's ratings sit together on disk."""
    cur.execute(
        f"INSERT INTO ratings ({RATING_COLUMNS}) SELECT id, learner_id, competency_id, CAST(level AS DECIMAL(4,1)), "  # noqa: S608
        "rater_id, rater_role, rated_on, term, CAST(list_position($terms, term) AS SMALLINT), comment, "
        "CASE WHEN evidence_ids = '' THEN []::VARCHAR[] ELSE string_split(evidence_ids, ';') END, framework_version, "
        f"corrects, $now FROM {table} ORDER BY learner_id, competency_id, list_position($terms, term), rated_on, line",
        {"terms": framework.term_ids, "now": now()},
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


# ---- backup, restore and checks ----------------------------------------------------------------
def check_database(cur: Cursor) -> list[str]:
    """What is wrong with an open database: not one of ours, from a newer version, a table that cannot be read
    to its last row, or records that point at nothing. Empty when it passes every check."""
    tables = {
        r[0]
        for r in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    if "schema_migrations" not in tables:
        return ["it has no schema_migrations table: it is not a Milestone database"]
    applied = cur.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    known = list(enumerate((name for name, _ in MIGRATIONS), start=1))
    if applied != known[: len(applied)]:
        return [f"its migrations {[n for _, n in applied]} are not this version's (a newer Milestone, or not ours)"]
    problems = []
    for table in sorted(tables):
        try:  # read every value of every row: a damaged block shows here
            cur.execute(f'SELECT count(*), bit_xor(hash(t)) FROM "{table}" t').fetchall()  # noqa: S608 - catalog names
        except duckdb.Error as exc:
            problems.append(f"table {table} cannot be read ({str(exc).splitlines()[0]})")
    if problems or len(applied) < len(MIGRATIONS):
        return problems
    orphans = {
        "ratings without their learner": "SELECT count(*) FROM ratings r ANTI JOIN learners l ON l.id = r.learner_id",
        "corrections of no stored rating": "SELECT count(*) FROM ratings c WHERE c.corrects IS NOT NULL "
        "AND c.corrects NOT IN (SELECT id FROM ratings)",
        "evidence without its learner": "SELECT count(*) FROM evidence e ANTI JOIN learners l ON l.id = e.learner_id",
        "goals without their learning plan": "SELECT count(*) FROM goals g ANTI JOIN learning_plans p ON p.id = g.plan_id",
        "record numbers ahead of their sequence": "SELECT count(*) FROM ratings WHERE seq > (SELECT "
        "coalesce(last_value, start_value - 1) FROM duckdb_sequences() WHERE sequence_name = 'record_seq')",
    }
    for what, sql in orphans.items():
        n = cur.execute(sql).fetchone()[0]  # type: ignore[index]
        if n:
            problems.append(f"{n} {what}")
    return problems


def backup(path: str | Path, out: str | Path) -> None:
    """Copy the database at `path` into a new file `out`, consistent as of one moment. DuckDB lets one process
    open a file for writing and no one else, so this runs while nothing else has the database open."""
    out = Path(out)
    if out.exists():
        raise TrackerError(f"{out} exists already; choose a new file for the backup.")
    out.parent.mkdir(parents=True, exist_ok=True)
    _copy_database(Path(path), out, read_only=True)
    con = _open(out, read_only=True)
    try:
        problems = check_database(con)
    finally:
        con.close()
    if problems:
        out.unlink(missing_ok=True)
        raise damaged(path, TrackerError("; ".join(problems)))


def backup_open(cur: Cursor, out: str | Path) -> None:
    """Copy the database this connection has open into a new file `out`, as of one moment (a transaction's
    snapshot), while the app goes on serving: the backup the running app makes when a command asks it."""
    out = Path(out)
    if out.exists():
        raise TrackerError(f"{out} exists already; choose a new file for the backup.")
    out.parent.mkdir(parents=True, exist_ok=True)
    name = cur.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    cur.execute("ATTACH ? AS backup_target", [str(out)])
    try:
        cur.execute(f'COPY FROM DATABASE "{name}" TO backup_target')
    finally:
        cur.execute("DETACH backup_target")
    con = _open(out, read_only=True)
    try:
        problems = check_database(con)
    finally:
        con.close()
    if problems:
        out.unlink(missing_ok=True)
        raise TrackerError(f"The backup failed its check: {'; '.join(problems)}.")


def check_backup(backup_file: str | Path) -> None:
    """Refuse a file that is not a readable Milestone database of this version or an earlier one."""
    backup_file = Path(backup_file)
    if not backup_file.is_file():
        raise TrackerError(f"{backup_file}: no such file.")
    try:
        con = duckdb.connect(str(backup_file), read_only=True)
    except duckdb.Error as exc:
        raise TrackerError(f"{backup_file} is not a Milestone database backup ({str(exc).splitlines()[0]}).") from None
    try:
        problems = check_database(con)
    finally:
        con.close()
    if problems:
        raise TrackerError(f"{backup_file} is not a usable Milestone database backup: {'; '.join(problems)}.")


def restore(backup_file: str | Path, path: str | Path) -> Path | None:
    """Put the database in the backup file in place of the one at `path` (kept beside it, renamed, and returned),
    after checking that the backup is a readable Milestone database."""
    backup_file, path = Path(backup_file), Path(path)
    check_backup(backup_file)
    if path.exists():  # refuse while the app (or anything) holds it; a damaged file is what we replace
        with suppress(DatabaseDamaged):
            _open(path, read_only=False).close()
    fresh = path.with_name(path.name + ".restoring")
    fresh.unlink(missing_ok=True)
    _copy_database(backup_file, fresh, read_only=True)
    kept = None
    if path.exists():
        kept = path.with_name(f"{path.name}.replaced-{now():%Y%m%d-%H%M%S}")
        path.rename(kept)
    Path(str(path) + ".wal").unlink(missing_ok=True)  # a log belongs to the file it was written for
    fresh.rename(path)
    return kept


def _copy_database(source: Path, target: Path, read_only: bool) -> None:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # a command's output is its own message
    try:
        try:
            con.execute("ATTACH ? AS src (READ_ONLY)" if read_only else "ATTACH ? AS src", [str(source)])
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise DatabaseBusy(
                    f"The database {source} is open for writing in another process, most likely the running app: "
                    "stop it (Ctrl+C in its terminal), run the command, and start the app again."
                ) from None
            raise damaged(source, exc) from None
        except duckdb.Error as exc:
            raise damaged(source, exc) from None
        con.execute("ATTACH ? AS dst", [str(target)])
        try:
            con.execute("COPY FROM DATABASE src TO dst")
        except duckdb.Error as exc:
            con.execute("DETACH dst")
            target.unlink(missing_ok=True)
            raise damaged(source, exc) from None
        con.execute("DETACH dst")
    finally:
        con.close()
