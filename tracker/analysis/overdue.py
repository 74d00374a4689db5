"""Overdue work: learners short of the assessment plan this term, self-assessments waiting for review, and each
advisor's and cohort's completion (docs/measurement.md). Scoped by access.VISIBLE_LEARNER like every read;
completion is for coordinators."""

import datetime as dt

import pandas as pd

from data_models import Framework, Role
from tracker.access.policy import Viewer, require_role
from tracker.analysis.coverage import params, run
from tracker.storage.database import Cursor

# Per active learner: how many competencies an advisor or committee member rated this term, and which fall short
# of the plan's ratings this term. A learner is short when they have no such rating this term, or (with a plan)
# any competency has fewer ratings this term than the plan asks.
_SHORT = """,
rated AS (
    SELECT w.learner_id, w.term_index, w.term, count(n.competency_id) AS rated_this_term
    FROM this_term w LEFT JOIN this_term_counts n ON n.learner_id = w.learner_id GROUP BY ALL),
plan_short AS (
    SELECT w.learner_id, p.competency_id, coalesce(n.ratings_this_term, 0) AS have, p.ratings AS needed
    FROM this_term w CROSS JOIN plan p
    LEFT JOIN this_term_counts n ON n.learner_id = w.learner_id AND n.competency_id = p.competency_id
    WHERE p.ratings > 0 AND coalesce(n.ratings_this_term, 0) < p.ratings),
learner_short AS (
    SELECT v.id AS learner_id, v.name AS learner_name, v.cohort, v.advisor_id, r.term,
        r.rated_this_term, coalesce(ps.short, 0) AS short,
        r.rated_this_term = 0 OR coalesce(ps.short, 0) > 0 AS is_short
    FROM visible v JOIN rated r ON r.learner_id = v.id
    LEFT JOIN (SELECT learner_id, count(*) AS short FROM plan_short GROUP BY learner_id) ps ON ps.learner_id = v.id
    WHERE v.status = 'active')"""

# Self-assessments waiting for review: a self-assessment (one that no correction supersedes) is reviewed by an
# advisor or committee rating of the same competency (read through the crosswalk) dated the same day or later.
# Per learner and competency: the oldest self-assessment still waiting, and how many wait.
_WAITING = """,
waiting AS (  -- the latest advisor or committee rating of each competency: derived.CURRENT_LEVELS (last_rated_on)
    SELECT s.learner_id, s.competency_id, min(s.rated_on) AS waiting_since, max(s.rated_on) AS latest_self_on,
        count(*) AS self_assessments
    FROM self_counted s JOIN current_levels cl ON cl.learner_id = s.learner_id AND cl.competency_id = s.competency_id
    WHERE s.rated_on > coalesce(cl.last_rated_on, DATE '1900-01-01')
    GROUP BY ALL)"""


def learners_short(
    cur: Cursor,
    viewer: Viewer,
    fw: Framework,
    advisor: str | None = None,
    cohort: str | None = None,
    today: dt.date | None = None,
) -> pd.DataFrame:
    """Active visible learners without an advisor or committee rating this term, or short of the plan's ratings
    this term, those with none first; `missing` says what is missing in words."""
    final = (
        _SHORT  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + """
    SELECT ls.learner_id, ls.learner_name, ls.cohort, ls.advisor_id, ls.term, ls.rated_this_term, ls.short,
        CASE WHEN any_value(ls.rated_this_term) = 0 THEN 'no advisor or committee rating yet this term'
             ELSE 'short of the plan: ' || string_agg(fc.competency_name || ': ' || ps.have || ' of ' || ps.needed,
                 '; ' ORDER BY fc.domain_position, fc.position) END AS missing
    FROM learner_short ls
    LEFT JOIN plan_short ps ON ps.learner_id = ls.learner_id AND ls.rated_this_term > 0
    LEFT JOIN fw_competencies fc ON fc.competency_id = ps.competency_id
    WHERE ls.is_short
    GROUP BY ls.learner_id, ls.learner_name, ls.cohort, ls.advisor_id, ls.term, ls.rated_this_term, ls.short
    ORDER BY ls.rated_this_term, ls.short DESC, ls.learner_name, ls.learner_id"""
    )
    return run(cur, final, params(viewer, fw, today, cohort=cohort, advisor=advisor))


def waiting_for_review(
    cur: Cursor,
    viewer: Viewer,
    fw: Framework,
    advisor: str | None = None,
    today: dt.date | None = None,
    limit: int = 50,
) -> pd.DataFrame:
    """Self-assessments of active visible learners waiting for review, longest waiting first (at most `limit`
    rows, a row per learner and competency), with the days waited by `today`."""
    final = (
        _WAITING  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + """
    SELECT w.learner_id, v.name AS learner_name, v.cohort, v.advisor_id, w.competency_id, fc.competency_name,
        w.waiting_since, w.latest_self_on, w.self_assessments,
        date_diff('day', w.waiting_since, CAST($today AS DATE)) AS days_waiting
    FROM waiting w JOIN visible v ON v.id = w.learner_id JOIN fw_competencies fc ON fc.competency_id = w.competency_id
    WHERE v.status = 'active'
    ORDER BY w.waiting_since, v.name, v.id, fc.domain_position, fc.position
    LIMIT $limit"""
    )
    today = today or dt.date.today()
    return run(cur, final, params(viewer, fw, today, advisor=advisor) | {"today": today, "limit": limit})


def waiting_per_learner(
    cur: Cursor, viewer: Viewer, fw: Framework, advisor: str | None = None, today: dt.date | None = None
) -> pd.DataFrame:
    """Per active visible learner with self-assessments waiting for review: how many competencies wait, since when
    (the oldest), the latest, and the days waited by `today`; longest waiting first."""
    final = (
        _WAITING  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + """
    SELECT w.learner_id, v.name AS learner_name, v.cohort, v.advisor_id, count(*) AS competencies,
        min(w.waiting_since) AS waiting_since, max(w.latest_self_on) AS latest_self_on,
        date_diff('day', min(w.waiting_since), CAST($today AS DATE)) AS days_waiting
    FROM waiting w JOIN visible v ON v.id = w.learner_id
    WHERE v.status = 'active'
    GROUP BY ALL ORDER BY waiting_since, learner_name, learner_id"""
    )
    today = today or dt.date.today()
    return run(cur, final, params(viewer, fw, today, advisor=advisor) | {"today": today})


# Completion this term: of the active learners of each advisor (or cohort), how many hold an advisor or committee
# rating this term, how many meet the plan's ratings this term in every competency, and the self-assessments
# waiting for review.
_COMPLETION = """
    SELECT grouping(ls.cohort) = 1 AS per_advisor, ls.advisor_id, coalesce(any_value(s.name), '(no advisor)') AS advisor_name,
        ls.cohort, any_value(ls.term) AS term,
        count(*) AS learners,
        count(*) FILTER (WHERE ls.rated_this_term > 0) AS rated_this_term,
        count(*) FILTER (WHERE NOT ls.is_short) AS complete,
        round(count(*) FILTER (WHERE NOT ls.is_short) / count(*), 3) AS share_complete,
        CAST(sum(coalesce(wl.waiting, 0)) AS BIGINT) AS self_assessments_waiting,
        min(wl.oldest) AS oldest_waiting_since
    FROM learner_short ls LEFT JOIN staff s ON s.id = ls.advisor_id
    LEFT JOIN (SELECT learner_id, count(*) AS waiting, min(waiting_since) AS oldest FROM waiting GROUP BY learner_id) wl
        ON wl.learner_id = ls.learner_id
    GROUP BY GROUPING SETS ((ls.advisor_id), (ls.cohort))"""
_FIGURES = [
    "learners",
    "rated_this_term",
    "complete",
    "share_complete",
    "self_assessments_waiting",
    "oldest_waiting_since",
]


def completion_tables(
    cur: Cursor, viewer: Viewer, fw: Framework, today: dt.date | None = None
) -> dict[str, pd.DataFrame]:
    """Completion this term per advisor and per cohort (one query, both tables), for coordinators: active
    learners, how many hold a rating this term, how many are complete under the plan (and the share), and the
    self-assessments waiting with the oldest date."""
    require_role(cur, viewer, Role.coordinator)
    rows = run(cur, _SHORT + _WAITING + _COMPLETION, params(viewer, fw, today))
    advisors = rows[rows["per_advisor"]].sort_values("advisor_id", na_position="last")
    cohorts = rows[~rows["per_advisor"]].sort_values("cohort")
    return {
        "advisor": advisors[["advisor_id", "advisor_name", *_FIGURES]].reset_index(drop=True),
        "cohort": cohorts[["cohort", "term", *_FIGURES]].reset_index(drop=True),
    }


def completion(
    cur: Cursor, viewer: Viewer, fw: Framework, by: str = "advisor", today: dt.date | None = None
) -> pd.DataFrame:
    """One of `completion_tables`: per advisor or per cohort (`by`)."""
    if by not in ("advisor", "cohort"):
        raise ValueError(f"completion by {by!r}: choose advisor or cohort")
    return completion_tables(cur, viewer, fw, today)[by]
