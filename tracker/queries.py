"""Pure reads: (cursor, viewer, filters) -> DataFrame. Every read is scoped to the viewer.

The one definition of standing (docs/measurement.md): which rating counts and how corrections supersede is
`store.TERM_LEVELS`, the latest levels `store.CURRENT_LEVELS` (both kept current on every write; `_LATEST_AS_OF`
computes the same for a past term); what "expected" and "behind" mean is `_STANDING_BODY`. Every page and
export reads these.
"""

import numpy as np
import pandas as pd

from data_models import Role
from tracker.access import Viewer, require_learner, require_role, scope_of
from tracker.store import Cursor, latest_levels_ctes

BEHIND_BY = 1.0  # a competency is behind when its level is at least this far below the expected level
OLD_EVIDENCE_DAYS = 365  # evidence is old when added this long before the learner's latest rating

# The viewer's learners, then their term levels (store.TERM_LEVELS) up to the term asked for.
_VISIBLE = """
visible AS (
    SELECT l.* FROM learners l
    WHERE ($scope = 'program' OR ($scope = 'advisees' AND l.advisor_id = $person) OR ($scope = 'own' AND l.id = $person))
      AND ($learner IS NULL OR l.id = $learner)
      AND ($cohort IS NULL OR l.cohort = $cohort))"""
_PER_TERM = """,
per_term AS (
    SELECT tl.learner_id, tl.competency_id, tl.term_index, tl.is_self, tl.level, tl.rated_on
    FROM term_levels tl SEMI JOIN visible v ON v.id = tl.learner_id
    WHERE tl.term_index <= coalesce($as_of, 32767)),
assessed_term AS (
    SELECT learner_id, max(term_index) AS term_index FROM per_term WHERE NOT is_self GROUP BY learner_id)
"""
_EFFECTIVE = _VISIBLE + _PER_TERM

# Latest levels as of a past term: computed from the term levels up to it.
_LATEST_AS_OF = (
    ","  # noqa: S608 - constant SQL fragments; every value is a bound parameter
    + latest_levels_ctes("per_term")
    + """,
last_rated AS (SELECT learner_id, max(rated_on) AS last_on FROM per_term GROUP BY learner_id)"""
)

# Latest levels now: read from store.CURRENT_LEVELS, which every write keeps current (the same definition).
_LATEST_NOW = """,
latest AS (SELECT cl.* FROM current_levels cl SEMI JOIN visible v ON v.id = cl.learner_id),
previous AS (SELECT learner_id, competency_id, previous_level FROM latest),
assessed_term AS (SELECT learner_id, max(level_term) AS term_index FROM latest GROUP BY learner_id),
last_rated AS (
    SELECT learner_id, max(greatest(coalesce(last_rated_on, last_self_on), coalesce(last_self_on, last_rated_on))) AS last_on
    FROM latest GROUP BY learner_id)"""

_STANDING_BODY = """,
evidence_count AS (
    SELECT e.learner_id, c.competency_id, count(*) AS evidence_count, max(e.added_on) AS last_evidence_on
    FROM evidence e SEMI JOIN visible v ON v.id = e.learner_id, unnest(e.competency_ids) AS c(competency_id)
    GROUP BY ALL)
SELECT v.id AS learner_id, v.name AS learner_name, v.cohort, v.status, v.advisor_id,
    fc.domain_id, fc.domain_name, fc.competency_id, fc.competency_name,
    fc.domain_position, fc.position,
    t.term_index AS current_term_index, ft.term AS current_term,
    CAST(la.level AS DOUBLE) AS level, CAST(la.self_level AS DOUBLE) AS self_level,
    CAST(la.self_level - la.level AS DOUBLE) AS self_gap,
    CAST(x.expected AS DOUBLE) AS expected,
    CAST(la.level - x.expected AS DOUBLE) AS vs_expected,
    CAST(la.level - pr.previous_level AS DOUBLE) AS trend,
    la.last_rated_on, la.last_self_on,
    coalesce(ec.evidence_count, 0) AS evidence_count, ec.last_evidence_on,
    CASE WHEN ec.evidence_count IS NULL THEN 'none'
         WHEN ec.last_evidence_on < lr.last_on - INTERVAL (CAST($evidence_days AS INTEGER)) DAY THEN 'old'
         ELSE 'current' END AS evidence_coverage,
    CASE WHEN v.status <> 'active' THEN v.status
         WHEN la.level IS NULL THEN 'not rated'
         WHEN la.level <= x.expected - $behind_by THEN 'behind'
         WHEN la.level < x.expected THEN 'below'
         ELSE 'on track' END AS standing
FROM visible v
CROSS JOIN fw_competencies fc
LEFT JOIN assessed_term t ON t.learner_id = v.id
LEFT JOIN fw_terms ft ON ft.term_index = coalesce(t.term_index, 1)
LEFT JOIN fw_expected x ON x.competency_id = fc.competency_id AND x.term_index = coalesce(t.term_index, 1)
LEFT JOIN latest la ON la.learner_id = v.id AND la.competency_id = fc.competency_id
LEFT JOIN previous pr ON pr.learner_id = v.id AND pr.competency_id = fc.competency_id
LEFT JOIN evidence_count ec ON ec.learner_id = v.id AND ec.competency_id = fc.competency_id
LEFT JOIN last_rated lr ON lr.learner_id = v.id
ORDER BY v.id, fc.domain_position, fc.position
"""
_STANDING_NOW = "WITH " + _VISIBLE + _LATEST_NOW + _STANDING_BODY
_STANDING_AS_OF = "WITH " + _EFFECTIVE + _LATEST_AS_OF + _STANDING_BODY


def _params(viewer: Viewer, learner: str | None = None, cohort: str | None = None, as_of: int | None = None) -> dict:
    """Bound parameters of every scoped read: the viewer's scope, and the filters asked for."""
    return {
        "scope": scope_of(viewer).value,
        "person": viewer.person_id,
        "learner": learner,
        "cohort": cohort,
        "as_of": as_of,
    }


def _run(cur: Cursor, sql: str, params: dict) -> pd.DataFrame:
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    return cur.execute(sql, used).df()


# ---- the learners a viewer may see -------------------------------------------------------------
def visible_learners(cur: Cursor, viewer: Viewer, cohort: str | None = None) -> pd.DataFrame:
    params = _params(viewer, cohort=cohort)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _EFFECTIVE
        + """
        SELECT v.id, v.name, v.cohort, v.profession, v.status, v.advisor_id, s.name AS advisor_name
        FROM visible v LEFT JOIN staff s ON s.id = v.advisor_id ORDER BY v.name, v.id"""
    )
    return _run(cur, sql, params)


def cohorts(cur: Cursor, viewer: Viewer) -> list[str]:
    return sorted(visible_learners(cur, viewer)["cohort"].unique().tolist())


# ---- standing ----------------------------------------------------------------------------------
def competency_standing(
    cur: Cursor, viewer: Viewer, learner_id: str | None = None, cohort: str | None = None, as_of: int | None = None
) -> pd.DataFrame:
    """One row per visible learner and competency: level, self level, gap, expected, trend, evidence."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    params = _params(viewer, learner_id, cohort, as_of)
    params["behind_by"] = BEHIND_BY
    params["evidence_days"] = OLD_EVIDENCE_DAYS
    return _run(cur, _STANDING_NOW if as_of is None else _STANDING_AS_OF, params)


def domain_standing(standing: pd.DataFrame) -> pd.DataFrame:
    """A domain's level is the mean of its rated competencies' levels; likewise its expected level."""
    rated = standing.assign(rated=standing["level"].notna())
    grouped = rated.groupby(["learner_id", "domain_id", "domain_name", "domain_position"], as_index=False, sort=False)
    out = grouped.agg(
        level=("level", "mean"),
        self_level=("self_level", "mean"),
        expected=("expected", "mean"),
        competencies=("competency_id", "count"),
        rated=("rated", "sum"),
        behind=("standing", lambda s: int((s == "behind").sum())),
    )
    out["vs_expected"] = out["level"] - out["expected"]
    return out.sort_values(["learner_id", "domain_position"], ignore_index=True)


def learners_behind(standing: pd.DataFrame) -> pd.DataFrame:
    """Active learners with at least one competency behind, with the reason in words (worst first)."""
    columns = ["learner_id", "learner_name", "cohort", "current_term", "behind", "worst_gap", "why"]
    behind = standing[standing["standing"] == "behind"].sort_values(["learner_id", "vs_expected"])
    if behind.empty:
        return pd.DataFrame(columns=columns)
    words = (
        behind["competency_name"]
        + " ("
        + behind["domain_name"]
        + "): level "
        + behind["level"].map("{:g}".format)
        + ", expected "
        + behind["expected"].map("{:g}".format)
    )
    out = (
        behind.assign(words=words)
        .groupby(["learner_id", "learner_name", "cohort", "current_term"], as_index=False)
        .agg(behind=("words", "size"), worst_gap=("vs_expected", "min"), why=("words", "; ".join))
    )
    return out[columns].sort_values(["worst_gap", "behind"], ascending=[True, False], ignore_index=True)


def cohort_overview(standing: pd.DataFrame, behind: pd.DataFrame) -> pd.DataFrame:
    """Per cohort: learners, the furthest term assessed, how many are behind and how many on leave."""
    per_learner = standing.drop_duplicates("learner_id")
    flags = per_learner.assign(
        behind=per_learner["learner_id"].isin(behind["learner_id"]), on_leave=per_learner["status"] == "leave"
    )
    return flags.groupby("cohort", as_index=False).agg(
        learners=("learner_id", "count"),
        term=("current_term", "max"),
        behind=("behind", "sum"),
        on_leave=("on_leave", "sum"),
    )


# ---- over time ---------------------------------------------------------------------------------
def trajectory(cur: Cursor, viewer: Viewer, learner_id: str) -> pd.DataFrame:
    """Per term and competency: the advisor/committee level and the self level of that term, and the expected level."""
    require_learner(cur, viewer, learner_id)
    params = _params(viewer, learner_id)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _EFFECTIVE
        + """
        SELECT fc.domain_id, fc.domain_name, fc.domain_position, fc.competency_id, fc.competency_name, fc.position,
            x.term, x.term_index, ft.label AS term_label,
            CAST(x.expected AS DOUBLE) AS expected,
            CAST(max(p.level) FILTER (WHERE NOT p.is_self) AS DOUBLE) AS level,
            CAST(max(p.level) FILTER (WHERE p.is_self) AS DOUBLE) AS self_level
        FROM fw_expected x JOIN fw_competencies fc USING (competency_id) JOIN fw_terms ft ON ft.term = x.term
        LEFT JOIN per_term p ON p.competency_id = x.competency_id AND p.term_index = x.term_index
        GROUP BY ALL ORDER BY fc.domain_position, fc.position, x.term_index"""
    )
    return _run(cur, sql, params)


def cohort_trajectory(cur: Cursor, viewer: Viewer, cohort: str | None = None) -> pd.DataFrame:
    """Per term and domain: median and quartiles of learners' domain levels (advisor/committee), and expected."""
    params = _params(viewer, cohort=cohort)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _EFFECTIVE
        + """,
        learner_domain AS (
            SELECT p.learner_id, fc.domain_id, p.term_index, avg(p.level) AS level
            FROM per_term p JOIN fw_competencies fc USING (competency_id)
            WHERE NOT p.is_self GROUP BY ALL),
        expected AS (
            SELECT fc.domain_id, x.term_index, avg(x.expected) AS expected
            FROM fw_expected x JOIN fw_competencies fc USING (competency_id) GROUP BY ALL)
        SELECT d.domain_id, any_value(fc.domain_name) AS domain_name, d.term_index, any_value(ft.term) AS term,
            count(*) AS learners,
            CAST(quantile_cont(d.level, 0.25) AS DOUBLE) AS q25, CAST(median(d.level) AS DOUBLE) AS median,
            CAST(quantile_cont(d.level, 0.75) AS DOUBLE) AS q75, CAST(any_value(e.expected) AS DOUBLE) AS expected
        FROM learner_domain d JOIN fw_competencies fc ON fc.domain_id = d.domain_id
        JOIN expected e ON e.domain_id = d.domain_id AND e.term_index = d.term_index
        JOIN fw_terms ft ON ft.term_index = d.term_index
        GROUP BY d.domain_id, d.term_index ORDER BY any_value(fc.domain_position), d.term_index"""
    )
    out = _run(cur, sql, params)
    # the join with fw_competencies multiplies rows per domain; count learners once
    return out.assign(learners=lambda f: f["learners"] // _competencies_per_domain(cur, f))


def _competencies_per_domain(cur: Cursor, frame: pd.DataFrame) -> pd.Series:
    counts = dict(cur.execute("SELECT domain_id, count(*) FROM fw_competencies GROUP BY domain_id").fetchall())
    return frame["domain_id"].map(counts).astype(int)


# ---- records -----------------------------------------------------------------------------------
def rating_history(cur: Cursor, viewer: Viewer, learner_id: str, competency_id: str | None = None) -> pd.DataFrame:
    """Every rating of a learner, newest first, with rater name and whether a correction superseded it."""
    require_learner(cur, viewer, learner_id)
    sql = """
        SELECT r.id, r.rated_on, r.term, r.term_index, fc.domain_name, r.competency_id, fc.competency_name,
            CAST(r.level AS DOUBLE) AS level, r.rater_role, coalesce(s.name, l.name) AS rater_name, r.comment,
            r.evidence_ids, r.corrects, EXISTS (SELECT 1 FROM ratings c WHERE c.learner_id = $learner AND c.corrects = r.id) AS superseded
        FROM ratings r JOIN fw_competencies fc USING (competency_id)
        LEFT JOIN staff s ON s.id = r.rater_id LEFT JOIN learners l ON l.id = r.rater_id
        WHERE r.learner_id = $learner AND ($competency IS NULL OR r.competency_id = $competency)
        ORDER BY r.rated_on DESC, r.seq DESC"""
    return cur.execute(sql, {"learner": learner_id, "competency": competency_id}).df()


def evidence_items(cur: Cursor, viewer: Viewer, learner_id: str) -> pd.DataFrame:
    require_learner(cur, viewer, learner_id)
    sql = """SELECT id, added_on, type, title, competency_ids, url, description FROM evidence
             WHERE learner_id = ? ORDER BY added_on DESC, recorded_at DESC, id DESC"""
    return cur.execute(sql, [learner_id]).df()


def review_queue(cur: Cursor, viewer: Viewer) -> pd.DataFrame:
    """Self-assessments newer than the latest advisor or committee rating of that competency."""
    params = _params(viewer)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _EFFECTIVE
        + """,
        last AS (
            SELECT learner_id, competency_id,
                max(rated_on) FILTER (WHERE is_self) AS self_on,
                max(rated_on) FILTER (WHERE NOT is_self) AS assessed_on
            FROM per_term GROUP BY ALL)
        SELECT v.id AS learner_id, v.name AS learner_name, v.cohort, count(*) AS to_review, max(last.self_on) AS latest_self_on
        FROM last JOIN visible v ON v.id = last.learner_id
        WHERE last.self_on > coalesce(last.assessed_on, DATE '1900-01-01') AND v.status = 'active'
        GROUP BY ALL ORDER BY latest_self_on DESC, v.name"""
    )
    return _run(cur, sql, params)


def audit_log(cur: Cursor, viewer: Viewer, limit: int = 5000) -> pd.DataFrame:
    require_role(cur, viewer, Role.coordinator)
    return cur.execute(
        "SELECT seq, occurred_at, actor, action, target, CAST(detail AS VARCHAR) AS detail FROM audit_log ORDER BY seq DESC LIMIT ?",
        [limit],
    ).df()


def trajectory_of(traj: pd.DataFrame, domain_id: str | None = None, competency_id: str | None = None) -> pd.DataFrame:
    """One line of a learner's trajectory: a competency's own, or a domain's (means of its competencies)."""
    part = traj[traj["competency_id"] == competency_id] if competency_id else traj[traj["domain_id"] == domain_id]
    return part.groupby(["term_index", "term", "term_label"], as_index=False)[
        ["expected", "level", "self_level"]
    ].mean()


def export_records(cur: Cursor, viewer: Viewer, kind: str) -> str:
    """A coordinator's CSV export of one record kind, in the format `import` reads back."""
    from tracker.importing import export_csv

    require_role(cur, viewer, Role.coordinator)
    return export_csv(cur, kind)


# ---- growth: the raw material of the forecast (tracker/forecast.py) -----------------------------
_GROWTH_FIT = """
    SELECT learner_id, competency_id, count(*) AS n, avg(term_index) AS t_mean, avg(level) AS y_mean,
        coalesce(regr_sxx(level, term_index), 0) AS sxx, coalesce(regr_sxy(level, term_index), 0) AS sxy,
        CASE WHEN count(*) > 2 THEN greatest(regr_syy(level, term_index)
             - regr_sxy(level, term_index) ^ 2 / nullif(regr_sxx(level, term_index), 0), 0) END AS ss_res,
        max(term_index) AS last_term_index, arg_max(level, term_index) AS last_level
    FROM (SELECT learner_id, competency_id, term_index, CAST(level AS DOUBLE) AS level FROM per_term WHERE NOT is_self)
    GROUP BY ALL"""


def growth_fit(
    cur: Cursor, viewer: Viewer, learner_id: str | None = None, cohort: str | None = None, as_of: int | None = None
) -> pd.DataFrame:
    """Per visible learner and competency: the least-squares summary of their assessed levels over terms."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    params = _params(viewer, learner_id, cohort, as_of)
    sql = "WITH " + _EFFECTIVE + _GROWTH_FIT
    return _run(cur, sql, params)


def program_growth_fit(cur: Cursor, as_of: int | None = None) -> pd.DataFrame:
    """The same summary for every learner of the program. Only the forecast's priors are drawn from it:
    no caller shows these rows, so it needs no viewer."""
    params = {"scope": "program", "person": "", "learner": None, "cohort": None, "as_of": as_of}
    sql = "WITH " + _EFFECTIVE + _GROWTH_FIT
    return _run(cur, sql, params)


# ---- calibration: self-ratings against advisor and committee ratings -----------------------------
def calibration(cur: Cursor, viewer: Viewer, learner_id: str | None = None, cohort: str | None = None) -> pd.DataFrame:
    """Per visible learner and term: the mean of (self level − advisor level) over the competencies rated by both."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    params = _params(viewer, learner_id, cohort)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _EFFECTIVE
        + """,
        paired AS (
            SELECT s.learner_id, s.term_index, s.competency_id, CAST(s.level - a.level AS DOUBLE) AS gap
            FROM per_term s JOIN per_term a USING (learner_id, competency_id, term_index)
            WHERE s.is_self AND NOT a.is_self)
        SELECT p.learner_id, v.name AS learner_name, v.cohort, p.term_index, ft.term,
            avg(p.gap) AS gap, count(*) AS competencies
        FROM paired p JOIN visible v ON v.id = p.learner_id JOIN fw_terms ft ON ft.term_index = p.term_index
        GROUP BY ALL ORDER BY p.learner_id, p.term_index"""
    )
    return _run(cur, sql, params)


CALIBRATED_WITHIN = 0.5  # a mean self − advisor gap within half a level either way counts as calibrated


def calibration_summary(by_term: pd.DataFrame) -> pd.DataFrame:
    """Per learner: the gap in their first and latest paired term, its change, and a label in words."""
    if by_term.empty:
        return pd.DataFrame(
            columns=["learner_id", "learner_name", "cohort", "first_gap", "latest_gap", "change", "rating", "trend"]
        )
    g = (
        by_term.sort_values("term_index")
        .groupby(["learner_id", "learner_name", "cohort"], as_index=False)
        .agg(first_gap=("gap", "first"), latest_gap=("gap", "last"), terms=("term_index", "count"))
    )
    g["change"] = g["latest_gap"] - g["first_gap"]
    g["rating"] = g["latest_gap"].map(
        lambda x: "over-rates" if x > CALIBRATED_WITHIN else "under-rates" if x < -CALIBRATED_WITHIN else "calibrated"
    )
    closing = (g["latest_gap"].abs() < g["first_gap"].abs() - 0.1) & (g["terms"] > 1)
    widening = (g["latest_gap"].abs() > g["first_gap"].abs() + 0.1) & (g["terms"] > 1)
    g["trend"] = np.select([closing, widening], ["closing", "widening"], "steady")
    return g.sort_values("latest_gap", key=abs, ascending=False, ignore_index=True)
