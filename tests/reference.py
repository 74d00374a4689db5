"""The documented definition of standing, computed in plain pandas from the raw tables, for tests to compare with."""

import pandas as pd

from data_models import Framework


def classify(level: float | None, expected: float) -> str:
    """docs/measurement.md: behind is a whole level or more below expected; below is less than that."""
    if level is None:
        return "not rated"
    if level <= expected - 1:
        return "behind"
    return "below" if level < expected else "on track"


def reference_standing(cur, framework: Framework) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    ratings = cur.execute("SELECT * FROM ratings").df()
    learners = cur.execute("SELECT id AS learner_id, status, advisor_id FROM learners").df()
    superseded = set(ratings["corrects"].dropna())
    live = ratings[~ratings["id"].isin(superseded)]
    assessed = live[live["rater_role"] != "self"].sort_values(["term_index", "rated_on", "seq"])
    latest = assessed.groupby(["learner_id", "competency_id"]).tail(1).set_index(["learner_id", "competency_id"])
    current = assessed.groupby("learner_id")["term_index"].max()
    rows = []
    for learner in learners.itertuples():
        term = framework.term_ids[int(current.get(learner.learner_id, 1)) - 1]
        for cid in framework.competencies:
            expected = framework.expected_level(cid, term)
            key = (learner.learner_id, cid)
            level = float(latest.loc[key, "level"]) if key in latest.index else None
            standing = learner.status if learner.status != "active" else classify(level, expected)
            rows.append((learner.learner_id, learner.advisor_id, cid, term, level, expected, standing))
    return pd.DataFrame(
        rows, columns=["learner_id", "advisor_id", "competency_id", "current_term", "level", "expected", "standing"]
    )


# ---- the graduation forecast, written out in pandas from the least-squares fits (docs/measurement.md) ----
def reference_priors(fit: pd.DataFrame, default_noise: float, floor: float) -> dict:
    """Method-of-moments priors from every learner's fit rows (queries.growth_fit over the program)."""
    three = fit[fit["n"] > 2]
    dof = (three["n"] - 2).sum()
    noise = float(three["ss_res"].sum() / dof) if dof >= 30 else default_noise
    two = fit[fit["sxx"] > 0].assign(slope=lambda f: f["sxy"] / f["sxx"])
    mu = {str(c): float(v) for c, v in two.groupby("competency_id")["slope"].mean().items()}
    fit = fit.assign(mu=fit["competency_id"].map(mu).fillna(0.0))
    fit["dev"] = fit["sxy"] - fit["mu"] * fit["sxx"]
    per = fit.groupby("learner_id").agg(dev=("dev", "sum"), sxx=("sxx", "sum"))
    per = per[per["sxx"] > 0]
    u_ols = per["dev"] / per["sxx"]
    tau2 = max(float(u_ols.var(ddof=1)) - float((noise / per["sxx"]).mean()), floor) if len(per) > 2 else floor
    two = two.assign(u=two["learner_id"].map(u_ols).fillna(0.0), mu=two["competency_id"].map(mu))
    resid = two["slope"] - two["mu"] - two["u"]
    kappa2 = max(float(resid.var(ddof=1)) - float((noise / two["sxx"]).mean()), floor) if len(two) > 2 else floor
    return {"mu": mu, "noise": noise, "tau2": tau2, "kappa2": kappa2}


def reference_forecast(fit: pd.DataFrame, priors, framework: Framework, shape_sd: float = 0.15) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """Per learner and competency: growth, forecast at the final term and its spread (widened by `shape_sd` a
    term still to come, docs/measurement.md)."""
    f = fit.copy()
    s2 = priors.noise
    f["mu"] = f["competency_id"].map(priors.mu).fillna(0.0)
    dev = (f["sxy"] - f["mu"] * f["sxx"]).groupby(f["learner_id"]).transform("sum")
    sxx_all = f.groupby("learner_id")["sxx"].transform("sum")
    var_u = 1 / (1 / priors.tau2 + sxx_all / s2)
    u = var_u * dev / s2
    prior_mean, prior_var = f["mu"] + u, priors.kappa2 + var_u
    precision = 1 / prior_var + f["sxx"] / s2
    f["growth"] = (prior_mean / prior_var + f["sxy"] / s2) / precision
    ahead = len(framework.term_ids) - f["t_mean"]
    f["forecast"] = (f["y_mean"] + f["growth"] * ahead).clip(framework.min_level, framework.max_level)
    bend = shape_sd * (len(framework.term_ids) - f["last_term_index"])
    f["sd"] = (s2 / f["n"] + ahead**2 / precision + bend**2) ** 0.5
    return f
