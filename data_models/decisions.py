"""Committee review: the outcomes a committee may decide, review meetings and signed decisions as records."""

import datetime as dt
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from data_models.base import CellList, Id, LongText, OptionalId, Strict, Text

CELL_PARTS = " | "  # the parts of one line of a multi-line cell: "2026-12-15 | A001 | Agree a learning plan"


class DecisionOutcome(Strict):
    """One outcome a committee may decide for a learner. `requires_plan` makes the decision open a plan."""

    id: Id
    label: Text
    requires_plan: bool = False


# The outcomes every program has; a framework adds its own with `decision_outcomes` in competencies.yaml.
STANDARD_OUTCOMES: tuple[DecisionOutcome, ...] = (
    DecisionOutcome(id="on-track", label="On track"),
    DecisionOutcome(id="monitor", label="Monitor"),
    DecisionOutcome(id="learning-plan", label="Learning plan required", requires_plan=True),
    DecisionOutcome(id="remediation-plan", label="Remediation plan required", requires_plan=True),
    DecisionOutcome(id="ready-to-graduate", label="Ready to graduate"),
)
ON_TRACK = "on-track"  # the one outcome that needs no rationale


def _lines(*names: str) -> Any:
    """A CSV cell of one item per line, its parts separated by " | " (the last part may hold anything), as dicts."""

    def split(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        items = []
        for line in value.splitlines():
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(CELL_PARTS.strip(), len(names) - 1)]
            if len(parts) != len(names):
                raise ValueError(f"each line needs {len(names)} parts: {' | '.join(names)}")
            items.append(dict(zip(names, parts, strict=True)))
        return items

    return split


class DecisionAction(Strict):
    """Something to be done after a decision: by when, by whom (a staff member or the learner), and what."""

    due_on: dt.date
    owner_id: Id
    action: Text


class Decision(Strict):
    """A signed committee decision about one learner, never edited: a later change is a new decision whose
    `replaces` names the one it supersedes."""

    id: Id
    meeting_id: OptionalId = Field(default=None, description="The review meeting that decided it, if any.")
    learner_id: Id
    outcome: Id
    rationale: LongText = ""
    decided_on: dt.date
    signed_by: Id = Field(description="The committee member who signed the decision off.")
    replaces: OptionalId = Field(default=None, description="The id of the decision this one supersedes.")
    actions: Annotated[list[DecisionAction], BeforeValidator(_lines("due_on", "owner_id", "action"))] = Field(
        default_factory=list, description="One action per line: due date | owner id | what is to be done."
    )


class AgendaItem(Strict):
    learner_id: Id
    reasons: LongText


class Meeting(Strict):
    """A review meeting: when, which period, who sat, and its agenda in order. `signed_on` is empty while open."""

    id: Id
    title: Text
    held_on: dt.date
    period: Text
    cohort: OptionalId = None
    chair_id: Id
    members: CellList(Id) = Field(default_factory=list)  # type: ignore[valid-type]
    signed_on: Annotated[dt.date | None, BeforeValidator(lambda v: None if v == "" else v)] = None
    agenda: Annotated[list[AgendaItem], BeforeValidator(_lines("learner_id", "reasons"))] = Field(
        min_length=1, description="One learner per line: learner id | why they are listed."
    )
