"""Server mode under injected faults: a COMMIT whose answer is lost, a COMMIT that never reaches PostgreSQL, a
restore of a dump that writes then pass, a stalled holder of the write lock. Each write lands once or not at all,
the writer is told which, and every copy ends equal to PostgreSQL."""

import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import psycopg
import pytest

from bench.fault_proxy import FaultProxy
from data_models import Framework, Rating
from tracker.accounts import account_links
from tracker.core.errors import EnvironmentStop, WriteTimedOut
from tracker.storage import database, record_rows, replica
from tracker.storage.database import Database
from tracker.storage.opening import open_database

from .conftest import FRAMEWORK_YAML
from .test_server_mode import rating as server_rating

pytestmark = [pytest.mark.server_only, pytest.mark.slow]


def open_copy(url: str, path: Path, framework: Framework) -> Database:
    return open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"), url)


def rating(rid: str, learner: str = "L001", level: float = 3.0) -> Rating:
    return server_rating(learner, "teach-methods", level, rid)


def pg_ids(url: str, prefix: str) -> list[str]:
    with psycopg.connect(url) as con:
        return sorted(r[0] for r in con.execute("SELECT id FROM ratings WHERE id LIKE %s", [prefix + "%"]).fetchall())


def copy_ids(db: Database, prefix: str) -> list[str]:
    rows = db.cursor().execute("SELECT id FROM ratings WHERE id LIKE ?", [prefix + "%"]).fetchall()
    return sorted(r[0] for r in rows)


@pytest.fixture
def proxied(postgres, server_db: str):  # type: ignore[no-untyped-def]
    """The test's PostgreSQL database, and a proxy to it that cuts connections on cue."""
    proxy = FaultProxy(socket_dir=postgres.folder, pg_port=postgres.port).start()
    name = urllib.parse.urlsplit(server_db).path.lstrip("/")
    yield server_db, proxy, proxy.url(name)
    proxy.stop()


def test_a_save_whose_commit_answer_is_lost_is_told_saved_and_lands_once(proxied, tmp_path, framework) -> None:
    direct, proxy, through = proxied
    copy = open_copy(through, tmp_path / "a.duckdb", framework)
    proxy.cue = "after_commit"
    record_rows.add_ratings(copy.cursor(), [rating("LOST-ANSWER-1")], framework, "a002")  # told: saved
    assert proxy.cuts["after_commit"] == 1
    assert pg_ids(direct, "LOST-ANSWER") == ["LOST-ANSWER-1"]
    # the copy's own transaction was undone; it takes the write from PostgreSQL, once
    copy.follow()  # type: ignore[attr-defined]
    assert copy_ids(copy, "LOST-ANSWER") == ["LOST-ANSWER-1"]
    record_rows.add_ratings(copy.cursor(), [rating("LOST-ANSWER-2")], framework, "a002")  # and goes on writing
    assert pg_ids(direct, "LOST-ANSWER") == copy_ids(copy, "LOST-ANSWER") == ["LOST-ANSWER-1", "LOST-ANSWER-2"]
    copy.close()


def test_a_save_whose_commit_never_reached_postgresql_is_told_unsaved_and_the_next_works(
    proxied, tmp_path, framework
) -> None:
    direct, proxy, through = proxied
    copy = open_copy(through, tmp_path / "a.duckdb", framework)
    proxy.cue = "before_commit"
    with pytest.raises(EnvironmentStop, match="nothing was saved"):
        record_rows.add_ratings(copy.cursor(), [rating("NEVER-1")], framework, "a002")
    assert proxy.cuts["before_commit"] == 1
    assert pg_ids(direct, "NEVER") == copy_ids(copy, "NEVER") == []
    record_rows.add_ratings(copy.cursor(), [rating("NEVER-2")], framework, "a002")  # the copy is not stuck
    assert pg_ids(direct, "NEVER") == copy_ids(copy, "NEVER") == ["NEVER-2"]
    copy.close()


def test_a_network_cut_mid_save_leaves_nothing_and_the_server_recovers(proxied, tmp_path, framework) -> None:
    direct, proxy, through = proxied
    copy = open_copy(through, tmp_path / "a.duckdb", framework)

    def cut_while_writing(c: database.Cursor) -> None:
        record_rows.insert_ratings_frame(c, record_rows.ratings_frame([rating("CUT-1")], framework))
        proxy.cut_all()

    with pytest.raises(EnvironmentStop, match="nothing was saved"):
        database.write(copy.cursor(), cut_while_writing)
    assert pg_ids(direct, "CUT") == copy_ids(copy, "CUT") == []
    record_rows.add_ratings(copy.cursor(), [rating("CUT-2")], framework, "a002")
    assert pg_ids(direct, "CUT") == copy_ids(copy, "CUT") == ["CUT-2"]
    copy.close()


def _dump(postgres, url: str, to: Path) -> None:  # type: ignore[no-untyped-def]
    postgres.run(str(postgres.bin / "pg_dump"), "-Fc", "-f", str(to), "-d", url)


def _restore(postgres, url: str, dump: Path) -> None:  # type: ignore[no-untyped-def]
    postgres.run(
        str(postgres.bin / "pg_restore"), "--clean", "--if-exists", "--single-transaction", "-d", url, str(dump)
    )


def test_a_copy_of_a_history_a_restore_discarded_is_copied_whole(postgres, server_db, tmp_path, framework) -> None:
    """pg_restore brings back the same epoch with an earlier change number; once other writes pass the second
    copy's change number, that copy must not keep the discarded rows nor miss the new ones."""
    a = open_copy(server_db, tmp_path / "a.duckdb", framework)
    b = open_copy(server_db, tmp_path / "b.duckdb", framework)
    record_rows.add_ratings(a.cursor(), [rating("TL-kept")], framework, "a002")
    dump = postgres.folder / "before.dump"
    _dump(postgres, server_db, dump)
    record_rows.add_ratings(a.cursor(), [rating("TL-lost")], framework, "a002")
    b.follow()  # type: ignore[attr-defined]
    assert copy_ids(b, "TL-") == ["TL-kept", "TL-lost"]
    _restore(postgres, server_db, dump)
    assert pg_ids(server_db, "TL-") == ["TL-kept"]
    for i in (3, 4, 5):  # the writes after the restore pass b's change number
        record_rows.add_ratings(a.cursor(), [rating(f"TL-new{i}")], framework, "a002")
    b.follow()  # type: ignore[attr-defined]
    want = ["TL-kept", "TL-new3", "TL-new4", "TL-new5"]
    assert pg_ids(server_db, "TL-") == copy_ids(a, "TL-") == copy_ids(b, "TL-") == want
    a.close()
    b.close()


def test_forgot_password_in_server_mode_writes_through_postgresql(server_db, tmp_path, framework) -> None:
    copy = open_copy(server_db, tmp_path / "a.duckdb", framework)
    account_links.request_reset(copy.cursor(), "a003", "198.51.100.4", deliver=lambda job: job())
    with psycopg.connect(server_db) as con:
        asked = con.execute("SELECT count(*) FROM link_requests WHERE source = '198.51.100.4'").fetchone()
    assert asked == (1,)  # shared: the limit holds on every server, and a rebuilt copy keeps it
    copy.close()


def _hold_the_write_lock(url: str, seconds: float, started: threading.Event) -> None:
    """A stalled server: takes the write lock in a transaction and goes silent."""
    with psycopg.connect(url) as con, con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", [replica.WRITE_LOCK])
        started.set()
        time.sleep(seconds)


def test_a_save_behind_a_stalled_lock_holder_gives_up_in_time_saying_so(server_db, tmp_path, framework, monkeypatch):
    monkeypatch.setenv("TRACKER_PG_LOCK_SECONDS", "1")
    copy = open_copy(server_db, tmp_path / "a.duckdb", framework)
    started = threading.Event()
    holder = threading.Thread(target=_hold_the_write_lock, args=(server_db, 4, started), daemon=True)
    holder.start()
    assert started.wait(10)
    began = time.monotonic()
    with pytest.raises(WriteTimedOut, match="nothing was saved"):
        record_rows.add_ratings(copy.cursor(), [rating("WAIT-1")], framework, "a002")
    assert time.monotonic() - began < 3.5
    holder.join()
    record_rows.add_ratings(copy.cursor(), [rating("WAIT-2")], framework, "a002")
    assert pg_ids(server_db, "WAIT") == ["WAIT-2"]
    copy.close()


STALLED_WRITER = """
import sys, time
from tracker.core.errors import EnvironmentStop
from tracker.storage import database, record_rows
from tests.test_faults import open_copy, rating
from tracker.framework.loading import load_framework
from tests.conftest import FRAMEWORK_YAML
fw = load_framework(FRAMEWORK_YAML)
copy = open_copy(sys.argv[1], __import__("pathlib").Path(sys.argv[2]), fw)
def busy(c):
    record_rows.insert_ratings_frame(c, record_rows.ratings_frame([rating("STALL-1")], fw))
    print("holding", flush=True)
    time.sleep(8)  # busy (or, once stopped, silent) while it holds the lock
try:
    database.write(copy.cursor(), busy)
    print("told: saved", flush=True)
except EnvironmentStop as exc:
    print("told: " + str(exc), flush=True)
"""


def test_a_stopped_lock_holder_is_ended_by_postgresql_and_frees_the_lock(server_db, tmp_path, framework, monkeypatch):
    """A server stopped (SIGSTOP) while it holds the write lock is ended after TRACKER_PG_IDLE_SECONDS of silence,
    so the others write again; what it had under way never lands, and it is told so when it goes on. A server that
    is merely busy that long keeps the lock: it says so to PostgreSQL while it works."""
    monkeypatch.setenv("TRACKER_PG_IDLE_SECONDS", "3")  # seconds enough for a loaded machine's heartbeat, every 1 s
    monkeypatch.setenv("TRACKER_PG_LOCK_SECONDS", "20")
    other = open_copy(server_db, tmp_path / "other.duckdb", framework)
    stalled = subprocess.Popen(
        [sys.executable, "-c", STALLED_WRITER, server_db, str(tmp_path / "stalled.duckdb")],
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stalled.stdout is not None
    assert stalled.stdout.readline().strip() == "holding"
    time.sleep(4)  # busy for longer than the idle timeout: not ended
    with psycopg.connect(server_db) as con:
        held = con.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()
    assert held == (1,)
    stalled.send_signal(signal.SIGSTOP)
    began = time.monotonic()
    record_rows.add_ratings(other.cursor(), [rating("STALL-2")], framework, "a002")
    assert time.monotonic() - began < 12  # the idle timeout (3 s), not the lock's (20 s)
    stalled.send_signal(signal.SIGCONT)
    told = stalled.stdout.readline()
    stalled.wait(30)
    assert "nothing was saved" in told
    assert pg_ids(server_db, "STALL") == ["STALL-2"]
    other.close()


def test_the_harness_proxy_sees_a_commit_in_the_wire_protocol() -> None:
    from bench.fault_proxy import _commit_in

    assert _commit_in(b"Q\x00\x00\x00\x0bCOMMIT\x00")
    assert not _commit_in(b"Q\x00\x00\x00\x0bSELECT 1\x00")
