"""Learner reports: the PDF's text (extracted with pypdf) holds the learner's figures, in any script."""

import io
import subprocess
import sys

import pytest
from pypdf import PdfReader

from data_models import Learner
from tests.conftest import ROOT, viewer
from tracker.analysis import coverage, queries
from tracker.plans import plan_actions
from tracker.records import actions
from tracker.reports import packets
from tracker.storage import record_rows

pytestmark = pytest.mark.one_mode  # PDF layout: the sample database is only its input


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.fixture
def priors(cur):
    return queries.program_priors(cur)


def test_report_holds_the_learners_figures(cur, framework, priors):
    committee = viewer(cur, "C001")
    text = text_of(packets.learner_report(cur, committee, framework, "L001", priors))
    standing = queries.competency_standing(cur, committee, learner_id="L001")
    name = standing["learner_name"].iloc[0]
    assert f"Learner report: {name}" in text
    for d in queries.domain_standing(standing).itertuples():
        assert f"{d.domain_name} {d.level:.1f} {d.expected:.1f}" in text  # a row of the domain table
    row = standing.set_index("competency_id").loc["teach-methods"]
    assert f"Instructional methods for diverse learners {row.level:.1f}" in text.replace(
        "diverse\nlearners", "diverse learners"
    )
    history = queries.rating_history(cur, committee, "L001")
    newest = history[history["comment"] != ""].iloc[0]
    assert newest["comment"] in text.replace("\n", " ")


def test_names_and_comments_in_any_script(cur, framework, priors):
    cur.executemany(
        "INSERT INTO learners VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        record_rows.learner_rows(
            [
                Learner(
                    id="U1",
                    name="李 Zoë José",
                    email="u1@x.org",
                    cohort="2026-01",
                    profession="Nurse",
                    start_term="2026-01",
                    advisor_id="A001",
                )
            ]
        ),
    )
    actions.record_rating(cur, framework, viewer(cur, "A001"), "U1", "teach-methods", 2, "T1", "Très bien — 很好, Zoë!")
    text = text_of(packets.learner_report(cur, viewer(cur, "C001"), framework, "U1", priors))
    assert "李 Zoë José" in text
    assert "Très bien — 很好, Zoë!" in text


def test_a_learner_cannot_print_another_learners_report(cur, framework, priors):
    from tracker.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        packets.learner_report(cur, viewer(cur, "L001"), framework, "L002", priors)


@pytest.mark.slow  # twenty PDFs laid out
def test_command_line_writes_a_learner_and_a_cohort(db_path, tmp_path):
    one = subprocess.run(
        [sys.executable, "-m", "tracker", "report", "L002", "--out", str(tmp_path / "l002.pdf")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert one.returncode == 0, one.stderr
    assert "Learner report:" in text_of((tmp_path / "l002.pdf").read_bytes())
    folder = subprocess.run(
        [sys.executable, "-m", "tracker", "report", "--cohort", "2026-01", "--out", str(tmp_path / "cohort")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert folder.returncode == 0, folder.stderr
    assert len(list((tmp_path / "cohort").glob("L*.pdf"))) == 20
    pdfs = [p.read_bytes() for p in sorted((tmp_path / "cohort").glob("L*.pdf"))[:3]]
    assert text_of(packets.merge_pdfs(pdfs)).count("Learner report:") == 3  # what `--out FILE.pdf` writes for a cohort


def test_cohort_report_holds_the_committees_figures(cur, framework, priors):
    committee = viewer(cur, "C001")
    text = text_of(packets.cohort_report(cur, committee, framework, "2025-01", None, priors))
    standing = queries.competency_standing(cur, committee, cohort="2025-01")
    behind = queries.learners_behind(cur, committee, cohort="2025-01")
    assert "Cohort summary: cohort 2025-01, latest ratings" in text
    assert f"{standing['learner_id'].nunique()} {len(behind)}" in text  # the figures row: learners, behind, ...
    for name in behind["learner_name"]:
        assert name in text


def _current_goals(cur, learner_id: str) -> list[tuple]:
    return cur.execute(
        "SELECT id, version, competency_id, target_level, by_term, actions FROM goals WHERE learner_id = ? "
        "QUALIFY version = max(version) OVER (PARTITION BY id) ORDER BY id",
        [learner_id],
    ).fetchall()


def test_the_learner_packet_holds_each_goal_as_it_stands_and_a_changed_one_unagreed(cur, framework, priors):
    committee = viewer(cur, "C001")
    raw = _current_goals(cur, "L055")
    assert len(raw) == 2, "the sample program gives L055 a learning plan of two goals"
    text = " ".join(text_of(packets.learner_report(cur, committee, framework, "L055", priors)).split())
    assert "Learning plan goals" in text
    for _, version, competency, target, term, goal_actions in raw:
        assert (
            f"{framework.competencies[competency].name} · level {float(target):g} by {term} · version {version}" in text
        )
        assert " ".join(f"Actions: {goal_actions}".split()) in text
    assert "version 2 · Changed since it was agreed: needs agreeing again" in text  # the sample's changed goal
    assert "plan closed" not in text
    # the learner changes the agreed goal: the packet shows its new version, waiting for the advisor
    goal_id, version, competency, target, term, _ = next(g for g in raw if g[1] == 1)
    plan_actions.write_goal(
        cur,
        framework,
        viewer(cur, "L055"),
        "L055",
        competency,
        float(target),
        term,
        '=HYPERLINK("http://x") a new way to practise',
        goal_id=goal_id,
        read_version=1,
    )
    text = " ".join(text_of(packets.learner_report(cur, committee, framework, "L055", priors)).split())
    assert text.count("Changed since it was agreed: needs agreeing again") == 2
    assert '=HYPERLINK("http://x") a new way to practise' in text  # printed as written, never run


def test_a_closed_plans_goals_stay_in_the_packet_marked_closed(cur, framework, priors):
    # the sample's committee revised L052's "learning plan required" to "monitor": the plan it opened is closed
    text = " ".join(text_of(packets.learner_report(cur, viewer(cur, "C001"), framework, "L052", priors)).split())
    for _, _, competency, *_ in _current_goals(cur, "L052"):
        assert framework.competencies[competency].name in text
    assert text.count("plan closed by decision D-L052-T5-r1") == 2


def test_the_learner_packet_shows_this_terms_ratings_against_the_assessment_plan(cur, framework, priors):
    assert framework.has_assessment_plan
    committee = viewer(cur, "C001")
    rows = coverage.plan_coverage(cur, committee, framework, "L001")
    text = " ".join(text_of(packets.learner_report(cur, committee, framework, "L001", priors)).split())
    assert "Against the assessment plan, this term" in text
    for r in rows.itertuples():
        assert " ".join(r.coverage.split()) in text


def test_the_cohort_packet_counts_goals_and_lists_those_overdue_or_not_agreed(cur, framework, priors):
    committee = viewer(cur, "C001")
    decisions = cur.execute("SELECT id, learner_id, decided_on, seq, replaces FROM decisions").df()
    live = decisions[~decisions["id"].isin(set(decisions["replaces"].dropna()))]
    current = set(live.sort_values(["decided_on", "seq"]).groupby("learner_id").tail(1)["id"])
    goals = cur.execute(
        "SELECT g.learner_id, g.id, a.goal_id IS NULL AS waiting, p.decision_id FROM goals g "
        "JOIN learning_plans p ON p.id = g.plan_id "
        "LEFT JOIN goal_agreements a ON a.goal_id = g.id AND a.version = g.version "
        "QUALIFY g.version = max(g.version) OVER (PARTITION BY g.id)"
    ).df()
    is_open = goals["decision_id"].isna() | goals["decision_id"].isin(current)
    assert 0 < is_open.sum() < len(goals)  # the sample holds an open plan and a closed one
    opened = goals[is_open]
    text = " ".join(text_of(packets.cohort_report(cur, committee, framework, None, None, priors)).split())
    assert f"{len(opened)} goals of open plans, of {opened['learner_id'].nunique()} learners:" in text
    assert f"{int(opened['waiting'].sum())} not agreed by the advisor; {len(goals) - len(opened)} more in plans" in text
    assert "Against the assessment plan, this term (active learners)" in text
