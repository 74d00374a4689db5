"""The one schema of the project: the framework, people, ratings and evidence."""

from data_models.decisions import Decision, DecisionOutcome, Meeting
from data_models.evidence import Evidence
from data_models.framework import (
    AssessmentPlan,
    Calendar,
    Competency,
    Crosswalk,
    Domain,
    EvidenceType,
    Framework,
    LevelDescriptor,
    ScaleLevel,
    Term,
)
from data_models.people import Learner, LearnerStatus, Role, Staff
from data_models.plans import Goal, GoalComment
from data_models.ratings import RaterRole, Rating

__all__ = [
    "AssessmentPlan",
    "Calendar",
    "Competency",
    "Crosswalk",
    "Decision",
    "DecisionOutcome",
    "Domain",
    "Evidence",
    "EvidenceType",
    "Framework",
    "Goal",
    "GoalComment",
    "Learner",
    "LearnerStatus",
    "LevelDescriptor",
    "Meeting",
    "RaterRole",
    "Rating",
    "Role",
    "ScaleLevel",
    "Staff",
    "Term",
]
