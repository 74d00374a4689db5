"""The real app through AppTest: every page for every role, figures checked against the data, saves shown at once."""

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tests.conftest import app_as, goto, read, viewer
from tests.reference import reference_standing
from tracker.analysis import queries
from tracker.core.text import markdown_escaped as plain

ROLE_PAGES = {
    "l001": ["home", "progress", "self-assessment", "plan", "framework", "account"],
    "a002": ["home", "progress", "plan", "cohort", "framework", "account"],
    "a001": ["home", "progress", "plan", "cohort", "backtest", "review", "framework", "account"],  # advisor, committee
    "c001": ["home", "progress", "plan", "cohort", "backtest", "review", "framework", "account"],
    "k001": [
        "home",
        "progress",
        "plan",
        "cohort",
        "backtest",
        "review",
        "import",
        "records",
        "accounts",
        "framework",
        "account",
    ],
}


@pytest.mark.parametrize("user", list(ROLE_PAGES))
def test_every_page_renders_for_every_role_without_an_exception(db_path, cur, user):
    """... and every chart it draws is valid Vega-Lite (the app skips Altair's check of its specs: charts.vega_lite)."""
    from altair.vegalite.v6.schema import core

    from pages.views.navigation import views_for
    from tracker.access.policy import may_open_page

    at = app_as(user)
    who = viewer(cur, user.upper())
    assert [v.url_path for v in views_for(who) if may_open_page(who, v.url_path)] == ROLE_PAGES[user]
    for page in ROLE_PAGES[user]:
        goto(at, page)
        assert at.title, page
        assert not at.error, (page, [read(e.value) for e in at.error])
        for drawn in at.get("vega_lite_chart"):
            core.Root.validate(json.loads(drawn.proto.spec))


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_advisor_home_counts_advisees_and_those_behind(db_path, cur, framework):
    ref = reference_standing(cur, framework)
    mine = ref[ref["advisor_id"] == "A002"]
    behind = mine[mine["standing"] == "behind"]["learner_id"].nunique()
    at = app_as("a002")
    assert _metric(at, "Advisees") == str(mine["learner_id"].nunique())
    assert _metric(at, "Behind the expected trajectory") == str(behind)


def test_committee_cohort_page_figures_match_the_data(db_path, cur, framework):
    ref = reference_standing(cur, framework)
    at = app_as("c001")
    at.session_state["cohort.heatmap_open"] = True  # the heatmap's fold opened
    goto(at, "cohort")
    assert _metric(at, "Learners") == str(cur.execute("SELECT count(*) FROM learners").fetchone()[0])
    assert _metric(at, "Behind the expected trajectory") == str(
        ref[ref["standing"] == "behind"]["learner_id"].nunique()
    )
    assert _metric(at, "On leave") == str(
        cur.execute("SELECT count(*) FROM learners WHERE status = 'leave'").fetchone()[0]
    )
    behind_table = next(d.value for d in at.dataframe if "why" in d.value.columns)
    assert set(behind_table["learner_id"]) == set(ref[ref["standing"] == "behind"]["learner_id"])
    # one short line a learner: the three competencies furthest behind, and how many more
    counts = ref[ref["standing"] == "behind"].groupby("learner_id").size()
    assert counts.max() > 3, "the sample has a learner behind in more than three competencies"
    for row in behind_table.itertuples():
        pieces, n = row.why.split("; "), counts[row.learner_id]
        assert pieces == [*pieces[:3], f"and {n - 3} more"] if n > 3 else len(pieces) == n, (row.why, n)
    charts = [json.loads(c.proto.spec) for c in at.get("arrow_vega_lite_chart")] or [
        json.loads(c.proto.spec) for c in at.get("vega_lite_chart")
    ]
    titles = [c.get("title") for c in charts]
    assert "Level minus expected, learner by competency (furthest behind first)" in titles
    assert at.get("download_button")


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_the_heatmap_holds_a_screen_of_learners_furthest_behind(db_path, cur, framework, monkeypatch):
    """With more learners than the heatmap's rows, it shows those furthest below the expected levels and says so."""
    from pages.views import cohort

    monkeypatch.setattr(cohort, "HEATMAP_LEARNERS", 12)
    at = app_as("c001")
    at.session_state["cohort.heatmap_open"] = True
    goto(at, "cohort")
    title = "Level minus expected, learner by competency (furthest behind first)"
    heat = next(
        x.proto
        for x in at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
        if json.loads(x.proto.spec).get("title") == title
    )
    rows = pa.ipc.open_stream(heat.datasets[0].data.data).read_pandas()
    ref = reference_standing(cur, framework).dropna(subset=["level"])
    gap = ref.assign(gap=ref["level"] - ref["expected"]).groupby("learner_id")["gap"].mean()
    shown = set(rows["learner_id"])
    assert len(shown) == 12
    assert gap[list(shown)].max() <= gap.drop(list(shown)).min() + 1e-9  # nobody left out is further behind
    everyone = cur.execute("SELECT count(*) FROM learners").fetchone()[0]
    assert any(
        f"shows the 12 learners furthest below the expected levels on average, of {everyone}" in c.value
        for c in at.caption
    )


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_a_large_program_finds_a_learner_by_search_before_listing(db_path, cur, monkeypatch):
    """Beyond the picker's limit, the progress page asks for part of a name, id or cohort, then lists matches."""
    from pages.views import widgets as _widgets

    monkeypatch.setattr(_widgets, "PICKER_LIMIT", 10)
    at = goto(app_as("c001"), "progress")
    assert not at.exception, [e.message for e in at.exception]
    everyone = cur.execute("SELECT count(*) FROM learners").fetchone()[0]
    assert at.text_input(key="progress.learner_id.find").label == f"Find a learner among {everyone}"
    assert "progress.learner_id" not in [b.key for b in at.selectbox]  # no list of every learner
    assert any("Type part of a learner's name" in i.value for i in at.info)
    name, learner_id = cur.execute(
        "SELECT name, id FROM learners WHERE cohort = '2025-09' ORDER BY id LIMIT 1"
    ).fetchone()
    at.text_input(key="progress.learner_id.find").set_value(name.split()[0].upper()).run()
    picker = at.selectbox(key="progress.learner_id")
    assert learner_id in picker.options[0] or learner_id in [o.split(" · ")[-1] for o in picker.options]
    assert all(name.split()[0].casefold() in o.casefold() for o in picker.options)
    at.text_input(key="progress.learner_id.find").set_value("2025-09").run()
    options = at.selectbox(key="progress.learner_id").options
    matches = [o for o in options if " · 2025-09 · " in o]
    assert len(matches) == 10 and len(options) <= 11  # the first matches, and the learner already open
    assert any("The first 10 of 20 matches" in c.value for c in at.caption)


def test_cohort_filter_narrows_to_one_cohort(db_path, cur):
    at = goto(app_as("c001"), "cohort")
    at.selectbox(key="cohort.cohort").set_value("2026-01").run()
    n = cur.execute("SELECT count(*) FROM learners WHERE cohort = '2026-01'").fetchone()[0]
    assert _metric(at, "Learners") == str(n)


def test_progress_table_matches_the_data(db_path, cur, framework):
    ref = reference_standing(cur, framework).set_index(["learner_id", "competency_id"])
    at = app_as("a002")
    goto(at, "progress")
    learner = at.selectbox(key="progress.learner_id").value
    table = at.dataframe[0].value
    names = {c.name: cid for cid, c in framework.competencies.items()}
    for row in table.itertuples():
        want = ref.loc[(learner, names[row.competency_name])]
        assert (row.level != row.level and want["level"] is None) or row.level == want["level"]
        assert row.expected == want["expected"]
        assert row.standing.split(", rests on ")[0] == want["standing"]  # marked when on too few ratings (plan)


def test_an_advisor_rating_shows_up_at_once(db_path, cur, framework):
    at = goto(app_as("a002"), "progress")
    learner = cur.execute("SELECT min(id) FROM learners WHERE advisor_id = 'A002' AND status = 'active'").fetchone()[0]
    at.selectbox(key="progress.learner_id").set_value(learner).run()
    at.selectbox(key="progress.rate_competency").set_value("curr-design").run()
    at.selectbox(key="progress.rate_level").set_value(4.5)
    at.text_area(key="progress.rate_comment").input("Led the redesign of the module; excellent.")
    at.button(key="FormSubmitter:progress.rate_form.curr-design-Save rating").click().run()
    assert not at.exception
    term = framework.term_name(at.selectbox(key="progress.rate_term").value)
    assert [read(s.value) for s in at.success] == [f"Saved: Course design, level 4.5 ({term})."]
    table = at.dataframe[0].value.set_index("competency_name")
    assert table.loc["Course design", "level"] == 4.5
    stored = cur.execute(
        "SELECT level, rater_role, rated_on FROM ratings WHERE learner_id = ? ORDER BY seq DESC LIMIT 1", [learner]
    ).fetchone()
    assert (float(stored[0]), stored[1], stored[2]) == (4.5, "advisor", dt.date.today())
    assert "Led the redesign of the module; excellent." in [t.value for t in at.text]


def test_a_self_assessment_shows_up_at_once(db_path, cur, framework):
    at = goto(app_as("l001"), "self-assessment")
    at.selectbox(key="self.competency").set_value("res-analysis")
    at.selectbox(key="self.level").set_value(3.5)
    at.text_area(key="self.reflection").input("I ran my first multilevel model.")
    at.button(key="FormSubmitter:self.form-Save self-assessment").click().run()
    assert not at.exception
    term = at.selectbox(key="self.term").value
    assert [read(s.value) for s in at.success] == [
        f"Saved your self-assessment of Data analysis and interpretation: level 3.5 ({framework.term_name(term)})."
    ]
    history = at.dataframe[0].value.set_index("term")
    assert history.loc[term, "self"] == 3.5
    goto(at, "progress")
    table = at.dataframe[0].value.set_index("competency_name")
    assert table.loc["Data analysis and interpretation", "self_level"] == 3.5


def test_rating_forms_never_guess_a_level(db_path, cur):
    """The self-assessment starts empty and saves nothing without a level; the advisor's form starts at the
    competency's current level."""
    before = cur.execute("SELECT count(*) FROM ratings").fetchone()[0]
    at = goto(app_as("l001"), "self-assessment")
    assert at.selectbox(key="self.level").value is None
    at.text_area(key="self.reflection").input("Forgot to choose.")
    at.button(key="FormSubmitter:self.form-Save self-assessment").click().run()
    assert [read(e.value) for e in at.error] == ["Choose the level that fits you now before saving: nothing was saved."]
    assert cur.execute("SELECT count(*) FROM ratings").fetchone()[0] == before

    learner = cur.execute(
        "SELECT id FROM learners WHERE advisor_id = 'A002' AND status = 'active' ORDER BY id LIMIT 1"
    ).fetchone()[0]
    at = app_as("a002")
    at.session_state["progress.learner_id"] = learner
    goto(at, "progress")
    level = cur.execute(
        "SELECT level FROM current_levels WHERE learner_id = ? AND competency_id = 'curr-design'", [learner]
    ).fetchone()[0]
    at.selectbox(key="progress.rate_competency").set_value("curr-design").run()
    assert at.selectbox(key="progress.rate_level").value == (None if level is None else float(level))


def test_an_advisor_on_the_committee_opens_an_advisee_first(db_path, cur):
    at = goto(app_as("a001"), "progress")
    shown = at.selectbox(key="progress.learner_id").value
    assert cur.execute("SELECT advisor_id FROM learners WHERE id = ?", [shown]).fetchone()[0] == "A001"


def test_a_learner_adds_evidence_and_links_it(db_path, cur):
    at = goto(app_as("l001"), "self-assessment")
    at.text_input(key="self.ev_title").input("Journal club slides")
    at.selectbox(key="self.ev_type").set_value("presentation")
    at.multiselect(key="self.ev_competencies").set_value(["res-scholarship"])
    at.button(key="FormSubmitter:self.evidence_form-Add evidence").click().run()
    assert "Added evidence: Journal club slides." in [read(s.value) for s in at.success]
    assert (
        cur.execute(
            "SELECT count(*) FROM evidence WHERE learner_id = 'L001' AND title = 'Journal club slides'"
        ).fetchone()[0]
        == 1
    )
    at.selectbox(key="self.competency").set_value("res-scholarship").run()
    options = at.multiselect(key="self.evidence").options
    assert "Journal club slides" in options


def test_learner_home_shows_standing_per_domain(db_path, cur, framework):
    ref = reference_standing(cur, framework)
    mine = ref[ref["learner_id"] == "L001"].copy()
    mine["domain"] = mine["competency_id"].map(lambda c: framework.domain_of[c].name)
    at = app_as("l001")
    for domain, group in mine.groupby("domain"):
        assert _metric(at, domain) == f"{group['level'].dropna().mean():.1f}"


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_framework_page_follows_the_yaml(db_path, framework):
    at = goto(app_as("c001"), "framework")
    assert [e.label for e in at.expander] == [
        f"{d.name} ({len(d.competencies)} competencies)" for d in framework.domains
    ]
    targets = next(t.value for t in at.table if "Competency" in t.value.columns)
    assert [read(c) for c in targets.columns] == ["Competency", *framework.term_ids]
    assert [read(c) for c in targets["Competency"]] == [c.name for c in framework.competencies.values()]
    first = next(iter(framework.competencies))
    assert [float(x) for x in targets.iloc[0, 1:]] == [framework.expected_level(first, t) for t in framework.term_ids]


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_framework_page_draws_a_domain_once_opened(db_path, framework):
    """The domains fold, and a domain's level descriptors are drawn only once it is opened, as typed in the YAML."""
    at = goto(app_as("c001"), "framework")
    scale = at.table[0].value
    assert [read(x) for x in scale["Meaning"]] == [s.description for s in framework.scale]
    folded = len(at.table)  # the scale, the targets and the versions: every domain folded, none drawn
    assert folded == 3
    domain = framework.domains[1]
    at.session_state[f"framework.domain.{domain.id}"] = True
    at.run()
    tables = [t.value for t in at.table if "Descriptor" in t.value.columns]
    assert len(at.table) == folded + len(tables)
    assert len(tables) == len(domain.competencies)
    for table, competency in zip(tables, domain.competencies, strict=True):
        assert [read(x) for x in table["Descriptor"]] == [lv.descriptor for lv in competency.levels]


def test_coordinator_records_page_shows_the_audit_log(db_path, cur):
    at = goto(app_as("k001"), "records")
    log = at.dataframe[0].value
    assert len(log) == cur.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert "sign-in" in set(log["action"])


def test_empty_states_say_what_to_do(empty_db, framework, tmp_path):
    from data_models import Learner, Staff
    from tracker.accounts import admin
    from tracker.storage import record_rows

    cur = empty_db.cursor()
    cur.executemany(
        "INSERT INTO staff VALUES (?, ?, ?, ?, ?)",
        record_rows.staff_rows([Staff(id="A1", name="Ada", email="a@x.org", roles=["advisor"])]),
    )
    cur.executemany(
        "INSERT INTO learners VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        record_rows.learner_rows(
            [
                Learner(
                    id="N1",
                    name="New Learner",
                    email="n@x.org",
                    cohort="2027-01",
                    profession="Nurse",
                    start_term="2027-01",
                    advisor_id="A1",
                )
            ]
        ),
    )
    admin.add_user(cur, "ada", "A1", admin.DEMO_PASSWORD + "!", actor="t")
    admin.add_user(cur, "n1", "N1", admin.DEMO_PASSWORD + "!", actor="t")
    admin.DEMO_PASSWORD, saved = admin.DEMO_PASSWORD + "!", admin.DEMO_PASSWORD
    try:
        at = goto(app_as("ada"), "progress")
        assert any("No advisor or committee rating yet" in i.value for i in at.info)
        goto(at, "cohort")
        assert any("a new cohort shows here once advisors rate it" in i.value for i in at.info)
        at = app_as("n1")
        assert any("Start with a self-assessment" in i.value for i in at.info)
    finally:
        admin.DEMO_PASSWORD = saved


def test_cohort_page_lists_graduation_risk_as_the_forecast_computes_it(db_path, cur, framework):
    from tracker.analysis import forecast

    committee = viewer(cur, "C001")
    # the sample has two graduated cohorts: each active learner's chance is their term's fit on them
    history = queries.program_priors(cur, framework=framework).history
    units = queries.unit_features(cur, committee, offsets=history.offsets)  # levels net of raters' strictness
    want = units[units["unit"] == forecast.LEARNER].copy()
    chances = []
    for row in want.itertuples():
        level, slope = np.array([row.level]), np.array([row.slope])
        if row.term_index == 6:  # rated in the final term: the level itself, up to a rating's noise
            chances.append(0.5 * (1 + math.erf((row.level - 3.75) / 0.1 / math.sqrt(2))))
        else:
            missed = np.array([row.term_index - row.rated_terms])  # terms up to now without a rating
            chances.append(history.fit("", row.term_index).chance(level, slope, 3.75, missed)[0])
    want["p_reach"] = chances
    want = want.sort_values(["p_reach", "learner_id"])
    want["at_risk"] = want["p_reach"] < forecast.RISK_BELOW
    at = goto(app_as("c001"), "cohort")
    shown = next(d.value for d in at.dataframe if "p_reach" in d.value.columns)
    assert shown["learner_id"].tolist() == want["learner_id"].head(len(shown)).tolist()
    assert shown["p_reach"].tolist() == pytest.approx(want["p_reach"].head(len(shown)).tolist())
    assert any(f"{int(want['at_risk'].sum())} of {len(want)} active learners" in c.value for c in at.caption)
    assert any(f"the {history.learners} learners of the graduated cohorts" in c.value for c in at.caption)
    assert not [i for i in at.info if "No graduated cohort yet" in i.value]


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_progress_page_states_the_forecast_in_words(db_path, framework):
    at = goto(app_as("l001"), "progress")
    final = framework.term_name("T6")
    caption = next(read(c.value) for c in at.caption if read(c.value).startswith(f"Forecast at graduation ({final}): "))
    assert "chance of reaching level 4:" in caption


def test_a_bad_form_says_which_field_and_saves_nothing(db_path, cur):
    before = cur.execute("SELECT count(*) FROM evidence").fetchone()[0]
    at = goto(app_as("l001"), "self-assessment")
    at.multiselect(key="self.ev_competencies").set_value(["res-scholarship"])
    at.button(key="FormSubmitter:self.evidence_form-Add evidence").click().run()
    assert not at.exception
    assert [read(e.value) for e in at.error] == ["title: String should have at least 1 character"]
    assert cur.execute("SELECT count(*) FROM evidence").fetchone()[0] == before


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_progress_page_offers_the_pdf_report(db_path):
    at = goto(app_as("c001"), "progress")
    assert any(b.label == "Download the learner report (PDF)" for b in at.get("download_button"))


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_progress_page_folds_comments_and_puts_the_rating_form_first(db_path, cur):
    """The advisor's rating form comes before the charts and the table; the 5 newest comments show, the rest
    behind a toggle; the competency table leads with the standing and the outlook."""
    learner = cur.execute(
        "SELECT id FROM learners WHERE advisor_id = 'A002' AND status = 'active' ORDER BY id LIMIT 1"
    ).fetchone()[0]
    at = app_as("a002")
    at.session_state["progress.learner_id"] = learner
    goto(at, "progress")
    assert at.expander[0].label == "Record a rating"
    assert at.expander[0].selectbox(key="progress.rate_competency") is not None
    comments = cur.execute("SELECT count(*) FROM ratings WHERE learner_id = ? AND comment <> ''", [learner]).fetchone()[
        0
    ]
    assert comments > 5
    cards = at.tabs[0].text
    assert len(cards) == 5
    at.toggle(key="progress.all_comments").set_value(True).run()
    assert at.toggle(key="progress.all_comments").label == f"Show all {comments} comments"
    assert len(at.tabs[0].text) == comments
    table = at.dataframe[0]
    assert list(table.value.columns[:7]) == [  # the figures beside the standing, the plan's words after them
        "competency_name",
        "standing",
        "level",
        "expected",
        "p_reach",
        "forecast",
        "coverage",
    ]


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_progress_page_draws_only_the_tab_open(db_path, cur):
    """Comments, evidence and every rating sit in tabs; a tab's table is drawn once the tab is chosen."""
    at = goto(app_as("c001"), "progress")
    assert [t.label for t in at.tabs][:1] == ["Narrative comments"]
    assert not any("rater_role" in d.value.columns for d in at.dataframe)
    at.session_state["progress.records"] = "All ratings"
    at.run()
    learner = at.selectbox(key="progress.learner_id").value
    history = next(d.value for d in at.dataframe if "rater_role" in d.value.columns)
    assert len(history) == cur.execute("SELECT count(*) FROM ratings WHERE learner_id = ?", [learner]).fetchone()[0]


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_cohort_page_acts_above_the_heatmap(db_path, cur):
    """Open a learner and the downloads come right after the figures; the heatmap folds, and is drawn only once
    opened; the calibration caption says in words what closing and widening mean."""
    title = "Level minus expected, learner by competency (furthest behind first)"
    folded = goto(app_as("c001"), "cohort")
    heat = next(e for e in folded.expander if e.label.startswith("Gap heatmap"))
    assert not heat.get("arrow_vega_lite_chart") and not heat.get("vega_lite_chart")
    assert all(json.loads(c.proto.spec).get("title") != title for c in folded.get("arrow_vega_lite_chart"))
    at = app_as("c001")
    at.session_state["cohort.heatmap_open"] = True
    goto(at, "cohort")
    nodes = list(at.main)

    def first(test: Any) -> int:
        return next(i for i, n in enumerate(nodes) if test(n))

    download = first(lambda n: n.type == "download_button")
    heatmap = first(lambda n: "vega_lite" in n.type and json.loads(n.proto.spec).get("title") == title)
    behind = first(lambda n: "Behind the expected trajectory" in str(getattr(n, "value", "")))
    assert download < heatmap < behind
    assert "cohort.open_learner" in [s.key for s in at.selectbox]
    heat = next(e for e in at.expander if e.label.startswith("Gap heatmap"))
    assert heat.get("arrow_vega_lite_chart") or heat.get("vega_lite_chart")
    assert any("the self − advisor gap shrank for" in c.value and "grew for" in c.value for c in at.caption)


@pytest.mark.one_mode  # the page's layout: the database is only its input
def test_tables_name_terms_as_every_page_does(db_path, cur, framework):
    """Home and cohort tables say "Year 2 · Term 2 (T5)", as the progress page does, not the bare id."""
    home = app_as("c001")
    cohorts = next(d.value for d in home.dataframe if "on_leave" in d.value.columns)
    assert set(cohorts["term"]) <= {framework.term_name(t) for t in framework.term_ids}
    names = {framework.term_name(t) for t in framework.term_ids}
    advisor = app_as("a003")
    work = queries.advisee_work(cur, viewer(cur, "A003"), "A003")
    headers = [m.value.split("\n")[0] for m in advisor.markdown if m.value.startswith("**")]
    assert len(work) and len(headers) >= len(work)
    for row in work.to_dict("records"):
        header = next(h for h in headers if h.startswith(f"**{plain(row['learner_name'])}**"))
        assert header.endswith(f" · assessed up to {plain(framework.term_name(row['current_term']))}")
    at = goto(app_as("c001"), "cohort")
    risk = next(d.value for d in at.dataframe if "p_reach" in d.value.columns)
    assert len(risk) and set(risk["current_term"]) <= names
