"""The graduation forecast: the shape of growth learned from the program's graduated cohorts, and, without them
(and for each competency's own line), per-learner linear growth shrunk toward the learner's own and the program's.

Learned from graduated cohorts (`learn_history`, fed by `queries.program_history`): for each term k before the
last, the graduated learners' level at graduation regressed on their level and growth up to k, the form (line or
curve, normal or observed spread) chosen per term by its leave-one-cohort-out Brier score, the chances read off
out-of-sample residuals; `backtest` repeats the whole learning with each graduated cohort left out.

The straight line: the formulas run in SQL over each learner's least-squares summaries (`queries.growth_forecast`,
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
from collections.abc import Mapping
from dataclasses import dataclass, field

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
    history: "History | None" = field(default=None, compare=False)  # the graduated cohorts' fits, if any


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


# ---- raters' strictness (docs/measurement.md, "Raters' strictness") --------------------------------------------
def rater_offsets(deviations: pd.DataFrame) -> dict[str, float]:
    """Each rater's offset from their deviations (queries.rater_offsets: per rater, the learners they rated, the
    mean of those learners' deviations from their cohort's mean, and the sum of squares around it): the mean,
    shrunk toward zero as a random effect (empirical Bayes): by the between-rater variance over itself plus the
    mean's own noise (the spread of learners within a rater over their number). Zero for every rater when the
    raters' means differ no more than their noise says they would."""
    d = deviations[deviations["learners"] > 0]
    if len(d) < 2 or int(d["learners"].sum()) <= len(d):
        return {str(r): 0.0 for r in deviations["rater_id"]}
    m, mean = d["learners"].to_numpy(dtype=float), d["mean"].to_numpy(dtype=float)
    within = float(d["ss"].sum()) / (m.sum() - len(d))  # pooled variance of a learner's deviation within a rater
    between = float(np.var(mean, ddof=1)) - float(np.mean(within / m))
    shrink = between / (between + within / m) if between > 0 else np.zeros(len(d))
    return {str(r): float(v) for r, v in zip(d["rater_id"], mean * shrink, strict=True)}


# ---- the shape learned from graduated cohorts (docs/measurement.md, "Learned from graduated cohorts") --------
SHAPE_SD = 0.15  # without history: growth per term may bend from the straight line by this much (sd), term by term
MIN_HISTORY = 20  # graduated learners with a final-term rating needed before their history is used
ROWS_PER_COLUMN = 6  # a regression needs this many graduated learners per column
FINAL_TERM_SD = 0.1  # at the final term the level is known up to the rating's own noise
FOLDS_WITHOUT_COHORTS = 5  # with one graduated cohort, out-of-sample checks hold out a fifth of its learners at a time
LEARNER = ""  # the unit of a learner's own mean level, beside the domains' ids


def _design(kind: str, level: np.ndarray, slope: np.ndarray, missed: np.ndarray | None = None) -> np.ndarray:
    """The regression's columns: a line in the level at term k and the growth so far, or a curve in both. A unit
    rated in one term only has no growth yet (NaN): it gets the growth of the others and a column of its own.
    `missed` counts the terms before k without a rating of the unit (a term of leave, or one not rated; the unit
    is rated in term k itself): its own column, so that the graduated cohorts say what a missing term means for
    the course to come."""
    one = np.ones_like(level)
    single = np.isnan(slope)
    slope = np.where(single, 0.0, slope)
    cols = [one, level, slope, single]
    if missed is not None:
        cols.append(np.asarray(missed, dtype=float))
    if not kind.startswith("line"):
        cols += [level**2, level * slope]
    return np.column_stack(cols)


def _gaps(missed: np.ndarray | None, level: np.ndarray) -> np.ndarray:
    return np.zeros_like(level) if missed is None else np.asarray(missed, dtype=float)


def _spread_design(level: np.ndarray, slope: np.ndarray, missed: np.ndarray | None = None) -> np.ndarray:
    """The spread's columns: a line in the level, the growth so far and the terms missed."""
    return np.column_stack([np.ones_like(level), level, np.where(np.isnan(slope), 0.0, slope), _gaps(missed, level)])


CANDIDATES = ("line, normal spread", "line, observed spread", "curve, observed spread", "curve, spread by level")


@dataclass(frozen=True)
class Fit:
    """One term's regression of the graduation level on the level and growth at that term."""

    kind: str
    coef: np.ndarray
    spread: np.ndarray  # the coefficients of the spread's line in (1, level, slope, missed); constant by kind
    z: np.ndarray  # sorted standardised out-of-sample residuals of the graduated learners (the spread's shape)
    learners: int
    gaps: bool = False  # whether the terms missed are a column (only when some graduated learner missed one)

    def mean(self, level: np.ndarray, slope: np.ndarray, missed: np.ndarray | None = None) -> np.ndarray:
        return _design(self.kind, level, slope, _gaps(missed, level) if self.gaps else None) @ self.coef

    def scale(self, level: np.ndarray, slope: np.ndarray, missed: np.ndarray | None = None) -> np.ndarray:
        return np.maximum(_spread_design(level, slope, missed if self.gaps else None) @ self.spread, 0.05)

    def chance(
        self, level: np.ndarray, slope: np.ndarray, reach_from: float, missed: np.ndarray | None = None
    ) -> np.ndarray:
        """The chance of a graduation level at or above `reach_from`: the share of past learners' residuals
        (scaled to this learner) that would have carried the forecast there, or the normal law's."""
        m, s = self.mean(level, slope, missed), self.scale(level, slope, missed)
        need = (reach_from - m) / s
        if self.kind.endswith("normal spread"):
            return np.asarray(_normal_cdf(pd.Series(-need)), dtype=float)
        return 1 - np.searchsorted(self.z, need, side="left") / len(self.z)

    def sd(self, level: np.ndarray, slope: np.ndarray, missed: np.ndarray | None = None) -> np.ndarray:
        return self.scale(level, slope, missed) * float(np.sqrt(np.mean(self.z**2)))


def fit_term(
    kind: str, level: np.ndarray, slope: np.ndarray, final: np.ndarray, missed: np.ndarray | None = None
) -> Fit | None:
    """Least squares of the final level on the design; the spread from leave-one-out residuals (each learner's
    residual had they not been in the fit), so the stated chances are out of sample. Without a graduated learner
    who missed a term, the terms missed are no column: a column of zeros would only ask for more learners; nor with
    too few graduated learners for it."""
    gaps = missed is not None and bool(np.any(missed > 0))
    if gaps and len(final) < ROWS_PER_COLUMN * (_design(kind, level[:1], slope[:1]).shape[1] + 1):
        gaps = False  # too few graduated learners for the column: the fit does without it
    missed = missed if gaps else None
    x = _design(kind, level, slope, missed)
    if len(final) < ROWS_PER_COLUMN * x.shape[1] or len(final) < MIN_HISTORY:
        return None
    inverse = np.linalg.pinv(x.T @ x)  # the normal equations: a few columns, thousands of rows
    coef = inverse @ (x.T @ final)
    hat = np.minimum(((x @ inverse) * x).sum(axis=1), 0.99)
    loo = (final - x @ coef) / (1 - hat)
    line = _spread_design(level, slope, missed)
    if kind.endswith("spread by level"):
        spread = np.linalg.pinv(line.T @ line) @ (line.T @ (np.abs(loo) * np.sqrt(np.pi / 2)))
    else:
        spread = np.array([float(np.sqrt(np.mean(loo**2))), 0.0, 0.0, 0.0])
    s = np.maximum(line @ spread, 0.05)
    return Fit(kind, coef, spread, np.sort(loo / s), len(final), gaps)


@dataclass(frozen=True)
class History:
    """What the graduated cohorts say: per unit (the learner's mean level, or a domain's) and term, a fit."""

    fits: dict[tuple[str, int], Fit]
    learners: int
    cohorts: list[str]
    scores: pd.DataFrame  # per term and candidate: its out-of-sample Brier score over the graduated learners
    offsets: dict[str, float] = field(default_factory=dict)  # each rater's strictness (rater_offsets), removed

    def fit(self, unit: str, term: int) -> Fit | None:
        return self.fits.get((unit, term))


def _folds(cohort: np.ndarray, learner: np.ndarray) -> np.ndarray:
    """Leave-one-cohort-out folds; with a single graduated cohort, five folds of its learners (integer codes)."""
    if len(np.unique(cohort)) > 1:
        return cohort
    return learner % FOLDS_WITHOUT_COHORTS


def out_of_sample(
    kind: str,
    level: np.ndarray,
    slope: np.ndarray,
    final: np.ndarray,
    folds: np.ndarray,
    reach_from: float,
    missed: np.ndarray | None = None,
) -> np.ndarray:
    """Each graduated learner's chance of reaching the level, from a fit on the other folds (NaN where the
    other folds are too few to fit)."""
    out = np.full(len(final), np.nan)
    gaps = np.zeros_like(level) if missed is None else missed
    for fold in np.unique(folds):
        held = folds == fold
        fit = fit_term(kind, level[~held], slope[~held], final[~held], gaps[~held])
        if fit is not None:
            out[held] = fit.chance(level[held], slope[held], reach_from, gaps[held])
    return out


def learn_history(frame: pd.DataFrame, framework: Framework) -> History | None:
    """The fits per unit and term from the graduated learners' features (queries.program_history). The candidate
    kind of each term is the one whose out-of-sample chances (leave one cohort out) had the lowest Brier score
    on the learners' own graduation; domains use their term's kind."""
    if frame.empty or frame["learner_id"].nunique() < MIN_HISTORY:
        return None
    reach_from = framework.calendar.graduation_level - HALF
    # integer codes: comparing and sorting strings of a large program would cost more than the fits
    unit, unit_names = pd.factorize(frame["unit"])
    cohort, cohort_names = pd.factorize(frame["cohort"])
    learner_id, learner_names = pd.factorize(frame["learner_id"])
    own = int(np.flatnonzero(np.asarray(unit_names) == LEARNER)[0]) if LEARNER in set(unit_names) else -1
    k = frame["k"].to_numpy(dtype=int)
    level, slope, final = (frame[c].to_numpy(dtype=float) for c in ("level", "slope", "final"))
    missed = k - frame["rated_terms"].to_numpy(dtype=float)
    fits: dict[tuple[str, int], Fit] = {}
    scores = []
    for term in sorted(int(t) for t in np.unique(k[unit == own])):
        rows = np.flatnonzero((unit == own) & (k == term))
        folds = _folds(cohort[rows], learner_id[rows])
        reached = final[rows] >= reach_from
        best, best_score = None, np.inf
        for kind in CANDIDATES:
            chance = out_of_sample(kind, level[rows], slope[rows], final[rows], folds, reach_from, missed[rows])
            if np.isnan(chance).any():
                continue
            score = float(np.mean((chance - reached) ** 2))
            scores.append({"term": term, "model": kind, "brier": score})
            if score < best_score:
                best, best_score = kind, score
        if best is None:
            continue
        at_term = k == term
        for u in np.unique(unit[at_term]):
            these = np.flatnonzero(at_term & (unit == u))
            fit = fit_term(best, level[these], slope[these], final[these], missed[these])
            if fit is not None:
                fits[(str(unit_names[u]), term)] = fit
    if not fits:
        return None
    cohorts = sorted(str(c) for c in cohort_names)
    return History(fits, len(learner_names), cohorts, pd.DataFrame(scores))


def forecast_units(units: pd.DataFrame, history: History, framework: Framework) -> pd.DataFrame:
    """Add each unit's forecast at graduation (the fit's mean), spread and chance of reaching the graduation level,
    from its term's fit (the nearest term with one when its own has none). A unit rated in the final term
    stands at its level, up to a rating's noise."""
    out = units.assign(forecast=np.nan, sd=np.nan, p_reach=np.nan)
    if out.empty:
        return out
    final = len(framework.term_ids)
    reach_from = framework.calendar.graduation_level - HALF
    for key, rows in out.groupby(["unit", "term_index"]):
        unit, term = str(key[0]), int(str(key[1]))
        level, slope = rows["level"].to_numpy(dtype=float), rows["slope"].to_numpy(dtype=float)
        missed = term - rows["rated_terms"].to_numpy(dtype=float)
        if term >= final:
            mean, sd = level, np.full(len(rows), FINAL_TERM_SD)
            chance = np.asarray(_normal_cdf(pd.Series((level - reach_from) / FINAL_TERM_SD)), dtype=float)
        else:
            fit = _nearest_fit(history, unit, term)
            if fit is None:
                continue
            mean, sd = fit.mean(level, slope, missed), fit.sd(level, slope, missed)
            chance = fit.chance(level, slope, reach_from, missed)
        out.loc[rows.index, "forecast"] = np.clip(mean, framework.min_level, framework.max_level)
        out.loc[rows.index, "sd"] = sd
        out.loc[rows.index, "p_reach"] = chance
    return out


def _nearest_fit(history: History, unit: str, term: int) -> Fit | None:
    terms = sorted({k for u, k in history.fits if u == unit}, key=lambda k: (abs(k - term), -k))
    return history.fit(unit, terms[0]) if terms else None


def unit_outlook(units: pd.DataFrame, framework: Framework, unit: str) -> dict | None:
    """The learned forecast of one unit of a learner (forecast_units' rows), shaped like line_outlook's."""
    row = units[units["unit"] == unit] if not units.empty else units
    if row.empty or pd.isna(row["p_reach"].iloc[0]):
        return None
    r = row.iloc[0]
    return {
        "last_term": framework.term_ids[int(r["term_index"]) - 1],
        "last_level": float(r["level"]),
        "rated_level": float(r["rated_level"]),
        "final_term": framework.final_term,
        "forecast": float(r["forecast"]),
        "sd": float(r["sd"]),
        "p_reach": float(r["p_reach"]),
    }


STRICTNESS_SHOWN = 0.05  # a level net of its raters' strictness is told beside the rated one when this far apart


def as_rated(level: float, rated: float) -> str:
    """The rated level beside the level net of its raters' strictness, in words, when they differ."""
    if abs(rated - level) < STRICTNESS_SHOWN:
        return ""
    return f" (rated {rated:.1f}, by raters {'softer' if rated > level else 'harsher'} than most)"


def weakest_domains(units: pd.DataFrame, framework: Framework, n: int = 3) -> dict[str, str]:
    """Per learner, the `n` domains least likely to reach the target, in words: where the domain stands (net of
    its raters' strictness, and as rated when that differs) and what past cohorts' learners at that point reached
    on average."""
    target = f"{framework.calendar.graduation_level:g}"
    d = units[(units["unit"] != LEARNER) & units["p_reach"].notna()]
    d = d.sort_values(["learner_id", "p_reach", "domain_position"]).groupby("learner_id", sort=False).head(n)
    if d.empty:
        return {}
    level, rated = d["level"].to_numpy(dtype=float), d["rated_level"].to_numpy(dtype=float)
    apart = np.flatnonzero(np.abs(rated - level) >= STRICTNESS_SHOWN)
    as_rated_words = np.full(len(d), "", dtype=object)
    as_rated_words[apart] = [as_rated(level[i], rated[i]) for i in apart]
    words = (
        d["domain_name"]
        + ": level "
        + d["level"].map("{:.1f}".format)
        + " at term "
        + d["term_index"].astype(int).astype(str)
        + pd.Series(as_rated_words, index=d.index, dtype=str)
        + "; past cohorts' learners at that point reached "
        + d["forecast"].map("{:.1f}".format)
        + " on average; target "
        + target
    )
    # the rows are sorted by learner: each learner's reasons are consecutive, joined without a Python group loop
    ids = d["learner_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    parts = words.to_numpy(dtype=object)
    joined = [parts[a] for a in starts]
    for k in range(1, n):
        nxt = starts + k
        ok = (nxt < len(ids)) & (ids[np.minimum(nxt, len(ids) - 1)] == ids[starts])
        joined = [
            j + "; " + parts[x] if o else j for j, x, o in zip(joined, np.minimum(nxt, len(ids) - 1), ok, strict=True)
        ]
    return dict(zip((str(i) for i in ids[starts]), (str(j) for j in joined), strict=True))


# ---- the backtest: how the forecast would have done on the program's own graduated cohorts --------------------
def backtest(without: Mapping[str, pd.DataFrame], framework: Framework) -> pd.DataFrame:
    """Leave one cohort out: for each graduated cohort and term, the chance each of its learners would have been
    given (learned, model choice included, from the other graduated cohorts only, and the learner's ratings up
    to that term) beside whether they reached the graduation level. `without` holds, per graduated cohort, the
    history (queries.program_history) net of raters' strictness estimated without that cohort's ratings. Empty
    with fewer than two cohorts."""
    columns = ["cohort", "term", "learner_id", "p_reach", "reached"]
    cohorts = [c for c, f in sorted(without.items()) if not f.empty and (f["cohort"] == c).any()]
    if len(cohorts) < 2:
        return pd.DataFrame(columns=columns)
    reach_from = framework.calendar.graduation_level - HALF
    parts = []
    for cohort in cohorts:
        frame = without[cohort]
        learner = frame[frame["unit"] == LEARNER]
        others = learn_history(frame[frame["cohort"] != cohort], framework)
        if others is None:
            continue
        held = learner[learner["cohort"] == cohort]
        for term, rows in held.groupby("k"):
            fit = _nearest_fit(others, LEARNER, int(str(term)))
            if fit is None:
                continue
            level, slope = rows["level"].to_numpy(dtype=float), rows["slope"].to_numpy(dtype=float)
            missed = int(str(term)) - rows["rated_terms"].to_numpy(dtype=float)
            parts.append(
                pd.DataFrame(
                    {
                        "cohort": cohort,
                        "term": int(str(term)),
                        "learner_id": rows["learner_id"].to_numpy(),
                        "p_reach": fit.chance(level, slope, reach_from, missed),
                        "reached": rows["final"].to_numpy(dtype=float) >= reach_from,
                    }
                )
            )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


CALIBRATION_BINS = 10  # the calibration error and chart group stated chances in tenths


def backtest_summary(said: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group: learners, how many missed the level, how many were flagged, the share of misses flagged
    (found), the share of the others flagged (false alarms), the mean stated chance, the share that reached
    it, and the calibration error (the mean absolute gap between stated chance and observed share over tenths
    of stated chance, each weighted by its learners)."""
    columns = [*by, "learners", "missed", "flagged", "found", "false_alarms", "stated", "observed", "calibration_error"]
    if said.empty:
        return pd.DataFrame(columns=columns)
    s = said.assign(
        flagged=said["p_reach"] < RISK_BELOW,
        missed=~said["reached"].astype(bool),
        bin=np.minimum((said["p_reach"] * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1),
    )
    s["hit"] = s["flagged"] & s["missed"]
    s["alarm"] = s["flagged"] & ~s["missed"]
    per_bin = s.groupby([*by, "bin"], as_index=False).agg(
        n=("p_reach", "size"), stated=("p_reach", "mean"), observed=("reached", "mean")
    )
    per_bin["gap"] = per_bin["n"] * (per_bin["stated"] - per_bin["observed"]).abs()
    error = per_bin.groupby(by)["gap"].sum() / per_bin.groupby(by)["n"].sum()
    out = s.groupby(by).agg(
        learners=("p_reach", "size"),
        missed=("missed", "sum"),
        flagged=("flagged", "sum"),
        hits=("hit", "sum"),
        alarms=("alarm", "sum"),
        stated=("p_reach", "mean"),
        observed=("reached", "mean"),
    )
    out["found"] = out["hits"] / out["missed"].where(out["missed"] > 0)
    out["false_alarms"] = out["alarms"] / (out["learners"] - out["missed"]).where(out["learners"] > out["missed"])
    out["calibration_error"] = error
    return out.reset_index()[columns]


def calibration_bins(said: pd.DataFrame) -> pd.DataFrame:
    """Per tenth of stated chance: learners, the mean stated chance and the share that reached the level."""
    if said.empty:
        return pd.DataFrame(columns=["bin", "learners", "stated", "observed"])
    s = said.assign(bin=np.minimum((said["p_reach"] * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1))
    s["reached"] = s["reached"].astype(float)
    return s.groupby("bin", as_index=False).agg(
        learners=("p_reach", "size"), stated=("p_reach", "mean"), observed=("reached", "mean")
    )
