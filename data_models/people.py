"""People: learners and staff, and the roles staff hold."""

from enum import StrEnum

from pydantic import EmailStr, Field, field_validator

from data_models.base import CellList, Id, OptionalId, Strict, Text


class Role(StrEnum):
    learner = "learner"
    advisor = "advisor"
    committee = "committee"
    coordinator = "coordinator"


class LearnerStatus(StrEnum):
    active = "active"
    leave = "leave"
    withdrawn = "withdrawn"
    graduated = "graduated"


class Learner(Strict):
    id: Id
    name: Text
    email: EmailStr
    cohort: Id
    profession: Text
    start_term: Text = Field(description="The intake the learner started in, e.g. 2025-09.")
    status: LearnerStatus = LearnerStatus.active
    advisor_id: OptionalId = None


class Staff(Strict):
    id: Id
    name: Text
    email: EmailStr
    roles: CellList(Role) = Field(min_length=1)  # type: ignore[valid-type]

    @field_validator("roles")
    @classmethod
    def _staff_roles(cls, roles: list[Role]) -> list[Role]:
        if Role.learner in roles:
            raise ValueError("staff cannot hold the learner role; learners are imported as learners")
        return sorted(set(roles))
