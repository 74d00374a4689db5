"""Who may see and do what. Queries and writes call these; pages cannot go around them."""

import logging
import re
from dataclasses import dataclass, replace
from enum import Enum

from data_models import RaterRole, Role
from tracker.core.errors import PermissionDenied
from tracker.storage import database
from tracker.storage.database import Cursor

log = logging.getLogger("milestone.access")


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: who they are and which roles they hold."""

    person_id: str
    name: str
    roles: frozenset[Role]
    username: str = ""

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def sees_program(self) -> bool:
        return bool(self.roles & {Role.committee, Role.coordinator})

    def with_username(self, username: str) -> "Viewer":
        return replace(self, username=username)


class Scope(Enum):
    own = "own"
    advisees = "advisees"
    program = "program"


def viewer_for_person(cur: Cursor, person_id: str) -> Viewer | None:
    row = cur.execute("SELECT name FROM learners WHERE id = ?", [person_id]).fetchone()
    if row:
        return Viewer(person_id, row[0], frozenset({Role.learner}))
    row = cur.execute("SELECT name, roles FROM staff WHERE id = ?", [person_id]).fetchone()
    if row:
        return Viewer(person_id, row[0], frozenset(Role(r) for r in row[1]))
    return None


def program_viewer(cur: Cursor) -> Viewer | None:
    """A committee member or coordinator (the first by id): every viewer of the whole program sees the same
    figures, so a figure drawn ahead of the first visit is drawn as this one would see it."""
    row = cur.execute(
        "SELECT id FROM staff WHERE list_has_any(roles, ['committee', 'coordinator']) ORDER BY id LIMIT 1"
    ).fetchone()
    return None if row is None else viewer_for_person(cur, row[0])


def scope_of(viewer: Viewer) -> Scope:
    if viewer.sees_program:
        return Scope.program
    if viewer.has(Role.advisor):
        return Scope.advisees
    return Scope.own


# The one rule of who sees which learner, as SQL over the learners table aliased `l`, with the viewer's scope and
# person as bound parameters. Every scoped read (queries._VISIBLE) and every single check (may_view_learner) use it.
VISIBLE_LEARNER = (
    "($scope = 'program' OR ($scope = 'advisees' AND l.advisor_id = $person) OR ($scope = 'own' AND l.id = $person))"
)


def scope_params(viewer: Viewer) -> dict[str, str]:
    """The bound parameters of VISIBLE_LEARNER for this viewer."""
    return {"scope": scope_of(viewer).value, "person": viewer.person_id}


_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")


def shown_id(value: object) -> str:
    """A requested id as it may appear in a message: itself when it has the shape of an id, else a placeholder
    (an address can carry any text; a message must never repeat it)."""
    text = str(value)
    return text if _SAFE_ID.match(text) else "(not a valid id)"


def logged_text(value: object, limit: int = 120) -> str:
    """Untrusted text as it is kept in the audit log: control characters escaped, at most `limit` characters."""
    text = str(value).encode("unicode_escape").decode("ascii") if not str(value).isprintable() else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def deny(
    cur: Cursor, viewer: Viewer, what: str, detail: dict | None = None, message: str | None = None
) -> PermissionDenied:
    """Log the refused request and return the error to raise. `what` is our own words with ids from shown_id."""
    log.warning("permission denied: %s (%s) asked for %s", viewer.person_id, ",".join(sorted(viewer.roles)), what)
    try:
        database.write(cur, lambda c: database.audit(c, viewer.person_id, "permission denied", what, detail))
    except Exception:
        log.exception("could not record a refused request")
    return PermissionDenied(message or f"You do not have access to {what}.")


def may_view_learner(cur: Cursor, viewer: Viewer, learner_id: str) -> bool:
    row = cur.execute(
        f"SELECT 1 FROM learners l WHERE l.id = $learner AND {VISIBLE_LEARNER}",  # noqa: S608 - our constant rule
        {"learner": learner_id} | scope_params(viewer),
    ).fetchone()
    return row is not None


def require_learner(cur: Cursor, viewer: Viewer, learner_id: str) -> None:
    if not may_view_learner(cur, viewer, learner_id):
        raise deny(cur, viewer, f"the records of learner {shown_id(learner_id)}", {"asked": logged_text(learner_id)})


def require_role(cur: Cursor, viewer: Viewer, *roles: Role) -> None:
    if not viewer.roles & set(roles):
        raise deny(cur, viewer, f"a page or action for {' or '.join(r.value for r in roles)}")


# Pages open to some roles only (url path -> roles); every other page is open to everyone signed in.
PAGE_ROLES: dict[str, frozenset[Role]] = {
    "self-assessment": frozenset({Role.learner}),
    "cohort": frozenset({Role.advisor, Role.committee, Role.coordinator}),
    "backtest": frozenset({Role.committee, Role.coordinator}),
    "import": frozenset({Role.coordinator}),
    "records": frozenset({Role.coordinator}),
    "accounts": frozenset({Role.coordinator}),
    "review": frozenset({Role.committee, Role.coordinator}),
}


def may_open_page(viewer: Viewer, url_path: str) -> bool:
    roles = PAGE_ROLES.get(url_path)
    return roles is None or bool(viewer.roles & roles)


def require_page(cur: Cursor, viewer: Viewer, url_path: str) -> None:
    """Refuse (and audit) a page outside the viewer's roles."""
    if not may_open_page(viewer, url_path):
        roles = " or ".join(sorted(r.value for r in PAGE_ROLES[url_path]))
        raise deny(
            cur, viewer, f"the page {url_path}", message=f"This page is not available to you: it is for {roles}."
        )


def rater_role_for(cur: Cursor, viewer: Viewer, learner_id: str) -> RaterRole:
    """The role in which the viewer may rate this learner; raise if they may not rate them."""
    if viewer.has(Role.learner):
        if viewer.person_id == learner_id:
            return RaterRole.self
        raise deny(cur, viewer, f"rating learner {shown_id(learner_id)}")
    if viewer.has(Role.advisor) and may_view_learner(cur, replace(viewer, roles=frozenset({Role.advisor})), learner_id):
        return RaterRole.advisor
    if viewer.has(Role.committee) and may_view_learner(cur, viewer, learner_id):
        return RaterRole.committee
    raise deny(cur, viewer, f"rating learner {shown_id(learner_id)}")


# ---- the committee's review cycle (tracker/review/review_actions.py) -----------------------------------------------------
# Coordinators and committee members set meetings up and read every signed decision (VISIBLE_LEARNER gives them
# the program); only committee members read or write drafts and decide; only a meeting's chair signs it off.
MEETING_ORGANISERS = (Role.committee, Role.coordinator)


def may_organise_meetings(viewer: Viewer) -> bool:
    return bool(viewer.roles & set(MEETING_ORGANISERS))


def require_meeting_organiser(cur: Cursor, viewer: Viewer) -> None:
    require_role(cur, viewer, *MEETING_ORGANISERS)


def may_read_drafts(viewer: Viewer) -> bool:
    return viewer.has(Role.committee)


def require_drafts(cur: Cursor, viewer: Viewer) -> None:
    if not may_read_drafts(viewer):
        raise deny(
            cur, viewer, "the committee's draft decisions", message="Draft decisions are for the committee only."
        )


def require_meeting_member(cur: Cursor, viewer: Viewer, meeting_id: str) -> None:
    """The viewer sits on this meeting (its chair or a member) and on the committee."""
    row = cur.execute("SELECT chair_id, members FROM review_meetings WHERE id = ?", [meeting_id]).fetchone()
    if not viewer.has(Role.committee) or row is None or viewer.person_id not in {row[0], *row[1]}:
        raise deny(cur, viewer, f"deciding in review meeting {shown_id(meeting_id)}")


def require_chair(cur: Cursor, viewer: Viewer, meeting_id: str) -> None:
    row = cur.execute("SELECT chair_id FROM review_meetings WHERE id = ?", [meeting_id]).fetchone()
    if not viewer.has(Role.committee) or row is None or row[0] != viewer.person_id:
        raise deny(
            cur,
            viewer,
            f"signing off review meeting {shown_id(meeting_id)}",
            message="Only the chair of the meeting signs its decisions off.",
        )


# ---- learning plans (tracker/plans/plan_actions.py) --------------------------------------------------------------------
# Everyone who may see a learner reads their plan (VISIBLE_LEARNER: the learner, their advisor, the committee and
# coordinators); the learner alone writes goals; the advisor of record agrees them; both comment.
def is_advisor_of_record(cur: Cursor, viewer: Viewer, learner_id: str) -> bool:
    if not viewer.has(Role.advisor):
        return False
    row = cur.execute("SELECT advisor_id FROM learners WHERE id = ?", [learner_id]).fetchone()
    return row is not None and row[0] == viewer.person_id


def may_write_goals(viewer: Viewer, learner_id: str) -> bool:
    return viewer.has(Role.learner) and viewer.person_id == learner_id


def require_goal_writer(cur: Cursor, viewer: Viewer, learner_id: str) -> None:
    if not may_write_goals(viewer, learner_id):
        raise deny(
            cur,
            viewer,
            f"writing the goals of learner {shown_id(learner_id)}",
            message="Only the learner writes the goals of their learning plan.",
        )


def require_plan_advisor(cur: Cursor, viewer: Viewer, learner_id: str) -> None:
    """The viewer is the learner's advisor of record (who agrees the plan)."""
    if not is_advisor_of_record(cur, viewer, learner_id):
        raise deny(
            cur,
            viewer,
            f"agreeing the learning plan of learner {shown_id(learner_id)}",
            message="Only the learner's advisor of record agrees their learning plan.",
        )


def require_goal_commenter(cur: Cursor, viewer: Viewer, learner_id: str) -> None:
    """The viewer is the learner or their advisor of record."""
    if not (may_write_goals(viewer, learner_id) or is_advisor_of_record(cur, viewer, learner_id)):
        raise deny(
            cur,
            viewer,
            f"commenting on the learning plan of learner {shown_id(learner_id)}",
            message="Only the learner and their advisor of record comment on a learning plan.",
        )
