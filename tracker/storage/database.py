"""The DuckDB connection of a process, its cursors, and the one write path: every write in one transaction with its audit row."""

import datetime as dt
import errno
import json
import logging
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from tracker.core.config import settings
from tracker.core.errors import DatabaseBusy, DatabaseDamaged, DiskFull, EnvironmentStop

log = logging.getLogger("milestone.storage")
T = TypeVar("T")
Cursor = duckdb.DuckDBPyConnection
# the cursors of server-mode copies and the replica each writes through (filled by tracker/storage/replica.py)
_servers: "weakref.WeakKeyDictionary[Cursor, Any]" = weakref.WeakKeyDictionary()
# the embedded Database each cursor belongs to, so that a write that left the connection unusable can have it reopened
_owners: "weakref.WeakKeyDictionary[Cursor, Database]" = weakref.WeakKeyDictionary()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ---- connection --------------------------------------------------------------------------------
class Database:
    """One DuckDB connection per process; each thread reads and writes through its own cursor."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentStop(f"Cannot make the folder of the database {path}: {exc.strerror}.") from None
        self.con = connect(self.path, read_only)
        self._local = threading.local()
        self._generation = 0  # moves on at each reopening; a thread's cursor of an earlier one is not used again
        self._reopen_wanted = False
        self._reopening = threading.Lock()

    def cursor(self) -> Cursor:
        if self._reopen_wanted:
            self._reopen()
        cur = getattr(self._local, "cursor", None)
        if cur is None or self._local.generation != self._generation:
            cur = self._local.cursor = self.con.cursor()
            self._local.generation = self._generation
            _owners[cur] = self
        return cur

    def reopen_later(self) -> None:
        """DuckDB refuses every statement on a connection after a fatal error (a checkpoint that could not be
        written: "the database must be restarted"); the next cursor asked for comes from a new connection."""
        self._reopen_wanted = True

    def _reopen(self) -> None:
        with self._reopening:
            if not self._reopen_wanted:  # another thread did it
                return
            with suppress(duckdb.Error):
                self.con.close()  # closes every thread's cursor of it too, and lets go of the file
            self.con = connect(self.path, self.read_only)  # reads the file and its log: every committed write
            self._generation += 1
            self._reopen_wanted = False
        log.warning("reopened the database %s after a fatal error", self.path)

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
        raise unreadable(path, exc) from None
    except duckdb.Error as exc:
        raise unreadable(path, exc) from None


def unreadable(path: str | Path, exc: BaseException) -> DiskFull | DatabaseDamaged:
    """The error for a database that could not be opened or read: a full disk, or a damaged file."""
    return disk_full(path, exc) if is_disk_full(exc) else damaged(path, exc)


def is_damage(exc: BaseException) -> bool:
    """Whether a DuckDB error means the file itself cannot be read (rather than a busy file, a full disk or a bug)."""
    text = str(exc).lower()
    return (
        isinstance(exc, duckdb.Error)
        and not is_disk_full(exc)
        and ((isinstance(exc, duckdb.IOException) and "lock" not in text) or "corrupt" in text or "checksum" in text)
    )


# How the C library words ENOSPC and EDQUOT (DuckDB passes on strerror's text), and Windows' ERROR_DISK_FULL
_DISK_FULL_TEXTS = (
    "no space left on device",
    "disk quota exceeded",
    "quota exceeded",
    "not enough space on the disk",
    "enospc",
    "edquot",
)


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error says a disk (or the account's quota) is full: nothing is wrong with the database itself."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error | OSError) and any(t in text for t in _DISK_FULL_TEXTS)


def disk_full(path: str | Path, exc: BaseException) -> DiskFull:
    """The error for a write that did not fit on its disk: what it names (the database, its log, or a temporary
    file DuckDB spills to), that nothing of it was saved, and that the database is intact, so nothing is restored."""
    named = re.search(r'file "([^"]+)"', str(exc))
    where = f"the disk holding {named.group(1)}" if named else f"the disk holding the database {path}"
    return DiskFull(
        f"Not saved: {where} is full ({_reason(exc)}). Nothing of what was being saved was written; the database "
        f"{path} is intact and keeps everything saved before. Free space on that disk (or raise the account's disk "
        "quota) and try again. Do not restore a backup: the database is not damaged, and a backup would lose "
        "what was saved since it was made."
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    full = next((t for t in ("No space left on device", "Disk quota exceeded") if t in text), "")
    return full or (text.splitlines()[0] if text else type(exc).__name__)


def damaged(path: str | Path, exc: BaseException) -> DatabaseDamaged:
    """The error for a database file DuckDB cannot read, saying how to restore it."""
    return DatabaseDamaged(
        f"The database {path} cannot be read: it is damaged, cut short or not a Milestone database ({_reason(exc)}). "
        "Restore it from a backup: stop the app, run `python -m tracker restore BACKUP.duckdb` "
        "(a file made by `python -m tracker backup --out BACKUP.duckdb`), and start the app again; "
        "or point TRACKER_DB at another file."
    )


# ---- transactions ------------------------------------------------------------------------------
# DuckDB's words when a commit reached the log but the checkpoint after it could not be written (a full disk): the
# write is saved, and the connection is dead until the database is opened again
_DURABLE = "commit succeeded and is durable"


def _in_transaction(cur: Cursor, work: Callable[[Cursor], T]) -> T:
    cur.execute("BEGIN TRANSACTION")
    try:
        result = work(cur)
    except BaseException:
        with suppress(duckdb.FatalException):  # a dead connection has nothing to roll back
            cur.execute("ROLLBACK")
        raise
    try:
        cur.execute("COMMIT")
    except duckdb.FatalException as exc:
        if _DURABLE not in str(exc).lower():
            raise
        _reopen_later(cur)
        log.warning("a write was saved, but the checkpoint after it failed: %s", str(exc).splitlines()[0])
    return result


def _reopen_later(cur: Cursor) -> None:
    if (owner := _owners.get(cur)) is not None:
        owner.reopen_later()


def thread_cursor(cur: Cursor) -> Cursor:
    """A cursor of the same database for another thread (a job in the background), whose writes take the same
    path as `cur`'s: in server mode through PostgreSQL, not into the copy alone."""
    own = cur.cursor()
    if (server := _servers.get(cur)) is not None:
        _servers[own] = server
    if (owner := _owners.get(cur)) is not None:
        _owners[own] = owner
    return own


def write(cur: Cursor, work: Callable[[Cursor], T], attempts: int = 60) -> T:
    """Run `work` in one transaction; retry it when DuckDB reports a write-write conflict. In server mode the
    cursor is a copy's, and the write goes through PostgreSQL (tracker/storage/replica.py)."""
    if _servers and (server := _servers.get(cur)) is not None:
        return server.write(cur, work)
    try:
        return _write_embedded(cur, work, attempts)
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.FatalException):  # every later statement on this connection would fail too
            _reopen_later(cur)
        if is_disk_full(exc):  # DuckDB undid the transaction: its log is cut back to the last commit
            owner = _owners.get(cur)
            raise disk_full(owner.path if owner else settings().db_path, exc) from None
        raise


def _write_embedded(cur: Cursor, work: Callable[[Cursor], T], attempts: int) -> T:
    refused = 0  # by a constraint
    for attempt in range(attempts):
        # Writes run side by side; a write that has met a conflict twice takes its next turns one at a time with
        # the other such writes (and new writes wait while one holds the turn), so writers of the same learner,
        # which refresh the same derived rows, queue instead of undoing each other's work again and again.
        with _CONTENDED if attempt >= 2 else _wait_for_contended():
            try:
                return _in_transaction(cur, work)
            except duckdb.TransactionException as exc:
                if "conflict" not in str(exc).lower() or attempt == attempts - 1:
                    raise
            except duckdb.ConstraintException:
                # A write beside this one may have taken what must be unique (two sign-offs at once): run again on a
                # fresh snapshot, where the check inside `work` sees it and says so in words. Refused again and
                # again, the refusal is the constraint's own.
                refused += 1
                if refused > 3 or attempt == attempts - 1:
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
