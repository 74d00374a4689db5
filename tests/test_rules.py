"""One rule set for every write: a ratings file with any one fault is refused whole, naming its row and field,
and the database is unchanged; the app's forms meet the same rules."""

import datetime as dt
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_models import Framework
from tests.conftest import ROOT, viewer
from tests.test_importing import RATING_COLUMNS, csv_text, good_rating, snapshot
from tracker import cli
from tracker.core.errors import ImportProblems, PermissionDenied, TrackerError
from tracker.records import actions, importing

pytestmark = pytest.mark.xdist_group("test_rules")  # one worker: its module-scoped fixture is made once

TODAY = dt.date.today()
T6 = (dt.date(2026, 9, 1), dt.date(2026, 12, 31))  # the sample's last term, in the dated calendar below


@pytest.fixture(scope="module")
def dated(framework: Framework) -> Framework:
    """The sample framework with dates on its terms (T6 holds the sample's last ratings)."""
    data = framework.model_dump()
    for i, term in enumerate(data["calendar"]["terms"]):
        starts = dt.date(2025, 1, 1) + dt.timedelta(days=100 * i)
        term["starts"], term["ends"] = starts, starts + dt.timedelta(days=90)
    data["calendar"]["terms"][-1]["starts"], data["calendar"]["terms"][-1]["ends"] = T6
    return Framework.model_validate(data)


def stored(cur, sql: str) -> str:
    return cur.execute(sql).fetchone()[0]


def live_advisor_rating(cur, learner="L001", rater="A001") -> str:
    """A stored advisor rating of teach-methods that no correction replaces."""
    return stored(
        cur,
        f"SELECT id FROM ratings WHERE learner_id = '{learner}' AND competency_id = 'teach-methods' "
        f"AND rater_id = '{rater}' AND id NOT IN (SELECT corrects FROM ratings WHERE corrects IS NOT NULL) LIMIT 1",
    )


# ---- the faults: each turns good rows into a file with one bad row, and names that row's field -----------
def fault_rows(cur, name: str, rows: list[dict], at: int, pick: int) -> tuple[list[dict], str]:
    """Put a row with fault `name` at position `at`; return the rows and the field the problem must name."""
    target = live_advisor_rating(cur)
    corrected = stored(cur, "SELECT corrects FROM ratings WHERE corrects IS NOT NULL LIMIT 1")
    other_learner = stored(cur, "SELECT id FROM learners WHERE advisor_id <> 'A001' ORDER BY id LIMIT 1")
    control = ["\x00", "\x07", "\x1b", "\x08", "\x7f", "\x0c", "\x9b"][pick % 7]
    bad, field = {
        "self corrects advisor": (
            good_rating(rater_id="L001", rater_role="self", corrects=target, comment="mine"),
            "corrects",
        ),
        "not the advisor of record": (good_rating(learner_id=other_learner), "rater_id"),
        "future date": (good_rating(rated_on=(TODAY + dt.timedelta(days=1 + pick)).isoformat()), "rated_on"),
        "outside the term": (good_rating(rated_on="2026-05-04"), "rated_on"),
        "control character in the comment": (good_rating(comment=f"fine{control}work"), "comment"),
        "control character in the framework version": (
            good_rating(framework_version=f"2026{control}.1"),
            "framework_version",
        ),
        "already corrected": (good_rating(corrects=corrected, rater_id="C001", rater_role="committee"), "corrects"),
        "committee correction without a reason": (
            good_rating(rater_id="C001", rater_role="committee", corrects=target, comment=" "),
            "comment",
        ),
        "advisor corrects a self-rating": (
            good_rating(
                corrects=stored(cur, "SELECT id FROM ratings WHERE learner_id = 'L001' AND rater_role = 'self' LIMIT 1")
            ),
            "corrects",
        ),
        "unknown learner": (good_rating(learner_id="L999"), "learner_id"),
        "level off the scale": (good_rating(level=str(6 + pick % 3)), "level"),
        "impossible date": (good_rating(rated_on="2026-02-30"), "rated_on"),
        "unknown term": (good_rating(term="T9"), "term"),
        "rater without the role": (good_rating(rater_id="K001"), "rater_id"),
        "id already stored": (good_rating(id=target), "id"),
    }[name]
    bad["id"] = bad["id"] if name == "id already stored" else "BAD-1"
    return [*rows[:at], bad, *rows[at:]], field


FAULTS = [
    "self corrects advisor",
    "not the advisor of record",
    "future date",
    "outside the term",
    "control character in the comment",
    "control character in the framework version",
    "already corrected",
    "committee correction without a reason",
    "advisor corrects a self-rating",
    "unknown learner",
    "level off the scale",
    "impossible date",
    "unknown term",
    "rater without the role",
    "id already stored",
    "second correction",
    "repeated column",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fault=st.sampled_from(FAULTS), good=st.integers(0, 4), at=st.integers(0, 4), pick=st.integers(0, 20))
def test_a_file_with_any_one_fault_is_refused_whole_naming_row_and_field(cur, dated, fault, good, at, pick):
    rows = [good_rating(id=f"OK-{i}", comment=f"Fine work {i}") for i in range(good)]
    at = min(at, len(rows))
    columns = list(RATING_COLUMNS)
    if fault == "repeated column":
        columns.insert(pick % len(columns), "level")
        text = ",".join(columns) + "\n" + "".join(",".join(r[c] for c in columns) + "\n" for r in rows)
        line, field = 1, "level"
    elif fault == "second correction":
        target = live_advisor_rating(cur)
        first = good_rating(id="FIX-1", corrects=target, comment="first")
        second = good_rating(id="FIX-2", corrects=target, comment="second")
        rows = [*rows[:at], first, *rows[at:], second]
        text, line, field = csv_text(rows, RATING_COLUMNS), len(rows) + 1, "corrects"
    else:
        rows, field = fault_rows(cur, fault, rows, at, pick)
        text, line = csv_text(rows, RATING_COLUMNS), at + 2
    before = snapshot(cur)
    with pytest.raises(ImportProblems) as refused:
        importing.import_text(cur, "ratings", text, "r.csv", dated, "test")
    named = [p for p in refused.value.problems if p.startswith(f"r.csv row {line}")]
    assert any(f" {field}:" in p or f", {field}:" in p for p in named), (fault, refused.value.problems)
    assert all(not p.startswith("r.csv row") or f"row {line}" in p for p in refused.value.problems), (
        fault,
        refused.value.problems,
    )
    assert snapshot(cur) == before


def test_the_good_rows_of_the_property_test_land(cur, dated):
    """The faults above are the only reason those files fail: the same good rows import."""
    rows = [good_rating(id=f"OK-{i}", comment=f"Fine work {i}") for i in range(3)]
    assert importing.import_text(cur, "ratings", csv_text(rows, RATING_COLUMNS), "r.csv", dated, "t").added == 3


# ---- the bugs, each through the command line and the import page --------------------------------------
def bug_files(cur) -> dict[str, tuple[str, str]]:
    """Each accepted-but-wrong ratings file, with the problem it must now produce."""
    target = live_advisor_rating(cur)
    other = stored(cur, "SELECT id FROM learners WHERE advisor_id <> 'A001' ORDER BY id LIMIT 1")
    header = ",".join(RATING_COLUMNS)
    return {
        "self-rating corrects the advisor's": (
            csv_text([good_rating(rater_id="L001", rater_role="self", corrects=target)], RATING_COLUMNS),
            f"row 2, corrects: a self-rating cannot correct the advisor rating '{target}'",
        ),
        "advisor who is not the learner's": (
            csv_text([good_rating(learner_id=other)], RATING_COLUMNS),
            f"row 2, rater_id: 'A001' is not the advisor of record of learner '{other}'",
        ),
        "a column twice": (
            header + ",level\n" + ",".join(good_rating().values()) + ",2\n",
            "row 1 (header), level: the column appears more than once (columns 4, 13); keep one",
        ),
        "dated 2030": (
            csv_text([good_rating(rated_on="2030-01-01", term="T1")], RATING_COLUMNS),
            f"row 2, rated_on: 2030-01-01 is in the future (today is {TODAY})",
        ),
        "NUL in a comment": (
            csv_text([good_rating(comment="a\x00b")], RATING_COLUMNS),
            "row 2, comment: contains the control character U+0000 at position 2; remove it",
        ),
        "two corrections of one rating": (
            csv_text([good_rating(id="F1", corrects=target), good_rating(id="F2", corrects=target)], RATING_COLUMNS),
            f"row 3, corrects: rating '{target}' is corrected again (first at row 2); one correction per rating",
        ),
    }


BUGS = [
    "self-rating corrects the advisor's",
    "advisor who is not the learner's",
    "a column twice",
    "dated 2030",
    "NUL in a comment",
    "two corrections of one rating",
]


@pytest.mark.parametrize("bug", BUGS)
def test_each_bug_is_refused_on_the_command_line(db_path, cur, tmp_path, capsys, bug):
    text, problem = bug_files(cur)[bug]
    path = tmp_path / "ratings.csv"
    path.write_text(text, encoding="utf-8")
    before = snapshot(cur)
    assert cli.main(["import", "ratings", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"ratings.csv {problem}" in err, err
    assert "Traceback" not in err
    assert snapshot(cur) == before


@pytest.mark.parametrize("bug", BUGS)
def test_each_bug_is_refused_on_the_import_page(db_path, cur, bug):
    from tests.conftest import app_as, goto

    text, problem = bug_files(cur)[bug]
    at = goto(app_as("k001"), "import")
    before = snapshot(cur)  # after the sign-in, which is audited
    at.selectbox(key="import.kind").set_value("ratings").run()
    at.file_uploader(key="import.file").upload("ratings.csv", text.encode(), "text/csv").run()
    assert not at.exception
    assert at.error[0].value.replace("\\", "").endswith("nothing was imported. Fix them and upload again.")
    problems = at.dataframe[-1].value["problem"].tolist()
    assert any(p.startswith(f"ratings.csv {problem}") for p in problems), problems
    assert "import.commit" not in [b.key for b in at.button]
    assert snapshot(cur) == before


# ---- the forms meet the same rules ------------------------------------------------------------------
def test_the_forms_meet_the_same_rules(cur, framework, dated):
    advisor, learner, committee = viewer(cur, "A001"), viewer(cur, "L001"), viewer(cur, "C001")
    target = live_advisor_rating(cur)
    with pytest.raises(PermissionDenied, match="a self-rating cannot correct the advisor rating"):
        actions.record_rating(cur, framework, learner, "L001", "teach-methods", 2, "T6", "", corrects=target)
    with pytest.raises(TrackerError, match="needs the reason in the comment"):
        actions.record_rating(cur, framework, committee, "L001", "teach-methods", 2, "T6", "", corrects=target)
    with pytest.raises(TrackerError, match="control character U\\+001B"):
        actions.record_rating(cur, framework, advisor, "L001", "teach-methods", 2, "T6", "\x1b[31m")
    fixed = actions.record_rating(
        cur, framework, committee, "L001", "teach-methods", 2, "T6", "Panel review: level agreed", corrects=target
    )
    with pytest.raises(TrackerError, match=f"was already corrected by '{fixed.id}'"):
        actions.record_rating(cur, framework, advisor, "L001", "teach-methods", 3, "T6", "", corrects=target)
    # a form dates a rating today: inside the term's dates, when the calendar gives them
    with pytest.raises(TrackerError, match=r"rated_on: 2026-11-20 is outside term T1 \(2025-01-01 to 2025-04-01\)"):
        actions.record_rating(cur, dated, advisor, "L001", "teach-methods", 3, "T1", "", today=dt.date(2026, 11, 20))
    # correcting the correction is allowed: it is the live one
    again = actions.record_rating(
        cur, framework, advisor, "L001", "teach-methods", 3, "T6", "New work", corrects=fixed.id
    )
    assert again.corrects == fixed.id


def test_a_term_date_out_of_order_is_a_located_framework_problem(framework):
    from tracker.framework.loading import parse_framework

    text = (ROOT / "competencies.yaml").read_text(encoding="utf-8")
    text = text.replace(
        '{id: T1, label: "Year 1 · Term 1"}', '{id: T1, label: "Year 1 · Term 1", starts: 2025-05-01, ends: 2025-01-01}'
    )
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if "starts: 2025-05-01" in t)
    with pytest.raises(Exception) as refused:
        parse_framework(text, "f.yaml")
    assert f"f.yaml:{line}: calendar.terms[0].ends: term T1 ends (2025-01-01) before it starts (2025-05-01)" in str(
        refused.value
    )


def test_the_command_line_import_runs_without_a_traceback_in_a_new_process(db_path, tmp_path):
    bad = tmp_path / "ratings.csv"
    bad.write_text(csv_text([good_rating(comment="x\x00y")], RATING_COLUMNS))
    run = subprocess.run(
        [sys.executable, "-m", "tracker", "import", "ratings", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert run.returncode == 1, run.stderr
    assert "row 2, comment: contains the control character U+0000" in run.stderr
