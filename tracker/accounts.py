"""Local accounts: argon2 password hashes, lockout after failed sign-ins, server-side sessions, one-time links
(invitations and password resets) and what coordinators do to accounts."""

import argparse
import datetime as dt
import getpass
import hashlib
import logging
import math
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from data_models import Role
from tracker import mail, store
from tracker.access import Viewer, logged_text, require_role, viewer_for_person
from tracker.config import settings
from tracker.errors import SignInError, TrackerError
from tracker.passwords import check_new_password
from tracker.store import Cursor
from tracker.text import frame_csv

log = logging.getLogger("milestone.accounts")
DEMO_PASSWORD = "milestone-demo"  # noqa: S105 - only for the sample program's demo accounts
# Argon2id with OWASP's parameters (Password Storage Cheat Sheet: 19 MiB, 2 passes, 1 lane): a sign-in keeps one
# core busy for about 0.1 s, so the sign-ins of different people run side by side. argon2-cffi's default (64 MiB,
# 3 passes, 4 lanes) took 0.6 s on every core of a 2-core server: 50 people signing in at once waited 30-50 s.
# A hash made with other parameters still verifies, and is made again with these at its next sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _person(cur: Cursor, person_id: str) -> tuple[str, str] | None:
    """The name and e-mail of a learner or staff member."""
    row = cur.execute(
        "SELECT name, email FROM learners WHERE id = ? UNION ALL SELECT name, email FROM staff WHERE id = ?",
        [person_id, person_id],
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def _check_password_rules(cur: Cursor, password: str, username: str, person_id: str) -> None:
    name, email = _person(cur, person_id) or ("", "")
    check_new_password(password, username, name, email)


def add_user(cur: Cursor, username: str, person_id: str, password: str | None, actor: str) -> None:
    """Create an account for a learner or staff member; with no password it can sign in only by SSO."""
    username = username.strip().lower()
    if viewer_for_person(cur, person_id) is None:
        raise TrackerError(f"No learner or staff member with id {person_id!r}; import them first.")
    if password is not None:
        _check_password_rules(cur, password, username, person_id)
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
    _check_password_rules(cur, password, username, _require_account(cur, username))
    hashed = _hasher.hash(password)

    def work(c: Cursor) -> None:
        person_id = _require_account(c, username)
        c.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", [hashed, username])
        c.execute("DELETE FROM sign_in_failures WHERE username = ?", [username])
        store.audit(c, actor, "account password", person_id, {"username": username})

    store.write(cur, work)


def end_restored_sessions(c: Cursor, actor: str, backup_file: str) -> None:
    """Inside a restore's write: end every session the backup held, for some may have ended (a sign-out, a
    disabled account, a password reset) after it was taken. Everyone signs in again."""
    ended = c.execute(
        "UPDATE sessions SET ended_at = ? WHERE ended_at IS NULL RETURNING token_hash", [store.now()]
    ).fetchall()
    store.audit(c, actor, "restore", "database", {"backup": backup_file, "sessions_ended": len(ended)})


def set_disabled(cur: Cursor, username: str, disabled: bool, actor: str) -> None:
    def work(c: Cursor) -> None:
        person_id = _require_account(c, username)
        c.execute("UPDATE accounts SET disabled = ? WHERE username = ?", [disabled, username])
        if disabled:
            c.execute(
                "UPDATE sessions SET ended_at = ? WHERE username = ? AND ended_at IS NULL", [store.now(), username]
            )
            _revoke_links(c, person_id, store.now())
        store.audit(c, actor, "account disable" if disabled else "account enable", person_id, {"username": username})

    store.write(cur, work)


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
    hashed = _hasher.hash(DEMO_PASSWORD)  # one hash for all: the password is public anyway
    people = [
        pid
        for (pid,) in cur.execute("SELECT id FROM learners UNION ALL SELECT id FROM staff ORDER BY 1").fetchall()
        if pid not in DEMO_WITHOUT_ACCOUNT
    ]
    stamp = store.now()

    def work(c: Cursor) -> None:
        c.executemany(
            "INSERT INTO accounts (username, person_id, password_hash, created_at, disabled) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [
                (pid.lower(), pid, None if pid in DEMO_SSO_ONLY else hashed, stamp, pid in DEMO_DISABLED)
                for pid in people
            ],
        )
        store.audit(c, "cli", "account add", "demo accounts", {"count": len(people)})

    store.write(cur, work)
    invited = [pid for (pid,) in cur.execute("SELECT id FROM learners").fetchall() if pid in DEMO_INVITED]
    if invited:
        issue_links(cur, invited, "cli", send=False)  # the link itself is not kept: it only shows the state
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
    rehashed = _hasher.hash(password) if _hasher.check_needs_rehash(hashed) else None
    return _start_session(cur, username, person_id, now, settings().session_hours, source, rehashed)


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


def _start_session(
    cur: Cursor, username: str, person_id: str, now: dt.datetime, hours: int, source: str, rehashed: str | None = None
) -> str:
    """A new session; with `rehashed`, the password's hash made again with the current parameters."""
    token = secrets.token_urlsafe(32)
    ticket = (_token_hash(_first_ticket(token)), now + dt.timedelta(seconds=TICKET_SECONDS))

    def work(c: Cursor) -> None:
        if rehashed is not None:
            c.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", [rehashed, username])
        c.execute("DELETE FROM sign_in_failures WHERE username = ? AND source = ?", [username, source])
        c.execute(
            "INSERT INTO sessions (token_hash, username, created_at, expires_at, ticket_hash, ticket_expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [_token_hash(token), username, now, now + dt.timedelta(hours=hours), *ticket],
        )
        store.audit(c, person_id, "sign-in", person_id, {"username": username, "source": source})

    store.write(cur, work)
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
        [_token_hash(token), _token_hash(first), store.now()],
    ).fetchone():
        return first
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


# ---- one-time links: invitations and password resets ------------------------------------------
INVITE, RESET = "invitation", "reset"
SET_PASSWORD_PATH = "set-password"  # noqa: S105 - the address of the page (reachable signed out) that spends a link
COORDINATOR_SOURCE = "coordinator"  # the source of links a coordinator or the command line asks for


@dataclass(frozen=True)
class IssuedLink:
    """A link made for one person: sent by e-mail (`mailed`), or to hand out (`problem` says why not mailed)."""

    person_id: str
    name: str
    email: str
    username: str
    kind: str
    url: str
    expires_at: dt.datetime
    mailed: bool = False
    problem: str = ""


@dataclass(frozen=True)
class LinkHolder:
    """Whom a link belongs to, as the set-password page greets them."""

    person_id: str
    name: str
    username: str
    kind: str


def link_url(token: str) -> str:
    return f"{settings().public_url}/{SET_PASSWORD_PATH}?token={token}"


def _link_lifetime(kind: str) -> dt.timedelta:
    cfg = settings()
    return dt.timedelta(hours=cfg.invitation_hours) if kind == INVITE else dt.timedelta(minutes=cfg.reset_minutes)


def _revoke_links(c: Cursor, person_id: str, now: dt.datetime) -> None:
    c.execute(
        "UPDATE account_links SET revoked_at = ? WHERE person_id = ? AND used_at IS NULL AND revoked_at IS NULL",
        [now, person_id],
    )


def _recent_requests(c: Cursor, column: str, value: str, now: dt.datetime) -> int:
    sql = {
        "account_key": "SELECT count(*) FROM link_requests WHERE account_key = ? AND requested_at > ?",
        "source": "SELECT count(*) FROM link_requests WHERE source = ? AND requested_at > ?",
    }[column]
    return int(c.execute(sql, [value, now - dt.timedelta(hours=1)]).fetchone()[0])  # type: ignore[index]


def _new_link(c: Cursor, person_id: str, username: str, kind: str, actor: str, source: str, now: dt.datetime) -> str:
    """Write one link (older live links of the person end), its request and its audit row; return the token."""
    token = secrets.token_urlsafe(32)
    expires = now + _link_lifetime(kind)
    _revoke_links(c, person_id, now)
    c.execute(
        "INSERT INTO account_links (token_hash, person_id, username, kind, created_by, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [_token_hash(token), person_id, username, kind, actor, now, expires],
    )
    c.execute("INSERT INTO link_requests VALUES (?, ?, ?)", [person_id, source, now])
    action = "account invite" if kind == INVITE else "account reset link"
    store.audit(c, actor, action, person_id, {"username": username, "expires_at": expires, "source": source})
    return token


def issue_links(cur: Cursor, person_ids: Sequence[str], actor: str, send: bool | None = None) -> list[IssuedLink]:
    """An invitation for each person without an account, a reset link for each with one. Written in one
    transaction; then, when e-mail is set up (or `send`), mailed one by one. A person who already had
    TRACKER_LINK_REQUESTS_PER_ACCOUNT links in the last hour gets none (the result says so)."""
    now = store.now()
    limit = settings().link_requests_per_account
    rows = cur.execute(
        """WITH people AS (SELECT id, name, email FROM learners UNION ALL SELECT id, name, email FROM staff)
           SELECT p.id, p.name, p.email, min(a.username) FROM people p LEFT JOIN accounts a ON a.person_id = p.id
           WHERE list_contains(?, p.id) GROUP BY ALL ORDER BY p.id""",
        [list(person_ids)],
    ).fetchall()
    missing = set(person_ids) - {r[0] for r in rows}
    if missing:
        raise TrackerError(f"No learner or staff member with id {sorted(missing)[0]!r}; import them first.")

    def work(c: Cursor) -> list[IssuedLink]:
        made = []
        for person_id, name, email, username in rows:
            kind = INVITE if username is None else RESET
            username = username or person_id.lower()
            if kind == INVITE and c.execute("SELECT 1 FROM accounts WHERE username = ?", [username]).fetchone():
                made.append(
                    IssuedLink(
                        person_id,
                        name,
                        email,
                        username,
                        kind,
                        "",
                        now,
                        problem=f"the user name {username} belongs to another person; use users add",
                    )
                )
                continue
            if _recent_requests(c, "account_key", person_id, now) >= limit:
                problem = f"{limit} links in the last hour already; try again later"
                made.append(IssuedLink(person_id, name, email, username, kind, "", now, problem=problem))
                continue
            token = _new_link(c, person_id, username, kind, actor, COORDINATOR_SOURCE, now)
            made.append(IssuedLink(person_id, name, email, username, kind, link_url(token), now + _link_lifetime(kind)))
        return made

    issued = store.write(cur, work)
    if not (mail.configured() if send is None else send):
        return [i if i.problem else _unmailed(i, "e-mail is not set up") for i in issued]
    return [_mail_link(i) if i.url else i for i in issued]


def _unmailed(link: IssuedLink, problem: str) -> IssuedLink:
    return IssuedLink(**{**link.__dict__, "problem": problem})


def _mail_link(link: IssuedLink) -> IssuedLink:
    try:
        mail.send(link.email, *link_message(link))
    except mail.MailError as exc:
        return _unmailed(link, str(exc))
    return IssuedLink(**{**link.__dict__, "mailed": True})


def link_message(link: IssuedLink) -> tuple[str, str]:
    """The subject and plain-text body of the e-mail that carries a link."""
    until = f"{link.expires_at:%Y-%m-%d %H:%M} UTC"
    if link.kind == INVITE:
        return (
            "Your Milestone account",
            f"Hello {link.name},\n\nthe program coordinator has made you an account in Milestone, where the "
            f"program's learners, advisors and committees follow competency progress.\n\n"
            f"Your user name: {link.username}\n\nSet your password with this link (it works once, until {until}):\n"
            f"{link.url}\n\nIf the link has expired, ask the program coordinator for a new one.\n",
        )
    return (
        "Set a new Milestone password",
        f"Hello {link.name},\n\na new password was asked for your Milestone account {link.username}.\n\n"
        f"Set it with this link (it works once, until {until}):\n{link.url}\n\n"
        "If you did not ask for it, ignore this message: your password stays as it is.\n",
    )


def links_table(links: Sequence[IssuedLink]) -> pd.DataFrame:
    """The links to hand out (not mailed), as the coordinator downloads them."""
    return pd.DataFrame(
        [
            {
                "person_id": i.person_id,
                "name": i.name,
                "email": i.email,
                "username": i.username,
                "kind": i.kind,
                "link": i.url,
                "expires_at": f"{i.expires_at:%Y-%m-%d %H:%M} UTC" if i.url else "",
                "note": i.problem,
            }
            for i in links
            if not i.mailed
        ],
        columns=["person_id", "name", "email", "username", "kind", "link", "expires_at", "note"],
    )


def link_holder(cur: Cursor, token: str) -> LinkHolder:
    """Whose link this is; raise TrackerError saying why a link cannot be used (unknown, used, replaced, expired)."""
    row = cur.execute(
        """SELECT k.person_id, k.username, k.kind, k.expires_at, k.used_at, k.revoked_at,
                  coalesce(l.name, s.name) FROM account_links k
           LEFT JOIN learners l ON l.id = k.person_id LEFT JOIN staff s ON s.id = k.person_id
           WHERE k.token_hash = ?""",
        [_token_hash(token or "")],
    ).fetchone()
    if row is None:
        raise TrackerError("This link is not valid. Copy the whole link from the message, or ask for a new one.")
    person_id, username, kind, expires, used, revoked, name = row
    if used is not None:
        raise TrackerError("This link has been used already; it works only once. Sign in, or ask for a new one.")
    if revoked is not None:
        raise TrackerError("This link was replaced by a newer one; use the newest link, or ask for a new one.")
    if expires <= store.now():
        raise TrackerError(f"This link expired on {expires:%Y-%m-%d %H:%M} UTC; ask for a new one.")
    return LinkHolder(person_id, name or person_id, username, kind)


def use_link(cur: Cursor, token: str, password: str, source: str = "local") -> str:
    """Set the password of the link's account (creating the account for an invitation) and spend the link; every
    session of the account ends and its failed sign-ins are forgotten. Returns the user name."""
    holder = link_holder(cur, token)
    _check_password_rules(cur, password, holder.username, holder.person_id)
    hashed = _hasher.hash(password)
    now = store.now()

    def work(c: Cursor) -> str:
        spent = c.execute(
            "UPDATE account_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL "
            "AND expires_at > ? RETURNING username",
            [now, _token_hash(token), now],
        ).fetchall()
        if not spent:
            raise TrackerError("This link has just been used or has expired; ask for a new one.")
        c.execute(
            "INSERT INTO accounts (username, person_id, password_hash, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
            [holder.username, holder.person_id, hashed, now],
        )
        c.execute("DELETE FROM sign_in_failures WHERE username = ?", [holder.username])
        c.execute("UPDATE sessions SET ended_at = ? WHERE username = ? AND ended_at IS NULL", [now, holder.username])
        store.audit(
            c,
            holder.person_id,
            "account password by link",
            holder.person_id,
            {"username": holder.username, "kind": holder.kind, "source": source},
        )
        return holder.username

    return store.write(cur, work)


FORGOT_ANSWER = (
    "If an account matches, a link to set a new password is on its way to the account's e-mail address. "
    "It works once, for a limited time. No message within a few minutes? Ask the program coordinator."
)


def _in_background(job: Callable[[], None]) -> None:
    threading.Thread(target=job, daemon=True).start()


def request_reset(
    cur: Cursor, who: str, source: str, deliver: Callable[[Callable[[], None]], None] = _in_background
) -> str:
    """Someone who forgot their password asks for a reset link by user name or e-mail. The answer is the same
    whether or not an account matches, and it comes at once: finding the account, writing the link and sending
    the e-mail happen in the background, so the time taken tells nothing either. Requests are limited per source
    and per account (TRACKER_LINK_REQUESTS_PER_SOURCE and _PER_ACCOUNT, an hour); past the source's limit the
    answer says to wait, which tells nothing about any account."""
    if _recent_requests(cur, "source", source, store.now()) >= settings().link_requests_per_source:
        raise TrackerError("Too many requests for reset links from here; try again in an hour.")
    own = cur.cursor()  # the background job's own connection to the database
    deliver(lambda: _reset_link(own, who, source))
    return FORGOT_ANSWER


def _reset_link(cur: Cursor, who: str, source: str) -> None:
    """Record the request; when it names an enabled account with a password that may have another link this hour,
    and e-mail is set up, write a reset link and mail it."""
    cfg = settings()
    now = store.now()
    key = who.strip().lower()
    row = cur.execute(
        """SELECT a.username, a.person_id, a.password_hash IS NOT NULL AND NOT a.disabled FROM accounts a
           LEFT JOIN learners l ON l.id = a.person_id LEFT JOIN staff s ON s.id = a.person_id
           WHERE a.username = ? OR lower(coalesce(l.email, s.email)) = ? ORDER BY a.username = ? DESC LIMIT 1""",
        [key, key, key],
    ).fetchone()
    person_id = row[1] if row else "(unknown account)"

    def work(c: Cursor) -> str | None:
        allowed = (
            row is not None
            and row[2]
            and mail.configured()
            and _recent_requests(c, "account_key", row[1], now) < cfg.link_requests_per_account
        )
        store.audit(
            c,
            person_id,
            "password reset asked",
            person_id,
            {"asked": logged_text(who), "source": source, "link": allowed},
        )
        if not allowed or row is None:
            c.execute("INSERT INTO link_requests VALUES (?, ?, ?)", [person_id, source, now])
            return None
        return _new_link(c, row[1], row[0], RESET, row[1], source, now)

    token = store.write(cur, work)
    if token is not None and row is not None:
        name, email = _person(cur, row[1]) or ("", "")
        _deliver_quietly(IssuedLink(row[1], name, email, row[0], RESET, link_url(token), now + _link_lifetime(RESET)))


def _deliver_quietly(link: IssuedLink) -> None:
    sent = _mail_link(link)
    if not sent.mailed:  # nobody is waiting for an answer: the server's log says why
        log.warning("reset link for %s not sent: %s", link.person_id, sent.problem)


# ---- what coordinators do to accounts, and what everyone does to their own ---------------------------
def unlock(cur: Cursor, viewer: Viewer, username: str) -> None:
    """Forget the account's failed sign-ins: every source may try again at once."""
    require_role(cur, viewer, Role.coordinator)

    def work(c: Cursor) -> None:
        person_id = _require_account(c, username)
        c.execute("DELETE FROM sign_in_failures WHERE username = ?", [username])
        store.audit(c, viewer.person_id, "account unlock", person_id, {"username": username})

    store.write(cur, work)


def change_disabled(cur: Cursor, viewer: Viewer, username: str, disabled: bool) -> None:
    require_role(cur, viewer, Role.coordinator)
    set_disabled(cur, username, disabled, viewer.person_id)


def has_password(cur: Cursor, username: str) -> bool:
    row = cur.execute("SELECT password_hash IS NOT NULL FROM accounts WHERE username = ?", [username]).fetchone()
    return bool(row and row[0])


def send_links(cur: Cursor, viewer: Viewer, person_ids: Sequence[str]) -> list[IssuedLink]:
    require_role(cur, viewer, Role.coordinator)
    return issue_links(cur, person_ids, viewer.person_id)


def change_own_password(cur: Cursor, viewer: Viewer, token: str, current: str, new: str, source: str) -> int:
    """Change one's own password: the current one is checked (failures count as failed sign-ins), the new one
    follows the rules, and every other session of the account ends (this tab and its browser cookie stay).
    Returns how many other sign-ins ended."""
    username = viewer.username
    now = store.now()
    if _wait_before_next_attempt(cur, username, source, now) > 0:
        raise SignInError("Too many failed attempts from here; wait a few minutes and try again.")
    row = cur.execute("SELECT password_hash FROM accounts WHERE username = ?", [username]).fetchone()
    if row is None or row[0] is None:
        raise TrackerError("This account signs in through the institution's single sign-on; it has no password here.")
    try:
        ok: bool = _hasher.verify(row[0], current)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        _record_failure(cur, username, source, viewer.person_id, now, "wrong current password")
        raise SignInError("The current password is wrong; nothing was changed.")
    _check_password_rules(cur, new, username, viewer.person_id)
    hashed = _hasher.hash(new)
    mine = _token_hash(token)

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
        store.audit(
            c,
            viewer.person_id,
            "account password changed",
            viewer.person_id,
            {"username": username, "other_sign_ins_ended": signed_in},
        )
        return signed_in

    return store.write(cur, work)


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
    s = users.add_parser(
        "invite",
        help="one-time links to set a password: invitations for people without an account, reset links for the "
        "others; mailed when e-mail is set up, else written as CSV to hand out",
    )
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--cohort", help="every learner of this cohort who has no account yet")
    who.add_argument("--person", action="append", help="this learner or staff member (repeat for more)")
    s.add_argument("--out", type=Path, help="write the links to hand out to this CSV file (default: the screen)")
    s.set_defaults(func=_cli_invite)


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


def _cli_invite(args: argparse.Namespace) -> int:
    cur = _db_cursor()
    if args.cohort:
        people = cur.execute(
            "SELECT id FROM learners WHERE cohort = ? AND id NOT IN (SELECT person_id FROM accounts) ORDER BY id",
            [args.cohort],
        ).fetchall()
        if not people and not cur.execute("SELECT 1 FROM learners WHERE cohort = ?", [args.cohort]).fetchone():
            raise TrackerError(
                f"No learner in cohort {args.cohort!r}; check the name (python -m tracker export learners)."
            )
        person_ids = [p for (p,) in people]
    else:
        person_ids = args.person
    issued = issue_links(cur, person_ids, "cli")
    mailed = sum(i.mailed for i in issued)
    table = links_table(issued)
    print(f"{len(issued)} people: {mailed} links sent by e-mail, {len(table)} to hand out or see below.")
    if not table.empty:
        text = frame_csv(table)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
            print(f"Wrote them to {args.out}; each link works once. Keep the file private and delete it after use.")
        else:
            print(text, end="")
    return 0
