"""The store: idempotent migrations, append-only records, concurrent writers, a busy database file."""

import subprocess
import sys
import threading
import time

import pytest

from data_models import Rating
from tests.conftest import FRAMEWORK_YAML, ROOT
from tracker.storage import database, framework_tables, opening, record_rows
from tracker.storage import derived as storage_derived
from tracker.storage.schema import MIGRATIONS, SCHEMA_VERSION, apply_migrations, schema_version


def schema_snapshot(cur) -> list[tuple]:
    return cur.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns ORDER BY ALL"
    ).fetchall()


def test_migrations_run_twice_change_nothing(empty_db):
    cur = empty_db.cursor()
    before = schema_snapshot(cur)
    applied_rows = cur.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall()
    assert apply_migrations(cur) == []
    assert schema_snapshot(cur) == before
    assert cur.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall() == applied_rows
    assert schema_version(cur) == SCHEMA_VERSION == len(MIGRATIONS)
    assert [r[1] for r in applied_rows] == [name for name, _ in MIGRATIONS]


def test_an_opening_with_nothing_changed_writes_nothing(db_path, framework, monkeypatch):
    """Opening the database brings its framework tables in step with the accepted framework; when they are in step
    already, nothing is written and no derived table is refreshed (at 100,000 learners a refresh takes a minute)."""
    opening.open_database(db_path, framework, FRAMEWORK_YAML.read_text()).close()
    refreshed: list[object] = []
    monkeypatch.setattr(framework_tables, "refresh_term_levels", lambda c: refreshed.append(c))
    db = opening.open_database(db_path, framework, FRAMEWORK_YAML.read_text())
    cur = db.cursor()
    versions = [v.framework for v in framework_tables.versions(cur)]
    assert not framework_tables.rewrite_tables(cur, framework_tables.table_rows(versions))
    db.close()
    assert refreshed == []


def test_reopening_the_file_keeps_records_and_schema(db_path, framework):
    db = opening.open_database(db_path, framework, FRAMEWORK_YAML.read_text())
    n = db.cursor().execute("SELECT count(*) FROM ratings").fetchone()[0]
    db.close()
    again = opening.open_database(db_path, framework, FRAMEWORK_YAML.read_text())
    assert again.cursor().execute("SELECT count(*) FROM ratings").fetchone()[0] == n > 0
    assert schema_version(again.cursor()) == SCHEMA_VERSION
    again.close()


def _rating(i: int, thread: int, framework) -> Rating:
    return Rating(
        id=f"T{thread}-{i}",
        learner_id="L001",
        competency_id="teach-methods",
        level=3,
        rater_id="A001",
        rater_role="advisor",
        rated_on="2026-11-01",
        term="T6",
        comment=f"thread {thread} rating {i}",
        framework_version=framework.version,
    )


@pytest.mark.slow
def test_eight_threads_writing_ratings_at_once_lose_none(db, framework):
    before = db.cursor().execute("SELECT count(*) FROM ratings").fetchone()[0]
    errors: list[BaseException] = []

    def writer(thread: int) -> None:
        cur = db.cursor()  # a cursor per thread, as in the app
        try:
            for i in range(25):
                record_rows.add_ratings(cur, [_rating(i, thread, framework)], framework, actor=f"thread-{thread}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    cur = db.cursor()
    assert cur.execute("SELECT count(*) FROM ratings").fetchone()[0] == before + 8 * 25
    ids = {r[0] for r in cur.execute("SELECT id FROM ratings WHERE id LIKE 'T%-%'").fetchall()}
    assert ids == {f"T{t}-{i}" for t in range(8) for i in range(25)}
    assert cur.execute("SELECT count(*) FROM audit_log WHERE actor LIKE 'thread-%'").fetchone()[0] == 200


def test_a_correction_supersedes_without_overwriting(cur, framework):
    original = _rating(1, 0, framework)
    record_rows.add_ratings(cur, [original], framework, actor="A001")
    fixed = original.model_copy(update={"id": "T0-1-fix", "level": 2.5, "corrects": original.id})
    record_rows.add_ratings(cur, [fixed], framework, actor="A001")
    rows = cur.execute(
        "SELECT id, level, corrects FROM ratings WHERE id IN ('T0-1', 'T0-1-fix') ORDER BY id"
    ).fetchall()
    assert [(r[0], float(r[1]), r[2]) for r in rows] == [("T0-1", 3.0, None), ("T0-1-fix", 2.5, "T0-1")]
    assert cur.execute("SELECT action FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()[0] == "correction"


def test_a_failed_write_leaves_nothing(cur, framework):
    before = cur.execute("SELECT count(*) FROM ratings").fetchone()[0]
    with pytest.raises(Exception, match=r"(?i)constraint|duplicate"):
        record_rows.add_ratings(cur, [_rating(1, 9, framework), _rating(1, 9, framework)], framework, actor="x")
    assert cur.execute("SELECT count(*) FROM ratings").fetchone()[0] == before
    assert cur.execute("SELECT count(*) FROM audit_log WHERE actor = 'x'").fetchone()[0] == 0


def test_command_line_says_plainly_when_the_app_holds_the_database(db_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db_path)!r}); print('open', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        run = subprocess.run(
            [sys.executable, "-m", "tracker", "export", "learners", "--out", str(db_path.parent / "x.csv")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode == 2
    assert "is open for writing in process" in run.stderr
    assert "stop the other one" in run.stderr
    assert "Traceback" not in run.stderr
    time.sleep(0.1)


def test_term_levels_stay_equal_to_a_fresh_computation(cur, framework):
    """The derived tables are refreshed by each write; recomputing them from the ratings must change nothing."""
    original = _rating(7, 1, framework)
    record_rows.add_ratings(cur, [original], framework, actor="A001")
    record_rows.add_ratings(
        cur,
        [original.model_copy(update={"id": "T1-7-fix", "level": 1.5, "corrects": original.id})],
        framework,
        actor="A001",
    )
    derived = ("term_levels", "current_levels", "growth_sums", "domain_terms")
    before = {t: cur.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in derived}
    assert all(before.values())
    database.write(cur, storage_derived.refresh_term_levels)
    for table, rows in before.items():
        assert cur.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == rows, table
    row = cur.execute(
        "SELECT level FROM term_levels WHERE learner_id = 'L001' AND competency_id = 'teach-methods' AND term_index = 6 AND NOT is_self"
    ).fetchone()
    assert float(row[0]) == 1.5  # the correction, recorded last on the latest day, is the term's level
