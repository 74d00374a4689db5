"""While the app runs it holds the database: `import`, `export` and `backup` hand their work to it (tracker/storage/control.py,
tracker/web/server.py), with the same all-or-nothing import, the same messages and exit codes, and only for a command
that presents the app's secret. Against the real app, started with `streamlit run`."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import FRAMEWORK_YAML, ROOT
from tests.test_importing import RATING_COLUMNS, csv_text, good_rating
from tracker.records import exporting
from tracker.storage import control

pytestmark = pytest.mark.xdist_group("test_commands_through_app")  # one worker: its module-scoped fixture is made once


def tracker(db_path: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "TRACKER_DB": str(db_path),
            "TRACKER_FRAMEWORK": str(FRAMEWORK_YAML),
            "PYTHONPATH": str(ROOT),
        },
        timeout=300,
    )
    assert "Traceback" not in run.stderr, run.stderr
    return run


@contextlib.contextmanager
def serving(db_path: Path, log_path: Path, server: str = "") -> Iterator[int]:
    """`streamlit run dashboard.py` on a free port of 127.0.0.1 with its database open; yields the port. With
    `server` (a postgresql:// address) the app runs in server mode, `db_path` its copy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = log_path.open("w")
    options = ["--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"]
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboard.py"),
            *options,
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "TRACKER_FRAMEWORK": str(FRAMEWORK_YAML),
            **({"TRACKER_DB": server, "TRACKER_COPY": str(db_path)} if server else {"TRACKER_DB": str(db_path)}),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not control.control_file(db_path).exists() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert control.control_file(db_path).exists(), log_path.read_text()[-2000:]
        urllib.request.urlopen(f"http://127.0.0.1:{port}/milestone/health", timeout=60).read()
        yield port
    finally:
        app.terminate()
        app.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, seeded_template: Path) -> Iterator[tuple[Path, int]]:
    folder = tmp_path_factory.mktemp("running")
    db_path = folder / "tracker.duckdb"
    shutil.copy(seeded_template, db_path)
    with serving(db_path, folder / "streamlit.log") as port:
        yield db_path, port


def ratings_file(folder: Path, rows: list[dict], name: str = "ratings.csv") -> Path:
    path = folder / name
    path.write_text(csv_text(rows, RATING_COLUMNS), encoding="utf-8")
    return path


def exported(db_path: Path, kind: str, folder: Path) -> str:
    out = folder / f"{kind}-{time.monotonic_ns()}.csv"
    run = tracker(db_path, "export", kind, "--out", str(out))
    assert run.returncode == 0, run.stderr
    return out.read_text(encoding="utf-8")


def test_export_while_the_app_runs_is_what_the_file_holds(app, seeded_template, tmp_path):
    db_path, _ = app
    con = duckdb.connect(str(seeded_template), read_only=True)  # the same records, read without the app
    try:
        expected = {kind: exporting.export_csv(con, kind) for kind in ("learners", "staff", "evidence")}
    finally:
        con.close()
    for kind, text in expected.items():
        out = tmp_path / f"{kind}.csv"
        run = tracker(db_path, "export", kind, "--out", str(out))
        assert run.returncode == 0, run.stderr
        assert out.read_text(encoding="utf-8") == text
        assert run.stdout.strip() == f"Wrote {text.count(chr(10)) - 1} {kind} to {out}."


def test_import_while_the_app_runs_lands_whole(app, tmp_path):
    db_path, _ = app
    rows = [good_rating(id="APP-1"), good_rating(id="APP-2", competency_id="teach-feedback", level="2")]
    path = ratings_file(tmp_path, rows)
    before = exported(db_path, "ratings", tmp_path)
    run = tracker(db_path, "import", "ratings", str(path))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"Imported 2 ratings from {path} (the running app imported it)."
    after = exported(db_path, "ratings", tmp_path)
    assert after.startswith(before)  # exported in the order recorded: the new ones come last
    new = sorted(after[len(before) :].splitlines())
    assert [line.split(",")[:4] for line in new] == [
        ["APP-1", "L001", "teach-methods", "3.5"],
        ["APP-2", "L001", "teach-feedback", "2.0"],
    ]
    again = tracker(db_path, "import", "ratings", str(path))  # a rating is never overwritten: refused whole
    assert again.returncode == 1
    assert "ratings.csv row 2, id: rating 'APP-1' already exists" in again.stderr
    assert exported(db_path, "ratings", tmp_path) == after


def test_bad_file_through_the_app_names_row_and_field_and_changes_nothing(app, tmp_path):
    db_path, _ = app
    before = exported(db_path, "ratings", tmp_path)
    path = ratings_file(
        tmp_path,
        [good_rating(id="BAD-1"), good_rating(id="BAD-2", level="7"), good_rating(id="BAD-3", learner_id="L999")],
        "bad ratings.csv",
    )
    run = tracker(db_path, "import", "ratings", str(path))
    assert run.returncode == 1
    assert "bad ratings.csv: 2 problem(s); nothing was imported" in run.stderr
    assert "bad ratings.csv row 3, level: 7.0 leaves the scale 1–5" in run.stderr
    assert "bad ratings.csv row 4, learner_id: no learner 'L999'" in run.stderr
    assert exported(db_path, "ratings", tmp_path) == before


def test_missing_file_is_named_as_typed(app, tmp_path):
    db_path, _ = app
    run = tracker(db_path, "import", "learners", "no-such-folder/learners.csv", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.startswith("error: no-such-folder/learners.csv: cannot read the file (No such file")


def test_a_relative_path_is_the_command_s_own(app, tmp_path):
    """The app reads the file the command names, from the command's folder, not its own."""
    db_path, _ = app
    ratings_file(tmp_path, [good_rating(id="REL-1", competency_id="teach-assessment")], "here.csv")
    run = tracker(db_path, "import", "ratings", "here.csv", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "REL-1,L001,teach-assessment" in exported(db_path, "ratings", tmp_path)


@pytest.mark.parametrize(
    ("route", "asked"),
    [
        (control.IMPORT, {"kind": "ratings", "file": "x.csv"}),
        (control.EXPORT, {"kind": "learners"}),
        (control.BACKUP, {"out": "x.duckdb"}),
    ],
)
def test_a_stranger_without_the_secret_is_refused(app, route, asked):
    _, port = app
    for token in ("guess", ""):
        stranger = urllib.request.Request(
            f"http://127.0.0.1:{port}{route}", data=json.dumps({"token": token, **asked}).encode(), method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(stranger, timeout=30)  # noqa: S310
        assert refused.value.code == 403
        assert refused.value.read() == b"Not allowed."


def test_import_through_the_app_is_audited_as_the_command(tmp_path, seeded_template):
    db_path = tmp_path / "tracker.duckdb"
    shutil.copy(seeded_template, db_path)
    path = ratings_file(tmp_path, [good_rating(id="AUD-1")])
    with serving(db_path, tmp_path / "streamlit.log"):
        run = tracker(db_path, "import", "ratings", str(path))
        assert run.returncode == 0, run.stderr
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        assert con.execute("SELECT level, rater_id FROM ratings WHERE id = 'AUD-1'").fetchall() == [(3.5, "A001")]
        audit = con.execute("SELECT actor, action, target FROM audit_log ORDER BY seq DESC LIMIT 1").fetchall()
    finally:
        con.close()
    assert audit == [("cli", "import", "ratings")]
    assert not control.control_file(db_path).exists()
