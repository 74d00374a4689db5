"""The graduation forecast, calibration and evidence coverage: figures recomputed independently, and risk flags
checked against a generated program whose true growth is known."""

import math

import numpy as np
import pytest

from tests.conftest import viewer
from tests.reference import reference_forecast, reference_priors
from tests.test_queries import small  # noqa: F401 - the hand-made program fixture
from tracker.analysis import forecast, queries
from tracker.records.generate import generate
from tracker.records.setup import seed_directory
from tracker.storage import opening

# one worker: its module-scoped fixture is made once; the forecast model: the sample database is only its input
pytestmark = [pytest.mark.xdist_group("test_forecast"), pytest.mark.one_mode]


def test_growth_fit_is_least_squares_over_the_assessed_levels(small, framework):  # noqa: F811
    fit = queries.growth_fit(small, viewer(small, "C1"), learner_id="X1").set_index("competency_id")
    tm = fit.loc["teach-methods"]
    # X1's assessed levels of teach-methods per term: T1 1.5, T2 3.0 (the later T2 rating), T3 2.5 (a correction)
    t, y = np.array([1, 2, 3.0]), np.array([1.5, 3.0, 2.5])
    slope, intercept = np.polyfit(t, y, 1)
    assert tm["n"] == 3
    assert tm["sxy"] / tm["sxx"] == pytest.approx(slope)
    assert tm["y_mean"] == pytest.approx(y.mean()) and tm["t_mean"] == pytest.approx(2.0)
    assert tm["ss_res"] == pytest.approx(((y - (slope * t + intercept)) ** 2).sum())
    assert fit.loc["res-dissemination", "n"] == 1  # self-ratings never enter the fit (collab-ipe has only self)
    assert "collab-ipe" not in fit.index


def test_forecast_follows_the_stated_model(small, framework):  # noqa: F811
    """Recompute one competency's forecast with the formulas of docs/measurement.md, written out by hand."""
    fit = queries.growth_fit(small, viewer(small, "C1"), learner_id="X1")
    priors = forecast.Priors(
        mu={"teach-methods": 0.4, "res-dissemination": 0.3, "lead-people": 0.5}, noise=0.09, tau2=0.02, kappa2=0.01
    )
    got = queries.growth_forecast(small, viewer(small, "C1"), priors, framework, learner_id="X1")
    got = got.set_index("competency_id").loc["teach-methods"]
    rows = fit.set_index("competency_id")
    mu = rows.index.map(lambda c: priors.mu.get(c, 0.0)).to_numpy()
    dev = float((rows["sxy"] - mu * rows["sxx"]).sum())
    sxx_all = float(rows["sxx"].sum())
    var_u = 1 / (1 / priors.tau2 + sxx_all / priors.noise)
    u = var_u * dev / priors.noise
    tm = rows.loc["teach-methods"]
    prior_var = priors.kappa2 + var_u
    post_var = 1 / (1 / prior_var + tm["sxx"] / priors.noise)
    growth = post_var * ((0.4 + u) / prior_var + tm["sxy"] / priors.noise)
    ahead = 6 - tm["t_mean"]
    want = tm["y_mean"] + growth * ahead
    bend = 0.15 * (6 - tm["last_term_index"])  # the straight line's spread widened by 0.15 a term to come
    sd = math.sqrt(priors.noise / tm["n"] + ahead**2 * post_var + bend**2)
    p = 0.5 * (1 + math.erf((want - 3.75) / sd / math.sqrt(2)))
    assert got["growth"] == pytest.approx(growth)
    assert got["forecast"] == pytest.approx(want)
    assert got["sd"] == pytest.approx(sd)
    assert got["p_reach"] == pytest.approx(p)


def test_one_rating_grows_like_the_program(small, framework):  # noqa: F811
    priors = forecast.Priors(mu={"res-dissemination": 0.3}, noise=0.09, tau2=FLOOR, kappa2=FLOOR)
    got = queries.growth_forecast(small, viewer(small, "C1"), priors, framework, learner_id="X1")
    got = got.set_index("competency_id").loc["res-dissemination"]
    assert got["forecast"] == pytest.approx(1.0 + 0.3 * (6 - 3), abs=0.02)  # level 1 at T3, +0.3 a term


FLOOR = forecast.FLOOR


def test_calibration_gap_per_term(small):  # noqa: F811
    by_term = queries.calibration(small, viewer(small, "C1"), learner_id="X1")
    # T3: teach-methods self 4.0 vs advisor 2.5 (+1.5); res-dissemination self 2.0 vs 1.0 (+1.0)
    assert by_term.set_index("term").loc["T3", "gap"] == pytest.approx((1.5 + 1.0) / 2)
    assert by_term.set_index("term").loc["T3", "competencies"] == 2
    summary = queries.calibration_summary(by_term).iloc[0]
    assert summary["rating"] == "over-rates"


def test_evidence_coverage(small):  # noqa: F811
    s = queries.competency_standing(small, viewer(small, "C1"), learner_id="X1").set_index("competency_id")
    # latest X1 rating is 2025-09-20; E1 (2025-03-01) and E2 (2025-08-01) are within a year
    assert s.loc["teach-methods", "evidence_coverage"] == "current"
    assert s.loc["res-dissemination", "evidence_coverage"] == "none"


@pytest.fixture(scope="module")
def known_growth(tmp_path_factory, framework):
    """A generated program, one cohort through all six terms, whose true growth per learner is known."""
    folder = tmp_path_factory.mktemp("known")
    program = generate(framework, n_learners=400, seed=5, n_cohorts=1)
    program.write(folder / "csv", with_truth=True)
    db = opening.open_database(folder / "known.duckdb", framework, "")
    seed_directory(db.cursor(), folder / "csv", framework, "test")
    yield db.cursor(), program.truth
    db.close()


def test_priors_are_the_method_of_moments_over_every_learners_fit(known_growth, framework):
    cur, _ = known_growth
    for as_of in (3, None):
        got = queries.program_priors(cur, as_of=as_of)
        want = reference_priors(
            queries.growth_fit(cur, viewer(cur, "C001"), as_of=as_of), forecast.DEFAULT_NOISE, forecast.FLOOR
        )
        assert got.mu == pytest.approx(want["mu"])
        assert (got.noise, got.tau2, got.kappa2) == pytest.approx((want["noise"], want["tau2"], want["kappa2"]))
        assert got.tau2 > forecast.FLOOR  # learners of the generated program differ in pace


def test_growth_fit_as_of_each_term_is_least_squares_over_the_levels_up_to_it(known_growth):
    """The fits read derived sums kept by the writes (derived.GROWTH_SUMS); as of a term they must equal a fresh
    least-squares fit of the advisor and committee levels up to that term, and never see a later one."""
    cur, _ = known_growth
    levels = cur.execute(
        "SELECT learner_id, competency_id, term_index, CAST(level AS DOUBLE) AS level FROM term_levels WHERE NOT is_self"
    ).df()
    for as_of in (1, 2, 3, None):
        upto = levels[levels["term_index"] <= (as_of or 99)]
        want = (
            upto.sort_values("term_index")
            .groupby(["learner_id", "competency_id"])
            .agg(
                n=("level", "size"),
                t_mean=("term_index", "mean"),
                y_mean=("level", "mean"),
                last_term_index=("term_index", "max"),
                last_level=("level", "last"),
            )
        )
        upto = upto.join(want[["t_mean", "y_mean"]], on=["learner_id", "competency_id"])
        upto["xx"] = (upto["term_index"] - upto["t_mean"]) ** 2
        upto["xy"] = (upto["term_index"] - upto["t_mean"]) * (upto["level"] - upto["y_mean"])
        sums = upto.groupby(["learner_id", "competency_id"])[["xx", "xy"]].sum()
        want["sxx"], want["sxy"] = sums["xx"], sums["xy"]
        got = queries.growth_fit(cur, viewer(cur, "C001"), as_of=as_of).set_index(["learner_id", "competency_id"])
        assert len(got) == len(want) > 1000
        got = got.loc[want.index]
        for column in ("n", "t_mean", "y_mean", "sxx", "sxy", "last_term_index", "last_level"):
            assert got[column].to_numpy(dtype=float) == pytest.approx(want[column].to_numpy(dtype=float), abs=1e-9)
        assert got["last_term_index"].max() == (as_of or 6)


def test_priors_of_an_empty_program_are_the_defaults(empty_db):
    priors = queries.program_priors(empty_db.cursor())
    assert priors == forecast.Priors({}, forecast.DEFAULT_NOISE, forecast.FLOOR, forecast.FLOOR)


def test_program_forecast_agrees_with_the_formulas_for_every_learner(known_growth, framework):
    cur, _ = known_growth
    committee = viewer(cur, "C001")
    priors = queries.program_priors(cur, as_of=3)
    got = queries.growth_forecast(cur, committee, priors, framework, as_of=3)
    want = reference_forecast(queries.growth_fit(cur, committee, as_of=3), priors, framework)
    assert len(got) == len(want) > 1000
    for column in ("growth", "forecast", "sd"):
        assert got[column].to_numpy() == pytest.approx(want[column].to_numpy())


def test_risk_flags_at_term_3_find_who_truly_misses(known_growth, framework):
    cur, truth = known_growth
    priors = queries.program_priors(cur, as_of=3)
    risk = queries.graduation_risk(cur, viewer(cur, "C001"), priors, framework, as_of=3).merge(truth, on="learner_id")
    misses, flagged = risk["misses_graduation_level"], risk["at_risk"]
    sensitivity = (flagged & misses).sum() / misses.sum()
    false_alarms = (flagged & ~misses).sum() / (~misses).sum()
    assert misses.sum() >= 30  # enough learners who truly miss for the rates to mean something
    assert sensitivity >= 0.80, sensitivity
    assert false_alarms <= 0.15, false_alarms


def test_risk_table_is_the_mean_forecast_per_learner_with_the_weakest_domains_in_words(known_growth, framework):
    cur, _ = known_growth
    committee = viewer(cur, "C001")
    priors = queries.program_priors(cur, as_of=3)
    table = queries.graduation_risk(cur, committee, priors, framework, as_of=3)
    assert table["p_reach"].is_monotonic_increasing
    per_competency = queries.growth_forecast(cur, committee, priors, framework, as_of=3)
    first = table.iloc[0]
    mine = per_competency[per_competency["learner_id"] == first["learner_id"]]
    assert first["forecast"] == pytest.approx(mine["forecast"].mean()) and first["sd"] == pytest.approx(
        mine["sd"].mean()
    )
    z = (first["forecast"] - (4 - forecast.HALF)) / first["sd"]
    assert first["p_reach"] == pytest.approx(0.5 * (1 + math.erf(z / math.sqrt(2))))
    domains = forecast.domain_forecast(mine, framework).sort_values("p_reach").head(3)
    want = "; ".join(
        f"{d.domain_name}: level {d.level:.1f} at term {d.term_index:.0f}, forecast {d.forecast:.1f} ± {d.sd:.1f} "
        "at graduation; target 4"
        for d in domains.itertuples()
    )
    assert first["why"] == want
    active = set(cur.execute("SELECT id FROM learners WHERE status = 'active'").df()["id"])
    assert set(table["learner_id"]) == active & set(per_competency["learner_id"])
