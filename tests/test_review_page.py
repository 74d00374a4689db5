"""A whole review meeting through the real app: set up, two learners decided, a consensus level changed with a
comment, sign-off, the learner and the advisor reading the result, and a later revision."""

import datetime as dt

from tests.conftest import app_as, goto, read, viewer
from tracker.review import review_queries

COHORT = "2025-09"


def _messages(at) -> list[str]:
    return [read(m.value) for m in (*at.success, *at.error, *at.info)]


def _table(at, column: str):
    """The table on the page with this column (AppTest finds dataframes by position, not key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _texts(at) -> list[str]:
    return [t.value for t in at.text]


def _set_up(cur) -> tuple[str, list[str]]:
    at = goto(app_as("k001"), "review")
    assert at.selectbox(key="review.meeting").value != "new"  # the sample's signed review opens first
    at.selectbox(key="review.meeting").select("new").run()
    at.text_input(key="review.title").input("Autumn progress committee")
    at.text_input(key="review.period").input("End of term")
    at.date_input(key="review.held_on").set_value(dt.date(2026, 11, 24))
    at.selectbox(key="review.cohort").select(COHORT)
    at.selectbox(key="review.chair").select("C001")
    at.multiselect(key="review.members").select("C002")
    at.radio(key="review.agenda_mode").set_value("cohort").run()
    assert not at.exception, [e.message for e in at.exception]
    at.button(key="review.create").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert "The meeting is set up with" in " ".join(_messages(at))
    meeting = cur.execute("SELECT id, chair_id, members FROM review_meetings WHERE cohort = ?", [COHORT]).fetchall()
    assert len(meeting) == 1 and meeting[0][1:] == ("C001", ["C001", "C002"])
    agenda = [
        r[0]
        for r in cur.execute(
            "SELECT learner_id FROM review_agenda WHERE meeting_id = ? ORDER BY position", [meeting[0][0]]
        ).fetchall()
    ]
    active = cur.execute("SELECT id FROM learners WHERE cohort = ? AND status = 'active'", [COHORT]).fetchall()
    assert sorted(agenda) == sorted(r[0] for r in active)
    assert not at.get("form"), "the coordinator sets up and reads; only members decide"
    return meeting[0][0], agenda


def _decide(at, meeting: str, first: str, second: str) -> None:
    assert at.selectbox(key=f"review.learner.{meeting}").value == first
    at.selectbox(key="review.level_competency").select("res-dissemination")
    at.selectbox(key="review.level_value").select(4.5)
    at.text_area(key="review.level_comment").input("The published poster shows more than the advisor rated.")
    at.button(key="review.level_submit").click().run()
    assert not at.exception, [e.message for e in at.exception]
    at.text_input(key="review.action_text").input("Agree a learning plan with the advisor")
    at.button(key="review.action_submit").click().run()
    at.selectbox(key=f"review.outcome.{first}").select("learning-plan")
    at.text_area(key=f"review.rationale.{first}").input("Research methods lag two terms behind.")
    at.button(key="review.save_next").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox(key=f"review.learner.{meeting}").value == second
    at.selectbox(key=f"review.outcome.{second}").select("on-track")
    at.button(key="review.save").click().run()
    assert not at.exception, [e.message for e in at.exception]


def test_a_whole_meeting_from_agenda_to_revision(db_path, cur, framework):
    meeting, agenda = _set_up(cur)
    first, second = agenda[:2]
    chair = goto(app_as("c001"), "review")
    _decide(chair, meeting, first, second)
    # going back keeps what was entered
    chair.selectbox(key=f"review.learner.{meeting}").select(first).run()
    assert chair.selectbox(key=f"review.outcome.{first}").value == "learning-plan"
    assert chair.text_area(key=f"review.rationale.{first}").value == "Research methods lag two terms behind."
    consensus = _table(chair, "consensus").set_index("competency_name")
    name = framework.competencies["res-dissemination"].name
    assert consensus.at[name, "consensus"] == 4.5 and consensus.at[name, "comment"].startswith("The published")
    # nothing is visible to the learner before sign-off
    learner = goto(app_as(first.lower()), "progress")
    assert "Committee decisions" not in [s.value for s in learner.subheader]

    chair.checkbox(key="review.sure").check().run()
    chair.button(key="review.sign_off").click().run()
    assert not chair.exception, [e.message for e in chair.exception]
    assert "Signed off: 2 decisions are final." in _messages(chair)
    signed = cur.execute(
        "SELECT learner_id, outcome, rationale FROM decisions WHERE meeting_id = ? ORDER BY learner_id", [meeting]
    ).fetchall()
    assert sorted(signed) == sorted(
        [(first, "learning-plan", "Research methods lag two terms behind."), (second, "on-track", "")]
    )
    rating = cur.execute(
        "SELECT level, rater_id, comment FROM ratings WHERE rater_role = 'committee' AND learner_id = ? "
        "AND rated_on = DATE '2026-11-24'",  # the meeting's day: the sample holds earlier committee ratings
        [first],
    ).fetchall()
    assert [(float(r[0]), r[1]) for r in rating] == [(4.5, "C001")] and "published poster" in rating[0][2]
    assert chair.get("download_button"), "the minutes"

    # the learner reads their decision and rationale on the home and progress pages
    for page in ("home", "progress"):
        learner = goto(app_as(first.lower()), page)
        assert "Committee decisions" in [s.value for s in learner.subheader], page
        assert "Research methods lag two terms behind." in _texts(learner), page
        assert any("Learning plan required" in read(m.value) for m in learner.markdown), page
    # the advisor of the second learner reads theirs; not the first learner's
    advisor_id = cur.execute("SELECT advisor_id FROM learners WHERE id = ?", [second]).fetchone()[0]
    adv = goto(app_as(advisor_id.lower(), {"learner": second}), "progress")
    assert any("On track" in read(m.value) for m in adv.markdown)
    advisor = viewer(cur, advisor_id)
    seen = set(review_queries.learner_decisions(cur, advisor)["learner_id"])
    decided = cur.execute(
        "SELECT d.learner_id FROM decisions d JOIN learners l ON l.id = d.learner_id WHERE l.advisor_id = ?",
        [advisor_id],
    ).fetchall()
    assert seen == {r[0] for r in decided} and second in seen

    # a later revision by another member: a new decision naming the one it replaces
    member = goto(app_as("c002"), "review")
    old = cur.execute("SELECT id FROM decisions WHERE learner_id = ?", [second]).fetchone()[0]
    member.selectbox(key="review.revise_which").select(old)
    member.selectbox(key="review.revise_outcome").select("monitor")
    member.text_area(key="review.revise_rationale").input("A placement report raises concerns.")
    member.button(key="review.revise_submit").click().run()
    assert not member.exception, [e.message for e in member.exception]
    rows = cur.execute("SELECT outcome, replaces FROM decisions WHERE learner_id = ? ORDER BY seq", [second]).fetchall()
    assert rows == [("on-track", None), ("monitor", old)]
    table = _table(member, "replaces")
    assert set(table["replaces"].dropna()) == {old}
    cohort = goto(app_as("c002"), "cohort")
    cohort.selectbox(key="cohort.cohort").select(COHORT).run()
    counts = next(t.value for t in cohort.table if "Learners" in t.value.columns)
    assert dict(zip(map(read, counts["Outcome"]), counts["Learners"].astype(int), strict=True)) == {
        "Learning plan required": 1,
        "Monitor": 1,
    }


def test_the_outcome_needs_a_rationale_unless_on_track(db_path, cur):
    _, agenda = _set_up(cur)
    chair = goto(app_as("c001"), "review")
    chair.selectbox(key=f"review.outcome.{agenda[0]}").select("monitor")
    chair.button(key="review.save").click().run()
    assert any("needs one" in m for m in _messages(chair))
    assert cur.execute("SELECT count(*) FROM decision_drafts").fetchone()[0] == 0
    assert cur.execute("SELECT count(*) FROM decisions WHERE learner_id = ?", [agenda[0]]).fetchone()[0] == 0
    # a changed consensus level without a comment is refused beside its form, which keeps the level chosen
    chair.selectbox(key="review.level_competency").select("res-dissemination")
    chair.selectbox(key="review.level_value").select(4.5)
    chair.button(key="review.level_submit").click().run()
    assert not chair.exception, [e.message for e in chair.exception]
    assert any("needs a comment" in m for m in _messages(chair))
    assert chair.selectbox(key="review.level_value").value == 4.5
    assert cur.execute("SELECT count(*) FROM decision_drafts").fetchone()[0] == 0


def test_a_learner_and_an_advisor_cannot_open_the_meeting_page(db_path, cur):
    _set_up(cur)
    for user in ("l001", "a002"):
        at = goto(app_as(user), "review")
        assert [read(e.value) for e in at.error] == [
            "This page is not available to you: it is for committee or coordinator."
        ]
        assert not at.dataframe and not at.get("form")
