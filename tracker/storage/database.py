"""The DuckDB connection of a process, its cursors, and the one write path: every write in one transaction with its audit row."""

import datetime as dt
import json
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from tracker.core.config import settings
from tracker.core.errors import DatabaseBusy, DatabaseDamaged, EnvironmentStop

T = TypeVar("T")
Cursor = duckdb.DuckDBPyConnection
# the cursors of server-mode copies and the replica each writes through (filled by tracker/storage/replica.py)
_servers: "weakref.WeakKeyDictionary[Cursor, Any]" = weakref.WeakKeyDictionary()


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
        self.con = connect(self.path, read_only)
        self._local = threading.local()

    def cursor(self) -> Cursor:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.con.cursor()
        return cur

    def close(self) -> None:
        self.con.close()


def connect(path: Path, read_only: bool) -> Cursor:
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


def thread_cursor(cur: Cursor) -> Cursor:
    """A cursor of the same database for another thread (a job in the background), whose writes take the same
    path as `cur`'s: in server mode through PostgreSQL, not into the copy alone."""
    own = cur.cursor()
    if (server := _servers.get(cur)) is not None:
        _servers[own] = server
    return own


def write(cur: Cursor, work: Callable[[Cursor], T], attempts: int = 60) -> T:
    """Run `work` in one transaction; retry it when DuckDB reports a write-write conflict. In server mode the
    cursor is a copy's, and the write goes through PostgreSQL (tracker/storage/replica.py)."""
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


# ---- record writes (append-only) ---------------------------------------------------------------
def audit(cur: Cursor, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """Append one audit row; call inside the transaction of the write it records."""
    cur.execute(
        "INSERT INTO audit_log (occurred_at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        [now(), actor, action, target, json.dumps(detail or {}, default=str, ensure_ascii=False)],
    )
