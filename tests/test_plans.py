"""Learning plans against a real database: goal status on a hand-made program with known answers, versions and
agreement, the plan a decision opens, who may do what (tried the wrong way round), and goals as files."""

import csv
import datetime as dt
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_models import Goal
from tests.conftest import FRAMEWORK_YAML, SAMPLE, viewer
from tracker.analysis import queries
from tracker.core.errors import ImportProblems, PermissionDenied, TrackerError
from tracker.framework.loading import parse_framework
from tracker.plans import plan_actions, plan_queries
from tracker.records import exporting, importing
from tracker.records.setup import seed_directory
from tracker.review import review_actions

TODAY = dt.date(2025, 6, 1)
STAFF = """id,name,email,roles
A1,Ada Advisor,a1@example.org,advisor
A2,Ben Advisor,a2@example.org,advisor;committee
C1,Cy Committee,c1@example.org,committee
K1,Kay Coordinator,k1@example.org,coordinator
"""
LEARNERS = """id,name,email,cohort,profession,start_term,status,advisor_id
L1,Lee One,l1@example.org,2025-01,Nurse,2025-01,active,A1
L2,Lou Two,l2@example.org,2025-01,Nurse,2025-01,active,A2
"""


def _ratings(framework) -> list[dict]:
    c1, c2, c3 = list(framework.competencies)[:3]
    rows = [
        ("R1", c1, "2.0", "A1", "advisor", "2025-01-10", "T1", ""),
        ("R2", c1, "3.0", "A1", "advisor", "2025-05-10", "T2", ""),
        ("R3", c1, "4.0", "L1", "self", "2025-05-11", "T2", ""),  # a self-rating is never the level
        ("R4", c2, "1.0", "A1", "advisor", "2025-01-10", "T1", ""),
        ("R5", c2, "1.5", "A1", "advisor", "2025-05-10", "T2", ""),
        ("R6", c3, "2.0", "A1", "advisor", "2025-01-10", "T1", ""),
        ("R7", c3, "3.5", "A1", "advisor", "2025-05-10", "T2", ""),
        ("R8", c3, "2.5", "A1", "advisor", "2025-05-12", "T2", "R7"),  # corrects R7
    ]
    return [
        dict(
            id=i,
            learner_id="L1",
            competency_id=c,
            level=lv,
            rater_id=who,
            rater_role=role,
            rated_on=on,
            term=term,
            comment="correction: typo" if fix else "",
            evidence_ids="",
            framework_version=framework.version,
            corrects=fix,
        )
        for i, c, lv, who, role, on, term, fix in rows
    ]


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
def hand(empty_db, framework):
    """Two learners and four staff; L1's ratings of three competencies (one corrected, one self-rating)."""
    cur = empty_db.cursor()
    for kind, text in (("staff", STAFF), ("learners", LEARNERS), ("ratings", _csv(_ratings(framework)))):
        importing.import_text(cur, kind, text, f"{kind}.csv", framework, "test")
    return cur


def _expected_level(ratings: list[dict], framework, competency_id: str) -> float | None:
    """The level by docs/measurement.md from the raw rows: the latest advisor rating no correction supersedes."""
    superseded = {r["corrects"] for r in ratings if r["corrects"]}
    counted = [
        r
        for r in ratings
        if r["competency_id"] == competency_id and r["rater_role"] != "self" and r["id"] not in superseded
    ]
    if not counted:
        return None
    latest = max(counted, key=lambda r: (framework.term_index(r["term"]), r["rated_on"]))
    return float(latest["level"])


def _write(cur, framework, competency_id, target, by_term, who="L1", **kw):
    return plan_actions.write_goal(
        cur,
        framework,
        viewer(cur, who),
        who,
        competency_id,
        target,
        by_term,
        "Teach twice, observed.",
        **kw,
        today=TODAY,
    )


def test_goal_status_is_met_overdue_or_open_by_the_level_and_the_term(hand, framework):
    cur = hand
    c1, c2, c3 = list(framework.competencies)[:3]
    goals = {
        "met": _write(cur, framework, c1, 3.0, "T2"),
        "overdue": _write(cur, framework, c2, 2.5, "T1"),  # the learner is assessed in T2: T1 has passed
        "open, later term": _write(cur, framework, c3, 3.0, "T3"),
        "open, this term": _write(cur, framework, c3, 3.5, "T2"),  # the term the learner is in has not passed
        "open, self above": _write(cur, framework, c1, 4.0, "T3"),  # the self-rating of 4 does not count
    }
    raw = _ratings(framework)
    assessed_term = max(framework.term_index(r["term"]) for r in raw if r["rater_role"] != "self")
    found = plan_queries.learner_goals(cur, viewer(cur, "L1"), framework, "L1", today=TODAY).set_index("goal_id")
    assert len(found) == len(goals)
    for label, goal in goals.items():
        row = found.loc[goal.id]
        level = _expected_level(raw, framework, goal.competency_id)
        want = (
            "met"
            if level is not None and level >= goal.target_level
            else "overdue"
            if assessed_term > framework.term_index(goal.by_term)
            else "open"
        )
        assert want == label.split(",")[0], label  # the test's own arithmetic agrees with its labels
        assert row["status"] == want and row["level"] == level, label
        assert row["status_words"].startswith(want.capitalize() + ":"), row["status_words"]
    assert found.loc[goals["overdue"].id, "status_words"] == (
        f"Overdue: level 1.5, short of the 2.5 aimed for by {framework.term_name('T1')}, which has passed."
    )
    assert found.loc[goals["met"].id, "status_words"] == (
        f"Met: level 3 reaches the 3 aimed for by {framework.term_name('T2')}."
    )
    # a calendar that gives the term's last day: the term has passed once that day is behind us
    dated = FRAMEWORK_YAML.read_text(encoding="utf-8").replace(
        '{id: T2, label: "Year 1 · Term 2"}', '{id: T2, label: "Year 1 · Term 2", starts: 2025-02-01, ends: 2025-05-31}'
    )
    fw_dated = parse_framework(dated, source="dated.yaml")
    by_date = plan_queries.learner_goals(cur, viewer(cur, "A1"), fw_dated, "L1", today=TODAY).set_index("goal_id")
    assert by_date.loc[goals["open, this term"].id, "status"] == "overdue"
    on_last_day = plan_queries.learner_goals(cur, viewer(cur, "A1"), fw_dated, "L1", today=dt.date(2025, 5, 31))
    assert on_last_day.set_index("goal_id").loc[goals["open, this term"].id, "status"] == "open"


def test_a_changed_goal_is_a_new_version_and_needs_agreeing_again(hand, framework):
    cur = hand
    c1 = next(iter(framework.competencies))
    goal = _write(cur, framework, c1, 3.5, "T3")
    advisor = viewer(cur, "A1")
    plan_actions.comment_goal(cur, advisor, goal.id, "Good; add an observation.", 1, today=TODAY)
    assert plan_actions.agree_goals(cur, advisor, "L1", {goal.id: 1}, today=TODAY) == [goal.id]
    row = plan_queries.learner_goals(cur, advisor, framework, "L1", today=TODAY).iloc[0]
    assert row["agreement"] == "Agreed by Ada Advisor on 2025-06-01"
    with pytest.raises(TrackerError, match="Nothing changed"):
        _write(cur, framework, c1, 3.5, "T3", goal_id=goal.id, read_version=1)
    changed = _write(cur, framework, c1, 4.0, "T3", goal_id=goal.id, read_version=1)
    assert (changed.id, changed.version) == (goal.id, 2)
    row = plan_queries.learner_goals(cur, advisor, framework, "L1", today=TODAY).iloc[0]
    assert (row["version"], row["target_level"]) == (2, 4.0)
    assert row["agreement"] == "Changed since it was agreed: needs agreeing again"
    # nothing is lost: both versions, the first still agreed, the comment on the version it was about
    versions = plan_queries.goal_versions(cur, advisor, "L1")
    assert versions[["version", "target_level"]].values.tolist() == [[2, 4.0], [1, 3.5]]
    assert versions["agreed_by"].fillna("").tolist() == ["", "A1"]
    comments = plan_queries.goal_comments(cur, advisor, "L1")
    assert comments[["version", "author_id", "comment"]].values.tolist() == [[1, "A1", "Good; add an observation."]]
    # a write names the version its author read: one read before the change is refused, whatever it is
    with pytest.raises(TrackerError, match="changed since you read it"):
        plan_actions.agree_goals(cur, advisor, "L1", {goal.id: 1}, today=TODAY)
    with pytest.raises(TrackerError, match="changed since you read it"):
        _write(cur, framework, c1, 2.0, "T3", goal_id=goal.id, read_version=1)
    with pytest.raises(TrackerError, match="changed since you read it"):
        plan_actions.comment_goal(cur, advisor, goal.id, "Late comment", 1, today=TODAY)
    plan_actions.agree_goals(cur, advisor, "L1", {goal.id: 2}, today=TODAY)
    with pytest.raises(TrackerError, match="agreed already"):
        plan_actions.agree_goals(cur, advisor, "L1", {goal.id: 2}, today=TODAY)
    audit = cur.execute("SELECT actor, action FROM audit_log WHERE action LIKE 'goal%' ORDER BY seq").fetchall()
    assert audit == [
        ("L1", "goal"),
        ("A1", "goal comment"),
        ("A1", "goal agreed"),
        ("L1", "goal change"),
        ("A1", "goal agreed"),
    ]


def test_a_goal_outside_the_framework_or_scale_is_refused_and_nothing_is_written(hand, framework):
    cur = hand
    c1 = next(iter(framework.competencies))
    for args, problem in (
        (("no-such", 3.0, "T2"), "no competency"),
        ((c1, 9.0, "T2"), "not on the scale"),
        ((c1, 2.25, "T2"), "multiple of 0.5"),
        ((c1, 3.0, "T9"), "no term"),
    ):
        with pytest.raises(TrackerError, match=problem):
            _write(cur, framework, *args)
    with pytest.raises(TrackerError, match="Actions"):
        plan_actions.write_goal(cur, framework, viewer(cur, "L1"), "L1", c1, 3.0, "T2", "   ", today=TODAY)
    assert cur.execute("SELECT count(*) FROM goals").fetchone()[0] == 0
    assert cur.execute("SELECT count(*) FROM learning_plans").fetchone()[0] == 0


# ---- who may do what, tried the wrong way round ------------------------------------------------
def test_only_the_learner_writes_and_only_the_advisor_of_record_agrees(hand, framework):
    cur = hand
    c1 = next(iter(framework.competencies))
    goal = _write(cur, framework, c1, 3.5, "T3")
    attempts = {
        "another learner writes": lambda: plan_actions.write_goal(
            cur, framework, viewer(cur, "L2"), "L1", c1, 3.0, "T3", "x", today=TODAY
        ),
        "the advisor writes": lambda: plan_actions.write_goal(
            cur, framework, viewer(cur, "A1"), "L1", c1, 3.0, "T3", "x", today=TODAY
        ),
        "a coordinator writes": lambda: plan_actions.write_goal(
            cur, framework, viewer(cur, "K1"), "L1", c1, 3.0, "T3", "x", today=TODAY
        ),
        "another learner changes it": lambda: plan_actions.write_goal(
            cur, framework, viewer(cur, "L2"), "L2", c1, 3.0, "T3", "x", goal_id=goal.id, read_version=1
        ),
        "another advisor (on the committee) agrees": lambda: plan_actions.agree_goals(
            cur, viewer(cur, "A2"), "L1", {goal.id: 1}
        ),
        "the committee agrees": lambda: plan_actions.agree_goals(cur, viewer(cur, "C1"), "L1", {goal.id: 1}),
        "the learner agrees their own": lambda: plan_actions.agree_goals(cur, viewer(cur, "L1"), "L1", {goal.id: 1}),
        "the committee comments": lambda: plan_actions.comment_goal(cur, viewer(cur, "C1"), goal.id, "hi", 1),
        "a coordinator comments": lambda: plan_actions.comment_goal(cur, viewer(cur, "K1"), goal.id, "hi", 1),
        "another learner comments": lambda: plan_actions.comment_goal(cur, viewer(cur, "L2"), goal.id, "hi", 1),
        "another learner reads": lambda: plan_queries.learner_goals(cur, viewer(cur, "L2"), framework, "L1"),
        "an advisor reads another's advisee": lambda: plan_queries.goal_versions(cur, viewer(cur, "A1"), "L2"),
        "a learner exports goals": lambda: exporting.export_records(cur, viewer(cur, "L1"), "goals"),
        "the committee exports goals": lambda: exporting.export_records(cur, viewer(cur, "C1"), "goals"),
    }
    for what, attempt in attempts.items():
        before = cur.execute("SELECT count(*) FROM audit_log WHERE action = 'permission denied'").fetchone()[0]
        with pytest.raises((PermissionDenied, TrackerError)) as refused:
            attempt()
        assert isinstance(refused.value, PermissionDenied) or "No goal" in str(refused.value), what
        after = cur.execute("SELECT count(*) FROM audit_log WHERE action = 'permission denied'").fetchone()[0]
        assert after == before + 1 or "No goal" in str(refused.value), what
    # an advisor's own advisee's plan cannot carry another learner's goal into an agreement
    other = _write(cur, framework, c1, 3.0, "T3", who="L2")
    with pytest.raises(TrackerError, match="No goal"):
        plan_actions.agree_goals(cur, viewer(cur, "A1"), "L1", {other.id: 1})
    # nothing of all that was written
    assert cur.execute("SELECT count(*) FROM goal_agreements").fetchone()[0] == 0
    assert cur.execute("SELECT count(*) FROM goal_comments").fetchone()[0] == 0
    assert cur.execute("SELECT count(DISTINCT id), count(*) FROM goals").fetchone() == (2, 2)


def test_each_reader_sees_the_goals_of_the_learners_they_may_see(hand, framework):
    cur = hand
    c1 = next(iter(framework.competencies))
    mine, theirs = _write(cur, framework, c1, 3.5, "T3"), _write(cur, framework, c1, 3.0, "T3", who="L2")
    seen = {
        who: set(plan_queries.learner_goals(cur, viewer(cur, who), framework)["goal_id"])
        for who in ("L1", "L2", "A1", "A2", "C1", "K1")
    }
    assert seen["L1"] == {mine.id} and seen["L2"] == {theirs.id}
    assert seen["A1"] == {mine.id}  # A1 advises L1 only
    assert seen["A2"] == seen["C1"] == seen["K1"] == {mine.id, theirs.id}  # A2 sits on the committee


# ---- the plan a committee decision opens ------------------------------------------------------------
def test_the_sample_reviews_plans_are_linked_to_their_decisions_and_open_while_they_stand(cur, framework):
    decisions = list(csv.DictReader((SAMPLE / "decisions.csv").open(encoding="utf-8")))
    wanted = {o.id for o in framework.outcomes.values() if o.requires_plan}
    want = {(f"P-{d['id']}", d["learner_id"], d["id"]) for d in decisions if d["outcome"] in wanted}
    assert want  # the sample holds some
    got = set(cur.execute("SELECT id, learner_id, decision_id FROM learning_plans").fetchall())
    assert got == want
    # a plan stays open while the decision that opened it is its learner's current one: the sample revises one
    revised = {d["replaces"]: d["id"] for d in decisions if d["replaces"]}
    for plan_id, learner_id, decision_id in want:
        row = plan_queries.learner_plans(cur, viewer(cur, "C001"), learner_id).set_index("plan_id").loc[plan_id]
        assert row["plan_open"] == (decision_id not in revised)
        assert (row["closed_by"] if not row["plan_open"] else None) == revised.get(decision_id)
    assert revised and set(revised) & {d for _, _, d in want}


def test_a_revised_decision_that_requires_a_plan_opens_one_for_learner_and_advisor(cur, framework):
    first = cur.execute("SELECT id FROM decisions WHERE learner_id = 'L001' AND replaces IS NULL").fetchone()[0]
    committee = viewer(cur, "C001")
    new = review_actions.revise_decision(cur, framework, committee, first, "extend-program", "Needs another term.")
    found = plan_queries.learner_plans(cur, viewer(cur, "L001"), "L001")
    assert found[["plan_id", "decision_id", "outcome"]].values.tolist() == [[f"P-{new}", new, "extend-program"]]
    assert plan_queries.learner_plans(cur, viewer(cur, "A001"), "L001")["decision_id"].tolist() == [new]
    with pytest.raises(PermissionDenied):
        plan_queries.learner_plans(cur, viewer(cur, "L004"), "L001")
    # the learner's first goal goes into that plan
    goal = plan_actions.write_goal(
        cur, framework, viewer(cur, "L001"), "L001", next(iter(framework.competencies)), 4.0, "T6", "Plan it."
    )
    assert (goal.plan_id, goal.decision_id) == (f"P-{new}", new)
    # an outcome that requires no plan opens none
    again = review_actions.revise_decision(cur, framework, committee, new, "on-track", "Fine after all.")
    assert cur.execute("SELECT count(*) FROM learning_plans WHERE decision_id = ?", [again]).fetchone()[0] == 0


def test_a_later_decision_closes_the_plan_and_its_goals_are_kept_but_no_longer_worked(cur, framework):
    first = cur.execute("SELECT id FROM decisions WHERE learner_id = 'L001' AND replaces IS NULL").fetchone()[0]
    committee, learner, advisor = viewer(cur, "C001"), viewer(cur, "L001"), viewer(cur, "A001")
    asked = review_actions.revise_decision(cur, framework, committee, first, "remediation-plan", "Close the gaps.")
    competencies = list(framework.competencies)
    agreed = plan_actions.write_goal(cur, framework, learner, "L001", competencies[0], 4.0, "T6", "Agreed one.")
    plan_actions.agree_goals(cur, advisor, "L001", {agreed.id: 1})
    waiting = plan_actions.write_goal(cur, framework, learner, "L001", competencies[1], 4.0, "T6", "Waiting one.")
    goals = plan_queries.learner_goals(cur, advisor, framework, "L001")
    assert goals["plan_open"].all()
    assert plan_queries.waiting_for_agreement(goals, "A001")["goal_id"].tolist() == [waiting.id]

    closing = review_actions.revise_decision(cur, framework, committee, asked, "on-track", "The gaps are closed.")
    found = plan_queries.learner_plans(cur, learner, "L001").set_index("plan_id").loc[f"P-{asked}"]
    assert not found["plan_open"] and (found["closed_by"], found["closed_outcome"]) == (closing, "on-track")
    goals = plan_queries.learner_goals(cur, advisor, framework, "L001")
    assert set(goals["goal_id"]) == {agreed.id, waiting.id} and not goals["plan_open"].any()  # kept, closed
    assert set(goals["plan_closed_by"]) == {closing}
    assert plan_queries.waiting_for_agreement(goals, "A001").empty
    for attempt in (
        lambda: plan_actions.write_goal(
            cur, framework, learner, "L001", competencies[1], 3.0, "T6", "Again", goal_id=waiting.id, read_version=1
        ),
        lambda: plan_actions.comment_goal(cur, advisor, waiting.id, "Late word", 1),
        lambda: plan_actions.agree_goals(cur, advisor, "L001", {waiting.id: 1}),
    ):
        with pytest.raises(TrackerError, match="plan was closed by the committee's decision"):
            attempt()
    # a new goal goes into a plan of the learner's own, open
    fresh = plan_actions.write_goal(cur, framework, learner, "L001", competencies[2], 3.5, "T6", "My own.")
    assert fresh.plan_id != f"P-{asked}" and fresh.decision_id is None
    mine = plan_queries.learner_plans(cur, learner, "L001")
    assert mine[["plan_id", "plan_open"]].values.tolist()[0] == [fresh.plan_id, True]  # open plans first

    # a later decision that requires a plan again opens its own; the learner's own plan stays open
    anew = review_actions.revise_decision(cur, framework, committee, closing, "learning-plan", "Back to a formal plan.")
    states = plan_queries.learner_plans(cur, learner, "L001").set_index("plan_id")["plan_open"].to_dict()
    assert states == {fresh.plan_id: True, f"P-{anew}": True, f"P-{asked}": False}


# ---- goals as files ----------------------------------------------------------------------------------
HOSTILE = '=HYPERLINK("http://evil.example")\n**bold** <script>alert(1)</script> [x](javascript:alert(1)) | ; "q"'


def test_goals_export_and_import_back_unchanged_with_hostile_text(cur, empty_db, framework, tmp_path):
    learner, advisor = viewer(cur, "L001"), viewer(cur, "A001")
    goal = plan_actions.write_goal(
        cur, framework, learner, "L001", next(iter(framework.competencies)), 3.5, "T6", HOSTILE, "@SUM(1) - +cmd"
    )
    plan_actions.comment_goal(cur, advisor, goal.id, "-2+3 | a | b ; =cmd", 1)
    plan_actions.comment_goal(cur, learner, goal.id, "'=already quoted", 1)
    plan_actions.agree_goals(cur, advisor, "L001", {goal.id: 1})
    exported = {kind: exporting.export_csv(cur, kind) for kind in exporting.EXPORT_SQL}
    goals_csv = exported["goals"]
    cells = [row for row in csv.reader(io.StringIO(goals_csv))]
    mine = next(row for row in cells if row[0] == goal.id)
    assert mine[8].startswith("'=HYPERLINK") and mine[9].startswith("'@SUM")  # no cell a spreadsheet runs
    for kind, text in exported.items():
        (tmp_path / f"{kind}.csv").write_text(text, encoding="utf-8")
    fresh = empty_db.cursor()
    seed_directory(fresh, tmp_path, framework, "test")
    assert exporting.export_csv(fresh, "goals") == goals_csv
    row = plan_queries.learner_goals(fresh, viewer(fresh, "L001"), framework, "L001").set_index("goal_id").loc[goal.id]
    assert row["actions"] == HOSTILE and row["agreed_by"] == "A001"
    said = plan_queries.goal_comments(fresh, viewer(fresh, "L001"), "L001")
    assert said.loc[said["goal_id"] == goal.id, "comment"].tolist() == ["-2+3 | a | b ; =cmd", "'=already quoted"]


def _goal_rows(cur) -> list[dict]:
    return list(csv.DictReader(io.StringIO(exporting.export_csv(cur, "goals"))))


def test_a_bad_goals_file_names_row_and_field_and_changes_nothing(cur, framework):
    rows = _goal_rows(cur)
    assert rows, "the sample has goals"
    before = exporting.export_csv(cur, "goals")
    fresh = [dict(r, id=r["id"] + "-new", plan_id="P-mine-" + r["learner_id"], decision_id="") for r in rows]
    fresh[0]["by_term"] = "T9"
    fresh[1]["agreed_by"] = "A002"  # not the advisor of record
    fresh[2]["written_by"] = "A001"
    fresh[3]["comments"] = "2026-10-01 | C001 | the committee does not comment"
    fresh[4]["agreed_by"], fresh[4]["agreed_on"] = "A006", ""  # agreed_by without agreed_on
    assert fresh[4]["learner_id"] == "L055"
    text = _csv(fresh)
    with pytest.raises(ImportProblems) as problems:
        importing.import_text(cur, "goals", text, "goals.csv", framework, "test")
    found = problems.value.problems
    for line, field in ((2, "by_term"), (3, "agreed_by"), (4, "written_by"), (5, "comments"), (6, "(row)")):
        assert any(p.startswith(f"goals.csv row {line}, {field}") for p in found), (line, field, found)
    assert exporting.export_csv(cur, "goals") == before
    # the same rows, once more as they were: every one is there already
    with pytest.raises(ImportProblems, match="has version 1 already"):
        importing.import_text(cur, "goals", _csv(rows), "goals.csv", framework, "test")


def test_a_goals_file_keeps_versions_in_order_and_plans_whole(cur, framework):
    rows = _goal_rows(cur)
    gap = [dict(rows[0], id="G-new", plan_id="P-new", decision_id="", version="2")]
    with pytest.raises(ImportProblems, match=r"row 2, version: goal 'G-new' needs version 1 next, not 2"):
        importing.import_text(cur, "goals", _csv(gap), "goals.csv", framework, "test")
    other_decision = [dict(rows[0], id="G-new", plan_id="P-new", version="1")]  # decision D opened its plan already
    with pytest.raises(ImportProblems, match="opened plan"):
        importing.import_text(cur, "goals", _csv(other_decision), "goals.csv", framework, "test")
    fine = [
        dict(
            rows[0], id="G-new", plan_id="P-new", decision_id="", version="1", agreed_by="", agreed_on="", comments=""
        ),
        dict(
            rows[0], id="G-new", plan_id="P-new", decision_id="", version="2", agreed_by="", agreed_on="", comments=""
        ),
    ]
    result = importing.import_text(cur, "goals", _csv(fine), "goals.csv", framework, "test")
    assert result.added == 2
    assert cur.execute("SELECT opened_by FROM learning_plans WHERE id = 'P-new'").fetchone()[0] == rows[0]["learner_id"]


def test_the_trajectory_marks_each_goal_with_its_status_and_is_unchanged_without(cur, framework):
    from tracker.reports import charts

    traj = queries.trajectory_of(queries.trajectory(cur, viewer(cur, "L055"), "L055"), competency_id="teach-feedback")
    goals = plan_queries.learner_goals(cur, viewer(cur, "L055"), framework, "L055")
    plain = charts.trajectory_chart(traj, 1, 5, "Feedback").to_dict()
    assert plain == charts.trajectory_chart(traj, 1, 5, "Feedback", goals=charts.goal_marks(goals.head(0))).to_dict()
    marked = charts.trajectory_chart(traj, 1, 5, "Feedback", goals=charts.goal_marks(goals)).to_dict()
    assert len(marked["layer"]) == len(plain["layer"]) + 1
    diamond, words = marked["layer"][-1]["layer"]
    assert diamond["mark"]["shape"] == "diamond" and diamond["encoding"]["fill"]["field"] == "status"
    assert diamond["encoding"]["fill"]["scale"]["domain"] == ["met", "overdue", "open"]
    labels = [d["label"] for d in marked["datasets"][marked["layer"][-1]["data"]["name"]]]
    assert words["encoding"]["text"]["field"] == "label"
    assert labels == [f"goal {t:g}: {s}" for t, s in zip(goals["target_level"], goals["status"], strict=True)]


def test_the_benchmarks_bulk_load_holds_the_same_goals_and_review_as_the_importer(cur, empty_db):
    from bench.load import bulk_load

    fresh = empty_db.cursor()
    bulk_load(fresh, SAMPLE, "1GB")
    for kind in ("goals", "meetings", "decisions"):
        assert exporting.export_csv(fresh, kind) == exporting.export_csv(cur, kind), kind
    plans_of = "SELECT id, learner_id, decision_id FROM learning_plans ORDER BY id"
    assert fresh.execute(plans_of).fetchall() == cur.execute(plans_of).fetchall()


def test_decisions_recorded_before_plans_existed_open_theirs(cur, framework):
    want = cur.execute("SELECT id, learner_id, decision_id FROM learning_plans").fetchall()
    first = cur.execute("SELECT id FROM decisions WHERE learner_id = 'L001' AND replaces IS NULL").fetchone()[0]
    cur.execute("UPDATE decisions SET outcome = 'extend-program' WHERE id = ?", [first])  # a program's own outcome
    cur.execute("DELETE FROM learning_plans")
    opened = plan_actions.open_missing(cur, framework)
    got = cur.execute("SELECT id, learner_id, decision_id FROM learning_plans").fetchall()
    assert sorted(got) == sorted([*want, (f"P-{first}", "L001", first)]) and sorted(opened) == sorted(r[0] for r in got)
    assert plan_actions.open_missing(cur, framework) == []  # once


def test_the_command_line_exports_goals_and_refuses_them_again_naming_the_row(db_path, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "goals.csv"
    run = subprocess.run(
        [sys.executable, "-m", "tracker", "export", "goals", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert f"Wrote {len(rows)} goals" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "tracker", "import", "goals", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"goals.csv row 2, version: goal {rows[0]['id']!r} has version 1 already" in run.stderr


_cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=14)
_tried = iter(range(1_000_000))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(column=st.sampled_from(list(Goal.model_fields)), value=_cell)
def test_any_single_bad_cell_of_a_goals_file_is_refused_whole_or_lands_whole(cur, framework, column, value):
    row = {
        "id": f"G-prop-{next(_tried)}",
        "version": "1",
        "plan_id": "P-prop",
        "decision_id": "",
        "learner_id": "L001",
        "competency_id": next(iter(framework.competencies)),
        "target_level": "3.5",
        "by_term": "T6",
        "actions": "Teach twice.",
        "evidence": "",
        "written_by": "L001",
        "written_on": "2026-10-01",
        "agreed_by": "",
        "agreed_on": "",
        "comments": "",
    } | {column: value}
    before = exporting.export_csv(cur, "goals")
    try:
        result = importing.import_text(cur, "goals", _csv([row]), "goals.csv", framework, "test")
    except ImportProblems as exc:
        assert exc.problems and all(p.startswith("goals.csv row ") for p in exc.problems), exc.problems
        assert exporting.export_csv(cur, "goals") == before
    else:
        assert result.added == 1
        assert len(exporting.export_csv(cur, "goals").splitlines()) > len(before.splitlines())
