"""Trying to break access: every route to another learner's records is refused, logged, and shows nothing."""

import pytest

from tests.conftest import app_as, goto, read, viewer
from tracker.analysis import queries
from tracker.core.errors import PermissionDenied
from tracker.records import actions, exporting

NASTY = "<script>alert('x')</script> **bold** [link](http://evil.example) '; DROP TABLE ratings; --"


def denials(cur) -> int:
    return cur.execute("SELECT count(*) FROM audit_log WHERE action = 'permission denied'").fetchone()[0]


@pytest.mark.parametrize(
    "query", [queries.competency_standing, queries.trajectory, queries.rating_history, queries.evidence_items]
)
def test_learner_cannot_read_another_learners_records_through_the_query_layer(cur, query):
    learner = viewer(cur, "L001")
    before = denials(cur)
    with pytest.raises(PermissionDenied, match="learner L002"):
        if query is queries.competency_standing:
            query(cur, learner, learner_id="L002")
        else:
            query(cur, learner, "L002")
    assert denials(cur) == before + 1


def test_learner_scope_without_a_filter_is_only_their_own(cur):
    learner = viewer(cur, "L001")
    assert set(queries.competency_standing(cur, learner)["learner_id"]) == {"L001"}
    assert queries.visible_learners(cur, learner)["id"].tolist() == ["L001"]
    assert set(queries.cohort_trajectory(cur, learner)["learners"]) == {1}


def test_advisor_sees_advisees_only(cur, framework):
    advisees = {r[0] for r in cur.execute("SELECT id FROM learners WHERE advisor_id = 'A002'").fetchall()}
    other = cur.execute("SELECT id FROM learners WHERE advisor_id <> 'A002' LIMIT 1").fetchone()[0]
    advisor = viewer(cur, "A002")
    assert set(queries.competency_standing(cur, advisor)["learner_id"]) == advisees
    with pytest.raises(PermissionDenied):
        queries.trajectory(cur, advisor, other)
    with pytest.raises(PermissionDenied):
        actions.record_rating(cur, framework, advisor, other, "teach-methods", 3, "T1", "x")


def test_summaries_count_only_the_learners_a_viewer_may_see(cur, framework):
    """The cohort pages' summaries are scoped in SQL: an advisor asking for another advisor's learners, or a
    learner asking for the program, gets their own scope, never more."""
    advisees = {r[0] for r in cur.execute("SELECT id FROM learners WHERE advisor_id = 'A002'").fetchall()}
    advisor, learner = viewer(cur, "A002"), viewer(cur, "L001")
    assert queries.selection_totals(cur, advisor)["learners"] == len(advisees)
    committee = viewer(cur, "C001")
    others = queries.learners_behind(cur, committee)["learner_id"].tolist()
    other_advisor = cur.execute("SELECT advisor_id FROM learners WHERE id = ?", [others[0]]).fetchone()[0]
    assert other_advisor != "A002" and not queries.learners_behind(cur, committee, advisor=other_advisor).empty
    assert queries.learners_behind(cur, advisor, advisor=other_advisor).empty  # another advisor's advisees: none
    assert queries.selection_totals(cur, learner)["learners"] == 1
    assert set(queries.learners_behind(cur, advisor)["learner_id"]) <= advisees
    assert set(queries.furthest_behind(cur, advisor, limit=1000)["learner_id"]) <= advisees
    assert queries.level_distribution(cur, learner)["learners"].sum() <= len(framework.competencies)
    assert queries.cohort_overview(cur, learner)["learners"].sum() == 1
    priors = queries.program_priors(cur)
    assert set(queries.graduation_risk(cur, advisor, priors, framework)["learner_id"]) <= advisees
    assert set(queries.growth_forecast(cur, learner, priors, framework)["learner_id"]) == {"L001"}
    with pytest.raises(PermissionDenied):
        queries.growth_forecast(cur, learner, priors, framework, learner_id="L002")


def test_writes_are_scoped(cur, framework):
    learner = viewer(cur, "L001")
    with pytest.raises(PermissionDenied):
        actions.record_rating(cur, framework, learner, "L002", "teach-methods", 3, "T1", "")
    with pytest.raises(PermissionDenied):
        actions.record_evidence(cur, framework, learner, "L002", "reflection", "x", ["teach-methods"])
    other_evidence = cur.execute("SELECT id FROM evidence WHERE learner_id = 'L002' LIMIT 1").fetchone()[0]
    with pytest.raises(PermissionDenied, match="evidence_ids: no evidence"):
        actions.record_rating(cur, framework, learner, "L001", "teach-methods", 3, "T1", "", [other_evidence])
    rating = actions.record_rating(cur, framework, learner, "L001", "teach-methods", 3, "T1", "mine")
    assert rating.rater_role.value == "self"
    committee = viewer(cur, "C001")
    assert (
        actions.record_rating(cur, framework, committee, "L002", "teach-methods", 2, "T1", "").rater_role.value
        == "committee"
    )


def test_only_coordinators_read_the_audit_log_and_export(cur):
    for person in ("L001", "A002", "C001"):
        with pytest.raises(PermissionDenied):
            queries.audit_log(cur, viewer(cur, person))
        with pytest.raises(PermissionDenied):
            exporting.export_records(cur, viewer(cur, person), "ratings")
    assert not queries.audit_log(cur, viewer(cur, "K001")).empty


def _page_text(at) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.text] + [e.value for e in at.caption]
    parts += [str(e.value) for e in at.error] + [str(e.value) for e in at.title]
    return "\n".join(map(str, parts))


def test_query_parameter_for_another_learner_is_refused_on_the_page(db_path, cur):
    other_name = cur.execute("SELECT name FROM learners WHERE id = 'L002'").fetchone()[0]
    at = goto(app_as("l001", query={"learner": "L002"}), "progress")
    assert [read(e.value) for e in at.error] == ["You do not have access to the records of learner L002."]
    assert other_name not in _page_text(at)
    assert not at.dataframe


def test_session_state_for_another_learner_is_refused_on_the_page(db_path):
    at = app_as("l001")
    at.session_state["progress.learner_id"] = "L002"
    goto(at, "progress")
    assert [read(e.value) for e in at.error] == ["You do not have access to the records of learner L002."]


def test_advisor_cannot_open_a_non_advisee_by_any_route(db_path, cur):
    other = cur.execute("SELECT id FROM learners WHERE advisor_id <> 'A002' ORDER BY id LIMIT 1").fetchone()[0]
    at = goto(app_as("a002", query={"learner": other}), "progress")
    assert [read(e.value) for e in at.error] == [f"You do not have access to the records of learner {other}."]
    at = app_as("a002")
    at.session_state["progress.learner_id"] = other
    goto(at, "progress")
    assert at.error


def test_a_forged_or_ended_session_shows_only_sign_in(db_path, cur):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.session_state["auth.token"] = "forged-token"
    at.run()
    assert [t.value for t in at.title] == ["Milestone"]
    assert at.text_input(key="sign_in.password")
    assert not at.dataframe


@pytest.mark.parametrize(
    ("user", "page"),
    [
        ("l001", "cohort"),
        ("l001", "records"),
        ("a002", "import"),
        ("c001", "records"),
        ("l001", "accounts"),
        ("a002", "accounts"),
        ("a001", "accounts"),
        ("c001", "accounts"),
    ],
)
def test_a_page_outside_ones_roles_says_so_and_is_audited(db_path, cur, user, page):
    at = goto(app_as(user), page)
    assert [read(e.value) for e in at.error] == [
        f"This page is not available to you: it is for {'coordinator' if page in ('import', 'records', 'accounts') else 'advisor or committee or coordinator'}."
    ]
    assert not at.dataframe and not at.get("download_button")
    person = viewer(cur, user.upper()).person_id
    assert (
        cur.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'permission denied' AND actor = ? AND target = ?",
            [person, f"the page {page}"],
        ).fetchone()[0]
        == 1
    )


def test_untrusted_text_is_stored_and_shown_verbatim(db_path, cur, framework):
    actions.record_rating(cur, framework, viewer(cur, "A002"), _advisee(cur), "teach-methods", 3, "T1", NASTY)
    stored = cur.execute("SELECT comment FROM ratings WHERE comment = ?", [NASTY]).fetchone()
    assert stored == (NASTY,)
    assert cur.execute("SELECT count(*) FROM ratings").fetchone()[0] > 0  # the table is still there
    at = app_as("a002")
    at.session_state["progress.learner_id"] = _advisee(cur)
    goto(at, "progress")
    assert NASTY in [t.value for t in at.text]  # st.text: shown as typed, never as HTML or Markdown


def test_markdown_escaping_keeps_names_literal():
    from pages.views.widgets import plain

    assert plain("**x** [y](z) <b>") == r"\*\*x\*\* \[y\]\(z\) \<b\>"


def _advisee(cur) -> str:
    return cur.execute(
        "SELECT id FROM learners WHERE advisor_id = 'A002' AND status = 'active' ORDER BY id LIMIT 1"
    ).fetchone()[0]
