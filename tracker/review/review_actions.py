"""The committee's review cycle, its writes: meetings and their agendas, draft decisions, sign-off and later
revisions.

Every write takes the signed-in viewer, is checked in tracker/access/policy.py, and runs in one transaction with its
audit row. Reads are in tracker/review/review_queries.py; the agenda the app proposes in tracker/review/agendas.py.
"""

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import pandas as pd
from pydantic import ValidationError

from data_models import Decision, Framework, Rating, Role
from data_models.decisions import ON_TRACK, DecisionAction
from tracker.access.policy import (
    Viewer,
    deny,
    require_chair,
    require_learner,
    require_meeting_member,
    require_meeting_organiser,
    shown_id,
)
from tracker.core.errors import TrackerError
from tracker.records import actions, review_records
from tracker.storage import database, derived, record_rows
from tracker.storage.database import Cursor


@dataclass(frozen=True)
class Action:
    """Something to be done after a decision: what, by whom (a staff member or the learner) and by when."""

    action: str
    owner_id: str
    due_on: dt.date


@dataclass(frozen=True)
class ConsensusLevel:
    """The level the committee agrees for one competency, when it differs from the current level."""

    competency_id: str
    level: float
    comment: str


@dataclass
class Draft:
    """What the committee has entered for one learner of a meeting so far."""

    outcome: str | None = None
    rationale: str = ""
    actions: list[Action] = field(default_factory=list)
    levels: list[ConsensusLevel] = field(default_factory=list)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _text(value: str, what: str, limit: int = 10_000) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise TrackerError(f"{what}: at most {limit:,} characters.")
    return value


# ---- setting a meeting up ----------------------------------------------------------------------
def create_meeting(
    cur: Cursor,
    viewer: Viewer,
    title: str,
    held_on: dt.date,
    period: str,
    chair_id: str,
    members: Sequence[str],
    agenda: pd.DataFrame,
    cohort: str | None = None,
) -> str:
    """A coordinator or committee member sets up a meeting: its date, review period, chair and members (committee
    members all), and its agenda (rows of learner_id and reasons, in the order they are discussed)."""
    require_meeting_organiser(cur, viewer)
    title, period = _text(title, "Title", 200), _text(period, "Review period", 200)
    if not title or not period:
        raise TrackerError("A meeting needs a title and a review period (for example 'End of Year 2 · Term 3').")
    committee = {r[0] for r in cur.execute("SELECT id FROM staff WHERE list_contains(roles, 'committee')").fetchall()}
    everyone = sorted({chair_id, *members})
    strangers = [m for m in everyone if m not in committee]
    if strangers:
        raise TrackerError(
            f"Chair and members must be committee members: {', '.join(shown_id(m) for m in strangers)} is not."
        )
    if agenda.empty:
        raise TrackerError("The agenda is empty: choose a cohort with learners, or the learners the app proposes.")
    for learner_id in agenda["learner_id"]:
        require_learner(cur, viewer, learner_id)
    meeting_id = _new_id("M")
    rows = [
        (meeting_id, position, row.learner_id, row.reasons) for position, row in enumerate(agenda.itertuples(), start=1)
    ]

    def work(c: Cursor) -> None:
        c.execute(
            "INSERT INTO review_meetings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [meeting_id, title, held_on, period, cohort, chair_id, everyone, viewer.person_id, database.now()],
        )
        c.executemany("INSERT INTO review_agenda VALUES (?, ?, ?, ?)", rows)
        database.audit(
            c,
            viewer.person_id,
            "review meeting",
            meeting_id,
            {"title": title, "held_on": held_on, "chair": chair_id, "members": everyone, "learners": len(rows)},
        )

    database.write(cur, work)
    return meeting_id


# ---- drafts --------------------------------------------------------------------------------------
def _signed(cur: Cursor, meeting_id: str) -> bool:
    row = cur.execute("SELECT signed_at IS NOT NULL FROM review_meetings WHERE id = ?", [meeting_id]).fetchone()
    return bool(row and row[0])


def _check_draft(cur: Cursor, fw: Framework, learner_id: str, draft: Draft, final: bool) -> None:
    """What a draft must hold: a known outcome, a rationale unless on track, a comment for every changed level,
    actions with an owner and a due date. `final`: it is about to be signed (an outcome is required)."""
    if draft.outcome is None:
        if final:
            raise TrackerError(f"Learner {learner_id}: choose an outcome before signing off.")
    elif draft.outcome not in fw.outcomes:
        raise TrackerError(f"No outcome {draft.outcome!r}; choose one of {', '.join(fw.outcomes)}.")
    elif draft.outcome != ON_TRACK and not draft.rationale.strip():
        raise TrackerError(
            f"Learner {learner_id}: write the rationale: every outcome but “on track” needs one (nothing was saved)."
        )
    for level in draft.levels:
        if level.competency_id not in fw.competencies:
            raise TrackerError(f"No competency {level.competency_id!r} in the framework.")
        if not fw.min_level <= level.level <= fw.max_level or level.level * 2 != int(level.level * 2):
            raise TrackerError(f"Level {level.level} is not a level of the scale {fw.min_level}–{fw.max_level}.")
        if not level.comment.strip():
            name = fw.competencies[level.competency_id].name
            raise TrackerError(f"{name}: a changed consensus level needs a comment saying why (nothing was saved).")
    people = {r[0] for r in cur.execute("SELECT id FROM staff").fetchall()} | {learner_id}
    for item in draft.actions:
        if not item.action.strip() or len(item.action) > 500:
            raise TrackerError("An action needs a description of what is to be done (at most 500 characters).")
        if item.owner_id not in people:
            raise TrackerError(f"Action owner {shown_id(item.owner_id)}: a staff member or the learner.")


def save_draft(cur: Cursor, fw: Framework, viewer: Viewer, meeting_id: str, learner_id: str, draft: Draft) -> None:
    """A member of the meeting saves what is entered for a learner on its agenda (replacing the earlier draft)."""
    require_meeting_member(cur, viewer, meeting_id)
    if _signed(cur, meeting_id):
        raise TrackerError("This meeting is signed off: its decisions are final. Revise a decision instead.")
    on_agenda = cur.execute(
        "SELECT 1 FROM review_agenda WHERE meeting_id = ? AND learner_id = ?", [meeting_id, learner_id]
    ).fetchone()
    if on_agenda is None:
        raise TrackerError(f"Learner {shown_id(learner_id)} is not on the agenda of this meeting.")
    draft.rationale = _text(draft.rationale, "Rationale")
    _check_draft(cur, fw, learner_id, draft, final=False)
    actions_json = json.dumps([asdict(a) for a in draft.actions], default=str)
    levels_json = json.dumps([asdict(level) for level in draft.levels])

    def work(c: Cursor) -> None:
        c.execute("DELETE FROM decision_drafts WHERE meeting_id = ? AND learner_id = ?", [meeting_id, learner_id])
        c.execute(
            "INSERT INTO decision_drafts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                meeting_id,
                learner_id,
                draft.outcome,
                draft.rationale,
                actions_json,
                levels_json,
                viewer.person_id,
                database.now(),
            ],
        )
        database.audit(
            c, viewer.person_id, "decision draft", learner_id, {"meeting_id": meeting_id, "outcome": draft.outcome}
        )

    database.write(cur, work)


def draft_from_row(row: dict) -> Draft:
    """A stored draft (a row of queries.decision_drafts) as a Draft."""
    return Draft(
        outcome=row["outcome"] if isinstance(row["outcome"], str) else None,  # no outcome yet: None (or NaN)
        rationale=row["rationale"],
        actions=[
            Action(a["action"], a["owner_id"], dt.date.fromisoformat(a["due_on"])) for a in json.loads(row["actions"])
        ],
        levels=[ConsensusLevel(**level) for level in json.loads(row["levels"])],
    )


def _recorded(items: Sequence[Action]) -> list[DecisionAction]:
    return [DecisionAction(due_on=a.due_on, owner_id=a.owner_id, action=a.action) for a in items]


# ---- sign-off and revision -------------------------------------------------------------------------
def sign_off(cur: Cursor, fw: Framework, viewer: Viewer, meeting_id: str) -> list[str]:
    """The chair signs the meeting's decisions off: each draft with an outcome becomes a final decision with its
    actions, each changed consensus level a committee rating; the drafts are gone. Returns the decision ids."""
    require_chair(cur, viewer, meeting_id)
    if _signed(cur, meeting_id):
        raise TrackerError("This meeting is signed off already.")
    held_on = cur.execute("SELECT held_on FROM review_meetings WHERE id = ?", [meeting_id]).fetchone()[0]  # type: ignore[index]
    rows = cur.execute(
        "SELECT d.* FROM decision_drafts d JOIN review_agenda a USING (meeting_id, learner_id) "
        "WHERE d.meeting_id = ? AND d.outcome IS NOT NULL ORDER BY a.position",
        [meeting_id],
    ).df()
    if rows.empty:
        raise TrackerError("No learner has a decision yet: decide at least one before signing off.")
    decisions: list[Decision] = []
    ratings: list[Rating] = []
    for row in rows.to_dict("records"):
        draft = draft_from_row(row)
        _check_draft(cur, fw, row["learner_id"], draft, final=True)
        decision = Decision(
            id=_new_id("D"),
            meeting_id=meeting_id,
            learner_id=row["learner_id"],
            outcome=draft.outcome,
            rationale=draft.rationale,
            decided_on=held_on,
            signed_by=viewer.person_id,
            actions=_recorded(draft.actions),
        )
        decisions.append(decision)
        term = actions.current_term(cur, fw, row["learner_id"])
        ratings += [
            Rating(
                id=_new_id("R"),
                learner_id=row["learner_id"],
                competency_id=level.competency_id,
                level=level.level,
                rater_id=viewer.person_id,
                rater_role="committee",
                rated_on=held_on,
                term=term,
                comment=f"Committee consensus ({meeting_id}): {level.comment}",
                framework_version=fw.version,
            )
            for level in draft.levels
        ]

    def work(c: Cursor) -> None:
        if _signed(c, meeting_id):  # checked again inside the write: two sign-offs at once make one
            raise TrackerError("This meeting is signed off already.")
        for decision in decisions:
            review_records.insert_decision(c, decision, fw, viewer.person_id)
            database.audit(
                c,
                viewer.person_id,
                "decision",
                decision.learner_id,
                {"decision_id": decision.id, "meeting_id": meeting_id, "outcome": decision.outcome},
            )
        if ratings:
            record_rows.insert_ratings_frame(c, record_rows.ratings_frame(ratings, fw))
            derived.refresh_term_levels(c, [r.learner_id for r in ratings])
            for r in ratings:
                database.audit(
                    c,
                    viewer.person_id,
                    "rating",
                    r.learner_id,
                    {"rating_id": r.id, "competency_id": r.competency_id, "level": r.level, "rater_role": "committee"},
                )
        c.execute("DELETE FROM decision_drafts WHERE meeting_id = ?", [meeting_id])
        c.execute("UPDATE review_meetings SET signed_at = ? WHERE id = ?", [database.now(), meeting_id])
        database.audit(c, viewer.person_id, "sign-off", meeting_id, {"decisions": [d.id for d in decisions]})

    database.write(cur, work)
    return [d.id for d in decisions]


def revise_decision(
    cur: Cursor,
    fw: Framework,
    viewer: Viewer,
    replaces: str,
    outcome: str,
    rationale: str,
    items: Sequence[Action] = (),
    today: dt.date | None = None,
) -> str:
    """A committee member changes a signed decision: a new, final decision that names the one it replaces (which
    stays on record). The rationale says why, whatever the outcome."""
    if not viewer.has(Role.committee):
        raise deny(
            cur,
            viewer,
            f"revising decision {shown_id(replaces)}",
            message="Only committee members revise a committee decision.",
        )
    row = cur.execute(
        "SELECT learner_id, (SELECT min(id) FROM decisions WHERE replaces = d.id) FROM decisions d WHERE id = ?",
        [replaces],
    ).fetchone()
    if row is None:
        raise TrackerError(f"No decision {shown_id(replaces)} to revise.")
    learner_id, replaced_by = row
    require_learner(cur, viewer, learner_id)
    if replaced_by is not None:
        raise TrackerError(f"Decision {replaces} was revised already by {replaced_by}: revise that one.")
    draft = Draft(outcome=outcome, rationale=_text(rationale, "Rationale"), actions=list(items))
    if not draft.rationale:
        raise TrackerError("A revision needs a rationale saying why the decision changes (nothing was saved).")
    _check_draft(cur, fw, learner_id, draft, final=True)
    try:
        decision = Decision(
            id=_new_id("D"),
            learner_id=learner_id,
            outcome=outcome,
            rationale=draft.rationale,
            decided_on=today or dt.date.today(),
            signed_by=viewer.person_id,
            replaces=replaces,
            actions=_recorded(draft.actions),
        )
    except ValidationError as exc:
        raise TrackerError(str(exc)) from None

    def work(c: Cursor) -> None:
        again = c.execute("SELECT min(id) FROM decisions WHERE replaces = ?", [replaces]).fetchone()
        if again is not None and again[0] is not None:  # another revision landed first
            raise TrackerError(f"Decision {replaces} was revised already by {again[0]}: revise that one.")
        review_records.insert_decision(c, decision, fw, viewer.person_id)
        database.audit(
            c,
            viewer.person_id,
            "decision revision",
            learner_id,
            {"decision_id": decision.id, "replaces": replaces, "outcome": outcome},
        )

    database.write(cur, work)
    return decision.id
