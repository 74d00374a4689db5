"""Reads of the accounts page: every person with the state of their account. For coordinators only."""

import datetime as dt

import pandas as pd

from data_models import Role
from tracker.access.policy import Viewer, require_role
from tracker.core.config import settings
from tracker.storage import database
from tracker.storage.database import Cursor

STATES = ["none", "invited", "active", "delayed", "disabled", "single sign-on only"]

# One row per person and account (a person without an account has one row, username NULL). A person is
# "invited" while a link of theirs is live and they have no account; an account is "delayed" while some source
# has used up its free sign-in attempts (tracker/accounts/sessions.py), until the coordinator unlocks it.
_ACCOUNT_OVERVIEW = """
WITH people AS (
    SELECT id AS person_id, name, email, cohort, 'learner' AS roles FROM learners
    UNION ALL SELECT id, name, email, NULL, array_to_string(roles, ', ') FROM staff),
live_links AS (
    SELECT person_id, max(expires_at) AS link_expires FROM account_links
    WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > $now GROUP BY person_id),
delayed AS (
    SELECT DISTINCT username FROM (
        SELECT username FROM sign_in_failures WHERE failed_at > $since
        GROUP BY username, source HAVING count(*) >= $free)),
rows AS (
    SELECT p.person_id, p.name, p.roles, p.cohort, p.email, a.username,
        CASE WHEN a.username IS NULL AND k.person_id IS NOT NULL THEN 'invited'
             WHEN a.username IS NULL THEN 'none'
             WHEN a.disabled THEN 'disabled'
             WHEN d.username IS NOT NULL THEN 'delayed'
             WHEN a.password_hash IS NULL THEN 'single sign-on only'
             ELSE 'active' END AS state,
        k.link_expires,
        (SELECT max(created_at) FROM sessions s WHERE s.username = a.username) AS last_sign_in
    FROM people p LEFT JOIN accounts a ON a.person_id = p.person_id
    LEFT JOIN live_links k ON k.person_id = p.person_id
    LEFT JOIN delayed d ON d.username = a.username)
SELECT * FROM rows
WHERE ($cohort IS NULL OR cohort = $cohort)
  AND ($role IS NULL OR list_contains(string_split(roles, ', '), $role))
  AND ($state IS NULL OR state = $state)
ORDER BY person_id, username
"""


def account_overview(
    cur: Cursor, viewer: Viewer, cohort: str | None = None, role: str | None = None, state: str | None = None
) -> pd.DataFrame:
    """Every learner and staff member (of a cohort, of a role, in a state) with their account's state."""
    require_role(cur, viewer, Role.coordinator)
    now = database.now()
    params = {
        "now": now,
        "since": now - dt.timedelta(days=1),
        "free": settings().max_failed_sign_ins,
        "cohort": cohort,
        "role": role,
        "state": state,
    }
    return cur.execute(_ACCOUNT_OVERVIEW, params).df()


def account_cohorts(cur: Cursor, viewer: Viewer) -> list[str]:
    require_role(cur, viewer, Role.coordinator)
    return [r[0] for r in cur.execute("SELECT DISTINCT cohort FROM learners ORDER BY cohort").fetchall()]
