"""The agenda the app proposes for a review meeting: who to discuss, and why."""

import pandas as pd

from data_models import Framework
from tracker.access.policy import Viewer, require_meeting_organiser
from tracker.analysis import queries
from tracker.analysis.forecast import Priors
from tracker.storage.database import Cursor

LARGE_SELF_GAP = 1.0  # a learner whose self-ratings stand this far from the advisor's on average is proposed


# ---- the agenda --------------------------------------------------------------------------------
def proposed_agenda(
    cur: Cursor, viewer: Viewer, fw: Framework, priors: Priors, cohort: str | None = None, brief: bool = False
) -> pd.DataFrame:
    """The learners the committee should discuss, each with the reasons in words: behind the expected levels, at
    risk of missing the graduation level, a large gap between self and advisor ratings, or no advisor rating yet
    in the term they are in. Worst first: the learners with most reasons, then by name. `brief` names only the
    competencies furthest behind (queries.WHY_FIRST), for a list read at a glance."""
    require_meeting_organiser(cur, viewer)
    reasons: dict[str, list[str]] = {}

    def add(ids: pd.Series, words: pd.Series) -> None:
        for learner_id, text in zip(ids, words, strict=True):
            reasons.setdefault(str(learner_id), []).append(str(text))

    behind = queries.learners_behind(cur, viewer, cohort=cohort)
    if brief:  # the competencies furthest behind, and how many more (the learner's page lists them all)
        more = (behind["behind"] - queries.WHY_FIRST).clip(lower=0)
        why = behind["why_first"] + more.map(lambda n: f"; and {n} more" if n else "")
    else:
        why = behind["why"]
    count = behind["behind"].map(lambda n: f"{n} competency" if n == 1 else f"{n} competencies")
    add(behind["learner_id"], "behind in " + count + " (" + why + ")")
    risk = queries.graduation_risk(cur, viewer, priors, fw, cohort=cohort)
    risk = risk[risk["at_risk"]]
    target = f"{fw.calendar.graduation_level:g}"
    add(
        risk["learner_id"],
        risk["p_reach"].map(lambda p: f"at risk: {p:.0%} chance of reaching level {target} by graduation"),
    )
    summary = queries.calibration_summary(queries.calibration(cur, viewer, cohort=cohort))
    gap = summary[summary["latest_gap"].abs() >= LARGE_SELF_GAP]
    add(gap["learner_id"], gap["latest_gap"].map(lambda g: f"self-ratings {g:+.1f} levels from the advisor's lately"))
    unrated = queries.without_advisor_rating(cur, viewer, cohort=cohort)
    add(unrated["learner_id"], unrated["term"].map(lambda t: f"no advisor rating yet in {fw.term_name(t)}"))
    learners = queries.visible_learners(cur, viewer, cohort=cohort)
    listed = learners[learners["id"].isin(list(reasons))].assign(
        reasons=lambda f: f["id"].map(lambda i: "; ".join(reasons[i])),
        count=lambda f: f["id"].map(lambda i: len(reasons[i])),
    )
    listed = listed.sort_values(["count", "name", "id"], ascending=[False, True, True])
    return listed.rename(columns={"id": "learner_id", "name": "learner_name"})[
        ["learner_id", "learner_name", "cohort", "reasons"]
    ].reset_index(drop=True)


def reason_list(reasons: str) -> list[str]:
    """An agenda row's reasons one by one: split at the "; " between reasons, never at one inside a reason's
    parentheses (the competencies a learner is behind in)."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(reasons):
        depth = max(0, depth + {"(": 1, ")": -1}.get(ch, 0))
        if depth == 0 and reasons.startswith("; ", i):
            out.append(reasons[start:i])
            start = i + 2
    out.append(reasons[start:])
    return [r for r in out if r]


def whole_cohort(cur: Cursor, viewer: Viewer, cohort: str) -> pd.DataFrame:
    """Every active learner of a cohort, by name: the agenda of a meeting that reviews them all."""
    require_meeting_organiser(cur, viewer)
    learners = queries.visible_learners(cur, viewer, cohort=cohort)
    learners = learners[learners["status"] == "active"]
    return pd.DataFrame(
        {
            "learner_id": learners["id"],
            "learner_name": learners["name"],
            "cohort": learners["cohort"],
            "reasons": f"every learner of cohort {cohort}",
        }
    ).reset_index(drop=True)
