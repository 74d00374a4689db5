"""Reads of the committee's review cycle: meetings, agendas, drafts and signed decisions, scoped to the viewer."""

import pandas as pd

from data_models import Framework, Role
from tracker.access.policy import VISIBLE_LEARNER, Viewer, require_learner, require_role, scope_params
from tracker.storage.database import Cursor


def committee_members(cur: Cursor, viewer: Viewer) -> pd.DataFrame:
    """Staff on the committee (who may chair or sit on a review meeting), by name."""
    require_role(cur, viewer, Role.committee, Role.coordinator)
    return cur.execute("SELECT id, name FROM staff WHERE list_contains(roles, 'committee') ORDER BY name, id").df()


def staff_names(cur: Cursor, viewer: Viewer) -> pd.DataFrame:
    """Every staff member with their roles (owners of a decision's actions), by name."""
    require_role(cur, viewer, Role.committee, Role.coordinator)
    return cur.execute("SELECT id, name FROM staff ORDER BY name, id").df()


_MEETINGS = """
    SELECT m.id, m.title, m.held_on, m.period, m.cohort, m.chair_id, s.name AS chair_name, m.members,
        m.signed_at, m.signed_at IS NOT NULL AS signed,
        (SELECT count(*) FROM review_agenda a WHERE a.meeting_id = m.id) AS learners,
        (SELECT count(*) FROM decisions d WHERE d.meeting_id = m.id) AS decisions
    FROM review_meetings m LEFT JOIN staff s ON s.id = m.chair_id
    WHERE $meeting IS NULL OR m.id = $meeting
    ORDER BY m.held_on DESC, m.created_at DESC"""


def review_meetings(cur: Cursor, viewer: Viewer, meeting_id: str | None = None) -> pd.DataFrame:
    """The review meetings (committee members and coordinators): newest first, with their chair and figures."""
    require_role(cur, viewer, Role.committee, Role.coordinator)
    return cur.execute(_MEETINGS, {"meeting": meeting_id}).df()


def meeting_agenda(cur: Cursor, viewer: Viewer, meeting_id: str) -> pd.DataFrame:
    """A meeting's agenda in order: each learner, why they are listed, and the decision signed for them (if any).
    The draft outcome shows only to the committee."""
    require_role(cur, viewer, Role.committee, Role.coordinator)
    sql = """
        SELECT a.position, a.learner_id, l.name AS learner_name, l.cohort, a.reasons,
            CASE WHEN $drafts THEN dr.outcome END AS draft_outcome, d.id AS decision_id, d.outcome
        FROM review_agenda a JOIN learners l ON l.id = a.learner_id
        LEFT JOIN decision_drafts dr ON dr.meeting_id = a.meeting_id AND dr.learner_id = a.learner_id
        LEFT JOIN decisions d ON d.meeting_id = a.meeting_id AND d.learner_id = a.learner_id
        WHERE a.meeting_id = $meeting ORDER BY a.position"""
    return cur.execute(sql, {"meeting": meeting_id, "drafts": viewer.has(Role.committee)}).df()


def decision_drafts(cur: Cursor, viewer: Viewer, meeting_id: str) -> pd.DataFrame:
    """The drafts of a meeting, one per learner discussed so far: for the committee only."""
    from tracker.access.policy import require_drafts

    require_drafts(cur, viewer)
    return cur.execute(
        "SELECT learner_id, outcome, rationale, CAST(actions AS VARCHAR) AS actions, CAST(levels AS VARCHAR) AS levels, "
        "updated_by, updated_at FROM decision_drafts WHERE meeting_id = ? ORDER BY learner_id",
        [meeting_id],
    ).df()


# Signed decisions the viewer may see (the learners of VISIBLE_LEARNER), with their actions in words, who signed
# them, and what replaced them. Drafts live in another table: nothing here is ever a draft.
_DECISIONS = f"""
    WITH visible AS (
        SELECT l.* FROM learners l WHERE {VISIBLE_LEARNER}
          AND ($learner IS NULL OR l.id = $learner) AND ($cohort IS NULL OR l.cohort = $cohort)),
    acts AS (
        SELECT decision_id, string_agg(action || ' (' || coalesce(s.name, l.name, owner_id) || ', by '
            || strftime(due_on, '%Y-%m-%d') || ')', '; ' ORDER BY position) AS actions
        FROM decision_actions a LEFT JOIN staff s ON s.id = a.owner_id LEFT JOIN learners l ON l.id = a.owner_id
        GROUP BY decision_id)
    SELECT d.id, d.learner_id, v.name AS learner_name, v.cohort, d.meeting_id, m.title AS meeting_title,
        d.decided_on, d.outcome, d.rationale, coalesce(acts.actions, '') AS actions,
        d.signed_by, s.name AS signed_by_name, d.replaces, r.id AS replaced_by, r.id IS NULL AS current
    FROM decisions d JOIN visible v ON v.id = d.learner_id
    LEFT JOIN review_meetings m ON m.id = d.meeting_id
    LEFT JOIN staff s ON s.id = d.signed_by
    LEFT JOIN acts ON acts.decision_id = d.id
    LEFT JOIN decisions r ON r.replaces = d.id
    WHERE ($meeting IS NULL OR d.meeting_id = $meeting OR d.replaces IN (SELECT id FROM decisions WHERE meeting_id = $meeting))
    ORDER BY d.learner_id, d.decided_on DESC, d.seq DESC"""  # noqa: S608 - the access rule is our constant


def learner_decisions(
    cur: Cursor,
    viewer: Viewer,
    learner_id: str | None = None,
    cohort: str | None = None,
    meeting_id: str | None = None,
) -> pd.DataFrame:
    """Signed committee decisions about the learners the viewer may see (a learner: their own; an advisor: their
    advisees'; the committee and coordinators: all), newest first per learner, revisions beside what they replace."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    params = scope_params(viewer) | {"learner": learner_id, "cohort": cohort, "meeting": meeting_id}
    return cur.execute(_DECISIONS, params).df()


def decision_counts(cur: Cursor, viewer: Viewer, cohort: str | None = None) -> pd.DataFrame:
    """Per outcome: how many visible learners it is the current decision of (a revision counts, not what it replaced)."""
    decisions = learner_decisions(cur, viewer, cohort=cohort)
    current = decisions[decisions["current"]].drop_duplicates("learner_id")  # the newest current decision per learner
    return current.groupby("outcome", as_index=False).agg(learners=("learner_id", "count"))


def plans_to_open(cur: Cursor, viewer: Viewer, framework: Framework) -> pd.DataFrame:
    """The seam for learning plans: current signed decisions whose outcome requires a plan (`requires_plan` of the
    outcome: learning and remediation plans, and any program outcome so marked), one row per decision, oldest
    first. A plans feature reads this to know which plans to open; nothing here records a plan."""
    wanted = [o.id for o in framework.outcomes.values() if o.requires_plan]
    decisions = learner_decisions(cur, viewer)
    latest = decisions[decisions["current"]].drop_duplicates("learner_id")  # a later decision supersedes a plan
    found = latest[latest["outcome"].isin(wanted)]
    return found.sort_values(["decided_on", "id"], ignore_index=True)[
        ["id", "learner_id", "learner_name", "cohort", "outcome", "rationale", "actions", "decided_on", "signed_by"]
    ]


def meeting_consensus(cur: Cursor, viewer: Viewer, meeting_id: str) -> pd.DataFrame:
    """The consensus levels a signed meeting changed: the committee ratings its chair recorded at sign-off for the
    learners on its agenda, dated the day of the meeting."""
    require_role(cur, viewer, Role.committee, Role.coordinator)
    sql = """
        SELECT r.learner_id, l.name AS learner_name, fc.competency_name, CAST(r.level AS DOUBLE) AS level, r.term,
            r.comment
        FROM review_meetings m JOIN review_agenda a ON a.meeting_id = m.id
        JOIN ratings r ON r.learner_id = a.learner_id AND r.rater_role = 'committee' AND r.rater_id = m.chair_id
            AND r.rated_on = m.held_on
        JOIN learners l ON l.id = r.learner_id JOIN fw_competencies fc ON fc.competency_id = r.competency_id
        WHERE m.id = $meeting AND m.signed_at IS NOT NULL
        ORDER BY a.position, fc.domain_position, fc.position"""
    return cur.execute(sql, {"meeting": meeting_id}).df()
