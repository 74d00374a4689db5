"""The graduation forecast: per-learner linear growth, shrunk toward the learner's own and the program's growth.

Pure functions over the least-squares summaries of `queries.growth_fit`; the model is written up in
docs/measurement.md. A competency's growth per term is taken as

    slope(learner, competency) = mu(competency) + u(learner) + e(learner, competency)

where mu is the program's average growth in that competency, u the learner's own pace (shared by all their
competencies) and e what is particular to the competency. u and e are estimated from the learner's ratings
and shrunk toward zero as much as their noise warrants (empirical Bayes with normal priors), so a learner
with few ratings is forecast to grow like the program, and one with many like themselves.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_models import Framework

FLOOR = 1e-4  # smallest variance of growth we accept, so that shrinkage never divides by zero
DEFAULT_NOISE = 0.25**2  # rating noise when too few learners have three or more rated terms
RISK_BELOW = 0.5  # a learner is at risk when the chance of reaching the graduation level is below this
HALF = 0.25  # a true level within a quarter level of the target is rated at the target (half-level scale)


@dataclass(frozen=True)
class Priors:
    """What the program's ratings say about growth: averages and spreads, no individual records."""

    mu: dict[str, float]  # average growth per term, per competency
    noise: float  # variance of a rating around the learner's own line
    tau2: float  # between-learner variance of pace
    kappa2: float  # within-learner variance of growth between competencies


def estimate_priors(fit: pd.DataFrame) -> Priors:
    """Method-of-moments estimates from every learner's fit (queries.program_growth_fit)."""
    if fit.empty:
        return Priors({}, DEFAULT_NOISE, FLOOR, FLOOR)
    fit = fit.copy()
    three = fit[fit["n"] > 2]
    dof = (three["n"] - 2).sum()
    noise = float(three["ss_res"].sum() / dof) if dof >= 30 else DEFAULT_NOISE
    two = fit[fit["sxx"] > 0].assign(slope=lambda f: f["sxy"] / f["sxx"])
    mu = {str(c): float(v) for c, v in two.groupby("competency_id")["slope"].mean().items()}
    fit["mu"] = fit["competency_id"].map(mu).fillna(0.0)
    fit["dev"] = fit["sxy"] - fit["mu"] * fit["sxx"]
    per = fit.groupby("learner_id").agg(dev=("dev", "sum"), sxx=("sxx", "sum"))
    per = per[per["sxx"] > 0]
    u_ols = per["dev"] / per["sxx"]
    tau2 = max(float(u_ols.var(ddof=1)) - float((noise / per["sxx"]).mean()), FLOOR) if len(per) > 2 else FLOOR
    two = two.assign(u=two["learner_id"].map(u_ols).fillna(0.0), mu=two["competency_id"].map(mu))
    resid = two["slope"] - two["mu"] - two["u"]
    kappa2 = max(float(resid.var(ddof=1)) - float((noise / two["sxx"]).mean()), FLOOR) if len(two) > 2 else FLOOR
    return Priors(mu, noise, tau2, kappa2)


def forecast(fit: pd.DataFrame, priors: Priors, framework: Framework) -> pd.DataFrame:
    """Per learner and competency: level forecast at the final term, its standard deviation, P(reaching target)."""
    if fit.empty:
        return fit.assign(forecast=[], sd=[], p_reach=[], growth=[])
    f = fit.copy()
    s2 = priors.noise
    final = len(framework.term_ids)
    target = framework.calendar.graduation_level
    f["mu"] = f["competency_id"].map(priors.mu).fillna(0.0)
    dev = (f["sxy"] - f["mu"] * f["sxx"]).groupby(f["learner_id"]).transform("sum")
    sxx_all = f.groupby("learner_id")["sxx"].transform("sum")
    # the learner's pace: their pooled deviation from the program's growth, shrunk toward zero
    u = (dev / s2) / (1 / priors.tau2 + sxx_all / s2)
    var_u = 1 / (1 / priors.tau2 + sxx_all / s2)
    # the competency's growth: its own slope, shrunk toward the program's growth plus the learner's pace
    prior_mean, prior_var = f["mu"] + u, priors.kappa2 + var_u
    precision = 1 / prior_var + f["sxx"] / s2
    f["growth"] = (prior_mean / prior_var + f["sxy"] / s2) / precision
    var_growth = 1 / precision
    ahead = final - f["t_mean"]
    f["forecast"] = (f["y_mean"] + f["growth"] * ahead).clip(framework.min_level, framework.max_level)
    f["sd"] = np.sqrt(s2 / f["n"] + ahead**2 * var_growth)
    f["p_reach"] = _normal_cdf((f["forecast"] - (target - HALF)) / f["sd"])
    return f


def learner_risk(per_competency: pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """Per learner: the mean forecast over competencies, its spread, P(reaching the graduation level), at risk or not."""
    target = framework.calendar.graduation_level
    g = per_competency.groupby("learner_id", as_index=False).agg(
        forecast=("forecast", "mean"),
        sd=("sd", "mean"),
        level=("last_level", "mean"),
        term_index=("last_term_index", "max"),
        competencies=("competency_id", "count"),
    )
    g["p_reach"] = _normal_cdf((g["forecast"] - (target - HALF)) / g["sd"])
    g["at_risk"] = g["p_reach"] < RISK_BELOW
    return g.sort_values("p_reach", ignore_index=True)


def domain_forecast(per_competency: pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """Per learner and domain: current level, forecast and spread as means over the domain's rated competencies."""
    target = framework.calendar.graduation_level
    f = per_competency.assign(domain_id=per_competency["competency_id"].map(lambda c: framework.domain_of[c].id))
    g = f.groupby(["learner_id", "domain_id"], as_index=False).agg(
        level=("last_level", "mean"),
        term_index=("last_term_index", "max"),
        forecast=("forecast", "mean"),
        sd=("sd", "mean"),
    )
    g["p_reach"] = _normal_cdf((g["forecast"] - (target - HALF)) / g["sd"])
    g["domain_name"] = g["domain_id"].map(lambda d: framework.domain(d).name)
    return g


def reason(domains: pd.DataFrame, framework: Framework, limit: int = 3) -> str:
    """The learner's weakest domains in words: 'Research: level 2 at term 3, forecast 3.1 ± 0.4 at graduation; target 4'."""
    target = framework.calendar.graduation_level
    worst = domains.sort_values("p_reach").head(limit)
    return "; ".join(
        f"{d.domain_name}: level {d.level:.1f} at term {d.term_index:.0f}, forecast {d.forecast:.1f} ± {d.sd:.1f} "
        f"at graduation; target {target:g}"
        for d in worst.itertuples()
    )


def _normal_cdf(z: pd.Series) -> pd.Series:
    return z.map(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))) if v == v else float("nan"))


def with_forecast(standing: pd.DataFrame, per_competency: pd.DataFrame) -> pd.DataFrame:
    """The standing table with each competency's forecast, spread and chance of reaching the graduation level."""
    cols = ["learner_id", "competency_id", "forecast", "sd", "p_reach"]
    extra = per_competency[cols] if not per_competency.empty else pd.DataFrame(columns=cols)
    return standing.merge(extra, on=["learner_id", "competency_id"], how="left")


def line_outlook(
    per_competency: pd.DataFrame, framework: Framework, domain_id: str | None = None, competency_id: str | None = None
) -> dict | None:
    """The forecast of one trajectory line (a competency, or a domain as the mean of its competencies)."""
    if per_competency.empty:
        return None
    if competency_id is not None:
        part = per_competency[per_competency["competency_id"] == competency_id]
    else:
        ids = {c.id for c in framework.domain(domain_id or "").competencies}
        part = per_competency[per_competency["competency_id"].isin(ids)]
    if part.empty:
        return None
    target = framework.calendar.graduation_level
    fc, sd = float(part["forecast"].mean()), float(part["sd"].mean())
    last = int(part["last_term_index"].max())
    last_level = float(part.loc[part["last_term_index"] == last, "last_level"].mean())
    return {
        "last_term": framework.term_ids[last - 1],
        "last_level": last_level,
        "final_term": framework.final_term,
        "forecast": fc,
        "sd": sd,
        "p_reach": float(_normal_cdf(pd.Series([(fc - (target - HALF)) / sd])).iloc[0]),
    }


def risk_table(per_competency: pd.DataFrame, standing: pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """Active learners, most at risk of missing the graduation level first, with the reason in words."""
    columns = ["learner_id", "learner_name", "cohort", "current_term", "p_reach", "forecast", "sd", "at_risk", "why"]
    if per_competency.empty:
        return pd.DataFrame(columns=columns)
    people = standing.drop_duplicates("learner_id").set_index("learner_id")
    active = people.index[people["status"] == "active"]
    fc = per_competency[per_competency["learner_id"].isin(active)]
    risk = learner_risk(fc, framework)
    domains = domain_forecast(fc, framework)
    why = {lid: reason(group, framework) for lid, group in domains.groupby("learner_id")}
    risk["why"] = risk["learner_id"].map(why)
    risk = risk.join(people[["learner_name", "cohort", "current_term"]], on="learner_id")
    return risk[columns]
