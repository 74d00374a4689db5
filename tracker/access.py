"""Who may see and do what. Queries and writes call these; pages cannot go around them."""

import logging
from dataclasses import dataclass, replace
from enum import Enum

from data_models import RaterRole, Role
from tracker import store
from tracker.errors import PermissionDenied
from tracker.store import Cursor

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


def scope_of(viewer: Viewer) -> Scope:
    if viewer.sees_program:
        return Scope.program
    if viewer.has(Role.advisor):
        return Scope.advisees
    return Scope.own


def learner_filter(viewer: Viewer, column: str = "l") -> tuple[str, list[str]]:
    """A SQL condition on the learners table aliased `column` that keeps what the viewer may see."""
    scope = scope_of(viewer)
    if scope is Scope.program:
        return "TRUE", []
    if scope is Scope.advisees:
        return f"{column}.advisor_id = ?", [viewer.person_id]
    return f"{column}.id = ?", [viewer.person_id]


def deny(cur: Cursor, viewer: Viewer, what: str) -> PermissionDenied:
    """Log the refused request and return the error to raise."""
    log.warning("permission denied: %s (%s) asked for %s", viewer.person_id, ",".join(sorted(viewer.roles)), what)
    try:
        store.write(cur, lambda c: store.audit(c, viewer.person_id, "permission denied", what))
    except Exception:
        log.exception("could not record a refused request")
    return PermissionDenied(f"You do not have access to {what}.")


def may_view_learner(cur: Cursor, viewer: Viewer, learner_id: str) -> bool:
    scope = scope_of(viewer)
    if scope is Scope.program:
        return cur.execute("SELECT 1 FROM learners WHERE id = ?", [learner_id]).fetchone() is not None
    if scope is Scope.advisees:
        return (
            cur.execute(
                "SELECT 1 FROM learners WHERE id = ? AND advisor_id = ?", [learner_id, viewer.person_id]
            ).fetchone()
            is not None
        )
    return viewer.person_id == learner_id


def require_learner(cur: Cursor, viewer: Viewer, learner_id: str) -> None:
    if not may_view_learner(cur, viewer, learner_id):
        raise deny(cur, viewer, f"the records of learner {learner_id}")


def require_role(cur: Cursor, viewer: Viewer, *roles: Role) -> None:
    if not viewer.roles & set(roles):
        raise deny(cur, viewer, f"a page or action for {' or '.join(r.value for r in roles)}")


def rater_role_for(cur: Cursor, viewer: Viewer, learner_id: str) -> RaterRole:
    """The role in which the viewer may rate this learner; raise if they may not rate them."""
    if viewer.has(Role.learner):
        if viewer.person_id == learner_id:
            return RaterRole.self
        raise deny(cur, viewer, f"rating learner {learner_id}")
    if (
        viewer.has(Role.advisor)
        and cur.execute(
            "SELECT 1 FROM learners WHERE id = ? AND advisor_id = ?", [learner_id, viewer.person_id]
        ).fetchone()
    ):
        return RaterRole.advisor
    if viewer.has(Role.committee) and may_view_learner(cur, viewer, learner_id):
        return RaterRole.committee
    raise deny(cur, viewer, f"rating learner {learner_id}")
