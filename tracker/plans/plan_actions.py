"""Learning plans: the rules every goal meets (from a form or a file), and the writes: a learner's goals and their
new versions, the advisor's comments and agreement, and the plan a committee decision opens.

Nothing is overwritten: a changed goal is its next version (the agreement of the version before stays on record, and
the new version needs agreeing again); a write names the version its author read, and is refused when another was
written since. Every write is checked in tracker/access/policy.py and runs in one transaction with its audit row. Reads
are in tracker/plans/plan_queries.py; files in tracker/records/plan_records.py.
"""

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from data_models import Decision, Framework, Goal
from data_models.plans import GoalComment
from tracker.access.policy import (
    Viewer,
    require_goal_commenter,
    require_goal_writer,
    require_learner,
    require_plan_advisor,
    shown_id,
)
from tracker.core.errors import TrackerError
from tracker.plans import plan_queries
from tracker.storage import database
from tracker.storage.database import Cursor

GOAL_COLUMNS = (
    "id",
    "version",
    "plan_id",
    "learner_id",
    "competency_id",
    "target_level",
    "by_term",
    "actions",
    "evidence",
    "written_by",
    "written_on",
)


def plan_id_for(decision_id: str) -> str:
    """The id of the plan a decision opens: one plan per decision, the same in every copy of the records."""
    return f"P-{decision_id}"


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ---- the rules ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Stored:
    """What the checks need of the stored records."""

    learners: dict[str, str | None]  # learner id -> advisor of record
    plans: dict[str, tuple[str, str | None]]  # plan id -> (learner, decision)
    decision_plans: dict[str, str]  # decision id -> the plan it opened
    decisions: dict[str, str]  # decision id -> learner
    versions: dict[str, tuple[int, str, str, str]]  # goal id -> (latest version, learner, competency now, plan)


def _stored(cur: Cursor) -> _Stored:
    plans = {
        r[0]: (r[1], r[2]) for r in cur.execute("SELECT id, learner_id, decision_id FROM learning_plans").fetchall()
    }
    return _Stored(
        learners=dict(cur.execute("SELECT id, advisor_id FROM learners").fetchall()),
        plans=plans,
        decision_plans={d: p for p, (_, d) in plans.items() if d is not None},
        decisions=dict(cur.execute("SELECT id, learner_id FROM decisions").fetchall()),
        versions={goal: placed[:4] for goal, placed in plan_queries.placed_goals(cur).items()},
    )


def goal_problems(
    cur: Cursor, fw: Framework, goals: Sequence[tuple[str, Goal]], today: dt.date | None = None
) -> list[str]:
    """Every problem of these goal versions (each with where it is: "goals.csv row 4") against the framework, the
    stored records and each other; empty when they may be written. The one rule set of forms and imports."""
    today = today or dt.date.today()
    known = _stored(cur)
    out: list[str] = []
    seen: dict[tuple[str, int], str] = {}
    plans_in_file: dict[str, tuple[str, str | None, str]] = {}
    versions_in_file: dict[str, list[tuple[int, str, Goal]]] = {}
    for where, g in goals:
        key = (g.id, g.version)
        if key in seen:
            out.append(f"{where}, id: goal {g.id!r} version {g.version} appears again ({seen[key]})")
        seen.setdefault(key, where)
        if g.learner_id not in known.learners:
            out.append(f"{where}, learner_id: no learner {g.learner_id!r}")
        if g.competency_id not in fw.competencies:
            out.append(f"{where}, competency_id: no competency {g.competency_id!r} in the framework")
        if g.by_term not in fw.term_ids:
            out.append(f"{where}, by_term: no term {g.by_term!r} in the calendar ({', '.join(fw.term_ids)})")
        if not fw.min_level <= g.target_level <= fw.max_level:
            out.append(f"{where}, target_level: {g.target_level:g} is not on the scale {fw.min_level}–{fw.max_level}")
        if g.written_by != g.learner_id:
            out.append(
                f"{where}, written_by: a goal is written by its learner ({g.learner_id!r}), not {g.written_by!r}"
            )
        if g.written_on > today:
            out.append(f"{where}, written_on: {g.written_on} is in the future")
        advisor = known.learners.get(g.learner_id)
        if g.agreed_by is not None and g.agreed_by != advisor:
            out.append(f"{where}, agreed_by: {g.agreed_by!r} is not the advisor of record of {g.learner_id!r}")
        if g.agreed_on is not None and g.agreed_on > today:
            out.append(f"{where}, agreed_on: {g.agreed_on} is in the future")
        out += _comment_problems(where, g, advisor, today)
        out += _plan_problems(where, g, known, plans_in_file)
        versions_in_file.setdefault(g.id, []).append((g.version, where, g))
    for goal_id, rows in versions_in_file.items():
        out += _version_problems(goal_id, sorted(rows, key=lambda r: r[0]), known)
    return out


def _comment_problems(where: str, g: Goal, advisor: str | None, today: dt.date) -> list[str]:
    out = []
    for c in g.comments:
        if c.author_id not in {g.learner_id, advisor}:
            out.append(f"{where}, comments: {c.author_id!r} is neither the learner nor their advisor of record")
        if not g.written_on <= c.written_on <= today:
            out.append(
                f"{where}, comments: a comment of {c.written_on} is before the goal was written or in the future"
            )
    return out


def _plan_problems(where: str, g: Goal, known: _Stored, in_file: dict[str, tuple[str, str | None, str]]) -> list[str]:
    out = []
    stored = known.plans.get(g.plan_id)
    if stored is not None and stored != (g.learner_id, g.decision_id):
        out.append(
            f"{where}, plan_id: plan {g.plan_id!r} is of learner {stored[0]!r} and decision {stored[1] or '(none)'!r}"
        )
    first = in_file.setdefault(g.plan_id, (g.learner_id, g.decision_id, where))
    if first[:2] != (g.learner_id, g.decision_id):
        out.append(f"{where}, plan_id: plan {g.plan_id!r} has another learner or decision at {first[2]}")
    if stored is None and g.decision_id is not None:
        if known.decisions.get(g.decision_id) != g.learner_id:
            out.append(f"{where}, decision_id: no decision {g.decision_id!r} about learner {g.learner_id!r}")
        elif g.decision_id in known.decision_plans:
            out.append(
                f"{where}, decision_id: decision {g.decision_id!r} opened plan "
                f"{known.decision_plans[g.decision_id]!r} already"
            )
    return out


def _version_problems(goal_id: str, rows: list[tuple[int, str, Goal]], known: _Stored) -> list[str]:
    """A goal's versions run 1, 2, 3 … across the stored ones and these, about one learner, competency and plan."""
    out = []
    stored = known.versions.get(goal_id)
    expected = (stored[0] if stored else 0) + 1
    same = (
        (stored[1], stored[2], stored[3])
        if stored
        else (rows[0][2].learner_id, rows[0][2].competency_id, rows[0][2].plan_id)
    )
    for version, where, g in rows:
        if stored and version <= stored[0]:
            out.append(f"{where}, version: goal {goal_id!r} has version {version} already; a change is a new version")
            continue
        if version != expected:
            out.append(f"{where}, version: goal {goal_id!r} needs version {expected} next, not {version}")
        expected = version + 1
        if (g.learner_id, g.competency_id, g.plan_id) != same:
            out.append(f"{where}, id: goal {goal_id!r} is about another learner, competency or plan in another version")
    return out


# ---- writes --------------------------------------------------------------------------------------------
def insert_goals(cur: Cursor, goals: Sequence[Goal]) -> None:
    """Insert checked goal versions with their plans, agreements and comments (inside the caller's transaction)."""
    stamp = database.now()
    for g in goals:
        if cur.execute("SELECT 1 FROM learning_plans WHERE id = ?", [g.plan_id]).fetchone() is None:
            cur.execute(
                "INSERT INTO learning_plans VALUES (?, ?, ?, ?, ?, ?)",
                [g.plan_id, g.learner_id, g.decision_id, g.written_on, g.learner_id, stamp],
            )
        cur.execute(
            f"INSERT INTO goals ({', '.join(GOAL_COLUMNS)}, recorded_at) VALUES ({', '.join('?' * (len(GOAL_COLUMNS) + 1))})",  # noqa: S608
            [*(getattr(g, c) for c in GOAL_COLUMNS), stamp],
        )
        if g.agreed_by is not None:
            cur.execute(
                "INSERT INTO goal_agreements VALUES (?, ?, ?, ?, ?)", [g.id, g.version, g.agreed_by, g.agreed_on, stamp]
            )
        if g.comments:
            cur.executemany(
                "INSERT INTO goal_comments (goal_id, version, author_id, written_on, comment, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(g.id, g.version, c.author_id, c.written_on, c.comment, stamp) for c in g.comments],
            )


def open_for_decision(cur: Cursor, fw: Framework, decision: Decision, actor: str) -> str | None:
    """The plan a decision whose outcome requires one opens for its learner (inside the caller's transaction);
    None when the outcome requires none or the decision's plan exists already."""
    outcome = fw.outcomes.get(decision.outcome)
    if outcome is None or not outcome.requires_plan:
        return None
    plan_id = plan_id_for(decision.id)
    if cur.execute("SELECT 1 FROM learning_plans WHERE id = ?", [plan_id]).fetchone() is not None:
        return None
    cur.execute(
        "INSERT INTO learning_plans VALUES (?, ?, ?, ?, ?, ?)",
        [plan_id, decision.learner_id, decision.id, decision.decided_on, decision.signed_by, database.now()],
    )
    database.audit(cur, actor, "learning plan", decision.learner_id, {"plan_id": plan_id, "decision_id": decision.id})
    return plan_id


def open_missing(cur: Cursor, fw: Framework, actor: str = "upgrade") -> list[str]:
    """Open the plans of stored decisions whose outcome requires one and that have none (decisions recorded before
    plans existed, or an outcome the program marked `requires_plan` since); returns the plans opened."""
    wanted = [o.id for o in fw.outcomes.values() if o.requires_plan]

    def missing(c: Cursor) -> list[tuple]:
        return c.execute(
            "SELECT id, learner_id, decided_on, signed_by FROM decisions d WHERE list_contains($wanted, d.outcome) "
            "AND NOT EXISTS (SELECT 1 FROM learning_plans p WHERE p.decision_id = d.id) ORDER BY d.seq",
            {"wanted": wanted},
        ).fetchall()

    if not missing(cur):
        return []

    def work(c: Cursor) -> list[str]:
        opened = []
        for decision_id, learner_id, decided_on, signed_by in missing(c):  # again: another server may have opened them
            plan_id = plan_id_for(decision_id)
            c.execute(
                "INSERT INTO learning_plans VALUES (?, ?, ?, ?, ?, ?)",
                [plan_id, learner_id, decision_id, decided_on, signed_by, database.now()],
            )
            database.audit(c, actor, "learning plan", learner_id, {"plan_id": plan_id, "decision_id": decision_id})
            opened.append(plan_id)
        return opened

    return database.write(cur, work)


def _current(cur: Cursor, goal_id: str) -> dict | None:
    row = cur.execute(
        "SELECT g.*, a.agreed_by FROM goals g LEFT JOIN goal_agreements a ON a.goal_id = g.id AND a.version = g.version "
        "WHERE g.id = ? ORDER BY g.version DESC LIMIT 1",
        [goal_id],
    ).df()
    return None if row.empty else row.iloc[0].to_dict()


def _changed_since(goal_id: str, seen: int, now: int) -> TrackerError:
    return TrackerError(
        f"Goal {goal_id} was changed since you read it (version {now}, you read version {seen}): nothing was saved. "
        "Read it again, then try again."
    )


def _newest_plan(cur: Cursor, learner_id: str) -> str | None:
    """The learner's newest open plan, where a new goal goes (None: the goal opens the learner's own plan)."""
    row = cur.execute(
        "WITH"  # noqa: S608 - our constant
        + plan_queries.PLAN_STATE
        + " SELECT p.id FROM learning_plans p JOIN plan_state ps ON ps.plan_id = p.id "
        "WHERE p.learner_id = ? AND ps.plan_open ORDER BY p.opened_on DESC, p.recorded_at DESC LIMIT 1",
        [learner_id],
    ).fetchone()
    return row[0] if row else None


def _refuse_if_closed(cur: Cursor, plan_id: str) -> None:
    """A closed plan is the record of what was planned: its goals are read, no longer changed, commented or agreed."""
    row = cur.execute(
        "WITH"  # noqa: S608 - our constant
        + plan_queries.PLAN_STATE
        + " SELECT closed_by, closed_on FROM plan_state WHERE plan_id = ? AND NOT plan_open",
        [plan_id],
    ).fetchone()
    if row is not None:
        raise TrackerError(
            f"This goal's plan was closed by the committee's decision of {row[1]:%Y-%m-%d} ({row[0]}): it is kept "
            "as it was. Write a new goal in the current plan (nothing was saved)."
        )


def write_goal(
    cur: Cursor,
    fw: Framework,
    viewer: Viewer,
    learner_id: str,
    competency_id: str,
    target_level: float,
    by_term: str,
    actions: str,
    evidence: str = "",
    goal_id: str | None = None,
    read_version: int | None = None,
    today: dt.date | None = None,
) -> Goal:
    """A learner writes a goal into their newest plan (opening a plan of their own when they have none), or, with
    `goal_id` and the `read_version` they changed, the goal's next version (which needs agreeing again)."""
    require_goal_writer(cur, viewer, learner_id)
    today = today or dt.date.today()
    plan_id, version, decision_id = _newest_plan(cur, learner_id), 1, None
    if goal_id is not None:
        found = _current(cur, goal_id)
        if found is None or found["learner_id"] != learner_id:
            raise TrackerError(f"No goal {shown_id(goal_id)} in your learning plan.")
        _refuse_if_closed(cur, found["plan_id"])
        if read_version != found["version"]:
            raise _changed_since(goal_id, read_version or 0, int(found["version"]))
        placed = plan_queries.placed_goals(cur, goal_id).get(goal_id)
        if placed is not None and placed[4]:
            raise TrackerError(
                "The current framework divides or retires this goal's competency: write a new goal for the current "
                "framework (the goal stays in your plan as it was)."
            )
        if competency_id not in (found["competency_id"], placed[2] if placed else None):
            raise TrackerError("A goal keeps its competency: write a new goal for another competency.")
        before = (float(found["target_level"]), found["by_term"], found["actions"], found["evidence"])
        if before == (float(target_level), by_term, actions.strip(), evidence.strip()):
            raise TrackerError("Nothing changed: the goal is as it was (nothing was saved).")
        plan_id, version = found["plan_id"], int(found["version"]) + 1
    else:
        goal_id = _new_id("G")
    if plan_id is None:
        plan_id = _new_id("P")
    else:
        decision_id = cur.execute("SELECT decision_id FROM learning_plans WHERE id = ?", [plan_id]).fetchone()[0]  # type: ignore[index]
    try:
        goal = Goal(
            id=goal_id,
            version=version,
            plan_id=plan_id,
            decision_id=decision_id,
            learner_id=learner_id,
            competency_id=competency_id,
            target_level=target_level,
            by_term=by_term,
            actions=actions.strip(),
            evidence=evidence.strip(),
            written_by=viewer.person_id,
            written_on=today,
        )
    except ValidationError as exc:
        raise TrackerError(_form_problems(exc)) from None
    problems = goal_problems(cur, fw, [("goal", goal)], today)
    if problems:
        raise TrackerError("; ".join(p.removeprefix("goal, ") for p in problems) + " (nothing was saved)")

    def work(c: Cursor) -> None:
        latest = c.execute("SELECT max(version) FROM goals WHERE id = ?", [goal.id]).fetchone()[0]  # type: ignore[index]
        if (latest or 0) != version - 1:  # another version was written since the checks
            raise _changed_since(goal.id, version - 1, int(latest))
        insert_goals(c, [goal])
        detail = {"goal_id": goal.id, "version": version, "competency_id": competency_id, "target": target_level}
        database.audit(
            c, viewer.person_id, "goal" if version == 1 else "goal change", learner_id, detail | {"by": by_term}
        )

    database.write(cur, work)
    return goal


def _form_problems(exc: ValidationError) -> str:
    fields = {"target_level": "Level aimed for", "actions": "Actions", "evidence": "Evidence", "by_term": "By term"}
    parts = []
    for e in exc.errors(include_url=False):
        name = str(e["loc"][0]) if e["loc"] else ""
        parts.append(f"{fields.get(name, name or 'goal')}: {str(e['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts) + " (nothing was saved)"


def comment_goal(
    cur: Cursor, viewer: Viewer, goal_id: str, comment: str, read_version: int, today: dt.date | None = None
) -> None:
    """The learner or their advisor of record comments on the version of a goal they read."""
    found = _current(cur, goal_id)
    if found is None:
        raise TrackerError(f"No goal {shown_id(goal_id)}.")
    learner_id = found["learner_id"]
    require_learner(cur, viewer, learner_id)
    require_goal_commenter(cur, viewer, learner_id)
    _refuse_if_closed(cur, found["plan_id"])
    if read_version != found["version"]:
        raise _changed_since(goal_id, read_version, int(found["version"]))
    today = today or dt.date.today()
    try:
        note = GoalComment(written_on=today, author_id=viewer.person_id, comment=comment)
    except ValidationError as exc:
        raise TrackerError("Comment: " + "; ".join(str(e["msg"]) for e in exc.errors(include_url=False))) from None

    def work(c: Cursor) -> None:
        c.execute(
            "INSERT INTO goal_comments (goal_id, version, author_id, written_on, comment, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [goal_id, read_version, note.author_id, note.written_on, note.comment, database.now()],
        )
        database.audit(c, viewer.person_id, "goal comment", learner_id, {"goal_id": goal_id, "version": read_version})

    database.write(cur, work)


def agree_goals(
    cur: Cursor, viewer: Viewer, learner_id: str, read: Mapping[str, int], today: dt.date | None = None
) -> list[str]:
    """The advisor of record agrees the goals they read (goal id -> the version read): all of them, or none when
    one was changed since or is agreed already. Returns the goals agreed."""
    require_learner(cur, viewer, learner_id)
    require_plan_advisor(cur, viewer, learner_id)
    if not read:
        raise TrackerError("No goal to agree: the learner has written none that waits for agreement.")
    today = today or dt.date.today()

    def work(c: Cursor) -> list[str]:
        for goal_id, version in read.items():
            found = _current(c, goal_id)
            if found is None or found["learner_id"] != learner_id:
                raise TrackerError(f"No goal {shown_id(goal_id)} in this learner's plan.")
            _refuse_if_closed(c, found["plan_id"])
            if int(found["version"]) != version:
                raise _changed_since(goal_id, version, int(found["version"]))
            if isinstance(found["agreed_by"], str):
                raise TrackerError(f"Goal {goal_id} (version {version}) is agreed already.")
            c.execute(
                "INSERT INTO goal_agreements VALUES (?, ?, ?, ?, ?)",
                [goal_id, version, viewer.person_id, today, database.now()],
            )
            database.audit(c, viewer.person_id, "goal agreed", learner_id, {"goal_id": goal_id, "version": version})
        return sorted(read)

    return database.write(cur, work)
