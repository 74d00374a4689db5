"""The assessment plan and overdue work in the real app (AppTest) on the sample program: the advisor's home, the
progress page's coverage, the cohort page's coverage and the coordinator's completion, each checked against the
raw rows."""

import pandas as pd
import pytest

from tests.conftest import app_as, goto, read


def _table(at, column: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The first table of the page with this column (tables without row selection have no key in AppTest)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _reference(cur, framework) -> dict:  # type: ignore[no-untyped-def]
    """From the raw rows: each active learner's term (their cohort's latest rated term), the assessed ratings of
    each competency in it, and their self-assessments waiting for review."""
    ratings = cur.execute("SELECT * FROM ratings").df()
    learners = cur.execute("SELECT * FROM learners").df().set_index("id")
    ratings = ratings[~ratings["id"].isin(ratings["corrects"].dropna())]  # corrections supersede
    ratings["t"] = ratings["term"].map(framework.term_index)
    ratings["cohort"] = ratings["learner_id"].map(learners["cohort"])
    cohort_term = ratings.groupby("cohort")["t"].max()
    term_of = learners["cohort"].map(cohort_term).fillna(1).astype(int)
    assessed = ratings[ratings["rater_role"] != "self"]
    this_term = assessed[assessed["t"] == assessed["learner_id"].map(term_of)]
    counts = this_term.groupby(["learner_id", "competency_id"]).size()
    active = learners[learners["status"] == "active"]
    short = {}
    for lid in active.index:
        mine = counts[lid] if lid in counts.index.get_level_values(0) else pd.Series(dtype=int)
        lacking = [c for c in framework.competencies if mine.get(c, 0) < (framework.plan_for(c).ratings_per_term or 0)]
        if mine.empty or lacking:
            short[lid] = (int(mine.astype(bool).sum()), lacking)
    last_assessed = assessed.groupby(["learner_id", "competency_id"])["rated_on"].max()
    selfs = ratings[ratings["rater_role"] == "self"]
    after = selfs[selfs["rated_on"] > selfs.set_index(["learner_id", "competency_id"]).index.map(last_assessed)]
    unassessed = selfs[~selfs.set_index(["learner_id", "competency_id"]).index.isin(last_assessed.index)]
    waiting = pd.concat([after, unassessed])
    waiting = waiting[waiting["learner_id"].isin(active.index)]
    return {"learners": learners, "active": active, "short": short, "waiting": waiting, "term_of": term_of}


def test_an_advisor_home_lists_advisees_to_rate_and_self_assessments_waiting(db_path, cur, framework):
    ref = _reference(cur, framework)
    mine = ref["active"][ref["active"]["advisor_id"] == "A002"].index
    to_rate = {lid for lid in ref["short"] if lid in mine}
    waiting = ref["waiting"][ref["waiting"]["learner_id"].isin(mine)]
    at = app_as("a002")
    assert any(h.value == f"Ratings this term: {len(to_rate)} advisees to rate" for h in at.subheader)
    table = at.dataframe(key="home.to_rate").value
    shown = {ref["learners"].index[ref["learners"]["name"] == n][0] for n in table["learner_name"]}
    assert shown == to_rate and to_rate  # the sample plan is met only in part
    none_first = table["rated_this_term"].tolist()
    assert none_first == sorted(none_first)
    for row in table.itertuples():
        lid = ref["learners"].index[ref["learners"]["name"] == row.learner_name][0]
        rated, lacking = ref["short"][lid]
        assert row.rated_this_term == rated
        if rated == 0:
            assert row.missing == "no advisor or committee rating yet this term"
        else:
            assert row.missing.startswith("short of the plan: ") and row.missing.count(":") == len(lacking) + 1
    queue = at.dataframe(key="home.queue").value
    per_learner = waiting.groupby("learner_id").agg(n=("competency_id", "nunique"), since=("rated_on", "min"))
    assert len(queue) == len(per_learner) > 0
    assert queue["waiting_since"].tolist() == sorted(queue["waiting_since"].tolist())  # longest waiting first
    for row in queue.itertuples():
        lid = ref["learners"].index[ref["learners"]["name"] == row.learner_name][0]
        assert row.competencies == per_learner.loc[lid, "n"]
        assert pd.Timestamp(row.waiting_since) == pd.Timestamp(per_learner.loc[lid, "since"])


def test_the_progress_page_shows_coverage_and_marks_a_standing_on_too_few_ratings(db_path, cur, framework):
    ref = _reference(cur, framework)
    assessed = cur.execute(
        "SELECT learner_id, term, count(*) AS n FROM ratings WHERE competency_id = 'res-methods' AND rater_role <> 'self' "
        "AND id NOT IN (SELECT corrects FROM ratings WHERE corrects IS NOT NULL) GROUP BY ALL"
    ).df()
    assessed["t"] = assessed["term"].map(framework.term_index)
    latest = assessed.sort_values("t").groupby("learner_id").last()
    mine = ref["active"][ref["active"]["advisor_id"] == "A002"].index
    thin = [lid for lid in mine if lid in latest.index and latest.loc[lid, "n"] < 2]
    full = [lid for lid in mine if lid in latest.index and latest.loc[lid, "n"] >= 2]
    assert thin and full  # the sample has both
    name = framework.competencies["res-methods"].name
    for lid, marked in ((thin[0], True), (full[0], False)):
        at = app_as("a002", {"learner": lid})
        goto(at, "progress")
        at.selectbox(key="progress.learner_id").set_value(lid).run()
        table = _table(at, "coverage").set_index("competency_name")
        row = table.loc[name]
        assert row.standing.endswith(", rests on 1 of 2 ratings") is marked, (lid, row.standing)
        in_term = (assessed["learner_id"] == lid) & (assessed["t"] == ref["term_of"][lid])
        here = int(assessed.loc[in_term, "n"].sum())
        words = f"{here} of 2 ratings this term; " if here < 2 else f"{here} ratings this term (plan: 2); "
        assert row.coverage.startswith(words), row.coverage
        captions = [read(c.value) for c in at.caption]
        assert any(c.startswith("Standing on fewer ratings than the assessment plan asks") for c in captions) is marked


def test_the_cohort_page_shows_plan_coverage_and_completion_for_coordinators(db_path, cur, framework):
    ref = _reference(cur, framework)
    at = goto(app_as("k001"), "cohort")
    plan = _table(at, "raters_share").set_index("competency_name")
    active = len(ref["active"])
    methods = plan.loc[framework.competencies["res-methods"].name]
    met = sum(1 for lid in ref["active"].index if lid not in ref["short"] or "res-methods" not in ref["short"][lid][1])
    assert methods["ratings"] == f"{met} of {active}"
    assert methods["plan"] == "2 ratings a term; 2 raters; 1 evidence item by T3"
    per_advisor = _table(at, "advisor_name").set_index("advisor_id")
    for advisor, learners in ref["active"].groupby("advisor_id"):
        complete = sum(1 for lid in learners.index if lid not in ref["short"])
        assert (per_advisor.loc[advisor, "learners"], per_advisor.loc[advisor, "complete"]) == (len(learners), complete)
    per_cohort = next(d.value for d in at.dataframe if {"cohort", "share_complete"} <= set(d.value.columns)).set_index(
        "cohort"
    )
    assert per_cohort["learners"].sum() == active
    assert per_cohort["rated_this_term"].sum() == sum(
        1 for lid in ref["active"].index if ref["short"].get(lid, (1,))[0] > 0
    )
    assert {b.label for b in at.get("download_button")} >= {
        "Download completion per advisor as CSV",
        "Download completion per cohort as CSV",
    }


@pytest.mark.parametrize("user", ["c001", "a002"])
def test_only_coordinators_see_completion(db_path, user):
    at = goto(app_as(user), "cohort")
    columns = [set(d.value.columns) for d in at.dataframe]
    assert any("raters_share" in c for c in columns) and not any("share_complete" in c for c in columns)
    assert not any(s.value == "Completion this term" for s in at.subheader)


def test_an_advisors_cohort_page_covers_only_their_advisees(db_path, cur, framework):
    ref = _reference(cur, framework)
    at = goto(app_as("a002"), "cohort")
    plan = _table(at, "raters_share")
    mine = ref["active"][ref["active"]["advisor_id"] == "A002"]
    assert set(plan["ratings"].str.split(" of ").str[1].astype(int)) == {len(mine)}
