"""One-time links (invitations and password resets): issued, mailed or handed out, spent once, rate-limited."""

import datetime as dt
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from data_models import Role
from tracker.access.policy import Viewer, logged_text, require_role
from tracker.accounts.passwords import HASHER, check_password_rules, log, person_contact, token_hash
from tracker.core.config import settings
from tracker.core.errors import TrackerError
from tracker.mail import smtp
from tracker.storage import database
from tracker.storage.database import Cursor

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


def revoke_links(c: Cursor, person_id: str, now: dt.datetime) -> None:
    c.execute(
        "UPDATE account_links SET revoked_at = ? WHERE person_id = ? AND used_at IS NULL AND revoked_at IS NULL",
        [now, person_id],
    )


REQUEST_WINDOW = dt.timedelta(hours=1)  # how long a request for a link counts against its account and source
# A link past its expiry is kept this long, so whoever opens it late is told it expired or was used (not that it is
# unknown); then it is deleted. The audit log keeps every link made and used.
LINK_KEPT_AFTER_EXPIRY = dt.timedelta(days=7)


def _recent_requests(c: Cursor, column: str, value: str, now: dt.datetime) -> int:
    sql = {
        "account_key": "SELECT count(*) FROM link_requests WHERE account_key = ? AND requested_at > ?",
        "source": "SELECT count(*) FROM link_requests WHERE source = ? AND requested_at > ?",
    }[column]
    return int(c.execute(sql, [value, now - REQUEST_WINDOW]).fetchone()[0])  # type: ignore[index]


def _record_request(c: Cursor, account_key: str, source: str, now: dt.datetime) -> None:
    """Count a request for a link; requests no limit counts any more are deleted."""
    c.execute(
        "INSERT INTO link_requests (account_key, source, requested_at) VALUES (?, ?, ?)", [account_key, source, now]
    )
    c.execute("DELETE FROM link_requests WHERE requested_at <= ?", [now - REQUEST_WINDOW])


def _purge_links(c: Cursor, now: dt.datetime) -> None:
    c.execute("DELETE FROM account_links WHERE expires_at <= ?", [now - LINK_KEPT_AFTER_EXPIRY])


def _new_link(c: Cursor, person_id: str, username: str, kind: str, actor: str, source: str, now: dt.datetime) -> str:
    """Write one link (older live links of the person end), its request and its audit row; return the token."""
    token = secrets.token_urlsafe(32)
    expires = now + _link_lifetime(kind)
    revoke_links(c, person_id, now)
    _purge_links(c, now)
    c.execute(
        "INSERT INTO account_links (token_hash, person_id, username, kind, created_by, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [token_hash(token), person_id, username, kind, actor, now, expires],
    )
    _record_request(c, person_id, source, now)
    action = "account invite" if kind == INVITE else "account reset link"
    database.audit(c, actor, action, person_id, {"username": username, "expires_at": expires, "source": source})
    return token


def issue_links(cur: Cursor, person_ids: Sequence[str], actor: str, send: bool | None = None) -> list[IssuedLink]:
    """An invitation for each person without an account, a reset link for each with one. Written in one
    transaction; then, when e-mail is set up (or `send`), mailed one by one. A person who already had
    TRACKER_LINK_REQUESTS_PER_ACCOUNT links in the last hour gets none (the result says so)."""
    now = database.now()
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

    issued = database.write(cur, work)
    if not (smtp.configured() if send is None else send):
        return [i if i.problem else _unmailed(i, "e-mail is not set up") for i in issued]
    return [_mail_link(i) if i.url else i for i in issued]


def _unmailed(link: IssuedLink, problem: str) -> IssuedLink:
    return IssuedLink(**{**link.__dict__, "problem": problem})


def _mail_link(link: IssuedLink) -> IssuedLink:
    try:
        smtp.send(link.email, *link_message(link))
    except smtp.MailError as exc:
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
        [token_hash(token or "")],
    ).fetchone()
    if row is None:
        raise TrackerError("This link is not valid. Copy the whole link from the message, or ask for a new one.")
    person_id, username, kind, expires, used, revoked, name = row
    if used is not None:
        raise TrackerError("This link has been used already; it works only once. Sign in, or ask for a new one.")
    if revoked is not None:
        raise TrackerError("This link was replaced by a newer one; use the newest link, or ask for a new one.")
    if expires <= database.now():
        raise TrackerError(f"This link expired on {expires:%Y-%m-%d %H:%M} UTC; ask for a new one.")
    return LinkHolder(person_id, name or person_id, username, kind)


def use_link(cur: Cursor, token: str, password: str, source: str = "local") -> str:
    """Set the password of the link's account (creating the account for an invitation) and spend the link; every
    session of the account ends and its failed sign-ins are forgotten. Returns the user name."""
    holder = link_holder(cur, token)
    check_password_rules(cur, password, holder.username, holder.person_id)
    hashed = HASHER.hash(password)
    now = database.now()

    def work(c: Cursor) -> str:
        spent = c.execute(
            "UPDATE account_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL "
            "AND expires_at > ? RETURNING username",
            [now, token_hash(token), now],
        ).fetchall()
        if not spent:
            raise TrackerError("This link has just been used or has expired; ask for a new one.")
        _purge_links(c, now)
        c.execute(
            "INSERT INTO accounts (username, person_id, password_hash, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
            [holder.username, holder.person_id, hashed, now],
        )
        c.execute("DELETE FROM sign_in_failures WHERE username = ?", [holder.username])
        c.execute("UPDATE sessions SET ended_at = ? WHERE username = ? AND ended_at IS NULL", [now, holder.username])
        database.audit(
            c,
            holder.person_id,
            "account password by link",
            holder.person_id,
            {"username": holder.username, "kind": holder.kind, "source": source},
        )
        return holder.username

    return database.write(cur, work)


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
    if _recent_requests(cur, "source", source, database.now()) >= settings().link_requests_per_source:
        raise TrackerError("Too many requests for reset links from here; try again in an hour.")
    own = database.thread_cursor(cur)  # the background job's own, writing through the same path as `cur`
    deliver(lambda: _reset_link(own, who, source))
    return FORGOT_ANSWER


def _reset_link(cur: Cursor, who: str, source: str) -> None:
    """Record the request; when it names an enabled account with a password that may have another link this hour,
    and e-mail is set up, write a reset link and mail it."""
    cfg = settings()
    now = database.now()
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
            and smtp.configured()
            and _recent_requests(c, "account_key", row[1], now) < cfg.link_requests_per_account
        )
        database.audit(
            c,
            person_id,
            "password reset asked",
            person_id,
            {"asked": logged_text(who), "source": source, "link": allowed},
        )
        if not allowed or row is None:
            _record_request(c, person_id, source, now)
            return None
        return _new_link(c, row[1], row[0], RESET, row[1], source, now)

    token = database.write(cur, work)
    if token is not None and row is not None:
        name, email = person_contact(cur, row[1]) or ("", "")
        _deliver_quietly(IssuedLink(row[1], name, email, row[0], RESET, link_url(token), now + _link_lifetime(RESET)))


def _deliver_quietly(link: IssuedLink) -> None:
    sent = _mail_link(link)
    if not sent.mailed:  # nobody is waiting for an answer: the server's log says why
        log.warning("reset link for %s not sent: %s", link.person_id, sent.problem)


def send_links(cur: Cursor, viewer: Viewer, person_ids: Sequence[str]) -> list[IssuedLink]:
    require_role(cur, viewer, Role.coordinator)
    return issue_links(cur, person_ids, viewer.person_id)
