"""The embedded file's backups: check a database or a backup, copy one out, restore one in its place."""

import glob
import json
import os
import shutil
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tracker.core.errors import DatabaseBusy, DatabaseDamaged, DatabaseMissing, RestoreInterrupted, TrackerError
from tracker.storage.database import Cursor, connect, damaged, disk_full, is_disk_full, now
from tracker.storage.schema import MIGRATIONS


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
    _copy_database(Path(path), out, database=Path(path))
    con = connect(out, read_only=True)
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
    name, path = cur.execute(
        "SELECT database_name, path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()  # type: ignore[misc]
    cur.execute("ATTACH ? AS backup_target", [str(out)])
    try:
        cur.execute(f'COPY FROM DATABASE "{name}" TO backup_target')
    except duckdb.Error as exc:
        cur.execute("DETACH backup_target")
        if not is_disk_full(exc):
            raise
        _remove_database_file(out)
        raise disk_full(path, exc) from None
    cur.execute("DETACH backup_target")
    con = connect(out, read_only=True)
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


# ---- restore ------------------------------------------------------------------------------------
# A restore never leaves the database's name without a whole database behind it, whenever it is stopped: the restored
# copy is written and synced beside the file, the file gets a second name (the kept copy, a hard link: no time and no
# space), and the copy takes the file's name in one atomic os.replace. A journal beside the file, written before the
# first change to the file's names and removed after the last, tells the next start that a restore stopped half-way:
# it refuses to open the database until the restore is run again, which then finishes it.
@dataclass(frozen=True)
class Journal:
    backup: Path
    kept: Path | None  # the database as it was before the restore (None: there was none)


def restore(backup_file: str | Path, path: str | Path) -> Path | None:
    """Put the database in the backup file in place of the one at `path` (kept beside it under a new name, which is
    returned), after checking that the backup is a readable Milestone database. Run again after it was stopped, it
    finishes; the database as it was before the first run is the one kept."""
    backup_file, path = Path(backup_file), Path(path)
    check_backup(backup_file)
    earlier = read_journal(path)
    replaced = earlier is not None and not _restoring(path).exists()  # the earlier run had put its copy in place
    if replaced:
        # a log left under the name is the replaced database's, which the kept copy has with its own
        _wal(path).unlink(missing_ok=True)
    # refuse while the app (or anything) holds it; a damaged file is what we replace. After a stopped run nothing
    # can hold it (opening refuses it), and the file may be the kept copy under a second name: it is left untouched
    if earlier is None and path.exists():
        with suppress(DatabaseDamaged):
            connect(path, read_only=False).close()
    fresh = _restoring(path)
    fresh.unlink(missing_ok=True)
    _copy_database(backup_file, fresh, database=path)
    _sync(fresh)
    kept = earlier.kept if earlier is not None else _kept_name(path)  # a second run keeps what the first meant to
    _write_journal(path, Journal(backup_file, kept))
    if kept is not None and not replaced:
        _keep(path, kept)
    # the log belongs to the file it was written for (kept with it); replayed into the restored copy it would write
    # the old records over it, and without its file it cannot be read
    _wal(path).unlink(missing_ok=True)
    os.replace(fresh, path)
    _sync_folder(path)
    journal_file(path).unlink()
    _sync_folder(path)
    return kept


def _restoring(path: Path) -> Path:
    return path.with_name(path.name + ".restoring")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def journal_file(path: Path) -> Path:
    return path.with_name(path.name + ".restore-journal")


def _kept_name(path: Path) -> Path | None:
    """A new name for the database a restore replaces; None when there is none."""
    if not path.exists():
        return None
    stamp = f"{path.name}.replaced-{now():%Y%m%d-%H%M%S}"
    kept, n = path.with_name(stamp), 1
    while kept.exists():  # two restores in one second: the first one's kept copy stays
        n += 1
        kept = path.with_name(f"{stamp}-{n}")
    return kept


def _keep(path: Path, kept: Path) -> None:
    """Give the database (and its log, if it has one) a second name; run again after a stop, it completes."""
    for source, target in ((path, kept), (_wal(path), _wal(kept))):
        if source.exists() and not target.exists():
            try:
                os.link(source, target)
            except OSError:  # a file system without hard links: a copy, synced, under its name at once
                partial = target.with_name(target.name + ".partial")
                shutil.copyfile(source, partial)
                _sync(partial)
                os.replace(partial, target)
    _sync_folder(path)


def _write_journal(path: Path, journal: Journal) -> None:
    text = json.dumps({"backup": str(journal.backup), "kept": str(journal.kept) if journal.kept else None})
    partial = journal_file(path).with_name(journal_file(path).name + ".partial")
    partial.write_text(text, encoding="utf-8")
    _sync(partial)
    os.replace(partial, journal_file(path))
    _sync_folder(path)


def read_journal(path: Path) -> Journal | None:
    """The journal of a restore of `path` that was stopped before it finished, if there is one."""
    try:
        data = json.loads(journal_file(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:  # cannot happen (written whole, then renamed); if it does, the backup is not known
        data = {"backup": "BACKUP.duckdb", "kept": None}
    return Journal(Path(data["backup"]), Path(data["kept"]) if data.get("kept") else None)


def _sync(file: Path) -> None:
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(path: Path) -> None:
    """A rename or a new name is on disk once the folder holding it is synced."""
    with suppress(OSError):  # a file system whose folders cannot be opened to sync (rare): as good as it gets
        _sync(path.parent)


# ---- before opening: a restore stopped half-way, a database file gone ---------------------------------------
def refuse_unfinished(path: Path) -> None:
    """Refuse to open the database at `path` while a restore of it is unfinished, and refuse to create a new, empty
    one when its file is gone but what is left of it lies beside its name."""
    journal = read_journal(path)
    if journal is not None:
        raise RestoreInterrupted(_interrupted_message(path, journal))
    if path.exists():
        return
    left = _left_of(path)
    if left:
        raise DatabaseMissing(_missing_message(path, left))


def _interrupted_message(path: Path, journal: Journal) -> str:
    before = (
        f" The database as it was before the restore is kept as {journal.kept}: to go back to it instead, run "
        f"`python -m tracker restore {journal.kept}`."
        if journal.kept
        else ""
    )
    return (
        f"A restore of {path} from {journal.backup} was stopped before it finished, so the database is not opened. "
        f"Nothing is lost. With the app stopped, run `python -m tracker restore {journal.backup}` again to finish "
        f"it, then start the app.{before}"
    )


def _left_of(path: Path) -> list[Path]:
    """What a database leaves beside its name: its log, the copies restores kept, a restore's copy in the making."""
    left = [_wal(path), _restoring(path), *path.parent.glob(f"{glob.escape(path.name)}.replaced-*")]
    return sorted(p for p in left if p.exists() and not p.name.endswith(".partial"))


def _missing_message(path: Path, left: list[Path]) -> str:
    kept = sorted((p for p in left if ".replaced-" in p.name and not p.name.endswith(".wal")), key=lambda p: p.name)
    go_back = (
        f" The newest copy a restore kept is {kept[-1]}: `python -m tracker restore {kept[-1]}` puts it in place."
        if kept
        else ""
    )
    return (
        f"There is no database at {path}, but {', '.join(p.name for p in left)} beside it are left from one: the file "
        "was moved or deleted, or a restore was stopped before it finished. A new, empty database is not started in "
        "its place. If the file was moved, put it back (or point TRACKER_DB at it); if a restore was stopped, run "
        f"`python -m tracker restore BACKUP.duckdb` again with the same backup.{go_back} To start a new database on "
        "purpose, move those files elsewhere first."
    )


def _copy_database(source: Path, target: Path, database: Path) -> None:
    """Copy the database file `source` into a new file `target`; `database` is the one the command is about, which a
    failure names."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # a command's output is its own message
    try:
        try:
            con.execute("ATTACH ? AS src (READ_ONLY)", [str(source)])
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
            _remove_database_file(target)
            # the copy's disk filled up: the source is as it was
            raise (disk_full(database, exc) if is_disk_full(exc) else damaged(source, exc)) from None
        con.execute("DETACH dst")
    finally:
        con.close()


def _remove_database_file(path: Path) -> None:
    """A copy that failed half-way, and its log."""
    path.unlink(missing_ok=True)
    Path(str(path) + ".wal").unlink(missing_ok=True)
