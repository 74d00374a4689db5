"""Signing in and out: lockout after failed sign-ins, server-side sessions, the browser's cookie ticket."""

import datetime as dt
import hashlib
import math
import secrets
from collections.abc import Mapping

from argon2.exceptions import InvalidHashError, VerificationError

from tracker.access.policy import Viewer, logged_text, viewer_for_person
from tracker.accounts import identity
from tracker.accounts.passwords import HASHER, token_hash
from tracker.core.config import settings
from tracker.core.errors import SignInError, StaleIdentity
from tracker.storage import database
from tracker.storage.database import Cursor

# ---- sign-in and sessions ----------------------------------------------------------------------
WRONG = "Wrong user name or password."
_DUMMY_HASH = HASHER.hash("not a password of anyone's")  # verified for unknown accounts, so timing tells nothing


def sign_in(cur: Cursor, username: str, password: str, source: str = "local") -> str:
    """Check the password; return a new session token.

    Failed attempts are counted per account name and source (the client's address): past the free attempts,
    each further attempt from that source must wait twice as long as the one before, up to the longest delay.
    Strangers elsewhere therefore cannot lock a real user out, and the answer is the same whether or not the
    account exists. A source that has failed too often across all accounts in the last hour (one password tried on
    many accounts) waits as well, whichever account it tries next."""
    username = username.strip().lower()
    now = database.now()
    wait = wait_before_next_attempt(cur, username, source, now)
    if wait > 0:
        raise SignInError(f"Too many failed sign-ins from here: wait {_duration(wait)} and try again.")
    wait = wait_for_source(cur, source, now)
    if wait > 0:
        raise SignInError(
            f"Too many failed sign-ins from this address, to any account: wait {_duration(wait)} and try again."
        )
    row = cur.execute(
        "SELECT password_hash, disabled, person_id FROM accounts WHERE username = ?", [username]
    ).fetchone()
    hashed, disabled, person_id = row if row else (None, False, None)
    try:
        ok = HASHER.verify(hashed or _DUMMY_HASH, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        record_failure(cur, username, source, person_id, now, "unknown account" if row is None else "wrong password")
        raise SignInError(WRONG)
    if disabled:
        record_failure(cur, username, source, person_id, now, "disabled")
        raise SignInError("This account is disabled. Ask the program coordinator.")
    rehashed = HASHER.hash(password) if HASHER.check_needs_rehash(hashed) else None
    return _start_session(cur, username, person_id, now, settings().session_hours, source, rehashed)


def wait_before_next_attempt(cur: Cursor, username: str, source: str, now: dt.datetime) -> float:
    """Seconds this source must still wait before trying this account again (0: it may try now)."""
    cfg = settings()
    failures, last = cur.execute(
        "SELECT count(*), max(failed_at) FROM sign_in_failures WHERE username = ? AND source = ? AND failed_at > ?",
        [username, source, now - FAILURE_WINDOW],
    ).fetchone()  # type: ignore[misc]
    beyond = failures - cfg.max_failed_sign_ins
    if beyond < 0 or last is None:
        return 0.0
    delay = min(FIRST_DELAY_SECONDS * 2**beyond, cfg.lockout_minutes * 60)
    return max(0.0, (last + dt.timedelta(seconds=delay) - now).total_seconds())


FIRST_DELAY_SECONDS = 15  # the wait after the last free attempt; it doubles with every further failure
FAILURE_WINDOW = dt.timedelta(days=1)  # how long a failed sign-in counts; older ones are deleted


def _purge_failures(c: Cursor, now: dt.datetime) -> None:
    """Failed sign-ins no wait counts any more (the audit log keeps every one)."""
    c.execute("DELETE FROM sign_in_failures WHERE failed_at <= ?", [now - FAILURE_WINDOW])


def _purge_sessions(c: Cursor, now: dt.datetime) -> None:
    """Sessions that expired or ended, but each account's latest (the accounts page shows when it last signed in):
    no token finds them any more, and in server mode every write compares this table's rows."""
    c.execute(
        """DELETE FROM sessions WHERE (expires_at <= ? OR ended_at IS NOT NULL)
           AND created_at < (SELECT max(s.created_at) FROM sessions s WHERE s.username = sessions.username)""",
        [now],
    )


SOURCE_WINDOW = dt.timedelta(hours=1)  # failures from one source to any account count this long


def wait_for_source(cur: Cursor, source: str, now: dt.datetime) -> float:
    """Seconds this source must still wait before trying any account (0: it may try now): past
    TRACKER_MAX_FAILED_SIGN_INS_PER_SOURCE failures in the last hour, until the oldest that counts is an hour old."""
    limit = settings().max_failed_sign_ins_per_source
    row = cur.execute(
        "SELECT failed_at FROM sign_in_failures WHERE source = ? AND failed_at > ? "
        "ORDER BY failed_at DESC LIMIT 1 OFFSET ?",
        [source, now - SOURCE_WINDOW, max(limit - 1, 0)],
    ).fetchone()
    if row is None:
        return 0.0
    return max(0.0, (row[0] + SOURCE_WINDOW - now).total_seconds())


def _duration(seconds: float) -> str:
    return f"{math.ceil(seconds)} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"


def record_failure(
    cur: Cursor, username: str, source: str, person_id: str | None, now: dt.datetime, reason: str
) -> None:
    who = person_id or "(unknown account)"

    def work(c: Cursor) -> None:
        c.execute(
            "INSERT INTO sign_in_failures (username, source, failed_at) VALUES (?, ?, ?)", [username, source, now]
        )
        _purge_failures(c, now)
        database.audit(
            c, who, "sign-in failed", who, {"username": logged_text(username), "source": source, "reason": reason}
        )

    database.write(cur, work)


def sign_in_by_identity(cur: Cursor, claims: Mapping[str, object], issuer: str, source: str = "local") -> str:
    """For single sign-on: the identity provider's claims (the ID token's) pick the account by their e-mail, once
    identity.verified_email has accepted them. A refusal is audited; a stale identity (StaleIdentity) is not, as it
    is only the provider's sign-in outliving ours."""
    try:
        email = identity.verified_email(claims, issuer, database.now())
    except StaleIdentity:
        raise
    except SignInError as exc:
        detail = {"email": logged_text(claims.get("email") or ""), "issuer": logged_text(claims.get("iss") or "")}
        _audit_refusal(cur, None, {**detail, "source": source, "reason": str(exc)})
        raise
    return sign_in_by_email(cur, email, source)


def sign_in_by_email(cur: Cursor, email: str, source: str = "local") -> str:
    """The session of the one account whose person has this e-mail, which the identity provider has verified. An
    e-mail several people share picks nobody."""
    rows = cur.execute(
        """WITH people AS (SELECT id, email FROM learners UNION ALL SELECT id, email FROM staff)
           SELECT p.id, a.username, a.disabled FROM people p LEFT JOIN accounts a ON a.person_id = p.id
           WHERE lower(p.email) = lower(?) ORDER BY p.id""",
        [email.strip()],
    ).fetchall()
    detail = {"email": logged_text(email), "source": source}
    if len(rows) > 1:
        _audit_refusal(cur, None, {**detail, "people": [r[0] for r in rows], "reason": "e-mail of several people"})
        raise SignInError(
            f"More than one person in the program's records has the e-mail {email}, so it cannot pick your account. "
            "Ask the program coordinator to give each person their own e-mail address."
        )
    person_id, username, disabled = rows[0] if rows else (None, None, None)
    if username is None or disabled:
        _audit_refusal(cur, person_id, {**detail, "reason": "no enabled account for this e-mail"})
        raise SignInError(f"No enabled account belongs to {email}. Ask the program coordinator.")
    return _start_session(cur, username, person_id, database.now(), settings().session_hours, source)


def _audit_refusal(cur: Cursor, person_id: str | None, detail: dict[str, object]) -> None:
    who = person_id or "(unknown account)"
    database.write(cur, lambda c: database.audit(c, who, "sign-in failed", who, detail))


def _start_session(
    cur: Cursor, username: str, person_id: str, now: dt.datetime, hours: int, source: str, rehashed: str | None = None
) -> str:
    """A new session; with `rehashed`, the password's hash made again with the current parameters."""
    token = secrets.token_urlsafe(32)
    ticket = (token_hash(_first_ticket(token)), now + dt.timedelta(seconds=TICKET_SECONDS))

    def work(c: Cursor) -> None:
        if rehashed is not None:
            c.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", [rehashed, username])
        c.execute("DELETE FROM sign_in_failures WHERE username = ? AND source = ?", [username, source])
        _purge_failures(c, now)
        _purge_sessions(c, now)
        c.execute(
            "INSERT INTO sessions (token_hash, username, created_at, expires_at, ticket_hash, ticket_expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [token_hash(token), username, now, now + dt.timedelta(hours=hours), *ticket],
        )
        database.audit(c, person_id, "sign-in", person_id, {"username": username, "source": source})

    database.write(cur, work)
    return token


TICKET_SECONDS = 60  # how long the browser has to exchange a sign-in's ticket for its cookie


def _first_ticket(token: str) -> str:
    """The ticket a new session starts with: drawn from its token one way (the token never leaves the server), so
    the sign-in writes it with the session and handing it to the browser writes nothing more."""
    return hashlib.sha256(b"milestone ticket\0" + token.encode()).hexdigest()


def cookie_ticket(cur: Cursor, token: str) -> str:
    """A one-time ticket for this live session, which the browser exchanges (HTTP route) for its own cookie
    session; the session token itself never reaches the browser. Right after a sign-in it is the ticket the sign-in
    wrote (one write a sign-in: under many sign-ins at once, and in server mode's one write at a time, each write
    counts); otherwise a new one."""
    first = _first_ticket(token)
    if cur.execute(
        "SELECT 1 FROM sessions WHERE token_hash = ? AND ticket_hash = ? AND ticket_expires_at > ? AND ended_at IS NULL",
        [token_hash(token), token_hash(first), database.now()],
    ).fetchone():
        return first
    ticket = secrets.token_urlsafe(32)
    database.write(
        cur,
        lambda c: c.execute(
            "UPDATE sessions SET ticket_hash = ?, ticket_expires_at = ? WHERE token_hash = ? AND ended_at IS NULL",
            [token_hash(ticket), database.now() + dt.timedelta(seconds=TICKET_SECONDS), token_hash(token)],
        ),
    )
    return ticket


def exchange_ticket(cur: Cursor, ticket: str) -> tuple[str, dt.datetime] | None:
    """Use a ticket once: a new session token for the browser's cookie, tied to the ticket's session (ending
    either ends both), with its expiry. None for an unknown, used or expired ticket."""
    if not ticket:
        return None
    token = secrets.token_urlsafe(32)
    now = database.now()

    def work(c: Cursor) -> tuple[str, dt.datetime] | None:
        row = c.execute(
            """SELECT token_hash, username, expires_at FROM sessions
               WHERE ticket_hash = ? AND ticket_expires_at > ? AND ended_at IS NULL AND expires_at > ?""",
            [token_hash(ticket), now, now],
        ).fetchone()
        if row is None:
            return None
        parent, username, expires = row
        c.execute("UPDATE sessions SET ticket_hash = NULL, ticket_expires_at = NULL WHERE token_hash = ?", [parent])
        c.execute(
            "INSERT INTO sessions (token_hash, username, created_at, expires_at, parent_hash) VALUES (?, ?, ?, ?, ?)",
            [token_hash(token), username, now, expires, parent],
        )
        return token, expires

    return database.write(cur, work)


def viewer_for_token(cur: Cursor, token: object) -> Viewer | None:
    """The signed-in viewer of a live session token, or None."""
    if not isinstance(token, str) or not token:
        return None
    row = cur.execute(
        """SELECT a.username, a.person_id FROM sessions s JOIN accounts a USING (username)
           WHERE s.token_hash = ? AND s.ended_at IS NULL AND s.expires_at > ? AND NOT a.disabled""",
        [token_hash(token), database.now()],
    ).fetchone()
    if row is None:
        return None
    viewer = viewer_for_person(cur, row[1])
    return None if viewer is None else viewer.with_username(row[0])


def sign_out(cur: Cursor, token: str) -> None:
    """End this session, the cookie session tied to it, and the session it was tied to."""
    hashed = token_hash(token)

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
                [database.now(), *family, *family],
            )
            database.audit(c, row[2], "sign-out", row[2], {"username": row[0]})

    database.write(cur, work)
