"""Milestone ratings: one judgement of one learner in one competency, never edited."""

import datetime as dt
from enum import StrEnum

from pydantic import Field, model_validator

from data_models.base import CellList, HalfLevel, Id, LongText, OptionalId, Strict, Text


class RaterRole(StrEnum):
    self = "self"
    advisor = "advisor"
    committee = "committee"


class Rating(Strict):
    id: Id
    learner_id: Id
    competency_id: Id
    level: HalfLevel = Field(description="A scale level, or a half level for 'between levels'.")
    rater_id: Id
    rater_role: RaterRole
    rated_on: dt.date
    term: Id
    comment: LongText = ""
    evidence_ids: CellList(Id) = Field(default_factory=list)  # type: ignore[valid-type]
    framework_version: Text
    corrects: OptionalId = Field(default=None, description="The id of the rating this one supersedes.")

    @model_validator(mode="after")
    def _self_is_learner(self) -> "Rating":
        if self.rater_role is RaterRole.self and self.rater_id != self.learner_id:
            raise ValueError("a self rating must have the learner as its rater")
        if self.corrects == self.id:
            raise ValueError("a rating cannot correct itself")
        return self
