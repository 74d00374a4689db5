"""Learning plans: a learner's goals (competency, level aimed for, by which term, actions, evidence planned), each
version kept, with the advisor's agreement and the comments on it. One row of a goals file is one version."""

import datetime as dt
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from data_models.base import HalfLevel, Id, LongText, OptionalId, Strict, Text
from data_models.decisions import CELL_PARTS


def _comment_lines(value: Any) -> Any:
    """A CSV cell of comments, one per line: "2026-09-30 | A002 | what was said" (the text may hold " | ")."""
    if not isinstance(value, str):
        return value
    items = []
    for line in value.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(CELL_PARTS.strip(), 2)]
        if len(parts) != 3:
            raise ValueError("each line needs 3 parts: written_on | author_id | comment")
        items.append({"written_on": parts[0], "author_id": parts[1], "comment": parts[2]})
    return items


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class GoalComment(Strict):
    """A comment on one version of a goal: by the learner's advisor of record, or the learner."""

    written_on: dt.date
    author_id: Id
    comment: Text


class Goal(Strict):
    """One version of a learner's goal. A goal is never edited: a change is its next version, and an agreement
    belongs to the version agreed (a changed goal needs agreeing again)."""

    id: Id
    version: int = Field(ge=1, le=1_000, description="1 for the goal as first written; each change adds one.")
    plan_id: Id = Field(description="The learning plan the goal belongs to.")
    decision_id: OptionalId = Field(default=None, description="The committee decision that opened the plan, if any.")
    learner_id: Id
    competency_id: Id
    target_level: HalfLevel = Field(description="The level aimed for.")
    by_term: Id = Field(description="The program term by which the level is aimed for.")
    actions: LongText = Field(min_length=1, description="What the learner will do.")
    evidence: LongText = Field(default="", description="The evidence the learner plans to gather.")
    written_by: Id
    written_on: dt.date
    agreed_by: OptionalId = Field(default=None, description="The advisor who agreed this version, if agreed.")
    agreed_on: Annotated[dt.date | None, BeforeValidator(_blank_is_none)] = None
    comments: Annotated[list[GoalComment], BeforeValidator(_comment_lines)] = Field(
        default_factory=list, description="One comment per line: written_on | author_id | comment."
    )

    @model_validator(mode="after")
    def _agreement_whole(self) -> "Goal":
        if (self.agreed_by is None) != (self.agreed_on is None):
            raise ValueError("agreed_by and agreed_on go together: give both, or neither")
        if not self.actions.strip():
            raise ValueError("actions: say what the learner will do")
        if self.agreed_on is not None and self.agreed_on < self.written_on:
            raise ValueError("agreed_on is before written_on: a version is agreed after it is written")
        return self
