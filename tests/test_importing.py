"""Imports land whole or not at all; every bad row is named; export then import round-trips."""

import csv
import io
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_models.ratings import RATING_RULES
from tests.conftest import ROOT, SAMPLE
from tracker.core.errors import ImportProblems
from tracker.records import exporting, importing
from tracker.records.setup import seed_directory

TABLES = ("learners", "staff", "ratings", "evidence", "audit_log")


def snapshot(cur) -> dict[str, tuple]:
    """Each table's rows as a count and the sum of every row's hash: any row added, removed or changed moves it
    (a tenth of the time of reading every row, which the property tests do twice per example)."""
    return {t: cur.execute(f"SELECT count(*), sum(hash(r)) FROM {t} r").fetchone() for t in TABLES}


def csv_text(rows: list[dict], columns) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def good_rating(**changes) -> dict:
    row = {
        "id": "NEW-1",
        "learner_id": "L001",
        "competency_id": "teach-methods",
        "level": "3.5",
        "rater_id": "A001",
        "rater_role": "advisor",
        "rated_on": "2026-11-20",
        "term": "T6",
        "comment": "Fine work",
        "evidence_ids": "",
        "framework_version": "2026.1",
        "corrects": "",
    }
    return row | changes


RATING_COLUMNS = importing.KINDS["ratings"].columns


def test_bad_file_lists_every_bad_row_and_changes_nothing(cur, framework):
    before = snapshot(cur)
    rows = [
        good_rating(id="NEW-1"),
        good_rating(id="NEW-2", level="7"),
        good_rating(id="NEW-3", learner_id="L999"),
        good_rating(id="NEW-4", competency_id="juggling", rated_on="2026-13-01"),
        good_rating(id="NEW-1"),
        good_rating(id="NEW-6", level="2.3"),
        good_rating(id="NEW-7", rater_role="self", rater_id="A001"),
        good_rating(id="NEW-8", corrects="R-does-not-exist"),
    ]
    with pytest.raises(ImportProblems) as info:
        importing.import_text(cur, "ratings", csv_text(rows, RATING_COLUMNS), "ratings.csv", framework, "test")
    text = str(info.value)
    assert "nothing was imported" in text
    for expected in [
        "ratings.csv row 3, level: 7.0 leaves the scale 1–5",
        "ratings.csv row 4, learner_id: no learner 'L999'",
        "ratings.csv row 5, rated_on:",
        "ratings.csv row 6, id: 'NEW-1' appears again (first at row 2)",
        "ratings.csv row 7, level: Input should be a multiple of 0.5",
        "ratings.csv row 8, (row): a self rating must have the learner as its rater",
        "ratings.csv row 9, corrects: no rating 'R-does-not-exist' to correct",
    ]:
        assert expected in text, expected
    assert snapshot(cur) == before


def test_wrong_header_is_one_clear_problem(cur, framework):
    with pytest.raises(
        ImportProblems, match=r"row 1 \(header\): missing column\(s\): level; unknown column\(s\): levle"
    ):
        importing.import_text(
            cur,
            "ratings",
            "id,learner_id,competency_id,levle,rater_id,rater_role,rated_on,term,comment,"
            "evidence_ids,framework_version,corrects\n",
            "r.csv",
            framework,
            "test",
        )


def test_good_file_lands_with_its_audit_row(cur, framework):
    result = importing.import_text(
        cur, "ratings", csv_text([good_rating()], RATING_COLUMNS), "ratings.csv", framework, "k001"
    )
    assert result.added == 1
    assert float(cur.execute("SELECT level FROM ratings WHERE id = 'NEW-1'").fetchone()[0]) == 3.5
    assert cur.execute(
        "SELECT actor, target FROM audit_log WHERE action = 'import' ORDER BY seq DESC LIMIT 1"
    ).fetchone() == ("k001", "ratings")


def test_a_stored_record_is_never_overwritten(cur, framework):
    again = importing.import_text(
        cur, "learners", (SAMPLE / "learners.csv").read_text(), "learners.csv", framework, "t"
    )
    assert (again.added, again.unchanged) == (0, 120)  # the sample's 60 current and 60 graduated learners
    text = (SAMPLE / "learners.csv").read_text().replace("L001,", "L001,", 1)
    lines = text.splitlines()
    lines[1] = lines[1].replace("active", "withdrawn")
    with pytest.raises(ImportProblems, match=r"row 2, id: learner 'L001' already exists with other details"):
        importing.import_text(cur, "learners", "\n".join(lines) + "\n", "learners.csv", framework, "t")
    with pytest.raises(ImportProblems, match=r"rating 'R0000001' already exists"):
        importing.import_text(cur, "ratings", (SAMPLE / "ratings.csv").read_text(), "ratings.csv", framework, "t")


def test_export_then_import_round_trips(cur, empty_db, framework, tmp_path):
    exported = {kind: exporting.export_csv(cur, kind) for kind in ("staff", "learners", "evidence", "ratings")}
    for kind, text in exported.items():
        (tmp_path / f"{kind}.csv").write_text(text)
    fresh = empty_db.cursor()
    seed_directory(fresh, tmp_path, framework, "test")
    for kind, text in exported.items():
        assert exporting.export_csv(fresh, kind) == text, kind


def test_command_line_import_exits_1_naming_rows(db_path, tmp_path):
    bad = tmp_path / "ratings.csv"
    bad.write_text(csv_text([good_rating(level="9")], RATING_COLUMNS))
    run = subprocess.run(
        [sys.executable, "-m", "tracker", "import", "ratings", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 1
    assert "ratings.csv row 2, level: 9.0 leaves the scale 1–5" in run.stderr
    assert "Traceback" not in run.stderr


cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(column=st.sampled_from(RATING_COLUMNS), value=cell)
def test_any_single_bad_cell_is_refused_whole_or_lands_whole(cur, framework, column, value):
    before = cur.execute("SELECT count(*) FROM ratings").fetchone()[0]
    rows = [good_rating(id="P-1"), good_rating(**({"id": "P-2"} | {column: value}))]
    try:
        result = importing.import_text(cur, "ratings", csv_text(rows, RATING_COLUMNS), "p.csv", framework, "prop")
    except ImportProblems as exc:
        assert all(p.startswith("p.csv row ") for p in exc.problems)
        assert cur.execute("SELECT count(*) FROM ratings").fetchone()[0] == before
    else:
        assert result.added == 2
        assert cur.execute("SELECT count(*) FROM ratings").fetchone()[0] == before + 2
        cur.execute("DELETE FROM ratings WHERE id IN ('P-1', 'P-2')").fetchall()


KIND = importing.KINDS["ratings"]
TRICKY = {
    "id": ["R1", " R1 ", "R 1", "-R", "R1:x@y", ""],
    "learner_id": ["L001", " L001", "R1", ""],
    "competency_id": ["teach-methods", "x y", ""],
    "level": ["3", "3.0", " 2.5 ", "2.3", "0", "-1", "1e0", "three", ""],
    "rater_id": ["A001", "L001", ""],
    "rater_role": ["advisor", "self", "committee", "SELF", " self", ""],
    "rated_on": ["2026-11-20", "2026-02-30", "20261120", "2026-11-20T00:00:00", " 2026-11-20", ""],
    "term": ["T6", " T1 ", ""],
    "comment": ["", "  spaced  ", "x" * 10_001],
    "evidence_ids": ["", "E1", "E1;E2", " E1 ; ; E2 ", ";", "E 1"],
    "framework_version": ["2026.1", " ", ""],
    "corrects": ["", "R1", " ", "bad id"],
}


@settings(max_examples=120, deadline=None)
@given(
    changes=st.lists(
        st.lists(
            st.sampled_from(RATING_COLUMNS).flatmap(
                lambda c: st.tuples(st.just(c), st.one_of(st.sampled_from(TRICKY[c]), cell))
            ),
            max_size=3,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_column_wise_validation_agrees_with_the_model_row_by_row(changes):
    """The fast path (each field's distinct values through the model's own field types, the model's rules on
    whole columns) accepts, refuses and normalises exactly as validating each row with the model does."""
    rows = [good_rating(id=f"R{i}") | dict(change) for i, change in enumerate(changes)]
    try:
        table = importing.read_table(csv_text(rows, RATING_COLUMNS), KIND, "p.csv")
    except ImportProblems:  # not a table (a stray carriage return, say): both paths see the same refusal
        return
    values, problems = importing.validate_columns(table, KIND, "p.csv", RATING_RULES)
    models, model_problems = importing.validate_records(table.to_dict("records"), KIND, "p.csv")
    assert problems == model_problems
    assert values.index.tolist() == [line for line, _ in models]
    for line, model in models:
        want = [
            getattr(model, c).value if hasattr(getattr(model, c), "value") else getattr(model, c)
            for c in RATING_COLUMNS
        ]
        assert values.loc[line].tolist() == want


table_cell = st.text(alphabet=st.sampled_from(list("ab ,\"'\n\r;é李-")), max_size=6)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(table_cell, min_size=3, max_size=3), max_size=5), raw=st.booleans(), junk=table_cell)
def test_the_fast_reader_reads_what_the_csv_module_reads(rows, raw, junk):
    """DuckDB's strict reader (the fast path) either refuses a file or reads it exactly as the csv module does."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["a", "b", "c"], *rows])
    text = buf.getvalue() + (junk if raw else "")
    fast = importing._cells_read_fast(text, 3)
    if fast is None:
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    slow, _ = importing._cells_read_row_by_row(reader, 3, "t.csv")
    assert [list(c) for c in fast] == [list(c) for c in slow]
