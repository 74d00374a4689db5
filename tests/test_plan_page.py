"""The learning plan through the real app: the learner writes a goal, the advisor agrees, the committee reads, a
stranger is refused; the progress page shows the goals and the trajectory marks them."""

import json

import pyarrow as pa

from tests.conftest import app_as, goto, read, viewer
from tracker.plans import plan_queries

HOSTILE = "**Bold** [click](javascript:alert(1)) <b>x</b> :red[alarm] $x$"


def _page(user: str, learner: str | None = None):
    return goto(app_as(user, {"learner": learner} if learner else None), "plan")


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def _markdown(at) -> str:
    return " ".join(read(m.value) for m in at.markdown)


def _texts(at) -> list[str]:
    return [t.value for t in at.text]


def test_the_learner_writes_a_goal_and_reads_it_as_typed(cur, framework):
    at = _page("l055")
    assert at.title[0].value == "My learning plan"
    assert "Opened by the committee's decision of 2026-08-22: **Learning plan required** (D-L055-T5)" in _markdown(at)
    before = plan_queries.learner_goals(cur, viewer(cur, "L055"), framework, "L055")
    for words in before["status_words"]:
        assert words in _markdown(at)
    at.selectbox(key="plan.new.competency").select("teach-methods").run()
    at.selectbox(key="plan.new.0.target").select(3.5)
    at.selectbox(key="plan.new.0.by_term").select("T6")
    at.text_area(key="plan.new.0.actions").input(HOSTILE)
    at.text_area(key="plan.new.0.evidence").input("Two observed sessions")
    _button(at, "Save goal").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Saved your goal" in read(s.value) for s in at.success)
    after = plan_queries.learner_goals(cur, viewer(cur, "L055"), framework, "L055")
    new = after[~after["goal_id"].isin(before["goal_id"])]
    assert new[["competency_id", "target_level", "by_term", "actions"]].values.tolist() == [
        ["teach-methods", 3.5, "T6", HOSTILE]
    ]
    assert HOSTILE in _texts(at)  # shown as text, never as Markdown
    assert at.text_area(key="plan.new.1.actions").value == ""  # the next goal starts empty
    assert all("javascript" not in m.value or "\\" in m.value for m in at.markdown)
    assert cur.execute("SELECT count(*) FROM audit_log WHERE action = 'goal' AND actor = 'L055'").fetchone()[0] == 1


def test_the_advisor_agrees_a_changed_goal_and_the_whole_plan(cur, framework):
    at = _page("a006", "L055")
    waiting = plan_queries.learner_goals(cur, viewer(cur, "A006"), framework, "L055")
    waiting = waiting[waiting["agreed_by"].isna()]
    assert waiting["goal_id"].tolist() == ["G-L055-1"]  # the sample's goal changed after its agreement
    assert "Changed since it was agreed: needs agreeing again · version 2" in " ".join(
        read(c.value) for c in at.caption
    )
    assert _button(at, "Agree the whole plan (1 goal waiting)")
    at.button(key="plan.agree.G-L055-1.2").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Agreed 1 goal." in read(s.value) for s in at.success)
    agreed = cur.execute("SELECT agreed_by FROM goal_agreements WHERE goal_id = 'G-L055-1' AND version = 2").fetchall()
    assert agreed == [("A006",)]
    assert not [b for b in at.button if b.label.startswith("Agree")]
    at.text_input(key="plan.comment.G-L055-2").input("Bring the evaluations on Friday.")
    next(b for b in at.button if b.label == "Add comment").click().run()
    assert "Bring the evaluations on Friday." in _texts(at)
    assert not [b for b in at.button if b.label.startswith("Save")], "the advisor does not write the goals"


def test_the_committee_and_coordinators_read_without_writing(cur, framework):
    goals = plan_queries.learner_goals(cur, viewer(cur, "C001"), framework, "L055")
    for user in ("c001", "k001"):
        at = _page(user, "L055")
        assert at.title[0].value == "Learning plan"
        for words in goals["status_words"]:
            assert words in _markdown(at)
        assert not [b for b in at.button if b.label.startswith(("Agree", "Save", "Add comment"))], user
        assert not at.get("form"), user


def test_a_learner_asking_for_anothers_plan_is_refused(cur):
    at = _page("l001", "L055")
    assert any("You do not have access" in read(e.value) for e in at.error)
    assert "Ewa Dubois" not in _markdown(at) and not any("Practise" in t for t in _texts(at))
    assert not at.get("form")
    assert (
        cur.execute("SELECT count(*) FROM audit_log WHERE action = 'permission denied' AND actor = 'L001'").fetchone()[
            0
        ]
        >= 1
    )


def test_progress_shows_the_goals_and_the_trajectory_marks_them(cur, framework):
    at = goto(app_as("l055"), "progress")
    assert "Learning plan" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "status_words" in d.value.columns)
    goals = plan_queries.learner_goals(cur, viewer(cur, "L055"), framework, "L055")
    assert sorted(table["status_words"]) == sorted(goals["status_words"])
    at.selectbox(key="progress.trajectory_of").select(("competency", "res-dissemination")).run()
    assert not at.exception, [e.message for e in at.exception]
    chart = next(
        c.proto
        for c in at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
        if "level by term" in str(json.loads(c.proto.spec).get("title"))
    )
    assert "a goal of the learning plan" in json.loads(chart.spec)["title"]["subtitle"]
    frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.datasets]
    marks = next(f for f in frames if "target_level" in f.columns)
    want = goals[goals["competency_id"] == "res-dissemination"]
    assert len(want) == 1
    assert (
        marks[["term", "target_level", "status"]].values.tolist()
        == want[["by_term", "target_level", "status"]].values.tolist()
    )


def test_home_says_what_of_the_plans_waits_for_the_learner_and_the_advisor(cur, framework):
    from tracker.review import review_actions

    at = app_as("a006")
    table = next(d.value for d in at.dataframe if "goals" in d.value.columns)
    goals = plan_queries.learner_goals(cur, viewer(cur, "A006"), framework)
    waiting = goals[(goals["advisor_id"] == "A006") & goals["agreed_by"].isna()]
    assert table[["learner_name", "goals"]].values.tolist() == [["Ewa Dubois", len(waiting)]]
    assert "Learning plans waiting for your agreement" in [h.value for h in at.subheader]
    assert "Learning plans waiting for your agreement" not in [h.value for h in app_as("a002").subheader]
    first = cur.execute("SELECT id FROM decisions WHERE learner_id = 'L001' AND replaces IS NULL").fetchone()[0]
    review_actions.revise_decision(cur, framework, viewer(cur, "C001"), first, "learning-plan", "Two competencies lag.")
    home = app_as("l001")
    assert any("asks for a learning plan" in read(i.value) for i in home.info)
    assert not any("asks for a learning plan" in read(i.value) for i in app_as("l004").info)


def test_a_closed_plan_shows_how_it_closed_and_its_goals_folded_read_only(cur, framework):
    # the sample's committee revised L052's "learning plan required" to "monitor" on 2026-09-19
    at = _page("c001", "L052")
    assert not at.exception, [e.message for e in at.exception]
    captions = " ".join(read(c.value) for c in at.caption)
    assert "Closed by the committee's decision of 2026-09-19: Monitor (D-L052-T5-r1)" in captions
    assert [e.label for e in at.expander if e.label.startswith("Goals of closed plans")] == [
        "Goals of closed plans (2), kept as they were"
    ]
    goals = plan_queries.learner_goals(cur, viewer(cur, "C001"), framework, "L052")
    for words in goals["status_words"]:
        assert words in _markdown(at)  # read, inside the fold
    assert not [b for b in at.button if b.label.startswith(("Agree", "Add comment"))]
    learner = _page("l052")
    assert any("No goal in an open plan." in read(i.value) for i in learner.info)
    assert learner.get("form"), "the learner can start a new goal"
    assert not [e for e in learner.expander if e.label == "Change this goal"]
