"""The embedded file under real faults: a disk that fills up while people save, and a restore killed half-way.
Nothing acknowledged is lost, and the person is told what happened and what to do."""

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FRAMEWORK_YAML, viewer
from tracker.core.errors import DatabaseDamaged, DiskFull
from tracker.records import actions
from tracker.storage import database
from tracker.storage.database import Database
from tracker.storage.opening import open_database

pytestmark = pytest.mark.embedded_only


# ---- a disk that fills up ---------------------------------------------------------------------------
DISK_MB = 24  # the sample program's file takes 14


def _mount_small_disk(folder: Path, image: Path) -> bool:
    """A loop-mounted ext4 image, else a tmpfs, of DISK_MB; False when neither can be mounted."""
    with image.open("wb") as f:
        f.truncate(DISK_MB * 2**20)
    ext4 = subprocess.run(["mkfs.ext4", "-q", str(image)], capture_output=True).returncode == 0 and (
        subprocess.run(["mount", "-o", "loop", str(image), str(folder)], capture_output=True).returncode == 0
    )
    return ext4 or (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system of DISK_MB, mounted for the test, holding a copy of the sample program's database."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a size-limited file system (loop-mounted ext4 or tmpfs) needs root: not tested")
    folder = tmp_path / "disk"
    folder.mkdir()
    if not _mount_small_disk(folder, tmp_path / "disk.img"):
        pytest.skip("neither a loop-mounted ext4 image nor a tmpfs could be mounted here: a full disk is not tested")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.fixture
def on_small_disk(db_path: Path, framework, small_disk: Path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    path = small_disk / "tracker.duckdb"
    shutil.copy(db_path, path)
    db = open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    yield db
    db.close()


def fill(folder: Path, leave: int = 0) -> Path:
    """Take every free byte of the disk but `leave` with one file (large writes, then small ones for the last
    blocks)."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as f:
        for size in (2**20, 4096, 512):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


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
