"""Server mode (TRACKER_DB=postgresql://…): PostgreSQL holds the records and takes every write; this process answers
the pages from its own DuckDB copy, which follows PostgreSQL by the change number of every write.

One write path. A write runs the rules as in the embedded mode (database.write's `work`, in DuckDB's SQL) against the
local copy, inside a PostgreSQL transaction that holds one advisory lock shared by every server and command: the
copy is first brought up to PostgreSQL's latest change, `work` runs in a local transaction, the rows it added,
changed or removed are found (by the record order number `seq` where rows carry one, by comparing row hashes
elsewhere) and written to PostgreSQL's tables of the same names, columns and keys, each row stamped with the write's
change number; PostgreSQL commits (the moment of truth), then the copy. A failure before PostgreSQL's commit leaves
nothing anywhere; a failure after it is healed by the next follow-up, which takes the write from PostgreSQL.

The copy follows: at start a full copy (when the local file is new, from another database, or ahead of PostgreSQL,
as after a restore), then the rows of every change past its own, at the start of every page run and before every
write. Removed rows leave a tombstone (table, key, change). The derived tables (term_levels, current_levels) are
never copied: each copy refreshes them for the learners whose rows arrived."""

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import psycopg
import pyarrow as pa

from tracker.core.config import settings
from tracker.core.errors import EnvironmentStop, WriteTimedOut, WriteUncertain
from tracker.storage import backups, database, derived, schema
from tracker.storage.derived import refresh_term_levels

T = TypeVar("T")
Cursor = duckdb.DuckDBPyConnection
log = logging.getLogger("milestone.replica")

WRITE_LOCK = 727_001  # pg_advisory_xact_lock key: one write at a time across every server and command
DERIVED = frozenset(name for name, _ in derived.DERIVED)  # recomputed in each copy, never copied
STATE = "replica_state"  # the copy's own bookkeeping (PostgreSQL's epoch and the last change taken up)
CHANGE = "change_no"  # the column every copied PostgreSQL table adds: the change that last wrote the row
FRAMEWORK_TABLES = frozenset(
    {"framework_versions", "fw_competencies", "fw_expected", "fw_terms", "fw_history", "fw_crosswalk", "fw_level_map"}
)
BATCH = 50_000  # rows per batch when copying a table

BOOKKEEPING = """
CREATE SEQUENCE IF NOT EXISTS replication_change;
CREATE TABLE IF NOT EXISTS replication_head (epoch text NOT NULL, change bigint NOT NULL);
CREATE TABLE IF NOT EXISTS replication_changes (change bigint PRIMARY KEY, tables text[] NOT NULL);
ALTER TABLE replication_changes ADD COLUMN IF NOT EXISTS mark text;
CREATE TABLE IF NOT EXISTS replication_tombstones (change bigint NOT NULL, table_name text NOT NULL, key text[] NOT NULL);
CREATE INDEX IF NOT EXISTS replication_tombstones_change ON replication_tombstones (change);
"""

PG_TYPES = {
    "VARCHAR": "text",
    "JSON": "text",  # kept as the text the app wrote
    "BOOLEAN": "boolean",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "DOUBLE": "double precision",
    "FLOAT": "real",
}


def pg_type(duck: str) -> str:
    if duck.endswith("[]"):
        return pg_type(duck[:-2]) + "[]"
    if duck.startswith("DECIMAL"):
        return "numeric" + duck[len("DECIMAL") :]
    return PG_TYPES[duck]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Table:
    """A copied table: its columns and DuckDB types, the key rows are upserted by (empty: the table is replaced
    whole when it changes), and whether rows carry the record order number `seq` (new rows are those past the
    sequence; such rows are never changed in place)."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    key: tuple[str, ...]
    numbered: bool

    @property
    def column_list(self) -> str:
        return ", ".join(_q(c) for c in self.columns)

    @property
    def clustered(self) -> str:
        """The order a whole copy of the table is written in: one learner's rows together (as the embedded mode's
        imports write them), so that DuckDB reads only the row groups of the learner a page asks about."""
        first = ("learner_id",) if "learner_id" in self.columns and self.key != ("learner_id",) else ()
        order = [*first, *self.key]
        return f"ORDER BY {', '.join(_q(c) for c in order)}" if order else ""

    def key_text(self, alias: str = "x") -> str:
        return ", ".join(f"CAST({alias}.{_q(k)} AS VARCHAR)" for k in self.key)


def tables(cur: Cursor) -> list[Table]:
    """The tables of the local copy that PostgreSQL holds too (all but the derived ones and the copy's own)."""
    columns: dict[str, list[tuple[str, str]]] = {}
    for name, column, kind in cur.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM duckdb_columns() c JOIN duckdb_tables() t "
        "ON t.table_oid = c.table_oid WHERE t.database_name = current_database() AND t.schema_name = 'main' "
        "AND NOT t.temporary ORDER BY c.table_name, c.column_index"
    ).fetchall():
        columns.setdefault(name, []).append((column, kind))
    keys = {
        name: tuple(names)
        for name, names in cur.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE database_name = current_database() AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()
    }
    found = []
    for name, cols in sorted(columns.items()):
        if name in DERIVED or name == STATE:
            continue
        names = tuple(c for c, _ in cols)
        numbered = "seq" in names
        key = keys.get(name) or (("seq",) if numbered else ())
        found.append(Table(name, names, tuple(k for _, k in cols), key, numbered))
    return found


@dataclass
class Captured:
    """What one write did to one table."""

    table: Table
    rows: list[tuple] = field(default_factory=list)  # rows added or changed (all rows when `whole`)
    gone: list[tuple[str, ...]] = field(default_factory=list)  # keys (as text) of rows removed
    whole: bool = False  # the table is replaced whole (it has no key)
    fresh: bool = False  # the rows are new (numbered rows past the sequence): nothing to replace
    query: tuple[str, list[Any]] | None = None  # or the rows, read in batches from the write's cursor (many rows)


@dataclass(frozen=True)
class Followed:
    """What a follow-up took up: the tables and the learners whose rows arrived."""

    tables: frozenset[str]
    learners: frozenset[str]
    rebuilt: bool = False


servers = database._servers  # the cursors of server-mode copies, and the replica each writes through

# The one query of a follow-up that finds nothing to take: PostgreSQL's epoch and latest change, and the mark of the
# change the copy holds (None when PostgreSQL has no such change: it was restored to an earlier state).
HEAD = "SELECT h.epoch, h.change, (SELECT mark FROM replication_changes WHERE change = %s) FROM replication_head h"


def connect(url: str) -> psycopg.Connection:
    """A connection to the shared database that gives up rather than hang: on connecting, on a lost peer (TCP
    keepalives and a user timeout), on waiting for the write lock (lock_timeout), on a statement, and on a
    transaction left open and silent by a stalled server (idle_in_transaction_session_timeout, which frees the lock
    it held)."""
    cfg = settings()
    ms = {
        name: int(seconds * 1000)
        for name, seconds in (
            ("lock_timeout", cfg.pg_lock_seconds),
            ("idle_in_transaction_session_timeout", cfg.pg_idle_seconds),
            ("statement_timeout", cfg.pg_statement_seconds),
        )
    }
    return psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=10,
        keepalives=1,
        keepalives_idle=15,
        keepalives_interval=5,
        keepalives_count=3,
        tcp_user_timeout=30_000,
        options=" ".join(f"-c {name}={value}" for name, value in ms.items()),
    )


@contextlib.contextmanager
def _alive(pg: psycopg.Connection) -> Iterator[None]:
    """While this process works on its copy inside a PostgreSQL transaction (a large import, a restore), say so to
    PostgreSQL now and then, so that idle_in_transaction_session_timeout ends only a server that went silent (stopped,
    cut off), never one that is busy; a stopped process stops saying it, and loses the lock in time."""
    stop = threading.Event()
    every = max(0.2, settings().pg_idle_seconds / 3)

    def beat() -> None:
        while not stop.wait(every):
            try:
                pg.execute("SELECT 1")
            except psycopg.Error:
                return

    beating = threading.Thread(target=beat, daemon=True, name="pg-heartbeat")
    beating.start()
    try:
        yield
    finally:
        stop.set()
        beating.join()


class Replica:
    """This process's DuckDB copy of PostgreSQL's records, and the one path by which it writes."""

    def __init__(self, url: str, db: "database.Database") -> None:
        self.url, self.db = url, db
        with _locks_guard:  # the copies of one file in a process (a page and a test, say) take turns
            self._lock = _locks.setdefault(str(Path(db.path).resolve()), threading.Lock())
        try:
            self._pg = connect(url)
            self._follow_pg = connect(url)
        except psycopg.Error as exc:
            raise EnvironmentStop(
                f"Cannot reach the PostgreSQL database of TRACKER_DB ({_first_line(exc)}): check that it runs, the "
                "address, the user and its password (~/.pgpass)."
            ) from None
        self._follow_pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self._cur = db.con.cursor()  # the copy's own writes (follow-ups)
        self._reader = db.con.cursor()  # reads what is committed while a write's transaction is open
        self.epoch = ""
        self.change = 0
        self.mark = ""  # the mark PostgreSQL gave change `change` (a write's own): tells one timeline from another
        self.tables: list[Table] = []
        self._prints: dict[str, tuple] = {}  # the fingerprints of the committed copy, per table (see _fingerprints)
        self._seq_seen = 0  # the highest order number among the rows the last follow-up took up
        self.listeners: list[Callable[[Followed], None]] = []  # told of every follow-up that took up rows

    def announce(self, followed: Followed) -> None:
        """Tell this copy's listeners (the app's cache generations: tracker/web/caching.py) what a follow-up took up."""
        for listener in self.listeners:
            listener(followed)

    def _reconnect(self, check: bool = False) -> None:
        """Open again a connection PostgreSQL dropped (a restart of PostgreSQL, a network cut); with `check`, first
        ask the write connection whether it still answers, so that a write after PostgreSQL came back does not fail
        on the connection of before."""
        if check and not (self._pg.broken or self._pg.closed):
            try:
                self._pg.execute("SELECT 1")
            except psycopg.OperationalError:
                with contextlib.suppress(Exception):
                    self._pg.close()
        if self._pg.broken or self._pg.closed:
            self._pg = connect(self.url)
        if self._follow_pg.broken or self._follow_pg.closed:
            self._follow_pg = connect(self.url)
            self._follow_pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ

    def ping(self) -> None:
        """Raise when PostgreSQL does not answer (the health check)."""
        with connect(self.url) as con:
            con.execute("SELECT 1")

    def close(self) -> None:
        for con in (self._pg, self._follow_pg):
            with contextlib.suppress(Exception):
                con.close()

    # ---- start: PostgreSQL's bookkeeping, the copy, the migrations --------------------------------
    def start(self) -> None:
        """Bring PostgreSQL's schema and this copy up to this version (once, under the write lock)."""
        cur = self._cur
        cur.execute("CREATE TABLE IF NOT EXISTS replica_state (epoch VARCHAR NOT NULL, change BIGINT NOT NULL)")
        cur.execute("ALTER TABLE replica_state ADD COLUMN IF NOT EXISTS mark VARCHAR")
        local = cur.execute("SELECT epoch, change, coalesce(mark, '') FROM replica_state").fetchone()
        with self._lock, self._pg.transaction(), _alive(self._pg):  # a migration or a first full copy takes long
            pg = self._pg
            pg.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
            pg.execute(BOOKKEEPING)
            head = pg.execute("SELECT epoch, change FROM replication_head").fetchone()
            if head is None:
                head = (uuid.uuid4().hex, 0)
                pg.execute("INSERT INTO replication_head VALUES (%s, %s)", head)
            version = _pg_version(pg)
            if version > len(schema.MIGRATIONS):
                raise EnvironmentStop(
                    f"The PostgreSQL database of TRACKER_DB is at schema version {version}, newer than this "
                    f"Milestone's {len(schema.MIGRATIONS)}: update this server's Milestone (see docs/deployment.md, "
                    "Upgrades)."
                )
            here = pg.execute("SELECT mark FROM replication_changes WHERE change = %s", [local[1] if local else 0])
            mark_here = (here.fetchone() or (None,))[0]
            if (
                local is None
                or not _same_timeline(local[0], int(local[1]), local[2], head[0], int(head[1]), mark_here)
                or schema.schema_version(cur) != version
            ):
                self._rebuild(pg, version, head)
            else:
                self.epoch, self.change, self.mark = head[0], int(local[1]), local[2]
                self.tables = tables(cur)
            if version < len(schema.MIGRATIONS):
                self._migrate(pg)
        self._bump_sequence()

    def _rebuild(self, pg: psycopg.Connection, version: int, head: tuple[str, int]) -> None:
        """A full copy of PostgreSQL's tables into the local file, its schema brought to PostgreSQL's version."""
        cur = self._cur
        self._empty_copy(version)
        cur.execute("BEGIN TRANSACTION")
        try:
            if version:
                for table in self.tables:
                    cur.execute(f"DELETE FROM {_q(table.name)}")  # noqa: S608 - catalog names
                    self._pull(pg, table, table.clustered, [])
                refresh_term_levels(cur)
            mark = _mark_of(pg, int(head[1]))
            cur.execute("DELETE FROM replica_state")
            cur.execute("INSERT INTO replica_state (epoch, change, mark) VALUES (?, ?, ?)", [head[0], head[1], mark])
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        with contextlib.suppress(duckdb.TransactionException):  # another thread's write holds it off: WAL it is
            cur.execute("CHECKPOINT")  # the whole copy written to the file, as a fresh import is
        self.epoch, self.change, self.mark = head[0], int(head[1]), mark
        self._prints = {}

    def _empty_copy(self, version: int) -> None:
        """Empty the copy file down to the schema of `version`, with no rows."""
        cur = self._cur
        for table in tables(cur):
            cur.execute(f"DROP TABLE {_q(table.name)}")
        for name in DERIVED:
            cur.execute(f"DROP TABLE IF EXISTS {_q(name)}")
        cur.execute("DROP TABLE IF EXISTS schema_migrations")
        with contextlib.suppress(duckdb.Error):
            cur.execute("DROP SEQUENCE record_seq")
        schema.apply_migrations(cur, upto=version)
        self.tables = tables(cur)

    def _migrate(self, pg: psycopg.Connection) -> None:
        """Apply this version's new migrations to the copy, then give PostgreSQL the new schema and every row."""
        schema.apply_migrations(self._cur)
        self._publish_whole(pg)

    def _publish_whole(self, pg: psycopg.Connection) -> None:
        """Give PostgreSQL the copy's schema and every row, under a new epoch: every other copy takes a full copy
        when it next follows."""
        cur = self._cur
        self.tables = tables(cur)
        for table in self.tables:
            pg.execute(f"DROP TABLE IF EXISTS {_q(table.name)}")
            columns = ", ".join(f"{_q(c)} {pg_type(t)}" for c, t in zip(table.columns, table.types, strict=True))
            key = f", PRIMARY KEY ({', '.join(_q(k) for k in table.key)})" if table.key else ""
            pg.execute(f"CREATE TABLE {_q(table.name)} ({columns}, {CHANGE} bigint NOT NULL{key})")
            pg.execute(f"CREATE INDEX ON {_q(table.name)} ({CHANGE})")
            if "learner_id" in table.columns and table.key != ("learner_id",):
                pg.execute(f"CREATE INDEX ON {_q(table.name)} (learner_id)")
        for (statement,) in cur.execute(  # what must be unique is a constraint in PostgreSQL too
            "SELECT sql FROM duckdb_indexes() WHERE database_name = current_database() AND is_unique"
        ).fetchall():
            pg.execute(statement)
        change = int(pg.execute("SELECT nextval('replication_change')").fetchone()[0])  # type: ignore[index]
        for table in self.tables:
            self._push_query(pg, table, cur, (f"SELECT {table.column_list} FROM {_q(table.name)}", []), change)  # noqa: S608
        pg.execute("DELETE FROM replication_tombstones")
        pg.execute("DELETE FROM replication_changes")
        epoch, mark = uuid.uuid4().hex, uuid.uuid4().hex
        pg.execute(
            "INSERT INTO replication_changes (change, tables, mark) VALUES (%s, %s, %s)",
            [change, [t.name for t in self.tables], mark],
        )
        pg.execute("UPDATE replication_head SET epoch = %s, change = %s", [epoch, change])
        cur.execute("UPDATE replica_state SET epoch = ?, change = ?, mark = ?", [epoch, change, mark])
        self.epoch, self.change, self.mark, self._prints = epoch, change, mark, {}

    def restore(self, backup_file: Path, kept: Path, then: Callable[[Cursor], None]) -> None:
        """Put the records of a Milestone backup (a DuckDB file of this version or an earlier one, checked) in place
        of PostgreSQL's, as one write: the records it replaces are first written to `kept` (a DuckDB backup as of
        the moment before), every other server and command waits on the write lock meanwhile, and each takes a full
        copy at its next follow-up. `then` runs on the restored records in the same write (it ends the restored
        sessions). PostgreSQL commits all or nothing; a copy left half-made is copied whole again."""
        backups.check_backup(backup_file)
        with self._lock:
            self._reconnect()
            with self._pg.transaction(), _alive(self._pg):
                pg = self._pg
                pg.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
                self._follow_locked(pg)
                self._numbers_above_seen()  # rows other servers numbered just now: the kept backup must pass its check
                backups.backup_open(self._cur, kept)
                self.epoch, self._prints = "", {}  # from here on, a failure leaves a copy that follows in whole
                self._replace_copy(backup_file)
                self._cur.execute("BEGIN TRANSACTION")
                try:
                    then(self._cur)
                    self._cur.execute("COMMIT")
                except BaseException:
                    self._cur.execute("ROLLBACK")
                    raise
                self._publish_whole(pg)
            self._bump_sequence_locked()

    def _replace_copy(self, backup_file: Path) -> None:
        """The copy emptied and filled with the backup's records at the backup's schema version, then migrated."""
        cur = self._cur
        cur.execute("DELETE FROM replica_state")
        cur.execute("ATTACH ? AS restoring (READ_ONLY)", [str(backup_file)])
        try:
            version = int(cur.execute("SELECT max(version) FROM restoring.main.schema_migrations").fetchone()[0])  # type: ignore[index]
            self._empty_copy(version)
            cur.execute("BEGIN TRANSACTION")
            try:
                for table in self.tables:
                    cur.execute(f"DELETE FROM {_q(table.name)}")  # noqa: S608 - catalog names
                    cur.execute(
                        f"INSERT INTO {_q(table.name)} ({table.column_list}) "  # noqa: S608 - catalog names
                        f"SELECT {table.column_list} FROM restoring.main.{_q(table.name)} {table.clustered}"
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        finally:
            cur.execute("DETACH restoring")
        self._bump_sequence_locked()
        schema.apply_migrations(cur)
        refresh_term_levels(cur)
        cur.execute("INSERT INTO replica_state (epoch, change) VALUES ('', 0)")  # _publish_whole sets the new epoch

    # ---- following PostgreSQL ---------------------------------------------------------------------
    def follow(self, wait: bool = True) -> Followed | None:
        """Take up the changes other servers and commands made since this copy's last; None when there were
        none (or, with wait=False, when a write of this process is under way: it follows first itself)."""
        if not self._lock.acquire(blocking=wait):
            return None
        try:
            self._reconnect()
            self._local_change()
            try:
                head = self._follow_pg.execute(HEAD, [self.change]).fetchone()
            except psycopg.OperationalError:  # a connection of before a restart of PostgreSQL: once more, anew
                with contextlib.suppress(Exception):
                    self._follow_pg.close()
                self._reconnect()
                head = self._follow_pg.execute(HEAD, [self.change]).fetchone()
            if head is None or (
                int(head[1]) <= self.change
                and _same_timeline(self.epoch, self.change, self.mark, head[0], int(head[1]), head[2])
            ):
                return None
            # one snapshot: the head and the rows it counts (a restore's full copy, and the levels after, take long)
            with self._follow_pg.transaction(), _alive(self._follow_pg):
                followed = self._follow_locked(self._follow_pg)
            self._numbers_above_seen()
        finally:
            self._lock.release()
        return followed

    def _numbers_above_seen(self) -> None:
        """Have the local sequence hand out order numbers above those of the rows other servers numbered."""
        if self._seq_seen > _sequence_value(self._cur):
            self._cur.execute("SELECT setval('record_seq', ?)", [self._seq_seen])

    def _follow_locked(self, pg: psycopg.Connection) -> Followed | None:
        self._local_change()
        head = pg.execute(HEAD, [self.change]).fetchone()
        assert head is not None
        epoch, last = head[0], int(head[1])
        if not _same_timeline(self.epoch, self.change, self.mark, epoch, last, head[2]):
            # PostgreSQL was migrated, restored (to an earlier state, which writes may have passed since), or is
            # another database at the same address: what the copy holds may be of another history; copy it whole
            self._rebuild(pg, _pg_version(pg), (epoch, last))
            return Followed(frozenset(t.name for t in self.tables), frozenset(), rebuilt=True)
        if last <= self.change:
            return None
        since = self.change
        changed = {
            name
            for (names,) in pg.execute(
                "SELECT tables FROM replication_changes WHERE change > %s AND change <= %s", [since, last]
            ).fetchall()
            for name in names
        }
        cur = self._cur
        learners: set[str] = set()
        cur.execute("BEGIN TRANSACTION")
        try:
            by_name = {t.name: t for t in self.tables}
            for name, key in pg.execute(
                "SELECT table_name, key FROM replication_tombstones WHERE change > %s AND change <= %s ORDER BY change",
                [since, last],
            ).fetchall():
                table = by_name[name]
                self._delete_keys(cur, table, [tuple(key)])
            for table in self.tables:
                if table.name not in changed:
                    continue
                if not table.key:
                    cur.execute(f"DELETE FROM {_q(table.name)}")  # noqa: S608 - catalog names
                    self._pull(pg, table, "", [])
                else:
                    learners |= self._pull(
                        pg, table, f"WHERE {CHANGE} > %s AND {CHANGE} <= %s", [since, last], replace=True
                    )
            if changed & FRAMEWORK_TABLES:
                refresh_term_levels(cur)
            elif changed & {"ratings", "learners"}:
                refresh_term_levels(cur, sorted(learners))
            mark = _mark_of(pg, last)
            cur.execute("UPDATE replica_state SET change = ?, mark = ?", [last, mark])
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self.change, self.mark = last, mark
        for name in changed:
            self._prints.pop(name, None)
        return Followed(frozenset(changed), frozenset(learners))

    def _pull(
        self, pg: psycopg.Connection, table: Table, where: str, params: Sequence[Any], replace: bool = False
    ) -> set[str]:
        """Copy PostgreSQL's rows of `table` (those `where` selects) into the local table, replacing the local rows
        of the same keys when `replace`; the learners whose rows they are."""
        cur = self._cur
        learners: set[str] = set()
        who = "id" if table.name == "learners" else "learner_id" if "learner_id" in table.columns else None
        casts = ", ".join(f"CAST({_q(c)} AS {t}) AS {_q(c)}" for c, t in zip(table.columns, table.types, strict=True))
        # a whole table through a server-side cursor, a batch at a time; a follow-up's few rows in one answer
        source: Any = pg.cursor() if replace else pg.cursor(name=f"pull_{table.name}")
        with source:
            source.execute(f"SELECT {table.column_list} FROM {_q(table.name)} {where}", list(params))  # noqa: S608
            while rows := source.fetchmany(BATCH):
                batch = pa.table(
                    {
                        c: pa.array(list(values))
                        for c, values in zip(table.columns, zip(*rows, strict=True), strict=True)
                    }
                )
                if who:
                    learners.update(str(v) for v in batch.column(who).to_pylist() if v is not None)
                if table.numbered:
                    self._seq_seen = max(self._seq_seen, *(int(v) for v in batch.column("seq").to_pylist()))
                cur.register("incoming_rows", batch)
                try:
                    if replace:
                        match = " AND ".join(
                            f"CAST(x.{_q(k)} AS VARCHAR) = CAST(i.{_q(k)} AS VARCHAR)" for k in table.key
                        )
                        cur.execute(
                            f"DELETE FROM {_q(table.name)} x WHERE EXISTS (SELECT 1 FROM incoming_rows i WHERE {match})"  # noqa: S608
                        )
                    cur.execute(
                        f"INSERT INTO {_q(table.name)} ({table.column_list}) SELECT {casts} FROM incoming_rows"  # noqa: S608
                    )
                finally:
                    cur.unregister("incoming_rows")
        return learners

    def _delete_keys(self, cur: Cursor, table: Table, keys: Sequence[tuple[str, ...]]) -> None:
        if not keys:
            return
        frame = pa.table({f"k{i}": pa.array([k[i] for k in keys], pa.string()) for i in range(len(table.key))})
        match = " AND ".join(f"CAST(x.{_q(k)} AS VARCHAR) = g.k{i}" for i, k in enumerate(table.key))
        cur.register("gone_keys", frame)
        try:
            cur.execute(f"DELETE FROM {_q(table.name)} x WHERE EXISTS (SELECT 1 FROM gone_keys g WHERE {match})")  # noqa: S608
        finally:
            cur.unregister("gone_keys")

    def _bump_sequence(self) -> None:
        """Have the local sequence hand out order numbers above every row's, those other servers numbered too."""
        with self._lock:
            self._bump_sequence_locked()

    # ---- the write path ---------------------------------------------------------------------------
    def write(self, cur: Cursor, work: Callable[[Cursor], T]) -> T:
        """Run `work` against the copy and write what it changed to PostgreSQL, as one transaction of both. It
        lands once or not at all, and the caller is told which: when PostgreSQL's COMMIT fails or its answer is
        lost, the write's mark in PostgreSQL's ledger of changes says whether it landed."""
        try:
            return self._write(cur, work)
        except psycopg.errors.LockNotAvailable:
            raise WriteTimedOut(
                f"Another save (perhaps an import) has held the shared database for over {settings().pg_lock_seconds:g} "
                "s; nothing was saved. Try again in a moment."
            ) from None
        except psycopg.Error as exc:  # a lost connection, a session PostgreSQL ended, a statement timed out
            raise EnvironmentStop(
                f"The shared database (PostgreSQL) did not take this save ({_first_line(exc)}); nothing was saved. "
                "Try again in a moment; if it goes on, tell the person who runs the servers."
            ) from None

    def _write(self, cur: Cursor, work: Callable[[Cursor], T]) -> T:
        with self._lock:
            self._reconnect(check=True)
            mark = uuid.uuid4().hex
            published: int | None = None  # the change number, once its rows went to PostgreSQL
            try:
                with self._pg.transaction(), _alive(self._pg):  # busy, not stalled, however long it takes
                    self._pg.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
                    followed = self._follow_locked(self._pg)
                    self._numbers_above_seen()
                    before = self._fingerprints(self._reader)
                    seq_mark = _sequence_value(self._reader)
                    cur.execute("BEGIN TRANSACTION")
                    try:
                        result = work(cur)
                        after = self._fingerprints(cur)
                        captured = self._capture(cur, before, after, seq_mark)
                        change, written = self.change, self.mark
                        if captured:
                            change = int(self._pg.execute("SELECT nextval('replication_change')").fetchone()[0])  # type: ignore[index]
                            self._publish(cur, captured, change, mark)
                            published, written = change, mark
                            cur.execute("UPDATE replica_state SET change = ?, mark = ?", [change, mark])
                    except BaseException:
                        cur.execute("ROLLBACK")
                        raise
            except psycopg.Error:
                # PostgreSQL's transaction failed, or its COMMIT did, or the answer to the COMMIT was lost: the copy's
                # transaction is still open. Undo it, then learn from PostgreSQL whether the write landed.
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                self._prints = {}
                if published is None:
                    raise  # nothing had gone to PostgreSQL: nothing landed
                if not self._landed(published, mark):
                    raise
                log.warning("the answer to change %s's COMMIT was lost; it landed", published)
                return result  # it stands; the copy takes it from PostgreSQL at its next follow-up
            # PostgreSQL has committed: the write stands. The copy commits now, or heals at its next follow-up.
            try:
                self._commit_local(cur)
            except Exception:
                log.exception("the copy missed change %s; it takes it from PostgreSQL at its next follow-up", change)
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                self._prints = {}
                return result
            self.change, self.mark, self._prints = change, written, after
        if followed is not None:
            self.announce(followed)
        return result

    def _landed(self, change: int, mark: str, patience: float = 15.0) -> bool:
        """Whether change `change`, marked `mark`, is in PostgreSQL's ledger of changes: asked again on a fresh
        connection for up to `patience` seconds (PostgreSQL restarting); WriteUncertain when it cannot be asked."""
        deadline = time.monotonic() + patience
        while True:
            with contextlib.suppress(Exception):
                self._pg.close()
            try:
                self._pg = connect(self.url)
                row = self._pg.execute("SELECT mark FROM replication_changes WHERE change = %s", [change]).fetchone()
                return row is not None and row[0] == mark
            except psycopg.OperationalError:
                if time.monotonic() >= deadline:
                    raise WriteUncertain(
                        "The shared database stopped answering while this was being saved, and whether it was saved "
                        "cannot be learned yet. Reload the page in a minute and look before saving it again; if it "
                        "is not there, save it again."
                    ) from None
                time.sleep(0.5)

    def _local_change(self) -> None:
        """The change the copy file holds (another Database of this process on the same file may have moved it)."""
        row = self._cur.execute("SELECT change, coalesce(mark, '') FROM replica_state").fetchone()
        if row is not None and int(row[0]) != self.change:
            self.change, self.mark, self._prints = int(row[0]), row[1], {}

    def _bump_sequence_locked(self) -> None:
        numbered = [t for t in self.tables if t.numbered]
        if numbered:
            top = " UNION ALL ".join(f"SELECT max(seq) AS m FROM {_q(t.name)}" for t in numbered)  # noqa: S608
            highest = self._cur.execute(f"SELECT coalesce(max(m), 0) FROM ({top})").fetchone()[0]  # type: ignore[index]  # noqa: S608
            if int(highest) > _sequence_value(self._cur):
                self._cur.execute("SELECT setval('record_seq', ?)", [int(highest)])

    def _commit_local(self, cur: Cursor) -> None:
        cur.execute("COMMIT")

    def _fingerprints(self, cur: Cursor) -> dict[str, tuple]:
        """Per table, what tells that a write changed it: the count and the highest order number of numbered
        tables, the count and two sums of the row hashes of the others."""
        cached = self._prints if cur is self._reader else {}
        missing = [t for t in self.tables if t.name not in cached]
        if not missing:
            return cached
        parts = [
            f"SELECT '{t.name}' AS name, count(*) AS n, max(seq)::HUGEINT AS a, 0::HUGEINT AS b FROM {_q(t.name)}"  # noqa: S608
            if t.numbered
            else f"SELECT '{t.name}', count(*), bit_xor(hash(x))::HUGEINT, sum(hash(x)::HUGEINT) FROM {_q(t.name)} x"  # noqa: S608
            for t in missing
        ]
        prints = {**cached, **{r[0]: tuple(r[1:]) for r in cur.execute(" UNION ALL ".join(parts)).fetchall()}}
        if cur is self._reader:
            self._prints = prints
        return prints

    def _capture(self, cur: Cursor, before: dict[str, tuple], after: dict[str, tuple], mark: int) -> list[Captured]:
        """The rows `work` added, changed or removed, read inside its transaction (`cur`) and, for what was there
        before, outside it (the reader sees what is committed)."""
        captured = []
        for table in self.tables:
            if before.get(table.name) == after.get(table.name):
                continue
            name = _q(table.name)
            if table.numbered:
                new = cur.execute(f"SELECT count(*) FROM {name} WHERE seq > ?", [mark]).fetchone()[0]  # type: ignore[index]  # noqa: S608
                if int(after[table.name][0]) - int(new) == int(before[table.name][0]):
                    select = f"SELECT {table.column_list} FROM {name} WHERE seq > ? ORDER BY seq"  # noqa: S608
                    captured.append(Captured(table, fresh=True, query=(select, [mark])))
                    continue
            if not table.key:
                select = f"SELECT {table.column_list} FROM {name}"  # noqa: S608
                captured.append(Captured(table, whole=True, query=(select, [])))
                continue
            hashes = f"SELECT {table.key_text()}, hash(x) FROM {name} x"  # noqa: S608
            old = {tuple(r[:-1]): r[-1] for r in self._reader.execute(hashes).fetchall()}
            new = {tuple(r[:-1]): r[-1] for r in cur.execute(hashes).fetchall()}
            changed = [k for k, h in new.items() if old.get(k) != h]
            gone = [k for k in old if k not in new]
            rows = []
            if changed:
                frame = pa.table(
                    {f"k{i}": pa.array([k[i] for k in changed], pa.string()) for i in range(len(table.key))}
                )
                match = " AND ".join(f"CAST(x.{_q(k)} AS VARCHAR) = w.k{i}" for i, k in enumerate(table.key))
                cur.register("written_keys", frame)
                try:
                    rows = cur.execute(
                        f"SELECT {', '.join('x.' + _q(c) for c in table.columns)} FROM {name} x "  # noqa: S608
                        f"WHERE EXISTS (SELECT 1 FROM written_keys w WHERE {match})"
                    ).fetchall()
                finally:
                    cur.unregister("written_keys")
            captured.append(Captured(table, rows, gone))
        return captured

    def _publish(self, cur: Cursor, captured: Iterable[Captured], change: int, mark: str) -> None:
        pg = self._pg
        names = []
        for c in captured:
            names.append(c.table.name)
            table = _q(c.table.name)
            if c.whole:
                pg.execute(f"DELETE FROM {table}")  # noqa: S608
            elif not c.fresh:
                replaced = c.gone + [tuple(_text(row[c.table.columns.index(k)]) for k in c.table.key) for row in c.rows]
                if replaced:
                    arrays = ", ".join("%s::text[]" for _ in c.table.key)
                    names_k = ", ".join(f"k{i}" for i in range(len(c.table.key)))
                    match = " AND ".join(f"x.{_q(k)}::text = u.k{i}" for i, k in enumerate(c.table.key))
                    pg.execute(
                        f"DELETE FROM {table} x USING unnest({arrays}) AS u({names_k}) WHERE {match}",  # noqa: S608
                        [[k[i] for k in replaced] for i in range(len(c.table.key))],
                    )
                if c.gone:
                    with pg.cursor().copy("COPY replication_tombstones (change, table_name, key) FROM STDIN") as copy:
                        for key in c.gone:
                            copy.write_row((change, c.table.name, list(key)))
            if c.query:
                self._push_query(pg, c.table, cur, c.query, change)
            else:
                self._push(pg, c.table, c.rows, change)
        pg.execute("INSERT INTO replication_changes (change, tables, mark) VALUES (%s, %s, %s)", [change, names, mark])
        pg.execute("UPDATE replication_head SET change = %s", [change])

    def _push_query(
        self, pg: psycopg.Connection, table: Table, cur: Cursor, query: tuple[str, list[Any]], change: int
    ) -> None:
        """Write the rows a local query selects to PostgreSQL, a batch at a time."""
        result = cur.execute(*query)
        with pg.cursor().copy(f"COPY {_q(table.name)} ({table.column_list}, {CHANGE}) FROM STDIN") as copy:
            while rows := result.fetchmany(BATCH):
                for row in rows:
                    copy.write_row((*row, change))

    def _push(self, pg: psycopg.Connection, table: Table, rows: Sequence[tuple], change: int) -> None:
        if not rows:
            return
        with pg.cursor().copy(f"COPY {_q(table.name)} ({table.column_list}, {CHANGE}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, change))


def _mark_of(pg: psycopg.Connection, change: int) -> str:
    """The mark PostgreSQL's ledger gives a change ("" for a change of before marks)."""
    row = pg.execute("SELECT mark FROM replication_changes WHERE change = %s", [change]).fetchone()
    return str(row[0]) if row and row[0] else ""


def _same_timeline(
    epoch: str, change: int, mark: str, head_epoch: str, head_change: int, mark_there: str | None
) -> bool:
    """Whether a copy at (`epoch`, `change`, `mark`) holds a state PostgreSQL passed through: the same epoch, a
    change no later than PostgreSQL's, and PostgreSQL's ledger giving that change the same mark. A restore of a dump
    brings back the same epoch with an earlier change; the writes made after it reuse the change numbers with other
    marks, so a copy of the discarded history is told apart however far PostgreSQL has gone since."""
    if epoch != head_epoch or change > head_change:
        return False
    if change == 0 or not mark:  # nothing taken up yet, or a copy of before marks: the epoch and number decide
        return True
    return mark_there == mark


def _text(value: Any) -> str:
    """A key value as DuckDB's CAST(... AS VARCHAR) and PostgreSQL's ::text both write it."""
    return str(value)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _sequence_value(cur: Cursor) -> int:
    rows = cur.execute(  # fetched to the end: a result left open keeps its cursor's transaction open
        "SELECT coalesce(last_value, start_value - 1) FROM duckdb_sequences() "
        "WHERE database_name = current_database() AND sequence_name = 'record_seq'"
    ).fetchall()
    return int(rows[0][0]) if rows else 0


def _pg_version(pg: psycopg.Connection) -> int:
    exists = pg.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = pg.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


# ---- the copy's Database --------------------------------------------------------------------------
class ServerDatabase(database.Database):
    """The local DuckDB copy of a server-mode database: read as the embedded file is; every write through its
    replica (database.write finds it by the cursor)."""

    def __init__(self, path: str | Path, url: str, temporary: bool) -> None:
        super().__init__(path)
        self.temporary = temporary
        self.replica = Replica(url, self)
        self._closed = False
        if temporary:  # a command that ends without closing leaves no copy behind
            import atexit

            atexit.register(self.close)

    def cursor(self) -> Cursor:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.con.cursor()
            servers[cur] = self.replica
        return cur

    def follow(self, wait: bool = True) -> Followed | None:
        followed = self.replica.follow(wait)
        if followed is not None:
            self.replica.announce(followed)
        return followed

    def on_follow(self, listener: Callable[[Followed], None]) -> None:
        """Call `listener` with every follow-up of this copy that took up rows (its own writes' included)."""
        if listener not in self.replica.listeners:
            self.replica.listeners.append(listener)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.replica.close()
        super().close()
        if self.temporary:
            for leftover in (self.path, Path(str(self.path) + ".wal")):
                with contextlib.suppress(OSError):
                    leftover.unlink()


def open_server(url: str, copy_path: Path, temporary: bool) -> ServerDatabase:
    """Connect to PostgreSQL, migrate it once (whichever process comes first), and bring the copy up to date."""
    if temporary:
        for leftover in (copy_path, Path(str(copy_path) + ".wal")):
            with contextlib.suppress(OSError):
                leftover.unlink()
    db = ServerDatabase(copy_path, url, temporary)
    try:
        db.replica.start()
    except psycopg.Error as exc:
        db.close()
        raise EnvironmentStop(f"PostgreSQL refused to set up the database ({_first_line(exc)}).") from None
    except BaseException:
        db.close()
        raise
    return db
