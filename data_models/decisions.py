"""Committee review: the outcomes a committee may decide, and a signed decision as a record."""

import datetime as dt

from pydantic import Field

from data_models.base import Id, LongText, OptionalId, Strict, Text


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
