"""The forecast learned from graduated cohorts, and its backtest, on a generated program with known growth whose
learners' growth slows as they near their ceiling (tests/growth_processes.py)."""

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest

from bench.load import bulk_load
from data_models import RaterRole, Rating
from tests import growth_processes as gp
from tests.conftest import FRAMEWORK_YAML, app_as, goto, viewer
from tracker import cli
from tracker.access.policy import may_open_page
from tracker.accounts import admin
from tracker.analysis import forecast, queries
from tracker.core.errors import PermissionDenied
from tracker.storage import opening, record_rows

# one worker: its module-scoped fixture is made once; the forecast model: the sample database is only its input
pytestmark = [pytest.mark.xdist_group("test_backtest"), pytest.mark.one_mode]


@pytest.fixture(scope="module")
def slowing_template(tmp_path_factory, framework):
    """Three graduated cohorts and a current one rated to term 3, loaded once; each test gets a copy."""
    folder = tmp_path_factory.mktemp("slowing")
    made = gp.program(gp.PROCESSES[1], framework, seed=3, graduated=(120, 120, 120), current=300, reference=5000)
    made.write(folder / "csv")
    db = opening.open_database(folder / "slowing.duckdb", framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    bulk_load(db.cursor(), folder / "csv", "2GB")
    admin.create_demo_accounts(db.cursor())
    db.con.execute("CHECKPOINT")
    db.close()
    return folder


@pytest.fixture
def slowing(slowing_template, tmp_path, framework, monkeypatch):  # type: ignore[no-untyped-def]
    path = tmp_path / "tracker.duckdb"
    shutil.copy(slowing_template / "slowing.duckdb", path)
    monkeypatch.setenv("TRACKER_DB", str(path))
    monkeypatch.setenv("TRACKER_FRAMEWORK", str(FRAMEWORK_YAML))
    db = opening.open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    yield db.cursor()
    db.close()


def _raw_levels(cur, learner_id: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """A learner's assessed levels per competency and term, from the raw ratings (corrections applied)."""
    r = cur.execute("SELECT * FROM ratings WHERE learner_id = ? AND rater_role <> 'self'", [learner_id]).df()
    live = r[~r["id"].isin(set(r["corrects"].dropna()))].sort_values(["rated_on", "seq"])
    live = live.assign(level=live["level"].astype(float))
    return live.groupby(["competency_id", "term_index"], as_index=False).last()


def test_unit_features_are_mean_levels_and_their_least_squares_growth(slowing, framework):
    committee = viewer(slowing, "C001")
    got = queries.unit_features(slowing, committee, as_of=3).set_index(["learner_id", "unit"])
    learner_id = got.index[0][0]
    per_term = _raw_levels(slowing, learner_id).groupby("term_index")["level"].mean()
    t, y = per_term.index.to_numpy(dtype=float), per_term.to_numpy()
    mine = got.loc[(learner_id, forecast.LEARNER)]
    assert mine["term_index"] == 3
    assert mine["level"] == pytest.approx(y[-1])
    assert mine["slope"] == pytest.approx(np.polyfit(t, y, 1)[0])
    domain = framework.domains[2]
    levels = _raw_levels(slowing, learner_id)
    ids = [c.id for c in domain.competencies]
    last = levels[levels["competency_id"].isin(ids) & (levels["term_index"] == 3)]["level"].mean()
    assert got.loc[(learner_id, domain.id), "level"] == pytest.approx(last)


def test_history_is_the_graduated_learners_whole_course(slowing, framework):
    history = queries.program_history(slowing, framework)
    graduated = slowing.execute("SELECT id, cohort FROM learners WHERE status = 'graduated'").df()
    assert set(history["learner_id"]) == set(graduated["id"]) and len(graduated) == 360
    learner_id = graduated["id"].iloc[0]
    levels = _raw_levels(slowing, learner_id)
    mine = history[(history["learner_id"] == learner_id) & (history["unit"] == forecast.LEARNER)].set_index("k")
    assert mine["final"].iloc[0] == pytest.approx(levels[levels["term_index"] == 6]["level"].mean())
    assert sorted(mine.index) == [1, 2, 3, 4, 5]  # never the final term's own level as a feature
    at2 = levels[levels["term_index"] <= 2].groupby("term_index")["level"].mean()
    assert mine.loc[2, "level"] == pytest.approx(at2.iloc[-1])
    assert mine.loc[2, "slope"] == pytest.approx(at2.diff().iloc[-1])
    assert np.isnan(mine.loc[1, "slope"])  # one term: no growth yet


def test_model_is_chosen_by_out_of_sample_score(slowing, framework):
    priors = queries.program_priors(slowing, as_of=3, framework=framework)
    assert priors.history is not None and priors.history.learners == 360
    scores = priors.history.scores[priors.history.scores["term"] == 3]
    best = scores.sort_values("brier").iloc[0]["model"]
    assert priors.history.fit(forecast.LEARNER, 3).kind == best  # type: ignore[union-attr]
    assert len(scores) == len(forecast.CANDIDATES)


def test_a_later_rating_never_changes_a_forecast_as_of_an_earlier_term(slowing, framework):
    committee = viewer(slowing, "C001")
    before = queries.graduation_risk(
        slowing, committee, queries.program_priors(slowing, as_of=3, framework=framework), framework, as_of=3
    )
    learner_id = before["learner_id"].iloc[0]
    late = [
        Rating(
            id=f"LATE-{c}",
            learner_id=learner_id,
            competency_id=c,
            level=5,
            rater_id="A01",
            rater_role=RaterRole.advisor,
            rated_on=dt.date(2024, 1, 1),
            term="T4",
            framework_version=framework.version,
        )
        for c in framework.competencies
    ]
    record_rows.add_ratings(slowing, late, framework, "test")
    after = queries.graduation_risk(
        slowing, committee, queries.program_priors(slowing, as_of=3, framework=framework), framework, as_of=3
    )
    pd.testing.assert_frame_equal(before, after)
    now = queries.graduation_risk(
        slowing, committee, queries.program_priors(slowing, framework=framework), framework
    ).set_index("learner_id")
    assert now.loc[learner_id, "current_term"] == "T4" and now.loc[learner_id, "p_reach"] > 0.9


def test_risk_reason_says_what_past_cohorts_reached(slowing, framework):
    committee = viewer(slowing, "C001")
    priors = queries.program_priors(slowing, as_of=3, framework=framework)
    risk = queries.graduation_risk(slowing, committee, priors, framework, as_of=3)
    assert risk["p_reach"].is_monotonic_increasing and risk["at_risk"].iloc[0]
    first = risk.iloc[0]
    units = queries.unit_features(slowing, committee, as_of=3, offsets=priors.history.offsets)  # type: ignore[union-attr]
    mine = units[units["learner_id"] == first["learner_id"]]
    fit = priors.history.fit(forecast.LEARNER, 3)  # type: ignore[union-attr]
    overall = mine[mine["unit"] == forecast.LEARNER]
    level, slope = overall["level"].to_numpy(), overall["slope"].to_numpy()
    missed = (overall["term_index"] - overall["rated_terms"]).to_numpy()  # terms up to now without a rating
    assert first["p_reach"] == pytest.approx(fit.chance(level, slope, 3.75, missed)[0])  # type: ignore[union-attr]
    assert first["forecast"] == pytest.approx(fit.mean(level, slope, missed)[0])  # type: ignore[union-attr]
    domain = framework.domains[0]
    line = f"{domain.name}: level {mine.set_index('unit').loc[domain.id, 'level']:.1f} at term 3; past cohorts' learners at that point reached "
    assert first["why"].count("; target 4") == 3
    assert line in first["why"] or domain.name not in first["why"]


def test_backtest_figures_follow_from_what_it_said(slowing, framework):
    result = queries.backtest(slowing, viewer(slowing, "C001"), framework)
    assert result.cohorts == ["2019-01", "2020-01", "2021-01"]
    said = result.said
    assert len(said) == 360 * 5  # each graduated learner, forecast at terms 1 to 5
    three = said[said["term"] == 3]
    flagged, missed = three["p_reach"] < 0.5, ~three["reached"].astype(bool)
    row = result.by_term.set_index("term").loc[3]
    assert row["found"] == pytest.approx((flagged & missed).sum() / missed.sum())
    assert row["false_alarms"] == pytest.approx((flagged & ~missed).sum() / (~missed).sum())
    assert row["calibration_error"] == pytest.approx(gp.calibration_error(three["p_reach"].to_numpy(), ~missed))
    assert row["calibration_error"] <= 0.08 and row["found"] >= 0.6
    # each held-out cohort's chances come from the others alone: the same as learning without it, its raters'
    # strictness estimated without its ratings
    history = queries.program_history(slowing, framework, queries.rater_offsets(slowing, without="2019-01"))
    without = forecast.learn_history(history[history["cohort"] != "2019-01"], framework)
    mine = history[(history["cohort"] == "2019-01") & (history["unit"] == "") & (history["k"] == 3)]
    fit = without.fit("", 3)  # type: ignore[union-attr]
    missed = (3 - mine["rated_terms"]).to_numpy()
    want = fit.chance(mine["level"].to_numpy(), mine["slope"].to_numpy(), 3.75, missed)  # type: ignore[union-attr]
    got = three[three["cohort"] == "2019-01"].set_index("learner_id").loc[mine["learner_id"], "p_reach"]
    assert got.to_numpy() == pytest.approx(want)


def test_backtest_is_for_committee_and_coordinators(slowing, framework):
    with pytest.raises(PermissionDenied):
        queries.backtest(slowing, viewer(slowing, "A01"), framework)


def test_backtest_command_prints_the_figures(slowing, capsys):
    assert cli.main(["backtest", "--term", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 cohorts: 2019-01, 2020-01, 2021-01" in out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith("3 ")]
    assert [line[1] for line in lines] == ["2019-01", "2020-01", "2021-01", "all"]


def test_backtest_page_shows_the_table_and_calibration_chart(slowing):
    at = goto(app_as("c001"), "backtest")
    tables = [d.value for d in at.dataframe]
    assert list(tables[0]["term"]) == [1, 2, 3, 4, 5]
    assert len(at.get("vega_lite_chart")) == 1
    at = goto(app_as("c001"), "cohort")
    assert not [i for i in at.info if "No graduated cohort yet" in i.value]


def test_the_sample_program_backtests_its_two_graduated_cohorts(db_path, cur, framework):
    at = goto(app_as("k001"), "backtest")
    assert "2021-01, 2022-01" in at.caption[0].value
    by_term = at.dataframe[0].value
    want = queries.backtest(cur, viewer(cur, "K001"), framework).by_term
    assert by_term["learners"].tolist() == want["learners"].tolist() == [60] * 5


def test_without_graduated_cohorts_the_page_says_what_the_forecast_assumes(db_path, cur):
    cur.execute("UPDATE learners SET status = 'withdrawn' WHERE status = 'graduated'")  # no graduated cohort
    at = goto(app_as("c001"), "cohort")
    assert any("No graduated cohort yet: the forecast assumes" in i.value for i in at.info)
    at = goto(app_as("c001"), "backtest")
    assert any("needs at least two graduated cohorts" in i.value for i in at.info)
    assert not may_open_page(viewer(cur, "A002"), "backtest")  # an advisor's sidebar does not list it


def test_learner_page_states_the_learned_chance_the_committee_sees(db_path, cur, framework):
    committee = viewer(cur, "C001")
    risk = queries.graduation_risk(cur, committee, queries.program_priors(cur, framework=framework), framework)
    row = risk[risk["current_term"] == "T3"].iloc[0]
    at = goto(app_as("c001", {"learner": row["learner_id"]}), "progress")
    caption = next(c.value for c in at.caption if c.value.startswith("Chance of reaching level 4 or above"))
    assert f": {row['p_reach']:.0%} (forecast {row['forecast']:.1f} ± {row['sd']:.1f})" in caption
    assert "from level" in caption and "at T3" in caption
    line = next(c.value for c in at.caption if c.value.startswith("Forecast at graduation ("))
    assert "learned from the graduated cohorts" in line  # the first line shown is a domain's


@pytest.fixture(scope="module")
def strict_template(tmp_path_factory, framework):
    """The harsher-and-softer-advisors process: three graduated cohorts and a current one rated to term 3."""
    folder = tmp_path_factory.mktemp("strict")
    process = next(p for p in gp.PROCESSES if p.name == "harsher and softer advisors")
    made = gp.program(process, framework, seed=4, graduated=(120, 120, 120), current=300, reference=5000)
    made.write(folder / "csv")
    db = opening.open_database(folder / "strict.duckdb", framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    bulk_load(db.cursor(), folder / "csv", "2GB")
    db.close()
    return folder


@pytest.fixture
def strict(strict_template, tmp_path, framework):  # type: ignore[no-untyped-def]
    path = tmp_path / "strict.duckdb"
    shutil.copy(strict_template / "strict.duckdb", path)
    db = opening.open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    yield db.cursor()
    db.close()


def _offsets_from_raw_ratings(cur, as_of: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Raters' offsets computed apart from the query: each learner's mean deviation from their cohort's mean level
    of the same term, averaged per rater, shrunk by the between-rater variance (method of moments)."""
    r = cur.execute(
        "SELECT r.*, l.cohort, l.status FROM ratings r JOIN learners l ON l.id = r.learner_id WHERE rater_role <> 'self'"
    ).df()
    live = r[~r["id"].isin(set(r["corrects"].dropna()))].sort_values(["rated_on", "seq"])
    live = live.groupby(["learner_id", "competency_id", "term_index"], as_index=False).last()
    live = live[(live["term_index"] <= as_of) | (live["status"] == "graduated")]
    live["level"] = live["level"].astype(float)
    live["d"] = live["level"] - live.groupby(["cohort", "term_index"])["level"].transform("mean")
    pairs = live.groupby(["rater_id", "learner_id"])["d"].mean().reset_index()
    per = pairs.groupby("rater_id")["d"].agg(["mean", "count", "var"])
    within = ((per["count"] - 1) * per["var"]).sum() / (per["count"].sum() - len(per))
    between = per["mean"].var() - (within / per["count"]).mean()
    return (per["mean"] * between / (between + within / per["count"])).to_dict()


def test_raters_offsets_are_shrunk_mean_deviations_and_find_the_strict_and_the_soft(strict, framework):
    got = queries.rater_offsets(strict, as_of=3)
    want = _offsets_from_raw_ratings(strict, 3)
    assert got == pytest.approx(want)
    # the process's own strictness (tests/growth_processes.py draws it after the paths and the advisors)
    rng = np.random.default_rng(4)
    n = 660
    gp.straight(rng, n)
    rng.integers(0, 20, n)
    bias = rng.normal(0, 0.35, 20)
    bias -= bias.mean()
    estimated = np.array([got[f"A{a + 1:02d}"] for a in range(20)])
    assert np.corrcoef(bias, estimated)[0, 1] > 0.95 and np.abs(estimated - bias).max() < 0.15


def test_raters_offsets_never_read_a_later_rating(strict, framework):
    before = queries.rater_offsets(strict, as_of=3)
    learner_id, rater = strict.execute(
        "SELECT id, advisor_id FROM learners WHERE status = 'active' ORDER BY id LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    late = [
        Rating(
            id=f"LATE-{c}",
            learner_id=learner_id,
            competency_id=c,
            level=5.0,
            rater_id=rater,
            rater_role=RaterRole.advisor,
            rated_on=dt.date(2023, 1, 1),
            term="T4",
            framework_version=framework.version,
        )
        for c in framework.competencies
    ]
    record_rows.add_ratings(strict, late, framework, "test")
    assert queries.rater_offsets(strict, as_of=3) == pytest.approx(before, abs=1e-12)
    # the term-4 ratings count once term 4 is asked for (alone in their cohort and term, they lie at its mean)
    assert queries.rater_offsets(strict)[rater] != pytest.approx(before[rater], abs=1e-6)


def test_the_forecast_reads_levels_net_of_the_raters_strictness(strict, framework):
    committee = viewer(strict, "C001")
    priors = queries.program_priors(strict, as_of=3, framework=framework)
    offsets = priors.history.offsets  # type: ignore[union-attr]
    assert offsets == pytest.approx(queries.rater_offsets(strict, as_of=3))
    units = queries.unit_features(strict, committee, as_of=3, offsets=offsets).set_index(["learner_id", "unit"])
    learner_id = units.index[0][0]
    rater = strict.execute("SELECT advisor_id FROM learners WHERE id = ?", [learner_id]).fetchone()[0]  # type: ignore[index]
    rated = _raw_levels(strict, learner_id).groupby("term_index")["level"].mean()
    mine = units.loc[(learner_id, forecast.LEARNER)]
    assert mine["rated_level"] == pytest.approx(rated.iloc[-1])
    assert mine["level"] == pytest.approx(rated.iloc[-1] - offsets[rater])
    # the graduates' final level, the one the forecast learns to reach, is net of their raters' strictness too
    history = queries.program_history(strict, framework, offsets)
    graduate = history[(history["unit"] == forecast.LEARNER) & (history["k"] == 3)].iloc[0]
    g_rater = strict.execute("SELECT advisor_id FROM learners WHERE id = ?", [graduate["learner_id"]]).fetchone()[0]  # type: ignore[index]
    levels = _raw_levels(strict, graduate["learner_id"])
    assert graduate["final"] == pytest.approx(levels[levels["term_index"] == 6]["level"].mean() - offsets[g_rater])
    risk = queries.graduation_risk(strict, committee, priors, framework, as_of=3)
    assert risk["why"].str.contains("by raters (?:softer|harsher) than most").any()
