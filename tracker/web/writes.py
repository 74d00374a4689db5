"""Every write a page makes, and what a page hands to one (a meeting's Draft with its Actions and ConsensusLevels): each takes the signed-in viewer, runs the engine's write on this thread's cursor (the
engine checks what the viewer may do, inside the write's transaction), and then names what it changed, so that the
cached figures drawn from it are drawn again (tracker/web/caching.py). Pages never hold a cursor."""

import datetime as dt
from collections.abc import Mapping, Sequence

import pandas as pd

from data_models import Evidence, Goal, Rating
from tracker.access.policy import Viewer
from tracker.accounts import account_links, admin
from tracker.plans import plan_actions
from tracker.records import actions, importing
from tracker.review import review_actions
from tracker.review.review_actions import Action as Action  # what a page hands to save_draft
from tracker.review.review_actions import ConsensusLevel as ConsensusLevel
from tracker.review.review_actions import Draft
from tracker.web import caching
from tracker.web.caching import ACCOUNTS, REVIEW


# ---- ratings and evidence ------------------------------------------------------------------------
def record_rating(
    viewer: Viewer,
    learner_id: str,
    competency_id: str,
    level: float,
    term: str,
    comment: str,
    evidence_ids: Sequence[str] = (),
) -> Rating:
    """An advisor's or committee member's rating, or a learner's self-assessment (tracker/records/actions.py)."""
    rating = actions.record_rating(
        caching.cursor(), caching.framework(), viewer, learner_id, competency_id, level, term, comment, evidence_ids
    )
    caching.saved(*caching.learner_records(learner_id))
    return rating


def record_evidence(
    viewer: Viewer, type_id: str, title: str, competency_ids: Sequence[str], url: str = "", description: str = ""
) -> Evidence:
    """A learner's evidence item."""
    item = actions.record_evidence(
        caching.cursor(),
        caching.framework(),
        viewer,
        viewer.person_id,
        type_id,
        title,
        competency_ids,
        url,
        description,
    )
    caching.saved(*caching.learner_records(viewer.person_id))
    return item


def import_records(
    viewer: Viewer,
    kind: str,
    text: str,
    source: str,
    dry_run: bool,
    progress: importing.Progress | None = None,
) -> importing.ImportResult:
    """A coordinator's import of one file, whole or not at all; `dry_run` checks it and changes nothing."""
    result = actions.import_records(
        caching.cursor(), caching.framework(), viewer, kind, text, source, dry_run, progress
    )
    if not dry_run:
        caching.saved_everything()
    return result


# ---- learning plans: a goal's status reads the learner's levels and the committee's decisions, so a write to a
# plan names nothing and every figure is drawn again ----------------------------------------------------------
def write_goal(
    viewer: Viewer,
    learner_id: str,
    competency_id: str,
    target_level: float,
    by_term: str,
    goal_actions: str,
    evidence: str = "",
    goal_id: str | None = None,
    read_version: int | None = None,
) -> Goal:
    goal = plan_actions.write_goal(
        caching.cursor(),
        caching.framework(),
        viewer,
        learner_id,
        competency_id,
        target_level,
        by_term,
        goal_actions,
        evidence,
        goal_id,
        read_version,
    )
    caching.saved()
    return goal


def comment_goal(viewer: Viewer, goal_id: str, comment: str, read_version: int) -> None:
    plan_actions.comment_goal(caching.cursor(), viewer, goal_id, comment, read_version)
    caching.saved()


def agree_goals(viewer: Viewer, learner_id: str, read: Mapping[str, int]) -> list[str]:
    agreed = plan_actions.agree_goals(caching.cursor(), viewer, learner_id, read)
    caching.saved()
    return agreed


# ---- the committee's review ---------------------------------------------------------------------------
def create_meeting(
    viewer: Viewer,
    title: str,
    held_on: dt.date,
    period: str,
    chair_id: str,
    members: Sequence[str],
    agenda: pd.DataFrame,
    cohort: str | None = None,
) -> str:
    meeting_id = review_actions.create_meeting(
        caching.cursor(), viewer, title, held_on, period, chair_id, members, agenda, cohort=cohort
    )
    caching.saved(REVIEW)
    return meeting_id


def save_draft(viewer: Viewer, meeting_id: str, learner_id: str, draft: Draft) -> None:
    review_actions.save_draft(caching.cursor(), caching.framework(), viewer, meeting_id, learner_id, draft)
    caching.saved(REVIEW)


def sign_off(viewer: Viewer, meeting_id: str) -> list[str]:
    """The chair signs a meeting off: decisions, their plans and the consensus levels change every figure."""
    decided = review_actions.sign_off(caching.cursor(), caching.framework(), viewer, meeting_id)
    caching.saved()
    return decided


def revise_decision(viewer: Viewer, replaces: str, outcome: str, rationale: str) -> str:
    decision_id = review_actions.revise_decision(
        caching.cursor(), caching.framework(), viewer, replaces, outcome, rationale
    )
    caching.saved(REVIEW)
    return decision_id


# ---- accounts (coordinators) --------------------------------------------------------------------------
def unlock(viewer: Viewer, username: str) -> None:
    admin.unlock(caching.cursor(), viewer, username)
    caching.saved(ACCOUNTS)


def change_disabled(viewer: Viewer, username: str, disabled: bool) -> None:
    admin.change_disabled(caching.cursor(), viewer, username, disabled)
    caching.saved(ACCOUNTS)


def send_links(viewer: Viewer, person_ids: Sequence[str]) -> list[account_links.IssuedLink]:
    """Invitations for people without an account, reset links for the others: mailed, or to hand out."""
    issued = account_links.send_links(caching.cursor(), viewer, person_ids)
    caching.saved(ACCOUNTS)
    return issued
