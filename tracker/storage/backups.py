"""The embedded file's backups: check a database or a backup, copy one out, restore one in its place."""

from contextlib import suppress
from pathlib import Path

import duckdb

from tracker.core.errors import DatabaseBusy, DatabaseDamaged, TrackerError
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


def restore(backup_file: str | Path, path: str | Path) -> Path | None:
    """Put the database in the backup file in place of the one at `path` (kept beside it, renamed, and returned),
    after checking that the backup is a readable Milestone database."""
    backup_file, path = Path(backup_file), Path(path)
    check_backup(backup_file)
    if path.exists():  # refuse while the app (or anything) holds it; a damaged file is what we replace
        with suppress(DatabaseDamaged):
            connect(path, read_only=False).close()
    fresh = path.with_name(path.name + ".restoring")
    fresh.unlink(missing_ok=True)
    _copy_database(backup_file, fresh, database=path)
    kept = None
    if path.exists():
        kept = path.with_name(f"{path.name}.replaced-{now():%Y%m%d-%H%M%S}")
        path.rename(kept)
    Path(str(path) + ".wal").unlink(missing_ok=True)  # a log belongs to the file it was written for
    fresh.rename(path)
    return kept


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
