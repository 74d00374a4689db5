"""Home pages: each role's first question answered at the top, with the action beside it, figures computed
independently from the raw rows."""

import pandas as pd

from pages.views.widgets import CARDS_PER_PAGE, LEARNER_KEY
from tests.conftest import app_as, read, viewer
from tests.reference import reference_standing
from tracker.analysis import queries
from tracker.analysis.forecast import Priors
from tracker.review import agendas


def _metric(at, label: str) -> str:  # type: ignore[no-untyped-def]
    return next(m.value for m in at.metric if m.label == label)


def _cards(at, key: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The learner ids of the cards shown under `key`, in page order."""
    prefix = f"{key}.open."
    return [b.key[len(prefix) :] for b in at.button if b.key and b.key.startswith(prefix)]


def test_learner_home_says_where_they_stand_per_domain_and_what_to_work_on(db_path, cur, framework):
    ref = reference_standing(cur, framework)
    mine = ref[ref["learner_id"] == "L001"]
    at = app_as("l001")
    texts = [read(m.value) for m in at.markdown]
    subheaders = [s.value for s in at.subheader]
    assert subheaders[:2] == ["Where you stand", "What to work on next"]  # both before anything else
    for domain in framework.domains:
        rows = mine[mine["competency_id"].isin([c.id for c in domain.competencies])]
        rated = rows["level"].dropna()
        card = next(t for t in texts if t.startswith(f"**{domain.name}**"))
        assert f"{len(rated)} of {len(rows)} rated" in card
        metric = next(m for m in at.metric if read(m.label) == domain.name)
        assert metric.value == f"{rated.mean():.1f}"
    below = mine.dropna(subset=["level"]).assign(gap=lambda f: f["level"] - f["expected"])
    below = below[below["gap"] < 0]
    focus = [t for t in texts if t.startswith("- **")]
    assert len(focus) == min(5, len(below)) > 0
    worst = below.sort_values("gap").iloc[0]
    assert any(t.startswith(f"- **{framework.competencies[worst['competency_id']].name}**") for t in focus)
    assert {p.label for p in at.page_link} >= {
        "Rate yourself and add evidence",
        "See every competency and your forecast",
    }


def test_advisor_home_lists_who_needs_them_and_opens_the_learner(db_path, cur, framework):
    ratings = cur.execute(
        "SELECT r.learner_id, r.rater_role = 'self' AS is_self, max(r.term_index) AS t FROM ratings r "
        "JOIN learners l ON l.id = r.learner_id WHERE l.status = 'active' AND l.advisor_id = 'A003' GROUP BY ALL"
    ).df()
    wide = ratings.pivot_table(index="learner_id", columns="is_self", values="t", aggfunc="max").fillna(0)
    to_rate = set(wide.index[wide[True] > wide[False]])
    ref = reference_standing(cur, framework)
    behind = set(ref[(ref["advisor_id"] == "A003") & (ref["standing"] == "behind")]["learner_id"])
    at = app_as("a003")
    assert _metric(at, "To rate this term") == str(len(to_rate))
    assert _metric(at, "Behind the expected trajectory") == str(len(behind))
    shown = _cards(at, "home.advisees")
    assert to_rate | behind <= set(shown)
    assert shown[: len(to_rate)] and set(shown[: len(to_rate)]) == to_rate  # those waiting for a rating first
    first = shown[0]
    text = next(read(m.value) for m in at.markdown if "**Rate**" in m.value)
    assert "they self-assessed, with no rating of yours yet" in text
    at.button(key=f"home.advisees.open.{first}").click().run()
    assert not at.exception
    assert at.session_state[LEARNER_KEY] == first
    assert at.selectbox(key=LEARNER_KEY).value == first  # on the progress page, the learner chosen


def test_committee_home_lists_who_needs_discussion_a_page_at_a_time(db_path, cur, framework):
    committee = viewer(cur, "C001")
    priors: Priors = queries.program_priors(cur, framework=framework)
    agenda = agendas.proposed_agenda(cur, committee, framework, priors, brief=True)
    full = agendas.proposed_agenda(cur, committee, framework, priors)
    assert list(agenda["learner_id"]) == list(full["learner_id"]) and len(agenda) > CARDS_PER_PAGE
    at = app_as("c001")
    assert at.subheader[0].value == "Who needs discussion"
    assert _cards(at, "home.discuss") == list(agenda["learner_id"][:CARDS_PER_PAGE])
    assert any(c.value.startswith(f"{len(agenda)} learners") for c in at.caption)
    assert "Plan a review meeting" in [p.label for p in at.page_link]
    # a reason names the competencies furthest behind and how many more, never the whole list
    behind = queries.learners_behind(cur, committee).set_index("learner_id")
    worst = behind[behind["behind"] > queries.WHY_FIRST].index[0]
    reasons = agendas.reason_list(agenda.set_index("learner_id").at[worst, "reasons"])
    more = int(behind.at[worst, "behind"]) - queries.WHY_FIRST
    assert reasons[0].endswith(f"; and {more} more)")
    assert reasons[0].count(": level ") == queries.WHY_FIRST
    at.number_input(key="home.discuss.page").set_value(2).run()
    assert _cards(at, "home.discuss") == list(agenda["learner_id"][CARDS_PER_PAGE : 2 * CARDS_PER_PAGE])


def test_reasons_split_between_reasons_never_inside_one():
    text = "behind in 2 competencies (A (X): level 1, expected 2; B (Y): level 1, expected 2); at risk: 5%"
    assert agendas.reason_list(text) == [
        "behind in 2 competencies (A (X): level 1, expected 2; B (Y): level 1, expected 2)",
        "at risk: 5%",
    ]
    assert agendas.reason_list("unbalanced ) here; next") == ["unbalanced ) here", "next"]
    assert agendas.reason_list("") == []


def test_advisee_work_matches_the_queries_it_combines(db_path, cur):
    advisor = viewer(cur, "A003")
    work = queries.advisee_work(cur, advisor, "A003").set_index("learner_id")
    queue = queries.review_queue(cur, advisor).set_index("learner_id")
    for learner_id, row in work.iterrows():
        assert row["to_review"] == (queue.at[learner_id, "to_review"] if learner_id in queue.index else 0)
        assert row["to_rate"] is None or isinstance(row["to_rate"], str) or pd.isna(row["to_rate"])
        assert row["to_review"] or row["behind"] or isinstance(row["to_rate"], str)
