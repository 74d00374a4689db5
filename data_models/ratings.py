"""Milestone ratings: one judgement of one learner in one competency, never edited."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from data_models.base import CellList, HalfLevel, Id, LongText, OptionalId, Strict, Text


class RaterRole(StrEnum):
    self = "self"
    advisor = "advisor"
    committee = "committee"


@dataclass(frozen=True)
class RowRule:
    """A rule across fields of one rating. `broken` is written with `==`, `!=` and `&` only, so the same function
    checks one model (plain values) and a whole column-wise file at once (pandas Series)."""

    message: str
    broken: Callable[[Any], Any]


RATING_RULES = (
    RowRule(
        "a self rating must have the learner as its rater",
        lambda r: (r.rater_role == RaterRole.self.value) & (r.rater_id != r.learner_id),
    ),
    RowRule("a rating cannot correct itself", lambda r: r.corrects == r.id),
)


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
    def _rules_hold(self) -> "Rating":
        for rule in RATING_RULES:
            if rule.broken(self):
                raise ValueError(rule.message)
        return self
