"""Goals as files: the export (one row per version of a goal, with its agreement and comments) and the checks and
insert of an imported file. `importing` reads and validates the CSV (data_models/plans.py) and calls these in its
one transaction. A plan a committee decision opened comes back with the decision (import decisions first)."""

from collections.abc import Sequence

from data_models import Framework, Goal
from data_models.decisions import CELL_PARTS
from tracker.plans import plan_actions
from tracker.storage.database import Cursor

KINDS = ("goals",)

EXPORT_SQL = {
    "goals": f"""
        SELECT g.id, CAST(g.version AS VARCHAR) AS version, g.plan_id, coalesce(p.decision_id, '') AS decision_id,
            g.learner_id, g.competency_id, CAST(g.target_level AS VARCHAR) AS target_level, g.by_term, g.actions,
            g.evidence, g.written_by, strftime(g.written_on, '%Y-%m-%d') AS written_on,
            coalesce(a.agreed_by, '') AS agreed_by, coalesce(strftime(a.agreed_on, '%Y-%m-%d'), '') AS agreed_on,
            coalesce((SELECT string_agg(strftime(c.written_on, '%Y-%m-%d') || '{CELL_PARTS}' || c.author_id
                          || '{CELL_PARTS}' || c.comment, chr(10) ORDER BY c.seq)
                      FROM goal_comments c WHERE c.goal_id = g.id AND c.version = g.version), '') AS comments
        FROM goals g JOIN learning_plans p ON p.id = g.plan_id
        LEFT JOIN goal_agreements a ON a.goal_id = g.id AND a.version = g.version
        ORDER BY g.seq""",  # noqa: S608 - a constant separator
}


def problems(cur: Cursor, models: Sequence[tuple[int, Goal]], fw: Framework, source: str) -> list[str]:
    """Every cross-record problem of a goals file (its rows already valid one by one), each naming row and field."""
    return plan_actions.goal_problems(cur, fw, [(f"{source} row {line}", g) for line, g in models])


def insert(cur: Cursor, records: Sequence[Goal]) -> None:
    """Insert checked goal versions (inside the caller's transaction)."""
    plan_actions.insert_goals(cur, records)
