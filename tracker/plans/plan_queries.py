"""Pure reads of learning plans: (cursor, viewer, filters) -> DataFrame, scoped like every read (VISIBLE_LEARNER:
a learner their own, an advisor their advisees', the committee and coordinators every learner's).

A goal's status (docs/measurement.md, "Learning plan goals"): *met* when the learner's level of the competency (the
latest advisor or committee level, current_levels) is at or above the level aimed for; else *overdue* when its term
has passed (the learner is assessed in a later term, or the calendar's end of the term is behind us); else *open*.
"""

import datetime as dt

import pandas as pd

from data_models import Framework
from tracker.access.policy import VISIBLE_LEARNER, Viewer, require_learner, scope_params
from tracker.storage.database import Cursor
from tracker.storage.derived import OLDER_VERSIONS

_VISIBLE = f"""
    visible AS (
        SELECT l.* FROM learners l WHERE {VISIBLE_LEARNER}
          AND ($learner IS NULL OR l.id = $learner) AND ($cohort IS NULL OR l.cohort = $cohort))"""  # noqa: S608

# A plan a committee decision opened stays open while that decision is the learner's current one (their newest that
# no revision replaced); a later decision, or a revision of it, closes it: the committee has decided anew (a new plan,
# if the new outcome requires one, is the new decision's). A plan the learner started stays open.
PLAN_STATE = """
    current_decision AS (
        SELECT d.learner_id, d.id, d.outcome, d.decided_on FROM decisions d
        WHERE NOT EXISTS (SELECT 1 FROM decisions r WHERE r.replaces = d.id)
        QUALIFY row_number() OVER (PARTITION BY d.learner_id ORDER BY d.decided_on DESC, d.seq DESC) = 1),
    plan_state AS (
        SELECT p.id AS plan_id, p.decision_id IS NULL OR cd.id = p.decision_id AS plan_open,
            CASE WHEN p.decision_id IS NOT NULL AND cd.id <> p.decision_id THEN cd.id END AS closed_by,
            CASE WHEN p.decision_id IS NOT NULL AND cd.id <> p.decision_id THEN cd.outcome END AS closed_outcome,
            CASE WHEN p.decision_id IS NOT NULL AND cd.id <> p.decision_id THEN cd.decided_on END AS closed_on
        FROM learning_plans p LEFT JOIN current_decision cd ON cd.learner_id = p.learner_id)"""

# A goal names its competency and level as the framework accepted when it was recorded; under a later version it
# reads through the crosswalk (derived.OLDER_VERSIONS): renamed or merged, it follows its heir and its level the
# level map; split or retired, it stays under its old name, `unplaced`, for its learner to write anew.
PLACED = (
    OLDER_VERSIONS  # noqa: S608 - our constants
    + """,
    placed AS (
        SELECT g.id, g.version, any_value(o.version) AS written_under,
            list(m.to_competency_id) FILTER (WHERE m.to_competency_id IS NOT NULL) AS heirs,
            count(m.from_version) > 0 AS walked
        FROM latest g LEFT JOIN older o ON g.recorded_at >= o.since AND g.recorded_at < o.until
        LEFT JOIN fw_crosswalk m ON m.from_version = o.version AND m.competency_id = g.competency_id
        GROUP BY g.id, g.version),
    goal_now AS (
        SELECT g.*, p.written_under, p.walked AND coalesce(len(p.heirs), 0) <> 1 AS unplaced, p.heirs,
            CASE WHEN NOT p.walked THEN g.competency_id WHEN coalesce(len(p.heirs), 0) = 1 THEN p.heirs[1]
                 ELSE g.competency_id END AS placed_competency_id,
            CAST(coalesce(lm.to_level, g.target_level) AS DOUBLE) AS placed_target
        FROM latest g JOIN placed p ON p.id = g.id AND p.version = g.version
        LEFT JOIN fw_level_map lm ON lm.from_version = p.written_under AND lm.level = g.target_level)"""
)

# The current version of every goal of the visible learners, its agreement, the level now and its status.
_GOALS = (
    "WITH "  # noqa: S608 - the access rule is our constant
    + _VISIBLE
    + """,
    latest AS (
        SELECT g.* FROM goals g SEMI JOIN visible v ON v.id = g.learner_id
        QUALIFY g.version = max(g.version) OVER (PARTITION BY g.id)),"""
    + PLACED
    + """,
    ever_agreed AS (SELECT goal_id, max(version) AS version FROM goal_agreements GROUP BY goal_id),"""
    + PLAN_STATE
    + """
    SELECT g.id AS goal_id, g.version, g.plan_id, p.decision_id, ps.plan_open, ps.closed_by AS plan_closed_by, g.learner_id, v.name AS learner_name, v.cohort,
        v.advisor_id, g.placed_competency_id AS competency_id, g.competency_id AS written_competency_id,
        g.written_under, g.unplaced, g.heirs,
        coalesce(fc.competency_name, h.competency_name, g.competency_id) AS competency_name,
        fc.domain_id, coalesce(fc.domain_name, h.domain_name) AS domain_name, g.placed_target AS target_level,
        g.by_term, ft.term_index AS by_term_index, g.actions, g.evidence, g.written_by, g.written_on,
        a.agreed_by, s.name AS agreed_by_name, a.agreed_on,
        a.goal_id IS NULL AND ea.version IS NOT NULL AS needs_agreeing_again,
        CAST(cl.level AS DOUBLE) AS level, cl.assessed_term,
        CASE WHEN cl.level >= g.placed_target THEN 'met'
             WHEN coalesce(cl.assessed_term, 0) > ft.term_index OR list_contains($ended, g.by_term) THEN 'overdue'
             ELSE 'open' END AS status
    FROM goal_now g JOIN visible v ON v.id = g.learner_id
    JOIN learning_plans p ON p.id = g.plan_id JOIN plan_state ps ON ps.plan_id = g.plan_id
    LEFT JOIN fw_competencies fc ON fc.competency_id = g.placed_competency_id AND NOT g.unplaced
    LEFT JOIN fw_history h ON h.version = g.written_under AND h.competency_id = g.competency_id
    LEFT JOIN fw_terms ft ON ft.term = g.by_term
    LEFT JOIN goal_agreements a ON a.goal_id = g.id AND a.version = g.version
    LEFT JOIN ever_agreed ea ON ea.goal_id = g.id
    LEFT JOIN staff s ON s.id = a.agreed_by
    LEFT JOIN current_levels cl
        ON cl.learner_id = g.learner_id AND cl.competency_id = g.placed_competency_id AND NOT g.unplaced
    ORDER BY v.name, g.learner_id, ft.term_index, fc.domain_position, fc.position, g.seq"""
)

_PLACED_ALL = (
    "WITH latest AS (SELECT * FROM goals WHERE $goal IS NULL OR id = $goal "  # noqa: S608 - our constants
    "QUALIFY version = max(version) OVER (PARTITION BY id)),"
    + PLACED
    + " SELECT id, version, learner_id, placed_competency_id, plan_id, unplaced FROM goal_now"
)


def placed_goals(cur: Cursor, goal_id: str | None = None) -> dict[str, tuple[int, str, str, str, bool]]:
    """Every goal (or one) by id: its latest version, learner, the competency it stands for under the accepted
    framework, its plan, and whether it is unplaced (its competency split or retired since it was written)."""
    rows = cur.execute(_PLACED_ALL, {"goal": goal_id}).fetchall()
    return {r[0]: (int(r[1]), r[2], r[3], r[4], bool(r[5])) for r in rows}


def ended_terms(fw: Framework, today: dt.date) -> list[str]:
    """The terms whose last day (when the calendar gives it) is before today."""
    return [t for t in fw.term_ids if (end := fw.term_dates(t)[1]) is not None and end < today]


def learner_goals(
    cur: Cursor,
    viewer: Viewer,
    fw: Framework,
    learner_id: str | None = None,
    cohort: str | None = None,
    today: dt.date | None = None,
) -> pd.DataFrame:
    """The current version of each goal of the learners the viewer may see, by learner then term: the level aimed
    for and the level now, the status (met, overdue, open) and its words, and who agreed it when."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    params = scope_params(viewer) | {
        "learner": learner_id,
        "cohort": cohort,
        "ended": ended_terms(fw, today or dt.date.today()),
    }
    goals = cur.execute(_GOALS, params).df()
    goals["status_words"] = [status_words(fw, row) for row in goals.to_dict("records")]
    goals["agreement"] = [agreement_words(row) for row in goals.to_dict("records")]
    return goals


def waiting_for_agreement(goals: pd.DataFrame, advisor_id: str) -> pd.DataFrame:
    """Of `learner_goals`, the goals of open plans of this advisor's advisees whose current version nobody agreed."""
    return goals[(goals["advisor_id"] == advisor_id) & goals["agreed_by"].isna() & goals["plan_open"]]


def _level(value: object) -> str:
    return "not rated yet" if value is None or value != value else f"{float(value):g}"  # type: ignore[arg-type]


def status_words(fw: Framework, goal: dict) -> str:
    """A goal's status in words: "Met: level 3 reaches the 3 aimed for by Year 2 · Term 1 (T4)."."""
    term = fw.term_name(goal["by_term"]) if goal["by_term"] in fw.term_ids else goal["by_term"]
    target, level = f"{goal['target_level']:g}", _level(goal["level"])
    if goal.get("unplaced"):
        heirs = [
            fw.competencies[c].name
            for c in ([] if goal["heirs"] is None else list(goal["heirs"]))
            if c in fw.competencies
        ]
        change = f"divides it into {' and '.join(heirs)}" if heirs else "retires it"
        return (
            f"Written for {goal['competency_name']} of framework {goal['written_under']}; version {fw.version} "
            f"{change}: write a new goal for the current framework."
        )
    if goal["status"] == "met":
        return f"Met: level {level} reaches the {target} aimed for by {term}."
    if goal["status"] == "overdue":
        return f"Overdue: level {level}, short of the {target} aimed for by {term}, which has passed."
    return f"Open: level {level} now; {target} aimed for by {term}."


def agreement_words(goal: dict) -> str:
    if isinstance(goal["agreed_by"], str):
        return f"Agreed by {goal['agreed_by_name'] or goal['agreed_by']} on {goal['agreed_on']:%Y-%m-%d}"
    if goal["needs_agreeing_again"]:
        return "Changed since it was agreed: needs agreeing again"
    return "Not agreed yet"


def learner_plans(cur: Cursor, viewer: Viewer, learner_id: str) -> pd.DataFrame:
    """The learner's plans, open ones first, then newest first: opened by which committee decision (its outcome,
    date and rationale) or by the learner, how many goals each holds, and whether it is open or which later
    decision closed it (PLAN_STATE)."""
    require_learner(cur, viewer, learner_id)
    return cur.execute(
        "WITH"  # noqa: S608 - our constant
        + PLAN_STATE
        + """
        SELECT p.id AS plan_id, p.decision_id, d.outcome, d.decided_on, d.rationale, p.opened_on, p.opened_by,
            coalesce(s.name, l.name, p.opened_by) AS opened_by_name,
            (SELECT count(DISTINCT g.id) FROM goals g WHERE g.plan_id = p.id) AS goals,
            ps.plan_open, ps.closed_by, ps.closed_outcome, ps.closed_on
        FROM learning_plans p JOIN plan_state ps ON ps.plan_id = p.id LEFT JOIN decisions d ON d.id = p.decision_id
        LEFT JOIN staff s ON s.id = p.opened_by LEFT JOIN learners l ON l.id = p.opened_by
        WHERE p.learner_id = $learner ORDER BY ps.plan_open DESC, p.opened_on DESC, p.recorded_at DESC""",
        {"learner": learner_id},
    ).df()


def goal_versions(cur: Cursor, viewer: Viewer, learner_id: str) -> pd.DataFrame:
    """Every version of every goal of the learner, newest first per goal, with who agreed each and when."""
    require_learner(cur, viewer, learner_id)
    return cur.execute(
        """
        SELECT g.id AS goal_id, g.version, g.competency_id, CAST(g.target_level AS DOUBLE) AS target_level, g.by_term,
            g.actions, g.evidence, g.written_on, a.agreed_by, s.name AS agreed_by_name, a.agreed_on
        FROM goals g LEFT JOIN goal_agreements a ON a.goal_id = g.id AND a.version = g.version
        LEFT JOIN staff s ON s.id = a.agreed_by
        WHERE g.learner_id = ? ORDER BY g.id, g.version DESC""",
        [learner_id],
    ).df()


def goal_comments(cur: Cursor, viewer: Viewer, learner_id: str) -> pd.DataFrame:
    """Every comment on the learner's goals, oldest first: on which version, by whom, when."""
    require_learner(cur, viewer, learner_id)
    return cur.execute(
        """
        SELECT c.goal_id, c.version, c.author_id, coalesce(s.name, l.name, c.author_id) AS author_name, c.written_on,
            c.comment
        FROM goal_comments c JOIN goals g ON g.id = c.goal_id AND g.version = c.version
        LEFT JOIN staff s ON s.id = c.author_id LEFT JOIN learners l ON l.id = c.author_id
        WHERE g.learner_id = ? ORDER BY c.seq""",
        [learner_id],
    ).df()
