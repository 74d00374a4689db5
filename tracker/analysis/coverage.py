"""Coverage against the assessment plan (`assessment_plan` in competencies.yaml): ratings this term, different
raters, evidence by a term, and standings that rest on fewer ratings than the plan asks (docs/measurement.md).

Every read is scoped by access.VISIBLE_LEARNER and reads ratings through the crosswalk (derived.mapped_ratings),
as standings do. "This term" is the term the learner's cohort is in (`this_term` in `_BASE`)."""

import datetime as dt

import pandas as pd

from data_models import Framework
from tracker.access.policy import VISIBLE_LEARNER, Viewer, require_learner, scope_params
from tracker.storage.database import Cursor
from tracker.storage.derived import OLDER_VERSIONS, evidence_links, mapped_ratings

# The plan as one bound parameter: a row per competency the plan asks something of (0: asks nothing).
PLAN_TYPE = "STRUCT(competency_id VARCHAR, ratings INTEGER, raters INTEGER, evidence INTEGER, evidence_by INTEGER)[]"


def _counting(source: str) -> str:
    """The ratings of `source` (a CTE of ours with rows of `ratings`) that count: no correction supersedes them, and
    they are read through the crosswalk (derived.mapped_ratings) with the term placed by the calendar in force."""
    return f"""
    SELECT r.learner_id, r.mapped_competency_id AS competency_id, r.rater_id, r.rated_on, t.term_index
    FROM {mapped_ratings(source)} r JOIN fw_terms t ON t.term = r.term
    SEMI JOIN fw_competencies fc ON fc.competency_id = r.mapped_competency_id
    ANTI JOIN corrections x ON x.corrects = r.id"""  # noqa: S608 - `source` is our constant


_RATING_COLUMNS = (
    "r.id, r.learner_id, r.competency_id, r.level, r.rater_id, r.rater_role, r.rated_on, r.term, r.framework_version"
)

# The viewer's learners; the term each is in; then, for each question, only the ratings it needs (each scan is
# narrowed before the crosswalk and corrections are applied, which is what a program of 100,000 learners costs).
#
# The term a learner is in ("this term"): with a dated calendar, the latest term that has started by $today
# ($dated_term); otherwise the latest term in which any learner of their cohort was rated (self or assessed),
# so a cohort moves on to a term as soon as its first ratings of it arrive. Only that term leaves the cohort's
# other learners' records.
_BASE = f"""
visible AS (
    SELECT l.* FROM learners l WHERE {VISIBLE_LEARNER}
      AND ($learner IS NULL OR l.id = $learner) AND ($cohort IS NULL OR l.cohort = $cohort)
      AND ($advisor IS NULL OR l.advisor_id = $advisor)),
plan AS (SELECT unnest(CAST($plan AS {PLAN_TYPE}), recursive := true)),
cohort_term AS (
    SELECT l.cohort, max(greatest(coalesce(cl.level_term, 0), coalesce(cl.self_term, 0))) AS term_index
    FROM current_levels cl JOIN learners l ON l.id = cl.learner_id
    WHERE l.cohort IN (SELECT DISTINCT cohort FROM visible)
    GROUP BY l.cohort),
this_term AS (
    SELECT w.*, ft.term FROM (
        SELECT v.id AS learner_id, CAST(coalesce($dated_term, nullif(ct.term_index, 0), 1) AS SMALLINT) AS term_index
        FROM visible v LEFT JOIN cohort_term ct ON ct.cohort = v.cohort) w
    JOIN fw_terms ft ON ft.term_index = w.term_index),
corrections AS (SELECT corrects FROM ratings WHERE corrects IS NOT NULL),
-- advisor and committee ratings of this term
now_ratings AS (
    SELECT {_RATING_COLUMNS} FROM ratings r
    SEMI JOIN this_term w ON w.learner_id = r.learner_id AND w.term = r.term
    WHERE r.rater_role <> 'self' AND ($learner IS NULL OR r.learner_id = $learner)),
this_term_counts AS (
    SELECT learner_id, competency_id, count(*) AS ratings_this_term FROM ({_counting("now_ratings")}) GROUP BY ALL),
-- advisor and committee ratings of the term a level comes from (derived.CURRENT_LEVELS: level_term), where the plan
-- asks more than one rating a term (one is there whenever a level is)
level_terms AS (
    SELECT DISTINCT cl.learner_id, ft.term FROM current_levels cl JOIN fw_terms ft ON ft.term_index = cl.level_term
    SEMI JOIN visible v ON v.id = cl.learner_id
    SEMI JOIN plan p ON p.competency_id = cl.competency_id AND p.ratings > 1),
level_competencies AS (  -- and the earlier versions' competencies that map to them
    SELECT competency_id FROM plan WHERE ratings > 1
    UNION SELECT x.competency_id FROM fw_crosswalk x SEMI JOIN plan p ON p.competency_id = x.to_competency_id AND p.ratings > 1),
level_ratings AS (
    SELECT {_RATING_COLUMNS} FROM ratings r
    SEMI JOIN level_terms lt ON lt.learner_id = r.learner_id AND lt.term = r.term
    WHERE r.rater_role <> 'self' AND r.competency_id IN (SELECT competency_id FROM level_competencies)
        AND ($learner IS NULL OR r.learner_id = $learner)),
level_term_counts AS (
    SELECT a.learner_id, a.competency_id, count(*) AS ratings_at_level
    FROM ({_counting("level_ratings")}) a JOIN current_levels cl
        ON cl.learner_id = a.learner_id AND cl.competency_id = a.competency_id AND cl.level_term = a.term_index
    SEMI JOIN plan p ON p.competency_id = a.competency_id AND p.ratings > 1
    GROUP BY ALL),
-- advisor and committee ratings of every term so far, of the competencies whose plan asks for raters (and of the
-- earlier versions' competencies that map to them)
rater_competencies AS (
    SELECT competency_id FROM plan WHERE raters > 0
    UNION SELECT x.competency_id FROM fw_crosswalk x SEMI JOIN plan p ON p.competency_id = x.to_competency_id AND p.raters > 0),
rater_ratings AS (
    SELECT {_RATING_COLUMNS} FROM ratings r SEMI JOIN visible v ON v.id = r.learner_id
    WHERE r.rater_role <> 'self' AND r.competency_id IN (SELECT competency_id FROM rater_competencies)
        AND ($learner IS NULL OR r.learner_id = $learner)),
rater_counts AS (
    SELECT a.learner_id, a.competency_id, count(DISTINCT a.rater_id) AS raters
    FROM ({_counting("rater_ratings")}) a JOIN this_term w ON w.learner_id = a.learner_id AND a.term_index <= w.term_index
    SEMI JOIN plan p ON p.competency_id = a.competency_id AND p.raters > 0
    GROUP BY ALL),
-- self-assessments later than the learner's earliest latest advisor or committee rating of any competency: the
-- only ones that can be waiting for review (tracker/analysis/overdue.py)
self_after AS (
    SELECT cl.learner_id, min(coalesce(cl.last_rated_on, DATE '1900-01-01')) AS since
    FROM current_levels cl SEMI JOIN visible v ON v.id = cl.learner_id GROUP BY ALL),
self_ratings AS (
    SELECT {_RATING_COLUMNS} FROM ratings r JOIN self_after sa ON sa.learner_id = r.learner_id AND r.rated_on > sa.since
    WHERE r.rater_role = 'self' AND ($learner IS NULL OR r.learner_id = $learner)),
self_counted AS ({_counting("self_ratings")}),
{OLDER_VERSIONS},
mine_evidence AS (SELECT e.* FROM evidence e SEMI JOIN visible v ON v.id = e.learner_id),
evidence_counts AS (SELECT learner_id, competency_id, count(*) AS evidence FROM {evidence_links("mine_evidence")} GROUP BY ALL),
coverage AS (
    SELECT v.id AS learner_id, v.name AS learner_name, v.cohort, v.status, v.advisor_id,
        fc.domain_name, fc.competency_id, fc.competency_name, fc.domain_position, fc.position,
        w.term_index, ft.term,
        nullif(p.ratings, 0) AS ratings_needed, coalesce(n.ratings_this_term, 0) AS ratings_this_term,
        nullif(p.raters, 0) AS raters_needed,
        CASE WHEN p.raters > 0 THEN coalesce(rc.raters, 0) END AS raters,  -- counted where the plan asks
        nullif(p.evidence, 0) AS evidence_needed, coalesce(ec.evidence, 0) AS evidence,
        eb.term AS evidence_by, eb.term_index AS evidence_by_index,
        cl.level IS NOT NULL AS rated,
        CASE WHEN p.ratings > 1 THEN coalesce(lc.ratings_at_level, 0) END AS ratings_at_level,
        coalesce(n.ratings_this_term, 0) < nullif(p.ratings, 0) AS ratings_short,
        coalesce(rc.raters, 0) < nullif(p.raters, 0) AS raters_short,
        CASE WHEN nullif(p.evidence, 0) IS NULL THEN NULL
             WHEN coalesce(ec.evidence, 0) >= p.evidence THEN 'met'
             WHEN w.term_index > eb.term_index THEN 'overdue'
             ELSE 'due' END AS evidence_state,
        cl.level IS NOT NULL AND p.ratings > 1 AND coalesce(lc.ratings_at_level, 0) < p.ratings AS thin
    FROM visible v JOIN this_term w ON w.learner_id = v.id CROSS JOIN plan p
    JOIN fw_competencies fc ON fc.competency_id = p.competency_id
    JOIN fw_terms ft ON ft.term_index = w.term_index
    LEFT JOIN fw_terms eb ON eb.term_index = nullif(p.evidence_by, 0)
    LEFT JOIN this_term_counts n ON n.learner_id = v.id AND n.competency_id = p.competency_id
    LEFT JOIN level_term_counts lc ON lc.learner_id = v.id AND lc.competency_id = p.competency_id
    LEFT JOIN rater_counts rc ON rc.learner_id = v.id AND rc.competency_id = p.competency_id
    LEFT JOIN evidence_counts ec ON ec.learner_id = v.id AND ec.competency_id = p.competency_id
    LEFT JOIN current_levels cl ON cl.learner_id = v.id AND cl.competency_id = p.competency_id)"""  # noqa: S608


def plan_rows(fw: Framework) -> list[dict]:
    """The plan as the bound parameter `$plan`: a row per competency it asks something of."""
    rows = []
    for cid in fw.competencies:
        plan = fw.plan_for(cid)
        if plan is None:
            continue
        by = plan.evidence_by or fw.final_term
        rows.append(
            {
                "competency_id": cid,
                "ratings": plan.ratings_per_term or 0,
                "raters": plan.raters or 0,
                "evidence": plan.evidence_items or 0,
                "evidence_by": fw.term_index(by) if plan.evidence_items else 0,
            }
        )
    return rows


def dated_term(fw: Framework, today: dt.date) -> int | None:
    """With a dated calendar, the index of the latest term that has started by `today`; otherwise None."""
    started = [i for i, t in enumerate(fw.calendar.terms, start=1) if t.starts is not None and t.starts <= today]
    return max(started) if started else None


def params(
    viewer: Viewer,
    fw: Framework,
    today: dt.date | None = None,
    learner: str | None = None,
    cohort: str | None = None,
    advisor: str | None = None,
) -> dict:
    """The bound parameters of `_BASE`: the viewer's scope, the filters, the plan and the dated term."""
    return scope_params(viewer) | {
        "learner": learner,
        "cohort": cohort,
        "advisor": advisor,
        "plan": plan_rows(fw),
        "dated_term": dated_term(fw, today or dt.date.today()),
    }


def run(cur: Cursor, final: str, values: dict) -> pd.DataFrame:
    """`_BASE` followed by `final` (our constant SQL), with the parameters it uses."""
    sql = "WITH " + _BASE + final
    return cur.execute(sql, {k: v for k, v in values.items() if f"${k}" in sql}).df()


_COVERAGE_ROWS = """
SELECT * EXCLUDE (domain_position, position) FROM coverage ORDER BY learner_id, domain_position, position"""


def plan_coverage(
    cur: Cursor, viewer: Viewer, fw: Framework, learner_id: str, today: dt.date | None = None
) -> pd.DataFrame:
    """One row per competency the plan asks something of, for one learner: ratings this term, raters and evidence
    against the plan, and whether the standing rests on fewer ratings than the plan asks (`thin`). Empty without
    a plan."""
    require_learner(cur, viewer, learner_id)
    if not fw.has_assessment_plan:
        return pd.DataFrame()
    return with_words(run(cur, _COVERAGE_ROWS, params(viewer, fw, today, learner=learner_id)))


_COHORT_COVERAGE = """
SELECT competency_id, any_value(competency_name) AS competency_name, any_value(domain_name) AS domain_name,
    any_value(ratings_needed) AS ratings_needed, any_value(raters_needed) AS raters_needed,
    any_value(evidence_needed) AS evidence_needed, any_value(evidence_by) AS evidence_by,
    count(*) AS learners,
    count(*) FILTER (WHERE NOT ratings_short) AS ratings_met,
    count(*) FILTER (WHERE NOT raters_short) AS raters_met,
    count(*) FILTER (WHERE evidence_state = 'met') AS evidence_met,
    count(*) FILTER (WHERE evidence_state = 'overdue') AS evidence_overdue,
    count(*) FILTER (WHERE thin) AS thin
FROM coverage WHERE status = 'active'
GROUP BY competency_id ORDER BY any_value(domain_position), any_value(position)"""


def cohort_coverage(
    cur: Cursor, viewer: Viewer, fw: Framework, cohort: str | None = None, today: dt.date | None = None
) -> pd.DataFrame:
    """Per competency the plan asks something of: of the visible active learners (of a cohort), how many meet
    each requirement this term, how many are overdue with evidence, and how many standings rest on fewer ratings
    than the plan asks. Empty without a plan."""
    if not fw.has_assessment_plan:
        return pd.DataFrame()
    out = run(cur, _COHORT_COVERAGE, params(viewer, fw, today, cohort=cohort))
    return out.assign(
        plan=[plan_words(r) for r in out.to_dict("records")],
        ratings=[_share(r["ratings_met"], r["learners"], r["ratings_needed"]) for r in out.to_dict("records")],
        raters_share=[_share(r["raters_met"], r["learners"], r["raters_needed"]) for r in out.to_dict("records")],
        evidence_share=[_share(r["evidence_met"], r["learners"], r["evidence_needed"]) for r in out.to_dict("records")],
    )


def _share(met: int, learners: int, needed: object) -> str:
    return "" if pd.isna(needed) else f"{met} of {learners}"  # type: ignore[call-overload]


# ---- in words -----------------------------------------------------------------------------------------------
def _count(n: object, one: str, many: str) -> str:
    return f"{int(n)} {one if int(n) == 1 else many}"  # type: ignore[call-overload]


def plan_words(row: dict) -> str:
    """What the plan asks of a competency: "2 ratings a term; 2 raters; 3 evidence items by T4"."""
    parts = []
    if not pd.isna(row["ratings_needed"]):
        parts.append(_count(row["ratings_needed"], "rating", "ratings") + " a term")
    if not pd.isna(row["raters_needed"]):
        parts.append(_count(row["raters_needed"], "rater", "raters"))
    if not pd.isna(row["evidence_needed"]):
        parts.append(_count(row["evidence_needed"], "evidence item", "evidence items") + f" by {row['evidence_by']}")
    return "; ".join(parts)


def _against(have: object, needed: object, one: str, many: str, after: str = "") -> str:
    """Short of the plan: "1 of 2 ratings this term"; enough: "3 ratings this term (plan: 2)"."""
    if int(have) < int(needed):  # type: ignore[call-overload]
        return f"{int(have)} of {_count(needed, one, many)}{after}"  # type: ignore[call-overload]
    return f"{_count(have, one, many)}{after} (plan: {int(needed)})"  # type: ignore[call-overload]


def coverage_words(row: dict) -> str:
    """A learner's coverage of one competency: "1 of 2 ratings this term; 2 raters (plan: 2); 0 of 3 evidence
    items, due by the end of T4"."""
    parts = []
    if not pd.isna(row["ratings_needed"]):
        parts.append(_against(row["ratings_this_term"], row["ratings_needed"], "rating", "ratings", " this term"))
    if not pd.isna(row["raters_needed"]):
        parts.append(_against(row["raters"], row["raters_needed"], "rater", "raters"))
    if not pd.isna(row["evidence_needed"]):
        items = _against(row["evidence"], row["evidence_needed"], "evidence item", "evidence items")
        state = row["evidence_state"]
        if state == "overdue":
            items += f", overdue since the end of {row['evidence_by']}"
        elif state == "due":
            items += f", due by the end of {row['evidence_by']}"
        parts.append(items)
    return "; ".join(parts)


def thin_words(row: dict) -> str:
    """How a standing resting on fewer ratings than the plan asks is marked: "rests on 1 of 2 ratings"."""
    if not row["thin"]:
        return ""
    return f"rests on {int(row['ratings_at_level'])} of {_count(row['ratings_needed'], 'rating', 'ratings')}"


def with_words(coverage: pd.DataFrame) -> pd.DataFrame:
    rows = coverage.to_dict("records")
    return coverage.assign(
        coverage=[coverage_words(r) for r in rows],
        plan=[plan_words(r) for r in rows],
        thin_note=[thin_words(r) for r in rows],
    )


def with_coverage(standing: pd.DataFrame, coverage: pd.DataFrame) -> pd.DataFrame:
    """The competency table with the plan's coverage beside each standing, and a standing that rests on fewer
    ratings than the plan asks marked in words ("on track, rests on 1 of 2 ratings")."""
    if coverage.empty:
        return standing.assign(coverage="")
    words = coverage.set_index("competency_id")[["coverage", "thin_note"]]
    out = standing.join(words, on="competency_id")
    out["coverage"] = out["coverage"].fillna("")
    note = out["thin_note"].fillna("")
    out["standing"] = out["standing"].where(note == "", out["standing"] + ", " + note)
    return out.drop(columns="thin_note")
