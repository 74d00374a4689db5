"""Server mode against a real PostgreSQL the tests start: every write goes through PostgreSQL, every copy follows."""

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from data_models import Framework, Rating
from tracker.accounts import admin, sessions
from tracker.core.errors import DatabaseBusy, TrackerError
from tracker.records import importing
from tracker.storage import backups, control, database, derived, record_rows, replica, schema
from tracker.storage.database import Database
from tracker.storage.opening import open_database

from .conftest import FRAMEWORK_YAML, ROOT, SAMPLE

pytestmark = [pytest.mark.server_only, pytest.mark.slow]  # server mode itself: PostgreSQL, copies, app servers

RATINGS_HEADER = "id,learner_id,competency_id,level,rater_id,rater_role,rated_on,term,comment,evidence_ids,framework_version,corrects"


def open_copy(url: str, path: Path, framework: Framework) -> Database:
    return open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"), url)


def pg_rows(url: str, sql: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(url) as con:
        return con.execute(sql, params).fetchall()  # type: ignore[arg-type]


def rating(learner: str, competency: str, level: float, rid: str, rater: str = "A002") -> Rating:
    return Rating(
        id=rid,
        learner_id=learner,
        competency_id=competency,
        level=level,
        rater_id=rater,
        rater_role="advisor",
        rated_on=dt.date(2026, 11, 20),
        term="T4",
        comment="server mode",
        evidence_ids=[],
        framework_version="2026.1",
    )


def test_a_save_on_one_copy_is_seen_by_the_other(server_db: str, tmp_path: Path, framework: Framework) -> None:
    a = open_copy(server_db, tmp_path / "a.duckdb", framework)
    b = open_copy(server_db, tmp_path / "b.duckdb", framework)
    learner, competency = (
        a.cursor().execute("SELECT id FROM learners ORDER BY id LIMIT 1").fetchone()[0],
        "teach-methods",
    )
    before = b.cursor().execute("SELECT count(*) FROM ratings").fetchone()[0]  # type: ignore[index]

    record_rows.add_ratings(a.cursor(), [rating(learner, competency, 4.5, "SRV-1")], framework, "a002")

    assert pg_rows(server_db, "SELECT level FROM ratings WHERE id = 'SRV-1'") == [(Decimal("4.5"),)]
    assert b.cursor().execute("SELECT count(*) FROM ratings").fetchone()[0] == before  # not yet followed
    followed = b.follow()  # type: ignore[attr-defined]
    assert followed is not None and "ratings" in followed.tables and learner in followed.learners
    assert b.cursor().execute("SELECT count(*) FROM ratings").fetchone()[0] == before + 1
    # the derived levels of the copy follow the rating: T4 is the newest term rated, so 4.5 is the latest level
    (latest,) = (
        b.cursor()
        .execute("SELECT level FROM current_levels WHERE learner_id = ? AND competency_id = ?", [learner, competency])
        .fetchone()
    )  # type: ignore[misc]
    expected = (
        a.cursor()
        .execute("SELECT level FROM current_levels WHERE learner_id = ? AND competency_id = ?", [learner, competency])
        .fetchone()[0]
    )  # type: ignore[index]
    assert latest == expected
    # the order numbers agree in both copies and PostgreSQL
    seq = pg_rows(server_db, "SELECT seq FROM ratings WHERE id = 'SRV-1'")[0][0]
    assert b.cursor().execute("SELECT seq FROM ratings WHERE id = 'SRV-1'").fetchone()[0] == seq
    assert seq > pg_rows(server_db, "SELECT max(seq) FROM ratings WHERE id <> 'SRV-1'")[0][0]
    a.close()
    b.close()


def test_order_numbers_stay_unique_when_both_copies_save(server_db: str, tmp_path: Path, framework: Framework) -> None:
    a = open_copy(server_db, tmp_path / "a.duckdb", framework)
    b = open_copy(server_db, tmp_path / "b.duckdb", framework)
    for i in range(3):
        record_rows.add_ratings(a.cursor(), [rating("L001", "teach-methods", 3.0, f"A-{i}")], framework, "a002")
        record_rows.add_ratings(b.cursor(), [rating("L001", "teach-methods", 3.5, f"B-{i}")], framework, "a002")
    seqs = pg_rows(server_db, "SELECT seq FROM ratings WHERE id LIKE 'A-%' OR id LIKE 'B-%' ORDER BY seq")
    assert len({s for (s,) in seqs}) == 6
    assert pg_rows(server_db, "SELECT count(*), count(DISTINCT seq) FROM audit_log") == [
        (pg_rows(server_db, "SELECT count(*) FROM audit_log")[0][0],) * 2
    ]
    a.follow()  # type: ignore[attr-defined]
    assert backups.check_database(a.cursor()) == []
    a.close()
    b.close()


def test_a_refused_write_leaves_nothing_in_postgresql(server_db: str, tmp_path: Path, framework: Framework) -> None:
    a = open_copy(server_db, tmp_path / "a.duckdb", framework)
    head = pg_rows(server_db, "SELECT change FROM replication_head")
    audits = pg_rows(server_db, "SELECT count(*) FROM audit_log")

    def half_then_refuse(c: database.Cursor) -> None:
        database.audit(c, "a002", "rating", "L001")
        c.execute("UPDATE learners SET status = 'leave' WHERE id = 'L001'")
        raise TrackerError("refused")

    with pytest.raises(TrackerError):
        database.write(a.cursor(), half_then_refuse)
    with pytest.raises(TrackerError):
        record_rows.set_learner_status(a.cursor(), "NOBODY", "leave", "cli")
    assert pg_rows(server_db, "SELECT change FROM replication_head") == head
    assert pg_rows(server_db, "SELECT count(*) FROM audit_log") == audits
    assert pg_rows(server_db, "SELECT status FROM learners WHERE id = 'L001'") == [("active",)]
    assert a.cursor().execute("SELECT status FROM learners WHERE id = 'L001'").fetchone() == ("active",)
    # and the copy still writes
    record_rows.set_learner_status(a.cursor(), "L001", "leave", "cli")
    assert pg_rows(server_db, "SELECT status FROM learners WHERE id = 'L001'") == [("leave",)]
    a.close()


def test_a_sign_in_and_a_sign_out_on_one_server_hold_on_the_other(
    server_db: str, tmp_path: Path, framework: Framework
) -> None:
    a = open_copy(server_db, tmp_path / "a.duckdb", framework)
    b = open_copy(server_db, tmp_path / "b.duckdb", framework)
    token = sessions.sign_in(a.cursor(), "a002", admin.DEMO_PASSWORD)
    b.follow()  # type: ignore[attr-defined]
    seen = sessions.viewer_for_token(b.cursor(), token)
    assert seen is not None and seen.person_id == "A002"
    sessions.sign_out(b.cursor(), token)  # an update of the session row, on the other server
    a.follow()  # type: ignore[attr-defined]
    assert sessions.viewer_for_token(a.cursor(), token) is None
    a.close()
    b.close()


def test_removed_rows_are_removed_from_every_copy(server_db: str, tmp_path: Path, framework: Framework) -> None:
    a = open_copy(server_db, tmp_path / "a.duckdb", framework)
    b = open_copy(server_db, tmp_path / "b.duckdb", framework)
    for _ in range(2):  # failed sign-ins are counted (a table without a key: replaced whole)
        with pytest.raises(TrackerError):
            sessions.sign_in(a.cursor(), "a002", "wrong password", source="10.0.0.9")
    b.follow()  # type: ignore[attr-defined]
    assert b.cursor().execute("SELECT count(*) FROM sign_in_failures WHERE username = 'a002'").fetchone() == (2,)
    sessions.sign_in(b.cursor(), "a002", admin.DEMO_PASSWORD, source="10.0.0.9")  # a success clears them

    def add_term(c: database.Cursor) -> None:  # a keyed row, removed below: a tombstone
        c.execute("INSERT INTO fw_terms VALUES ('TX', 99, 'extra')")

    database.write(b.cursor(), add_term)
    database.write(a.cursor(), lambda c: c.execute("DELETE FROM fw_terms WHERE term = 'TX'"))
    b.follow()  # type: ignore[attr-defined]
    a.follow()  # type: ignore[attr-defined]
    assert a.cursor().execute("SELECT count(*) FROM sign_in_failures WHERE username = 'a002'").fetchone() == (0,)
    assert b.cursor().execute("SELECT count(*) FROM fw_terms WHERE term = 'TX'").fetchone() == (0,)
    assert pg_rows(server_db, "SELECT count(*) FROM fw_terms WHERE term = 'TX'") == [(0,)]
    assert pg_rows(server_db, "SELECT count(*) FROM replication_tombstones WHERE table_name = 'fw_terms'") == [(1,)]
    a.close()
    b.close()


def test_a_crash_between_the_two_commits_heals(
    server_db: str, tmp_path: Path, framework: Framework, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = open_copy(server_db, tmp_path / "a.duckdb", framework)

    def crash(self: replica.Replica, cur: database.Cursor) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(replica.Replica, "_commit_local", crash)
    record_rows.add_ratings(a.cursor(), [rating("L002", "teach-methods", 2.0, "CRASH-1")], framework, "a002")
    monkeypatch.undo()
    assert pg_rows(server_db, "SELECT count(*) FROM ratings WHERE id = 'CRASH-1'") == [(1,)]
    assert a.cursor().execute("SELECT count(*) FROM ratings WHERE id = 'CRASH-1'").fetchone() == (0,)
    # the next write follows first, so nothing is lost and nothing is numbered twice
    record_rows.add_ratings(a.cursor(), [rating("L002", "teach-methods", 2.5, "CRASH-2")], framework, "a002")
    assert a.cursor().execute("SELECT count(*) FROM ratings WHERE id LIKE 'CRASH-%'").fetchone() == (2,)
    assert backups.check_database(a.cursor()) == []
    a.close()
    # a copy file that a crash left behind catches up when its process starts again
    b = open_copy(server_db, tmp_path / "a.duckdb", framework)
    assert b.cursor().execute("SELECT count(*) FROM ratings WHERE id LIKE 'CRASH-%'").fetchone() == (2,)
    b.close()


WRITER = textwrap.dedent(
    """
    import datetime as dt, json, sys
    from data_models import Rating
    from tracker.core.config import settings
    from tracker.records.setup import open_configured
    from tracker.storage import record_rows
    db, fw = open_configured(settings())
    tag, n = sys.argv[1], int(sys.argv[2])
    learners = [r[0] for r in db.cursor().execute("SELECT id FROM learners ORDER BY id").fetchall()]
    for i in range(n):
        r = Rating(id=f"{tag}-{i}", learner_id=learners[i % len(learners)], competency_id="teach-methods", level=3.0,
                   rater_id="A002", rater_role="advisor", rated_on=dt.date(2026, 11, 20), term="T4", comment=tag,
                   evidence_ids=[], framework_version="2026.1")
        record_rows.add_ratings(db.cursor(), [r], fw, tag)
    db.follow()
    print(json.dumps(db.cursor().execute("SELECT count(*) FROM ratings").fetchone()[0]))
    db.close()
    """
)


def test_two_servers_and_the_command_line_writing_at_once_lose_nothing(
    server_db: str, tmp_path: Path, framework: Framework
) -> None:
    env = {**os.environ, "TRACKER_DB": server_db, "TRACKER_FRAMEWORK": str(FRAMEWORK_YAML)}
    rows = [
        "id,learner_id,competency_id,level,rater_id,rater_role,rated_on,term,comment,evidence_ids,framework_version,corrects"
    ]
    rows += [f"CLI-{i},L{i % 40 + 1:03d},teach-methods,3,C002,committee,2026-11-21,T4,cli,,2026.1," for i in range(200)]
    (tmp_path / "ratings.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    before = pg_rows(server_db, "SELECT count(*) FROM ratings")[0][0]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, tag, "25"],
            env={**env, "TRACKER_COPY": str(tmp_path / f"{tag}.duckdb")},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("P1", "P2")
    ]
    cli = subprocess.run(
        [sys.executable, "-m", "tracker", "import", "ratings", str(tmp_path / "ratings.csv")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    outputs = [w.communicate(timeout=300) for w in writers]
    assert cli.returncode == 0, cli.stderr
    assert all(w.returncode == 0 for w in writers), [err for _, err in outputs]
    total = before + 200 + 2 * 25
    assert pg_rows(server_db, "SELECT count(*) FROM ratings") == [(total,)]
    assert pg_rows(server_db, "SELECT count(*), count(DISTINCT seq) FROM ratings") == [(total, total)]
    # each writer's copy saw at least its own rows at its end, and holds every row once it follows again
    assert all(before + 25 <= json.loads(out) <= total for out, _ in outputs)
    audits = pg_rows(server_db, "SELECT count(*) FROM audit_log")[0][0]
    for tag in ("P1", "P2"):
        copy = open_copy(server_db, tmp_path / f"{tag}.duckdb", framework)
        assert copy.cursor().execute("SELECT count(*), count(DISTINCT seq) FROM ratings").fetchone() == (total, total)
        assert copy.cursor().execute("SELECT count(*) FROM audit_log").fetchone() == (audits,)
        assert backups.check_database(copy.cursor()) == []
        copy.close()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - our test app
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            return answer.status, answer.headers.get("Set-Cookie") or ""
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_two_app_servers_share_sign_ins_and_take_imports_at_once(
    server_db: str, tmp_path: Path, framework: Framework
) -> None:
    from tests.test_commands_through_app import serving

    here = open_copy(server_db, tmp_path / "here.duckdb", framework)
    files = []
    for n in range(3):
        lines = [RATINGS_HEADER] + [
            f"IMP{n}-{i},L{i % 40 + 1:03d},teach-methods,3,C002,committee,2026-11-21,T4,,,2026.1," for i in range(100)
        ]
        files.append(tmp_path / f"ratings{n}.csv")
        files[-1].write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = pg_rows(server_db, "SELECT count(*) FROM ratings")[0][0]
    copies = [tmp_path / "a.duckdb", tmp_path / "b.duckdb"]
    with (
        serving(copies[0], tmp_path / "a.log", server=server_db) as port_a,
        serving(copies[1], tmp_path / "b.log", server=server_db) as port_b,
    ):
        # a sign-in made elsewhere (here) gets its cookie from server B, and signs out on server A
        token = sessions.sign_in(here.cursor(), "a002", admin.DEMO_PASSWORD)
        ticket = sessions.cookie_ticket(here.cursor(), token)
        form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{port_b}"}
        status, cookie = _post(f"http://127.0.0.1:{port_b}/milestone/session", f"ticket={ticket}".encode(), form)
        assert status == 204 and cookie.startswith("milestone_session="), (status, cookie)
        browser_token = cookie.split(";")[0].split("=", 1)[1]
        here.follow()  # type: ignore[attr-defined]
        assert sessions.viewer_for_token(here.cursor(), browser_token) is not None
        status, _ = _post(f"http://127.0.0.1:{port_a}/milestone/sign-out", b"", {"Cookie": cookie.split(";")[0]})
        assert status == 204
        here.follow()  # type: ignore[attr-defined]
        assert sessions.viewer_for_token(here.cursor(), browser_token) is None

        # both servers and the command line import at once
        busy = DatabaseBusy("no app")
        results: list[object] = []
        threads = [
            threading.Thread(
                target=lambda c=copy, f=file: results.append(control.import_through_app(c, "ratings", f, busy))
            )
            for copy, file in zip(copies, files[:2], strict=True)
        ]
        for t in threads:
            t.start()
        cli = subprocess.run(  # the command line, with a copy of its own
            [sys.executable, "-m", "tracker", "import", "ratings", str(files[2])],
            env={**os.environ, "TRACKER_DB": server_db, "TRACKER_FRAMEWORK": str(FRAMEWORK_YAML)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        for t in threads:
            t.join()
        assert cli.returncode == 0, cli.stderr
        assert results == [{"added": 100, "unchanged": 0}] * 2
        total = before + 300
        assert pg_rows(server_db, "SELECT count(*), count(DISTINCT seq) FROM ratings") == [(total, total)]
        for copy in copies:  # each server's copy follows: its export holds every rating
            exported = control.export_through_app(copy, "ratings", busy)
            assert len(exported.strip().splitlines()) - 1 == total
    here.close()


def test_a_save_on_another_server_redraws_the_figures_it_changes_here(
    server_db: str, tmp_path: Path, framework: Framework, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.access.policy import viewer_for_person
    from tracker.web import caching, reads

    monkeypatch.setenv("TRACKER_DB", server_db)
    monkeypatch.setenv("TRACKER_COPY", str(tmp_path / "app.duckdb"))
    monkeypatch.setenv("TRACKER_FRAMEWORK", str(FRAMEWORK_YAML))
    committee = viewer_for_person(caching.cursor(), "C002")
    assert committee is not None
    shown = len(reads.rating_history(committee, "L003"))
    other_learner = len(reads.rating_history(committee, "L004"))
    elsewhere = open_copy(server_db, tmp_path / "other.duckdb", framework)
    record_rows.add_ratings(
        elsewhere.cursor(), [rating("L003", "teach-methods", 4.0, "ELSEWHERE-1")], framework, "a002"
    )
    assert len(reads.rating_history(committee, "L003")) == shown  # the copy has not followed yet
    caching.follow()
    assert len(reads.rating_history(committee, "L003")) == shown + 1
    # the other learner's figure was not drawn again: its cache key stands
    generation = caching.generation_of(("learner:L004",))
    record_rows.add_ratings(
        elsewhere.cursor(), [rating("L003", "teach-methods", 4.5, "ELSEWHERE-2")], framework, "a002"
    )
    caching.follow()
    assert caching.generation_of(("learner:L004",)) == generation
    assert caching.generation_of(("learner:L003",)) != generation
    assert len(reads.rating_history(committee, "L004")) == other_learner
    elsewhere.close()
    caching.database()[0].close()


def test_a_new_version_migrates_the_shared_database_once_and_keeps_every_record(
    postgres, framework: Framework, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.create_database("older")
    # an earlier version: the migrations before the last one that makes a record table (a copied table), and the
    # derived tables that version knew
    derived_names = {name for name, _ in derived.DERIVED}
    k = max(i for i, (_, sql) in enumerate(schema.MIGRATIONS) if set(_created(sql)) - derived_names)
    made = {t for _, sql in schema.MIGRATIONS[:k] for t in _created(sql)}
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:k])
    monkeypatch.setattr(derived, "DERIVED", tuple((n, q) for n, q in derived.DERIVED if n in made))
    old = open_copy(url, tmp_path / "old.duckdb", framework)
    for kind in ("staff", "learners"):
        importing.import_file(old.cursor(), kind, SAMPLE / f"{kind}.csv", framework, "test")
    record_rows.add_ratings(old.cursor(), [rating("L001", "teach-methods", 3.0, "OLD-1")], framework, "a002")
    old.close()
    monkeypatch.undo()
    assert pg_rows(url, "SELECT max(version) FROM schema_migrations") == [(k,)]
    epoch = pg_rows(url, "SELECT epoch FROM replication_head")

    new = open_copy(url, tmp_path / "old.duckdb", framework)  # the old copy file, brought up to date
    assert pg_rows(url, "SELECT max(version) FROM schema_migrations") == [(len(schema.MIGRATIONS),)]
    assert pg_rows(url, "SELECT epoch FROM replication_head") != epoch  # every other copy copies it whole
    for table in set(_created(schema.MIGRATIONS[k][1])) - derived_names:  # the new record table, empty
        assert pg_rows(url, f"SELECT count(*) FROM {table}") == [(0,)]
    assert pg_rows(url, "SELECT count(*) FROM ratings WHERE id = 'OLD-1'") == [(1,)]
    record_rows.add_ratings(new.cursor(), [rating("L001", "teach-methods", 3.5, "NEW-1")], framework, "a002")
    other = open_copy(url, tmp_path / "other.duckdb", framework)
    assert other.cursor().execute("SELECT count(*) FROM ratings WHERE id IN ('OLD-1', 'NEW-1')").fetchone() == (2,)
    assert backups.check_database(other.cursor()) == []
    for copy in (new, other):  # every derived table of this version holds the levels, in each copy
        for name, _ in derived.DERIVED:
            assert copy.cursor().execute(f"SELECT count(*) FROM {name}").fetchone()[0] > 0, name
    new.close()
    other.close()


def _created(sql: str) -> list[str]:
    """The tables a migration creates."""
    return re.findall(r"CREATE TABLE (\w+)", sql)


STARTER = textwrap.dedent(
    """
    from tracker.core.config import settings
    from tracker.records.setup import open_configured
    db, fw = open_configured(settings())
    print(db.cursor().execute("SELECT count(*) FROM schema_migrations").fetchone()[0])
    db.close()
    """
)


def test_servers_starting_at_once_on_an_empty_database_set_it_up_once(postgres, tmp_path: Path) -> None:
    url = postgres.create_database("fresh")
    env = {**os.environ, "TRACKER_DB": url, "TRACKER_FRAMEWORK": str(FRAMEWORK_YAML)}
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in starting]
    assert all(p.returncode == 0 for p in starting), [err for _, err in outputs]
    assert [int(out) for out, _ in outputs] == [len(schema.MIGRATIONS)] * 3
    assert pg_rows(url, "SELECT count(*), count(DISTINCT version) FROM schema_migrations") == [
        (len(schema.MIGRATIONS), len(schema.MIGRATIONS))
    ]
    assert pg_rows(url, "SELECT count(*) FROM framework_versions") == [(1,)]  # the framework accepted once


# ---- restoring a backup into the shared database --------------------------------------------------
RECORDS = ("learners", "staff", "ratings", "evidence", "accounts", "audit_log", "framework_versions")


def duck_rows(path: Path, table: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return _comparable(con.execute(f"SELECT * FROM {table}").fetchall())
    finally:
        con.close()


def shared_rows(url: str, table: str) -> list[tuple]:
    """PostgreSQL's rows of `table`, in the columns and order of the DuckDB file's."""
    with psycopg.connect(url) as con:
        columns = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name <> %s "
                "ORDER BY ordinal_position",
                [table, replica.CHANGE],
            ).fetchall()
        ]
        listed = ", ".join(f'"{c}"' for c in columns)
        return _comparable(con.execute(f"SELECT {listed} FROM {table}").fetchall())


def _comparable(rows: list[tuple]) -> list[tuple]:
    """Values as text (JSON and numbers come back from the two databases in different Python types)."""
    return sorted(
        tuple("" if v is None else str(float(v)) if isinstance(v, Decimal | float) else str(v) for v in r) for r in rows
    )


def cli(url: str, *args: str, copy: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACKER_DB": url, "TRACKER_FRAMEWORK": str(FRAMEWORK_YAML)}
    env.pop("TRACKER_COPY", None)
    if copy is not None:
        env["TRACKER_COPY"] = str(copy)
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_a_backup_restores_into_the_shared_database_while_a_server_runs(
    server_db: str, tmp_path: Path, framework: Framework
) -> None:
    running = open_copy(server_db, tmp_path / "running.duckdb", framework)  # an app server that stays up
    token = sessions.sign_in(running.cursor(), "l003", admin.DEMO_PASSWORD)
    backup = tmp_path / "backups" / "before.duckdb"
    run = cli(server_db, "backup", "--out", str(backup))
    assert run.returncode == 0, run.stderr
    saved = {t: duck_rows(backup, t) for t in RECORDS}
    assert saved["ratings"] and saved["accounts"]
    sessions.sign_out(running.cursor(), token)  # signed out after the backup: the restore must not revive it

    record_rows.add_ratings(running.cursor(), [rating("L001", "teach-methods", 4.0, "AFTER-1")], framework, "a002")
    assert shared_rows(server_db, "ratings") != saved["ratings"]
    for refused in (tmp_path / "missing.duckdb", FRAMEWORK_YAML):  # nothing changes on a file that is no backup
        run = cli(server_db, "restore", str(refused))
        assert run.returncode == 1 and str(refused.name) in run.stderr, run.stderr
    assert pg_rows(server_db, "SELECT count(*) FROM ratings WHERE id = 'AFTER-1'") == [(1,)]

    run = cli(server_db, "restore", str(backup))
    assert run.returncode == 0, run.stderr
    assert "it passes every check" in run.stdout
    for table in set(RECORDS) - {"audit_log"}:  # PostgreSQL holds the backup's records, every row, no more
        assert shared_rows(server_db, table) == saved[table], table
    audit = shared_rows(server_db, "audit_log")  # and the restore's own audit row
    assert [r for r in audit if r not in saved["audit_log"]] == [r for r in audit if "restore" in r]
    assert len(audit) == len(saved["audit_log"]) + 1
    assert pg_rows(server_db, "SELECT count(*) FROM sessions WHERE ended_at IS NULL") == [(0,)]
    kept = list(backup.parent.glob("shared-replaced-*.duckdb"))
    assert len(kept) == 1 and ("AFTER-1",) in [(r[0],) for r in duck_rows(kept[0], "ratings")]

    followed = running.follow()  # the running server copies it whole at its next page
    assert followed is not None and followed.rebuilt
    cur = running.cursor()
    assert sessions.viewer_for_token(cur, token) is None  # everyone signs in again
    assert cur.execute("SELECT count(*) FROM ratings WHERE id = 'AFTER-1'").fetchone() == (0,)
    assert backups.check_database(cur) == []
    levels = cur.execute("SELECT count(*) FROM current_levels").fetchone()[0]
    assert levels > 0
    # the next save continues the numbering above the restored records, and reaches every copy
    record_rows.add_ratings(running.cursor(), [rating("L002", "teach-methods", 3.0, "AFTER-2")], framework, "a002")
    top = max(r[0] for r in pg_rows(server_db, "SELECT seq FROM audit_log"))
    assert pg_rows(server_db, "SELECT count(*) = count(DISTINCT seq) FROM audit_log") == [(True,)]
    assert pg_rows(server_db, "SELECT seq FROM ratings WHERE id = 'AFTER-2'")[0][0] > max(
        r[0] for r in pg_rows(server_db, "SELECT seq FROM ratings WHERE id <> 'AFTER-2'")
    )
    other = open_copy(server_db, tmp_path / "other.duckdb", framework)
    assert other.cursor().execute("SELECT max(seq) FROM audit_log").fetchone() == (top,)
    other.close()
    running.close()


def test_an_embedded_database_moves_into_an_empty_shared_one(
    postgres, seeded_template: Path, tmp_path: Path, framework: Framework
) -> None:
    url = postgres.create_database("moved")
    run = cli(url, "restore", str(seeded_template))
    assert run.returncode == 0, run.stderr
    for table in set(RECORDS) - {"sessions", "audit_log"}:
        assert shared_rows(url, table) == duck_rows(seeded_template, table), table
    copy = open_copy(url, tmp_path / "copy.duckdb", framework)
    assert backups.check_database(copy.cursor()) == []
    for name, _ in derived.DERIVED:  # each copy makes the derived tables itself
        assert copy.cursor().execute(f"SELECT count(*) FROM {name}").fetchone()[0] > 0, name
    token = sessions.sign_in(copy.cursor(), "l003", admin.DEMO_PASSWORD)  # the demo accounts came along
    assert sessions.viewer_for_token(copy.cursor(), token).person_id == "L003"
    copy.close()


def test_a_backup_of_an_earlier_version_is_restored_then_migrated(
    server_db: str, framework: Framework, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    derived_names = {name for name, _ in derived.DERIVED}
    k = max(i for i, (_, sql) in enumerate(schema.MIGRATIONS) if set(_created(sql)) - derived_names)
    made = {t for _, sql in schema.MIGRATIONS[:k] for t in _created(sql)}
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:k])
    monkeypatch.setattr(derived, "DERIVED", tuple((n, q) for n, q in derived.DERIVED if n in made))
    old_file = tmp_path / "last-year.duckdb"
    old = open_database(old_file, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    for kind in ("staff", "learners"):
        importing.import_file(old.cursor(), kind, SAMPLE / f"{kind}.csv", framework, "test")
    record_rows.add_ratings(old.cursor(), [rating("L001", "teach-methods", 3.0, "OLD-1")], framework, "a002")
    old.close()
    monkeypatch.undo()

    db = open_copy(server_db, tmp_path / "copy.duckdb", framework)
    assert isinstance(db, replica.ServerDatabase)
    db.replica.restore(old_file, tmp_path / "kept.duckdb", lambda c: None)
    assert pg_rows(server_db, "SELECT max(version) FROM schema_migrations") == [(len(schema.MIGRATIONS),)]
    assert pg_rows(server_db, "SELECT id FROM ratings") == [("OLD-1",)]
    for table in set(_created(schema.MIGRATIONS[k][1])) - derived_names:  # the later version's table, empty
        assert pg_rows(server_db, f"SELECT count(*) FROM {table}") == [(0,)]
    assert backups.check_database(db.cursor()) == []
    assert db.cursor().execute("SELECT count(*) FROM current_levels WHERE learner_id = 'L001'").fetchone()[0] > 0
    db.close()
