"""Never a traceback: bad framework files, damaged databases and missing files end in a message and the
documented exit code (1: bad input, 2: the environment stopped the command); backups restore whole."""

import csv
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import duckdb
import pytest

from tests.conftest import FRAMEWORK_YAML, ROOT, app_as, goto, read
from tests.test_import_page import xlsx
from tests.test_importing import RATING_COLUMNS, good_rating
from tracker.core.errors import FrameworkError, ImportProblems
from tracker.framework.loading import MAX_BYTES, load_framework
from tracker.records import importing


def tracker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert "Traceback" not in run.stderr, run.stderr
    return run


def not_utf8_framework(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(FRAMEWORK_YAML.read_text(encoding="utf-8").replace("Teaching", "Enseñanza", 1).encode("latin-1"))
    return path


def damaged_database(tmp_path: Path, db_path: Path) -> Path:
    """The sample database with its second half cut off, as a full disk or an interrupted copy leaves it."""
    path = tmp_path / "damaged.duckdb"
    data = db_path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# ---- framework files --------------------------------------------------------------------------
def test_duplicate_keys_are_refused_naming_both_lines(tmp_path):
    text = FRAMEWORK_YAML.read_text(encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if t.startswith("version:"))
    path = tmp_path / "twice.yaml"
    path.write_text(text.replace("version:", "version: '2027.1'\nversion:", 1), encoding="utf-8")
    run = tracker("validate", str(path))
    assert run.returncode == 1
    assert (
        f"twice.yaml:{line + 1}: the key 'version' appears twice in one mapping (lines {line} and {line + 1})"
        in run.stderr
    )


def test_a_framework_that_is_not_utf8_is_a_message_in_validate_and_at_start(tmp_path, db_path):
    path = not_utf8_framework(tmp_path)
    line = next(i for i, t in enumerate(FRAMEWORK_YAML.read_text().splitlines(), start=1) if not t.isascii())
    run = tracker("validate", str(path))
    assert run.returncode == 1
    assert f"latin1.yaml:{line}: not UTF-8 text (byte 0x" in run.stderr
    # a database that has accepted a framework keeps working on it, and says the file waits
    run = tracker("export", "staff", "--out", str(tmp_path / "s.csv"), env={"TRACKER_FRAMEWORK": str(path)})
    assert run.returncode == 0, run.stderr
    assert "framework upgrade" in run.stderr
    # a fresh database has no accepted framework to fall back on: bad input, named
    fresh = {"TRACKER_FRAMEWORK": str(path), "TRACKER_DB": str(tmp_path / "fresh.duckdb")}
    run = tracker("init", env=fresh)
    assert run.returncode == 1
    assert "not UTF-8 text" in run.stderr


def test_a_huge_framework_is_refused_at_once(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(FRAMEWORK_YAML.read_text() + "# padding\n" * 2_000_000, encoding="utf-8")  # 20 MB
    started = time.perf_counter()
    with pytest.raises(FrameworkError, match=r"huge.yaml:1: the file is 20.0 MB; a framework is at most 2 MB"):
        load_framework(path)
    assert time.perf_counter() - started < 0.5


def test_a_framework_near_the_limit_validates_in_seconds(tmp_path):
    text = FRAMEWORK_YAML.read_text()
    padded = text + "".join(f"# note {i}: {'x' * 90}\n" for i in range((MAX_BYTES - len(text)) // 110))
    path = tmp_path / "big.yaml"
    path.write_text(padded, encoding="utf-8")
    assert path.stat().st_size <= MAX_BYTES
    started = time.perf_counter()
    assert len(load_framework(path).competencies) == 23
    assert time.perf_counter() - started < 3


# ---- damaged and busy databases -----------------------------------------------------------------
@pytest.mark.embedded_only
def test_a_damaged_database_says_restore_from_a_backup_and_exits_2(tmp_path, db_path):
    damaged = damaged_database(tmp_path, db_path)
    for args in (
        ["export", "ratings", "--out", str(tmp_path / "r.csv")],
        ["check"],
        ["learner-status", "L001", "leave"],
    ):
        run = tracker(*args, env={"TRACKER_DB": str(damaged)})
        assert run.returncode == 2, (args, run.stderr)
        assert f"The database {damaged} cannot be read" in run.stderr
        assert "python -m tracker restore BACKUP.duckdb" in run.stderr


@pytest.mark.embedded_only
def test_a_damaged_block_met_after_opening_is_a_message(tmp_path, db_path):
    """A file whose header reads but whose data blocks fail their checksums."""
    damaged = tmp_path / "scribbled.duckdb"
    data = bytearray(db_path.read_bytes())
    for i in range(len(data) // 4, len(data), 5):
        data[i] = 0x55
    damaged.write_bytes(bytes(data))
    run = tracker("check", env={"TRACKER_DB": str(damaged)})
    assert run.returncode == 2
    assert "cannot be read" in run.stderr and "Restore it from a backup" in run.stderr


@pytest.mark.embedded_only
def test_the_app_shows_a_damaged_database_as_a_message(tmp_path, db_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DB", str(damaged_database(tmp_path, db_path)))
    at = app_as(None)
    assert not at.exception
    shown = [e.value.replace("\\", "") for e in at.error]  # as written, Markdown escaped
    assert any("cannot be read" in e and "python -m tracker restore BACKUP.duckdb" in e for e in shown), shown


def test_the_app_shows_a_framework_that_is_not_utf8_as_a_message(tmp_path, db_path, monkeypatch):
    monkeypatch.setenv("TRACKER_FRAMEWORK", str(not_utf8_framework(tmp_path)))
    at = goto(app_as("k001"), "framework")  # the accepted version stays in force; the coordinator is told why
    assert not at.exception
    shown = [read(str(e.value)) for e in [*at.error, *at.warning, *at.markdown, *at.caption]] + [
        t.value for t in at.text
    ]
    assert any("not UTF-8 text" in text for text in shown), shown
    monkeypatch.setenv("TRACKER_DB", str(tmp_path / "fresh.duckdb"))  # nothing accepted yet: the app says why
    at = app_as(None)
    assert not at.exception
    assert any("not UTF-8 text" in read(e.value) for e in at.error)


# ---- missing and unreadable input files -----------------------------------------------------------
def test_a_missing_or_non_utf8_csv_is_bad_input_exit_1(tmp_path, db_path):
    run = tracker("import", "ratings", str(tmp_path / "nowhere.csv"))
    assert run.returncode == 1
    assert "nowhere.csv: cannot read the file (No such file or directory)" in run.stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        (",".join(RATING_COLUMNS) + "\n" + ",".join(good_rating(comment="café").values())).encode("latin-1")
    )
    run = tracker("import", "ratings", str(latin))
    assert run.returncode == 1
    assert "latin.csv row 2: not UTF-8 text (byte 0xe9); save it as CSV UTF-8" in run.stderr
    run = tracker(
        "framework", "import", str(tmp_path / "nowhere.json"), "--from", "case", "--out", str(tmp_path / "f.yaml")
    )
    assert run.returncode == 1


def test_spreadsheet_rows_keep_their_numbers_after_blank_rows(db_path, cur, tmp_path, capsys):
    from tests.conftest import goto
    from tracker import cli

    rows = [
        list(RATING_COLUMNS),
        list(good_rating(id="X-1").values()),
        [None] * len(RATING_COLUMNS),
        [],
        list(good_rating(id="X-2", learner_id="L999").values()),
    ]
    path = tmp_path / "ratings.xlsx"
    path.write_bytes(xlsx(rows))
    assert cli.main(["import", "ratings", str(path)]) == 1
    assert "ratings.xlsx row 5, learner_id: no learner 'L999'" in capsys.readouterr().err
    at = goto(app_as("k001"), "import")
    at.selectbox(key="import.kind").set_value("ratings").run()
    at.file_uploader(key="import.file").upload("ratings.xlsx", path.read_bytes()).run()
    assert at.dataframe[-1].value["problem"].tolist() == ["ratings.xlsx row 5, learner_id: no learner 'L999'"]


def workbook_bomb(expanded_mb: int) -> bytes:
    """A real .xlsx (openpyxl's own parts) whose sheet is `expanded_mb` MB of one repeated row, deflated to a few
    hundred kilobytes: a zip bomb."""
    plain = zipfile.ZipFile(io.BytesIO(xlsx([["id"], ["x"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in plain.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                bomb.writestr(item, plain.read(item))
        with bomb.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            rows = b'<row><c t="inlineStr"><is><t>bomb</t></is></c></row>' * 32768
            for _ in range(expanded_mb * 2**20 // len(rows) + 1):
                sheet.write(rows)
            sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("expanded_mb", "refusal"),
    [
        (20, r"ratings\.xlsx: expands to [\d,]+ times its size"),
        (110, r"ratings\.xlsx: expands to 11\d MB when opened, more than the 100 MB"),
    ],
    ids=["ratio", "size"],
)
def test_an_xlsx_zip_bomb_is_refused_before_it_is_opened(expanded_mb, refusal, monkeypatch):
    import openpyxl

    bomb = workbook_bomb(expanded_mb)
    assert len(bomb) < expanded_mb * 2**20 // 100  # a real bomb: far more than 100 times its size
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("the bomb was opened"))
    with pytest.raises(ImportProblems, match=refusal):
        importing.uploaded_text("ratings.xlsx", bomb)


def test_an_xlsx_that_is_no_zip_archive_is_refused_naming_it():
    with pytest.raises(ImportProblems, match=r"staff\.xlsx: not an Excel workbook \(\.xlsx\), which is a zip archive"):
        importing.uploaded_text("staff.xlsx", b"id,name,email,roles\nA090,Nadia Okoro,a@x.org,advisor\n")


def test_a_workbook_of_real_records_is_within_the_limits():
    """Two thousand of the sample ratings expand past a megabyte, about a dozen times their size: read as the CSV."""
    with (ROOT / "sample_data" / "ratings.csv").open(newline="", encoding="utf-8") as f:
        rows = [row for _, row in zip(range(2001), csv.reader(f), strict=False)]
    data = xlsx(rows)
    assert sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist()) > importing.XLSX_RATIO_FROM
    assert list(csv.reader(io.StringIO(importing.uploaded_text("ratings.xlsx", data)))) == rows


def test_generate_writes_to_a_folder_with_a_quote_in_its_name(tmp_path):
    out = tmp_path / "o'brien"
    run = tracker("generate", "--learners", "5", "--graduated-cohorts", "0", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert {"evidence.csv", "learners.csv", "ratings.csv", "staff.csv"} <= {p.name for p in out.iterdir()}
    assert importing.read_table((out / "learners.csv").read_text(), importing.KINDS["learners"], "l").shape[0] == 5


# ---- backup and restore ------------------------------------------------------------------------
def rows_of(path: Path) -> dict[str, list]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("learners", "staff", "ratings", "evidence", "accounts")
        }
    finally:
        con.close()


@pytest.mark.embedded_only
def test_backup_then_restore_brings_back_every_record(db_path, tmp_path):
    con = duckdb.connect(str(db_path))  # someone signed in when the backup is taken
    con.execute(
        "INSERT INTO sessions (token_hash, username, created_at, expires_at) "
        "VALUES ('h', 'l003', now()::TIMESTAMP, now()::TIMESTAMP + INTERVAL 1 DAY)"
    )
    con.close()
    backup = tmp_path / "backups" / "before.duckdb"
    run = tracker("backup", "--out", str(backup))
    assert run.returncode == 0, run.stderr
    saved = rows_of(db_path)
    assert rows_of(backup) == saved
    assert tracker("learner-status", "L001", "leave").returncode == 0
    assert rows_of(db_path) != saved
    run = tracker("restore", str(backup))
    assert run.returncode == 0, run.stderr
    assert "it passes every check" in run.stdout
    assert rows_of(db_path) == saved
    con = duckdb.connect(str(db_path), read_only=True)  # every session the backup held is ended: all sign in again
    assert con.execute("SELECT count(*) FROM sessions WHERE ended_at IS NULL").fetchone() == (0,)
    con.close()
    kept = list(tmp_path.glob("tracker.duckdb.replaced-*"))
    assert len(kept) == 1 and rows_of(kept[0])["learners"] != saved["learners"]
    assert tracker("check").returncode == 0
    # new records continue the numbering, after the restored ones
    assert tracker("learner-status", "L002", "leave").returncode == 0
    con = duckdb.connect(str(db_path), read_only=True)
    last, audited = con.execute("SELECT max(seq), count(DISTINCT seq) = count(*) FROM audit_log").fetchone()
    con.close()
    assert audited and last > max(r[0] for r in saved_audit(backup))


def saved_audit(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT seq FROM audit_log").fetchall()
    finally:
        con.close()


@pytest.mark.embedded_only
def test_restore_refuses_what_is_not_a_milestone_database(db_path, tmp_path):
    before = rows_of(db_path)
    garbage = tmp_path / "notes.duckdb"
    garbage.write_bytes(b"not a database" * 100)
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE t AS SELECT 1 AS x").close()
    for path, reason in ((garbage, "is not a Milestone database backup"), (other, "it is not a Milestone database")):
        run = tracker("restore", str(path))
        assert run.returncode == 1
        assert reason in run.stderr
    assert tracker("restore", str(tmp_path / "missing.duckdb")).returncode == 1
    assert rows_of(db_path) == before


@pytest.mark.embedded_only
def test_backup_while_the_app_holds_the_database_exits_2(db_path, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(60)",
            str(db_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        run = tracker("backup", "--out", str(tmp_path / "b.duckdb"))
        assert run.returncode == 2
        assert "stop it (Ctrl+C in its terminal), run the command, and start the app again" in run.stderr
        assert not (tmp_path / "b.duckdb").exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.embedded_only
def test_backup_while_the_app_runs_is_made_by_the_app(db_path, tmp_path):
    """The running app holds the database; `backup` hands the copy to it, and a stranger without the secret
    cannot ask for one."""
    import json
    import urllib.error
    import urllib.request

    from tests.test_commands_through_app import serving
    from tracker.storage import control

    with serving(db_path, tmp_path / "streamlit.log") as port:
        assert control.control_file(db_path).stat().st_mode & 0o077 == 0  # the owner's alone
        out = tmp_path / "while-running.duckdb"
        run = tracker("backup", "--out", str(out))
        assert run.returncode == 0, run.stderr
        assert "The running app wrote a backup" in run.stdout
        stranger = urllib.request.Request(
            f"http://127.0.0.1:{port}{control.BACKUP}",
            data=json.dumps({"token": "guess", "out": str(tmp_path / "x.duckdb")}).encode(),
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(stranger, timeout=30)  # noqa: S310
        assert refused.value.code == 403 and not (tmp_path / "x.duckdb").exists()
    assert rows_of(out) == rows_of(db_path)
    assert not control.control_file(db_path).exists()
