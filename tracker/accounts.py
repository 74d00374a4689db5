"""Local accounts: argon2 password hashes, lockout after failed sign-ins, server-side sessions."""

import argparse
import datetime as dt
import getpass
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tracker import store
from tracker.access import Viewer, viewer_for_person
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
        store.audit(c, actor, "account add", username, {"person_id": person_id})

    store.write(cur, work)


def set_password(cur: Cursor, username: str, password: str, actor: str) -> None:
    _check_password_rules(password)
    hashed = _hasher.hash(password)
    _update_account(
        cur,
        username,
        actor,
        "account password",
        "UPDATE accounts SET password_hash = ?, failed_attempts = 0, locked_until = NULL WHERE username = ?",
        [hashed, username],
    )


def set_disabled(cur: Cursor, username: str, disabled: bool, actor: str) -> None:
    def work(c: Cursor) -> None:
        _require_account(c, username)
        c.execute("UPDATE accounts SET disabled = ? WHERE username = ?", [disabled, username])
        if disabled:
            c.execute(
                "UPDATE sessions SET ended_at = ? WHERE username = ? AND ended_at IS NULL", [store.now(), username]
            )
        store.audit(c, actor, "account disable" if disabled else "account enable", username)

    store.write(cur, work)


def _require_account(c: Cursor, username: str) -> None:
    if not c.execute("SELECT 1 FROM accounts WHERE username = ?", [username]).fetchone():
        raise TrackerError(f"No account {username!r}.")


def _update_account(cur: Cursor, username: str, actor: str, action: str, sql: str, params: list) -> None:
    def work(c: Cursor) -> None:
        _require_account(c, username)
        c.execute(sql, params)
        store.audit(c, actor, action, username)

    store.write(cur, work)


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
def sign_in(cur: Cursor, username: str, password: str) -> str:
    """Check the password; return a new session token. Locks the account after too many failures."""
    cfg = settings()
    username = username.strip().lower()
    row = cur.execute(
        "SELECT password_hash, disabled, failed_attempts, locked_until FROM accounts WHERE username = ?", [username]
    ).fetchone()
    now = store.now()
    if row is None:
        _fail(cur, username, "unknown account")
        raise SignInError("Wrong user name or password.")
    hashed, disabled, failed, locked_until = row
    if disabled:
        _fail(cur, username, "disabled")
        raise SignInError("This account is disabled. Ask the program coordinator.")
    if locked_until is not None and locked_until > now:
        _fail(cur, username, "locked")
        raise SignInError(f"Too many failed sign-ins: the account is locked until {locked_until:%H:%M} UTC.")
    try:
        ok = hashed is not None and _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        failed += 1
        lock = now + dt.timedelta(minutes=cfg.lockout_minutes) if failed >= cfg.max_failed_sign_ins else None

        def record(c: Cursor) -> None:
            c.execute(
                "UPDATE accounts SET failed_attempts = ?, locked_until = ? WHERE username = ?",
                [0 if lock else failed, lock, username],
            )
            store.audit(c, username, "sign-in failed", username, {"attempt": failed, "locked": lock is not None})

        store.write(cur, record)
        if lock:
            raise SignInError(f"Too many failed sign-ins: the account is locked for {cfg.lockout_minutes} minutes.")
        raise SignInError("Wrong user name or password.")
    return _start_session(cur, username, now, cfg.session_hours)


def sign_in_by_email(cur: Cursor, email: str) -> str:
    """For single sign-on: the identity provider has checked the person; map the e-mail to an account."""
    row = cur.execute(
        """SELECT a.username, a.disabled FROM accounts a
           LEFT JOIN learners l ON l.id = a.person_id LEFT JOIN staff s ON s.id = a.person_id
           WHERE lower(coalesce(l.email, s.email)) = lower(?)""",
        [email],
    ).fetchone()
    if row is None or row[1]:
        _fail(cur, email, "no enabled account for this e-mail")
        raise SignInError(f"No enabled account belongs to {email}. Ask the program coordinator.")
    return _start_session(cur, row[0], store.now(), settings().session_hours)


def _fail(cur: Cursor, username: str, reason: str) -> None:
    store.write(
        cur,
        lambda c: store.audit(c, username or "(blank)", "sign-in failed", username or "(blank)", {"reason": reason}),
    )


def _start_session(cur: Cursor, username: str, now: dt.datetime, hours: int) -> str:
    token = secrets.token_urlsafe(32)

    def work(c: Cursor) -> None:
        c.execute("UPDATE accounts SET failed_attempts = 0, locked_until = NULL WHERE username = ?", [username])
        c.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, NULL)",
            [_token_hash(token), username, now, now + dt.timedelta(hours=hours)],
        )
        store.audit(c, username, "sign-in", username)

    store.write(cur, work)
    return token


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
    def work(c: Cursor) -> None:
        row = c.execute(
            "SELECT username FROM sessions WHERE token_hash = ? AND ended_at IS NULL", [_token_hash(token)]
        ).fetchone()
        if row:
            c.execute("UPDATE sessions SET ended_at = ? WHERE token_hash = ?", [store.now(), _token_hash(token)])
            store.audit(c, row[0], "sign-out", row[0])

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
