"""Review meetings and signed decisions as files: the checks an imported file must pass, its rows, and the export.

`importing` reads and validates the CSV (the models in data_models/decisions.py) and calls these for the
cross-record checks and the insert, in its one transaction. Drafts are never imported or exported.
"""

from collections.abc import Sequence
from typing import Any

from data_models import Decision, Framework, Meeting
from data_models.decisions import CELL_PARTS, ON_TRACK
from tracker.plans import plan_actions
from tracker.storage import database
from tracker.storage.database import Cursor

KINDS = ("meetings", "decisions")

EXPORT_SQL = {
    "meetings": f"""
        SELECT m.id, m.title, strftime(m.held_on, '%Y-%m-%d') AS held_on, m.period, coalesce(m.cohort, '') AS cohort,
            m.chair_id, array_to_string(m.members, ';') AS members,
            coalesce(strftime(m.signed_at, '%Y-%m-%d'), '') AS signed_on,
            (SELECT string_agg(a.learner_id || '{CELL_PARTS}' || a.reasons, chr(10) ORDER BY a.position)
             FROM review_agenda a WHERE a.meeting_id = m.id) AS agenda
        FROM review_meetings m ORDER BY m.held_on, m.id""",  # noqa: S608 - a constant separator
    "decisions": f"""
        SELECT d.id, coalesce(d.meeting_id, '') AS meeting_id, d.learner_id, d.outcome, d.rationale,
            strftime(d.decided_on, '%Y-%m-%d') AS decided_on, d.signed_by, coalesce(d.replaces, '') AS replaces,
            coalesce((SELECT string_agg(strftime(a.due_on, '%Y-%m-%d') || '{CELL_PARTS}' || a.owner_id || '{CELL_PARTS}'
                          || a.action, chr(10) ORDER BY a.position)
                      FROM decision_actions a WHERE a.decision_id = d.id), '') AS actions
        FROM decisions d ORDER BY d.seq""",  # noqa: S608 - a constant separator
}


def _ids(cur: Cursor, sql: str) -> set[str]:
    return {r[0] for r in cur.execute(sql).fetchall()}


def problems(cur: Cursor, kind: str, models: Sequence[tuple[int, Any]], fw: Framework, source: str) -> list[str]:
    """Every cross-record problem of a meetings or decisions file (rows already valid one by one)."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for line, m in models:
        if m.id in seen:
            out.append(f"{source} row {line}, id: {m.id!r} appears again (first at row {seen[m.id]})")
        seen.setdefault(m.id, line)
    learners = _ids(cur, "SELECT id FROM learners")
    committee = _ids(cur, "SELECT id FROM staff WHERE list_contains(roles, 'committee')")
    if kind == "meetings":
        taken = _ids(cur, "SELECT id FROM review_meetings")
        for line, m in models:
            out += _meeting_problems(m, line, source, taken, learners, committee)
    else:
        out += _decision_problems(cur, models, fw, source, learners, committee)
    return out


def _meeting_problems(
    m: Meeting, line: int, source: str, taken: set[str], learners: set[str], committee: set[str]
) -> list[str]:
    out = []
    if m.id in taken:
        out.append(f"{source} row {line}, id: meeting {m.id!r} already exists")
    for who in sorted({m.chair_id, *m.members} - committee):
        out.append(f"{source} row {line}, chair_id/members: no staff member {who!r} with the committee role")
    listed = [a.learner_id for a in m.agenda]
    for learner_id in sorted(set(listed) - learners):
        out.append(f"{source} row {line}, agenda: no learner {learner_id!r}")
    if len(set(listed)) != len(listed):
        out.append(f"{source} row {line}, agenda: a learner is listed twice")
    return out


def _decision_problems(
    cur: Cursor,
    models: Sequence[tuple[int, Decision]],
    fw: Framework,
    source: str,
    learners: set[str],
    committee: set[str],
) -> list[str]:
    out = []
    taken = _ids(cur, "SELECT id FROM decisions")
    signed = _ids(cur, "SELECT id FROM review_meetings WHERE signed_at IS NOT NULL")
    stored = dict(cur.execute("SELECT id, learner_id FROM decisions").fetchall())
    replaced = _ids(cur, "SELECT replaces FROM decisions WHERE replaces IS NOT NULL")
    staff = _ids(cur, "SELECT id FROM staff")
    in_file = {d.id: d.learner_id for _, d in models}
    decided = set(cur.execute("SELECT meeting_id, learner_id FROM decisions WHERE meeting_id IS NOT NULL").fetchall())
    for line, d in models:
        where = f"{source} row {line}"
        if d.id in taken:
            out.append(
                f"{where}, id: decision {d.id!r} already exists; a revision is a new decision with `replaces` set"
            )
        if d.learner_id not in learners:
            out.append(f"{where}, learner_id: no learner {d.learner_id!r}")
        if d.outcome not in fw.outcomes:
            out.append(f"{where}, outcome: {d.outcome!r} is not an outcome ({', '.join(fw.outcomes)})")
        if d.outcome != ON_TRACK and not d.rationale.strip():
            out.append(f"{where}, rationale: required for every outcome but {ON_TRACK!r}")
        if d.signed_by not in committee:
            out.append(f"{where}, signed_by: no staff member {d.signed_by!r} with the committee role")
        if d.meeting_id is not None and d.meeting_id not in signed:
            out.append(f"{where}, meeting_id: no signed-off meeting {d.meeting_id!r} (import meetings first)")
        if d.meeting_id is not None and (d.meeting_id, d.learner_id) in decided:
            out.append(
                f"{where}, meeting_id: meeting {d.meeting_id!r} has a decision about {d.learner_id!r} already "
                "(a change is a new decision with `replaces` set and no meeting)"
            )
        if d.meeting_id is not None:
            decided.add((d.meeting_id, d.learner_id))
        if d.replaces is not None:
            target = stored.get(d.replaces) or in_file.get(d.replaces)
            if target is None:
                out.append(f"{where}, replaces: no decision {d.replaces!r} to replace")
            elif target != d.learner_id:
                out.append(f"{where}, replaces: decision {d.replaces!r} is about another learner")
            elif d.replaces in replaced:
                out.append(f"{where}, replaces: decision {d.replaces!r} was replaced already")
            replaced.add(d.replaces)
        for a in d.actions:
            if a.owner_id not in staff and a.owner_id != d.learner_id:
                out.append(f"{where}, actions: owner {a.owner_id!r} is neither a staff member nor the learner")
    return out


def insert(cur: Cursor, kind: str, records: Sequence[Any], fw: Framework, actor: str) -> None:
    """Insert checked meetings or decisions (inside the caller's transaction); a decision whose outcome requires a
    learning plan opens one."""
    stamp = database.now()
    if kind == "meetings":
        for m in records:
            cur.execute(
                "INSERT INTO review_meetings VALUES (?, ?, ?, ?, ?, ?, ?, 'import', ?, ?)",
                [
                    m.id,
                    m.title,
                    m.held_on,
                    m.period,
                    m.cohort,
                    m.chair_id,
                    sorted({m.chair_id, *m.members}),
                    stamp,
                    m.signed_on,
                ],
            )
            cur.executemany(
                "INSERT INTO review_agenda VALUES (?, ?, ?, ?)",
                [(m.id, i, a.learner_id, a.reasons) for i, a in enumerate(m.agenda, start=1)],
            )
        return
    for d in records:
        insert_decision(cur, d, fw, actor)


def insert_decision(cur: Cursor, decision: Decision, fw: Framework, actor: str) -> None:
    """One signed decision and its actions (inside the caller's transaction), and the learning plan it opens when
    its outcome requires one (tracker/plans/plan_actions.py)."""
    cur.execute(
        "INSERT INTO decisions (id, meeting_id, learner_id, outcome, rationale, decided_on, signed_by, replaces, "
        "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            decision.id,
            decision.meeting_id,
            decision.learner_id,
            decision.outcome,
            decision.rationale,
            decision.decided_on,
            decision.signed_by,
            decision.replaces,
            database.now(),
        ],
    )
    if decision.actions:
        cur.executemany(
            "INSERT INTO decision_actions VALUES (?, ?, ?, ?, ?)",
            [(decision.id, i, a.action, a.owner_id, a.due_on) for i, a in enumerate(decision.actions, start=1)],
        )
    plan_actions.open_for_decision(cur, fw, decision, actor)
