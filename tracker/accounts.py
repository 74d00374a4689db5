"""Local accounts: argon2 password hashes, lockout after failed sign-ins, server-side sessions."""

import argparse
import datetime as dt
import getpass
import hashlib
import math
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tracker import store
from tracker.access import Viewer, logged_text, viewer_for_person
from tracker.config import settings
from tracker.errors import SignInError, TrackerError
from tracker.store import Cursor

DEMO_PASSWORD = "milestone-demo"  # noqa: S105 - only for the sample program's demo accounts
_hasher = PasswordHasher()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password_rules(password: str) -> None:
    if len(password) < 10:
        raise TrackerError("A password needs at least 10 characters.")


def add_user(cur: Cursor, username: str, person_id: str, password: str | None, actor: str) -> None:
    """Create an account for a learner or staff member; with no password it can sign in only by SSO."""
    username = username.strip().lower()
    if viewer_for_person(cur, person_id) is None:
        raise TrackerError(f"No learner or staff member with id {person_id!r}; import them first.")
    if password is not None:
        _check_password_rules(password)
    hashed = _hasher.hash(password) if password is not None else None

    def work(c: Cursor) -> None:
        if c.execute("SELECT 1 FROM accounts WHERE username = ?", [username]).fetchone():
            raise TrackerError(f"The account {username!r} exists already.")
        c.execute(
            "INSERT INTO accounts (username, person_id, password_hash, created_at) VALUES (?, ?, ?, ?)",
            [username, person_id, hashed, store.now()],
        )
        store.audit(c, actor, "account add", person_id, {"username": username})

    store.write(cur, work)


def set_password(cur: Cursor, username: str, password: str, actor: str) -> None:
    """Set a password and forget the account's failed sign-ins (lifting any delay)."""
    _check_password_rules(password)
    hashed = _hasher.hash(password)

    def work(c: Cursor) -> None:
        person_id = _require_account(c, username)
        c.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", [hashed, username])
        c.execute("DELETE FROM sign_in_failures WHERE username = ?", [username])
        store.audit(c, actor, "account password", person_id, {"username": username})

    store.write(cur, work)


def set_disabled(cur: Cursor, username: str, disabled: bool, actor: str) -> None:
    def work(c: Cursor) -> None:
        person_id = _require_account(c, username)
        c.execute("UPDATE accounts SET disabled = ? WHERE username = ?", [disabled, username])
        if disabled:
            c.execute(
                "UPDATE sessions SET ended_at = ? WHERE username = ? AND ended_at IS NULL", [store.now(), username]
            )
        store.audit(c, actor, "account disable" if disabled else "account enable", person_id, {"username": username})

    store.write(cur, work)


def _require_account(c: Cursor, username: str) -> str:
    """The person of an account; raise when there is no such account."""
    row = c.execute("SELECT person_id FROM accounts WHERE username = ?", [username]).fetchone()
    if row is None:
        raise TrackerError(f"No account {username!r}.")
    return str(row[0])


def create_demo_accounts(cur: Cursor) -> int:
    """One account per person of the sample program, all with the published demo password."""
    hashed = _hasher.hash(DEMO_PASSWORD)  # one hash for all: the password is public anyway
    people = cur.execute("SELECT id FROM learners UNION ALL SELECT id FROM staff ORDER BY 1").fetchall()
    stamp = store.now()

    def work(c: Cursor) -> None:
        c.executemany(
            "INSERT INTO accounts (username, person_id, password_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(pid.lower(), pid, hashed, stamp) for (pid,) in people],
        )
        store.audit(c, "cli", "account add", "demo accounts", {"count": len(people)})

    store.write(cur, work)
    return len(people)


# ---- sign-in and sessions ----------------------------------------------------------------------
WRONG = "Wrong user name or password."
_DUMMY_HASH = _hasher.hash("not a password of anyone's")  # verified for unknown accounts, so timing tells nothing


def sign_in(cur: Cursor, username: str, password: str, source: str = "local") -> str:
    """Check the password; return a new session token.

    Failed attempts are counted per account name and source (the client's address): past the free attempts,
    each further attempt from that source must wait twice as long as the one before, up to the longest delay.
    Strangers elsewhere therefore cannot lock a real user out, and the answer is the same whether or not the
    account exists."""
    username = username.strip().lower()
    now = store.now()
    wait = _wait_before_next_attempt(cur, username, source, now)
    if wait > 0:
        raise SignInError(f"Too many failed sign-ins from here: wait {_duration(wait)} and try again.")
    row = cur.execute(
        "SELECT password_hash, disabled, person_id FROM accounts WHERE username = ?", [username]
    ).fetchone()
    hashed, disabled, person_id = row if row else (None, False, None)
    try:
        ok = _hasher.verify(hashed or _DUMMY_HASH, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        _record_failure(cur, username, source, person_id, now, "unknown account" if row is None else "wrong password")
        raise SignInError(WRONG)
    if disabled:
        _record_failure(cur, username, source, person_id, now, "disabled")
        raise SignInError("This account is disabled. Ask the program coordinator.")
    return _start_session(cur, username, person_id, now, settings().session_hours, source)


def _wait_before_next_attempt(cur: Cursor, username: str, source: str, now: dt.datetime) -> float:
    """Seconds this source must still wait before trying this account again (0: it may try now)."""
    cfg = settings()
    failures, last = cur.execute(
        "SELECT count(*), max(failed_at) FROM sign_in_failures WHERE username = ? AND source = ? AND failed_at > ?",
        [username, source, now - dt.timedelta(days=1)],
    ).fetchone()  # type: ignore[misc]
    beyond = failures - cfg.max_failed_sign_ins
    if beyond < 0 or last is None:
        return 0.0
    delay = min(FIRST_DELAY_SECONDS * 2**beyond, cfg.lockout_minutes * 60)
    return max(0.0, (last + dt.timedelta(seconds=delay) - now).total_seconds())


FIRST_DELAY_SECONDS = 15  # the wait after the last free attempt; it doubles with every further failure


def _duration(seconds: float) -> str:
    return f"{math.ceil(seconds)} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"


def _record_failure(
    cur: Cursor, username: str, source: str, person_id: str | None, now: dt.datetime, reason: str
) -> None:
    who = person_id or "(unknown account)"

    def work(c: Cursor) -> None:
        c.execute("INSERT INTO sign_in_failures VALUES (?, ?, ?)", [username, source, now])
        c.execute("DELETE FROM sign_in_failures WHERE failed_at < ?", [now - dt.timedelta(days=1)])
        store.audit(
            c, who, "sign-in failed", who, {"username": logged_text(username), "source": source, "reason": reason}
        )

    store.write(cur, work)


def sign_in_by_email(cur: Cursor, email: str, source: str = "local") -> str:
    """For single sign-on: the identity provider has checked the person; map the e-mail to an account."""
    row = cur.execute(
        """SELECT a.username, a.disabled, a.person_id FROM accounts a
           LEFT JOIN learners l ON l.id = a.person_id LEFT JOIN staff s ON s.id = a.person_id
           WHERE lower(coalesce(l.email, s.email)) = lower(?)""",
        [email],
    ).fetchone()
    if row is None or row[1]:
        store.write(
            cur,
            lambda c: store.audit(
                c,
                "(unknown account)" if row is None else row[2],
                "sign-in failed",
                "(unknown account)" if row is None else row[2],
                {"email": logged_text(email), "source": source, "reason": "no enabled account for this e-mail"},
            ),
        )
        raise SignInError(f"No enabled account belongs to {email}. Ask the program coordinator.")
    return _start_session(cur, row[0], row[2], store.now(), settings().session_hours, source)


def _start_session(cur: Cursor, username: str, person_id: str, now: dt.datetime, hours: int, source: str) -> str:
    token = secrets.token_urlsafe(32)

    def work(c: Cursor) -> None:
        c.execute("DELETE FROM sign_in_failures WHERE username = ? AND source = ?", [username, source])
        c.execute(
            "INSERT INTO sessions (token_hash, username, created_at, expires_at) VALUES (?, ?, ?, ?)",
            [_token_hash(token), username, now, now + dt.timedelta(hours=hours)],
        )
        store.audit(c, person_id, "sign-in", person_id, {"username": username, "source": source})

    store.write(cur, work)
    return token


TICKET_SECONDS = 60  # how long the browser has to exchange a sign-in's ticket for its cookie


def cookie_ticket(cur: Cursor, token: str) -> str:
    """A one-time ticket for this live session, which the browser exchanges (HTTP route) for its own cookie
    session; the session token itself never reaches the browser."""
    ticket = secrets.token_urlsafe(32)
    store.write(
        cur,
        lambda c: c.execute(
            "UPDATE sessions SET ticket_hash = ?, ticket_expires_at = ? WHERE token_hash = ? AND ended_at IS NULL",
            [_token_hash(ticket), store.now() + dt.timedelta(seconds=TICKET_SECONDS), _token_hash(token)],
        ),
    )
    return ticket


def exchange_ticket(cur: Cursor, ticket: str) -> tuple[str, dt.datetime] | None:
    """Use a ticket once: a new session token for the browser's cookie, tied to the ticket's session (ending
    either ends both), with its expiry. None for an unknown, used or expired ticket."""
    if not ticket:
        return None
    token = secrets.token_urlsafe(32)
    now = store.now()

    def work(c: Cursor) -> tuple[str, dt.datetime] | None:
        row = c.execute(
            """SELECT token_hash, username, expires_at FROM sessions
               WHERE ticket_hash = ? AND ticket_expires_at > ? AND ended_at IS NULL AND expires_at > ?""",
            [_token_hash(ticket), now, now],
        ).fetchone()
        if row is None:
            return None
        parent, username, expires = row
        c.execute("UPDATE sessions SET ticket_hash = NULL, ticket_expires_at = NULL WHERE token_hash = ?", [parent])
        c.execute(
            "INSERT INTO sessions (token_hash, username, created_at, expires_at, parent_hash) VALUES (?, ?, ?, ?, ?)",
            [_token_hash(token), username, now, expires, parent],
        )
        return token, expires

    return store.write(cur, work)


def viewer_for_token(cur: Cursor, token: object) -> Viewer | None:
    """The signed-in viewer of a live session token, or None."""
    if not isinstance(token, str) or not token:
        return None
    row = cur.execute(
        """SELECT a.username, a.person_id FROM sessions s JOIN accounts a USING (username)
           WHERE s.token_hash = ? AND s.ended_at IS NULL AND s.expires_at > ? AND NOT a.disabled""",
        [_token_hash(token), store.now()],
    ).fetchone()
    if row is None:
        return None
    viewer = viewer_for_person(cur, row[1])
    return None if viewer is None else viewer.with_username(row[0])


def sign_out(cur: Cursor, token: str) -> None:
    """End this session, the cookie session tied to it, and the session it was tied to."""
    hashed = _token_hash(token)

    def work(c: Cursor) -> None:
        row = c.execute(
            """SELECT s.username, s.parent_hash, a.person_id FROM sessions s JOIN accounts a USING (username)
               WHERE s.token_hash = ? AND s.ended_at IS NULL""",
            [hashed],
        ).fetchone()
        if row:
            family = [hashed, row[1] or hashed]
            c.execute(
                "UPDATE sessions SET ended_at = ? WHERE ended_at IS NULL "
                "AND (token_hash IN (?, ?) OR parent_hash IN (?, ?))",
                [store.now(), *family, *family],
            )
            store.audit(c, row[2], "sign-out", row[2], {"username": row[0]})

    store.write(cur, work)


# ---- command line ------------------------------------------------------------------------------
def add_cli(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="manage sign-in accounts").add_subparsers(dest="users_command", required=True)
    s = users.add_parser("add", help="create an account for a learner or staff member")
    s.add_argument("username")
    s.add_argument("person_id")
    s.add_argument("--sso-only", action="store_true", help="no password: sign in only through single sign-on")
    s.set_defaults(func=_cli_add)
    s = users.add_parser("passwd", help="set an account's password and lift a lockout")
    s.add_argument("username")
    s.set_defaults(func=_cli_passwd)
    s = users.add_parser("disable", help="disable an account and end its sessions")
    s.add_argument("username")
    s.add_argument("--enable", action="store_true", help="enable it again instead")
    s.set_defaults(func=_cli_disable)


def _ask_password() -> str:
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise TrackerError("The two passwords differ; nothing was changed.")
    return first


def _db_cursor() -> Cursor:
    from tracker.setup import open_configured

    return open_configured(settings())[0].cursor()


def _cli_add(args: argparse.Namespace) -> int:
    cur = _db_cursor()
    add_user(cur, args.username, args.person_id, None if args.sso_only else _ask_password(), "cli")
    print(f"Account {args.username.lower()} created.")
    return 0


def _cli_passwd(args: argparse.Namespace) -> int:
    set_password(_db_cursor(), args.username.lower(), _ask_password(), "cli")
    print(f"Password of {args.username.lower()} changed.")
    return 0


def _cli_disable(args: argparse.Namespace) -> int:
    set_disabled(_db_cursor(), args.username.lower(), not args.enable, "cli")
    print(f"Account {args.username.lower()} {'enabled' if args.enable else 'disabled'}.")
    return 0
