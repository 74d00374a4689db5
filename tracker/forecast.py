"""The graduation forecast: per-learner linear growth, shrunk toward the learner's own and the program's growth.

The formulas run in SQL over each learner's least-squares summaries (`queries.growth_forecast`,
`queries.graduation_risk`, `queries.program_priors`); this module holds the priors, the chance of reaching the
graduation level, and the per-domain and per-line summaries of a learner's forecasts. The model is written up in
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


def priors_from_moments(m: dict) -> Priors:
    """The priors from the program's moments (queries.program_priors): variances net of the rating noise,
    floored so that shrinkage never divides by zero."""
    mu = dict(zip(m.get("mu_ids") or [], m.get("mu_values") or [], strict=True))
    noise = float(m["noise"]) if m.get("noise") is not None else DEFAULT_NOISE
    tau2 = max(float(m["pace_var"]) - float(m["pace_noise"]), FLOOR) if (m.get("learners") or 0) > 2 else FLOOR
    kappa2 = max(float(m["slope_var"]) - float(m["slope_noise"]), FLOOR) if (m.get("slopes") or 0) > 2 else FLOOR
    return Priors({str(c): float(v) for c, v in mu.items()}, noise, tau2, kappa2)


def with_chance(frame: pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """Add p_reach: the chance that a forecast (mean `forecast`, spread `sd`) is rated the graduation level or
    above (the level less half a step, on a half-level scale)."""
    target = framework.calendar.graduation_level
    return frame.assign(p_reach=_normal_cdf((frame["forecast"] - (target - HALF)) / frame["sd"]))


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


_ERF = np.frompyfunc(math.erf, 1, 1)


def _normal_cdf(z: pd.Series) -> pd.Series:
    erf = np.asarray(_ERF(np.asarray(z, dtype=float) / math.sqrt(2)), dtype=float)
    return pd.Series(0.5 * (1 + erf), index=z.index)


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
