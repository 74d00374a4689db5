"""The embedded file under real faults: a disk that fills up while people save, and a restore killed half-way.
Nothing acknowledged is lost, and the person is told what happened and what to do."""

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import small_disk as small_disk_
from bench.small_disk import fill
from tests.conftest import FRAMEWORK_YAML, ROOT, viewer
from tracker.core.errors import DatabaseDamaged, DatabaseMissing, DiskFull, RestoreInterrupted
from tracker.records import actions
from tracker.storage import backups, database
from tracker.storage.database import Database
from tracker.storage.opening import open_database

pytestmark = pytest.mark.embedded_only


# ---- a disk that fills up ---------------------------------------------------------------------------
DISK_MB = 24  # the sample program's file takes 14


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system of DISK_MB, mounted for the test, holding a copy of the sample program's database."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a size-limited file system (loop-mounted ext4 or tmpfs) needs root: not tested")
    folder = tmp_path / "disk"
    folder.mkdir()
    if not small_disk_.mount(folder, tmp_path / "disk.img", DISK_MB):
        pytest.skip("neither a loop-mounted ext4 image nor a tmpfs could be mounted here: a full disk is not tested")
    try:
        yield folder
    finally:
        small_disk_.unmount(folder)


@pytest.fixture
def on_small_disk(db_path: Path, framework, small_disk: Path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    path = small_disk / "tracker.duckdb"
    shutil.copy(db_path, path)
    db = open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    yield db
    db.close()


def save(db: Database, framework, comment: str) -> str:  # type: ignore[no-untyped-def]
    """An advisor's rating of an advisee, through the app's own write (the rules, the rating, the audit row)."""
    cur = db.cursor()
    return actions.record_rating(cur, framework, viewer(cur, "A001"), "L001", "teach-methods", 3, "T1", comment).id


def saves_until_refused(db: Database, framework, acknowledged: set[str]) -> DiskFull:  # type: ignore[no-untyped-def]
    """Save until the full disk refuses one (a save or two may still fit in the last block of DuckDB's log)."""
    for i in range(50):
        try:
            acknowledged.add(save(db, framework, f"while the disk is full {i} " + "x" * 2000))
        except DiskFull as exc:
            return exc
    raise AssertionError("the disk never filled up")


def rating_ids(db: Database) -> set[str]:
    return {r[0] for r in db.cursor().execute("SELECT id FROM ratings").fetchall()}


def reopened_ids(db: Database, framework) -> set[str]:  # type: ignore[no-untyped-def]
    """The ratings in the file, as a new process reads them."""
    db.close()
    again = open_database(db.path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    try:
        return rating_ids(again)
    finally:
        again.close()


def test_a_full_disk_is_told_as_full_loses_nothing_and_the_next_save_works(on_small_disk, framework, small_disk):
    db = on_small_disk
    sample = rating_ids(db)
    acknowledged = {save(db, framework, "before the disk filled")}
    filler = fill(small_disk)
    refused = saves_until_refused(db, framework, acknowledged)
    message = str(refused)
    assert not isinstance(refused, DatabaseDamaged)
    assert "is full (No space left on device)" in message
    assert "Nothing of what was being saved was written" in message
    assert f"the database {db.path} is intact" in message
    assert "Free space on that disk" in message
    assert "restore BACKUP" not in message and "Do not restore a backup" in message
    assert rating_ids(db) == sample | acknowledged

    filler.unlink()
    acknowledged.add(save(db, framework, "after space was freed"))
    assert reopened_ids(db, framework) == sample | acknowledged


def test_a_save_whose_checkpoint_does_not_fit_is_refused_and_the_connection_reopened(
    on_small_disk, framework, small_disk
):
    """Once DuckDB's log is past its checkpoint size, a large commit goes straight into the file; on a full disk
    that fails, and DuckDB refuses every later statement on the connection ("the database must be restarted"). The
    save is refused as above, and the next cursor comes from a new connection."""
    db = on_small_disk
    sample = rating_ids(db)
    acknowledged = {save(db, framework, "before the disk filled")}
    filler = fill(small_disk, leave=64 * 1024)  # room for a save's log, not for a checkpoint
    db.con.execute("SET checkpoint_threshold = '1KB'")  # every commit finds the log past it
    refused = saves_until_refused(db, framework, acknowledged)
    assert "Nothing of what was being saved was written" in str(refused)
    filler.unlink()
    acknowledged.add(save(db, framework, "after space was freed"))
    assert rating_ids(db) == sample | acknowledged
    assert reopened_ids(db, framework) == sample | acknowledged


def test_a_save_that_reached_the_log_before_its_checkpoint_failed_stands(on_small_disk, framework, small_disk):
    """A small commit is written to DuckDB's log first; when the checkpoint after it finds no room, DuckDB says the
    commit is durable and refuses the connection from then on. The save stands, and the next cursor works."""
    db = on_small_disk
    db.con.execute("SET checkpoint_threshold = '1GB'")  # saves pile up in the log...
    acknowledged = {save(db, framework, f"before the disk filled {i}") for i in range(3)}
    filler = fill(small_disk, leave=64 * 1024)
    db.con.execute("SET checkpoint_threshold = '1KB'")  # ...until the next commit finds it past its size
    database.write(db.cursor(), lambda c: database.audit(c, "A001", "note", "the last save before the disk filled"))
    notes = "SELECT count(*) FROM audit_log WHERE target = 'the last save before the disk filled'"
    assert db.cursor().execute(notes).fetchone() == (1,)  # a new connection's cursor, reading the file's log
    filler.unlink()
    acknowledged.add(save(db, framework, "after space was freed"))
    assert acknowledged <= rating_ids(db)
    assert acknowledged <= reopened_ids(db, framework)


# ---- a restore killed half-way ---------------------------------------------------------------------
# The restore runs in a child process that stops itself (SIGSTOP) just before its n-th change to a file's name (a
# rename, a new name, a removal: Python's audit events for them); the test then kills it (SIGKILL), as a power cut or
# `kill -9` would, and opens the database as the next start does. n runs from 1 until the restore finishes.
RESTORE_STOPPED_AT = r"""
import os, signal, sys
from tracker.storage import backups

stop_at, seen = int(sys.argv[3]), 0

def stop_before_a_change_of_names(event, args):
    global seen
    if event in ("os.rename", "os.link", "os.remove"):
        seen += 1
        if seen == stop_at:
            os.kill(os.getpid(), signal.SIGSTOP)

sys.addaudithook(stop_before_a_change_of_names)
backups.restore(sys.argv[1], sys.argv[2])
"""


def restore_killed_at(step: int, backup: Path, path: Path) -> bool:
    """Run the restore of `backup` over `path` in a child process, killed before its `step`-th change of names;
    False when it finished first."""
    child = subprocess.Popen([sys.executable, "-c", RESTORE_STOPPED_AT, str(backup), str(path), str(step)], cwd=ROOT)
    _, status = os.waitpid(child.pid, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        os.kill(child.pid, signal.SIGKILL)
        _, status = os.waitpid(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode in (0, -signal.SIGKILL), child.returncode
    return child.returncode != 0


def database_with_a_note(path: Path, framework, note: str) -> Path:  # type: ignore[no-untyped-def]
    """A new Milestone database whose audit log holds `note`: which database a file holds, read at a glance."""
    db = open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    database.write(db.cursor(), lambda c: database.audit(c, "test", "note", note))
    db.close()
    return path


def notes(path: Path, framework) -> set[str]:  # type: ignore[no-untyped-def]
    db = open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    try:
        return {r[0] for r in db.cursor().execute("SELECT target FROM audit_log WHERE action = 'note'").fetchall()}
    finally:
        db.close()


@pytest.mark.slow
def test_a_restore_killed_at_any_step_loses_nothing_and_never_starts_an_empty_database(framework, tmp_path):
    original = database_with_a_note(tmp_path / "original.duckdb", framework, "in the database")
    backup = database_with_a_note(tmp_path / "backup.duckdb", framework, "in the backup")
    step, outcomes = 1, []
    while True:
        folder = tmp_path / f"killed-at-{step}"
        folder.mkdir()
        path = shutil.copy(original, folder / "tracker.duckdb")
        if not restore_killed_at(step, backup, path):
            assert notes(path, framework) == {"in the backup"}
            break
        names = sorted(p.name for p in folder.iterdir())
        try:
            found = notes(path, framework)  # the next start
        except (RestoreInterrupted, DatabaseMissing) as exc:
            outcomes.append("refused")
            assert sorted(p.name for p in folder.iterdir()) == names  # nothing was created
            assert f"run `python -m tracker restore {backup}` again" in str(exc), exc
            # as the message says: the restore, run again, finishes; the database it replaced is kept whole
            kept = backups.restore(backup, path)
            assert notes(path, framework) == {"in the backup"}
            assert kept is not None and notes(kept, framework) == {"in the database"}
        else:
            # stopped before it changed anything, or after it finished
            outcomes.append("opened")
            assert found in ({"in the database"}, {"in the backup"}), (step, names, found)
        step += 1
    assert "refused" in outcomes and step > 5, outcomes


def test_a_missing_database_beside_what_is_left_of_it_is_not_started_empty(framework, tmp_path):
    path = database_with_a_note(tmp_path / "tracker.duckdb", framework, "in the database")
    kept = path.rename(tmp_path / "tracker.duckdb.replaced-20261201-020000")  # as a restore stopped half-way left it
    (tmp_path / "tracker.duckdb.wal").write_bytes(b"")
    with pytest.raises(DatabaseMissing) as refused:
        open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    assert not path.exists()
    message = str(refused.value)
    assert f"There is no database at {path}" in message and "not started" in message
    assert f"`python -m tracker restore {kept}` puts it in place" in message
    backups.restore(kept, path)  # as it says
    assert notes(path, framework) == {"in the database"}
