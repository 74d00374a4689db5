"""Accounts of people: creating them, passwords, disabling and unlocking, the demo accounts."""

from argon2.exceptions import InvalidHashError, VerificationError

from data_models import Role
from tracker.access.policy import Viewer, require_role, viewer_for_person
from tracker.accounts.account_links import issue_links, revoke_links
from tracker.accounts.passwords import HASHER, check_password_rules, token_hash
from tracker.accounts.sessions import record_failure, wait_before_next_attempt
from tracker.core.errors import SignInError, TrackerError
from tracker.storage import database
from tracker.storage.database import Cursor

DEMO_PASSWORD = "milestone-demo"  # noqa: S105 - only for the sample program's demo accounts


def add_user(cur: Cursor, username: str, person_id: str, password: str | None, actor: str) -> None:
    """Create an account for a learner or staff member; with no password it can sign in only by SSO."""
    username = username.strip().lower()
    if viewer_for_person(cur, person_id) is None:
        raise TrackerError(f"No learner or staff member with id {person_id!r}; import them first.")
    if password is not None:
        check_password_rules(cur, password, username, person_id)
    hashed = HASHER.hash(password) if password is not None else None

    def work(c: Cursor) -> None:
        if c.execute("SELECT 1 FROM accounts WHERE username = ?", [username]).fetchone():
            raise TrackerError(f"The account {username!r} exists already.")
        c.execute(
            "INSERT INTO accounts (username, person_id, password_hash, created_at) VALUES (?, ?, ?, ?)",
            [username, person_id, hashed, database.now()],
        )
        database.audit(c, actor, "account add", person_id, {"username": username})

    database.write(cur, work)


def set_password(cur: Cursor, username: str, password: str, actor: str) -> None:
    """Set a password and forget the account's failed sign-ins (lifting any delay)."""
    check_password_rules(cur, password, username, _require_account(cur, username))
    hashed = HASHER.hash(password)

    def work(c: Cursor) -> None:
        person_id = _require_account(c, username)
        c.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", [hashed, username])
        c.execute("DELETE FROM sign_in_failures WHERE username = ?", [username])
        database.audit(c, actor, "account password", person_id, {"username": username})

    database.write(cur, work)


def end_restored_sessions(c: Cursor, actor: str, backup_file: str) -> None:
    """Inside a restore's write: end every session the backup held, for some may have ended (a sign-out, a
    disabled account, a password reset) after it was taken. Everyone signs in again."""
    ended = c.execute(
        "UPDATE sessions SET ended_at = ? WHERE ended_at IS NULL RETURNING token_hash", [database.now()]
    ).fetchall()
    database.audit(c, actor, "restore", "database", {"backup": backup_file, "sessions_ended": len(ended)})


def set_disabled(cur: Cursor, username: str, disabled: bool, actor: str) -> None:
    def work(c: Cursor) -> None:
        person_id = _require_account(c, username)
        c.execute("UPDATE accounts SET disabled = ? WHERE username = ?", [disabled, username])
        if disabled:
            c.execute(
                "UPDATE sessions SET ended_at = ? WHERE username = ? AND ended_at IS NULL", [database.now(), username]
            )
            revoke_links(c, person_id, database.now())
        database.audit(c, actor, "account disable" if disabled else "account enable", person_id, {"username": username})

    database.write(cur, work)


def _require_account(c: Cursor, username: str) -> str:
    """The person of an account; raise when there is no such account."""
    row = c.execute("SELECT person_id FROM accounts WHERE username = ?", [username]).fetchone()
    if row is None:
        raise TrackerError(f"No account {username!r}.")
    return str(row[0])


# So that the sample program's accounts page shows every state: the newest cohort's last two learners have no
# account yet (one of them has a live invitation), one advisor has left (disabled), one committee member signs in
# only through single sign-on.
DEMO_WITHOUT_ACCOUNT = ("L057", "L060")
DEMO_INVITED = ("L057",)
DEMO_DISABLED = ("A008",)
DEMO_SSO_ONLY = ("C003",)


def create_demo_accounts(cur: Cursor) -> int:
    """One account per person of the sample program, with the published demo password, and a few in other states
    (DEMO_*); returns how many accounts were made."""
    hashed = HASHER.hash(DEMO_PASSWORD)  # one hash for all: the password is public anyway
    people = [
        pid
        for (pid,) in cur.execute("SELECT id FROM learners UNION ALL SELECT id FROM staff ORDER BY 1").fetchall()
        if pid not in DEMO_WITHOUT_ACCOUNT
    ]
    stamp = database.now()

    def work(c: Cursor) -> None:
        c.executemany(
            "INSERT INTO accounts (username, person_id, password_hash, created_at, disabled) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [
                (pid.lower(), pid, None if pid in DEMO_SSO_ONLY else hashed, stamp, pid in DEMO_DISABLED)
                for pid in people
            ],
        )
        database.audit(c, "cli", "account add", "demo accounts", {"count": len(people)})

    database.write(cur, work)
    invited = [pid for (pid,) in cur.execute("SELECT id FROM learners").fetchall() if pid in DEMO_INVITED]
    if invited:
        issue_links(cur, invited, "cli", send=False)  # the link itself is not kept: it only shows the state
    return len(people)


# ---- what coordinators do to accounts, and what everyone does to their own ---------------------------
def unlock(cur: Cursor, viewer: Viewer, username: str) -> None:
    """Forget the account's failed sign-ins: every source may try again at once."""
    require_role(cur, viewer, Role.coordinator)

    def work(c: Cursor) -> None:
        person_id = _require_account(c, username)
        c.execute("DELETE FROM sign_in_failures WHERE username = ?", [username])
        database.audit(c, viewer.person_id, "account unlock", person_id, {"username": username})

    database.write(cur, work)


def change_disabled(cur: Cursor, viewer: Viewer, username: str, disabled: bool) -> None:
    require_role(cur, viewer, Role.coordinator)
    set_disabled(cur, username, disabled, viewer.person_id)


def has_password(cur: Cursor, username: str) -> bool:
    row = cur.execute("SELECT password_hash IS NOT NULL FROM accounts WHERE username = ?", [username]).fetchone()
    return bool(row and row[0])


def change_own_password(cur: Cursor, viewer: Viewer, token: str, current: str, new: str, source: str) -> int:
    """Change one's own password: the current one is checked (failures count as failed sign-ins), the new one
    follows the rules, and every other session of the account ends (this tab and its browser cookie stay).
    Returns how many other sign-ins ended."""
    username = viewer.username
    now = database.now()
    if wait_before_next_attempt(cur, username, source, now) > 0:
        raise SignInError("Too many failed attempts from here; wait a few minutes and try again.")
    row = cur.execute("SELECT password_hash FROM accounts WHERE username = ?", [username]).fetchone()
    if row is None or row[0] is None:
        raise TrackerError("This account signs in through the institution's single sign-on; it has no password here.")
    try:
        ok: bool = HASHER.verify(row[0], current)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        record_failure(cur, username, source, viewer.person_id, now, "wrong current password")
        raise SignInError("The current password is wrong; nothing was changed.")
    check_password_rules(cur, new, username, viewer.person_id)
    hashed = HASHER.hash(new)
    mine = token_hash(token)

    def work(c: Cursor) -> int:
        parent = c.execute("SELECT parent_hash FROM sessions WHERE token_hash = ?", [mine]).fetchone()
        family = [mine, (parent[0] if parent else None) or mine]
        c.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", [hashed, username])
        ended = c.execute(
            "UPDATE sessions SET ended_at = ? WHERE username = ? AND ended_at IS NULL "
            "AND token_hash NOT IN (?, ?) AND coalesce(parent_hash, '') NOT IN (?, ?) RETURNING parent_hash",
            [now, username, *family, *family],
        ).fetchall()
        signed_in = sum(parent is None for (parent,) in ended)  # a browser's cookie session is part of its sign-in
        c.execute("DELETE FROM sign_in_failures WHERE username = ?", [username])
        database.audit(
            c,
            viewer.person_id,
            "account password changed",
            viewer.person_id,
            {"username": username, "other_sign_ins_ended": signed_in},
        )
        return signed_in

    return database.write(cur, work)
