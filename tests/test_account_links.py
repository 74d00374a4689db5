"""Invitations and reset links (hashed, single use, expiring), password rules, rate limits, the accounts overview,
self-service password changes, and delivery to a real SMTP server on 127.0.0.1."""

import datetime as dt
import email
import email.policy
import hashlib
import socket
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import ROOT, viewer
from tracker.accounts import account_links, account_queries, admin, sessions
from tracker.accounts.passwords import PasswordRejected, check_new_password, common_passwords
from tracker.core.errors import PermissionDenied, SignInError, TrackerError
from tracker.records import importing
from tracker.storage import database

NEW_COHORT = (
    "id,name,email,cohort,profession,start_term,status,advisor_id\n"
    "L901,Noor Haddad,noor.haddad@learners.example.org,2027-09,Nurse,T1,active,A001\n"
    "L902,Tomas Varga,tomas.varga@learners.example.org,2027-09,Physician,T1,active,A002\n"
    "L903,Ines Duarte,ines.duarte@learners.example.org,2027-09,Pharmacist,T1,active,A001\n"
)
GOOD = "tulip harbour violin 42"


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


@pytest.fixture
def new_cohort(cur, framework):
    importing.import_text(cur, "learners", NEW_COHORT, "learners.csv", framework, "K001")
    return ["L901", "L902", "L903"]


class Inbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("TRACKER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TRACKER_SMTP_PORT", str(port))
    monkeypatch.setenv("TRACKER_SMTP_TLS", "none")
    monkeypatch.setenv("TRACKER_MAIL_FROM", "milestone@program.example.org")
    monkeypatch.setenv("TRACKER_PUBLIC_URL", "https://milestone.example.org/")
    inbox.port = port
    yield inbox
    controller.stop()


def _at(monkeypatch, when: dt.datetime) -> None:
    monkeypatch.setattr(database, "now", lambda: when)


# ---- password rules -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-pass1", "at least 12 characters"),
        ("Password-1234", "most common"),
        ("ilove football!", "most common"),
        ("aaaaaaaaaaaaaaaa", "most common"),
        ("abcdefghijklmn", "run of keys"),
        ("9876543210987", "run of keys"),
        ("Noor1990-rocks!", "user name, name or e-mail"),
        ("xx-haddad-tulips", "user name, name or e-mail"),
        ("my L901 account!", "user name, name or e-mail"),
    ],
)
def test_weak_new_passwords_are_refused_with_the_reason(password, reason):
    with pytest.raises(PasswordRejected, match=reason):
        check_new_password(password, "l901", "Noor Haddad", "noor.haddad@learners.example.org")


def test_long_passwords_of_any_make_up_pass_without_composition_rules():
    for password in (GOOD, "correcthorsebatterystaple", "ÜBER-lange Passphrase", "x" * 5 + "yzwvu" + "12"):
        check_new_password(password, "l901", "Noor Haddad", "noor.haddad@learners.example.org")
    assert len(common_passwords()) > 3000 and all(len(p) >= 10 for p in common_passwords())


# ---- links --------------------------------------------------------------------------------------
def test_a_link_is_stored_hashed_and_works_once(cur, new_cohort):
    [link] = account_links.issue_links(cur, ["L901"], "K001", send=False)
    token = token_of(link.url)
    stored = cur.execute("SELECT token_hash, kind FROM account_links WHERE person_id = 'L901'").fetchall()
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(), "invitation")]
    assert token not in str(cur.execute("SELECT * FROM account_links").fetchall())
    assert token not in str(cur.execute("SELECT detail FROM audit_log").fetchall())
    assert account_links.link_holder(cur, token).username == "l901"
    with pytest.raises(PasswordRejected):
        account_links.use_link(cur, token, "short")
    assert account_links.use_link(cur, token, GOOD) == "l901"  # a refused password did not spend it
    assert sessions.viewer_for_token(cur, sessions.sign_in(cur, "l901", GOOD)).person_id == "L901"
    with pytest.raises(TrackerError, match="used already"):
        account_links.use_link(cur, token, "another fine passphrase")
    with pytest.raises(TrackerError, match="not valid"):
        account_links.link_holder(cur, token[:-2])
    rows = cur.execute("SELECT actor, action, target FROM audit_log ORDER BY seq DESC LIMIT 3").fetchall()[::-1]
    assert rows == [
        ("K001", "account invite", "L901"),
        ("L901", "account password by link", "L901"),
        ("L901", "sign-in", "L901"),
    ]


def test_a_link_expires_and_a_newer_one_replaces_it(cur, new_cohort, monkeypatch):
    monkeypatch.setenv("TRACKER_INVITATION_HOURS", "48")
    start = dt.datetime(2026, 11, 27, 9, 0)
    _at(monkeypatch, start)
    first, second = account_links.issue_links(cur, ["L901", "L902"], "K001", send=False)
    assert first.expires_at == start + dt.timedelta(hours=48)
    [again] = account_links.issue_links(cur, ["L902"], "K001", send=False)
    with pytest.raises(TrackerError, match="replaced by a newer one"):
        account_links.use_link(cur, token_of(second.url), GOOD)
    _at(monkeypatch, start + dt.timedelta(hours=48, seconds=1))
    with pytest.raises(TrackerError, match="expired on 2026-11-29 09:00 UTC"):
        account_links.use_link(cur, token_of(first.url), GOOD)
    with pytest.raises(TrackerError, match="expired"):
        account_links.use_link(cur, token_of(again.url), GOOD)
    assert cur.execute("SELECT count(*) FROM accounts WHERE person_id IN ('L901', 'L902')").fetchone()[0] == 0


def test_a_reset_link_sets_the_password_and_ends_every_session(cur, monkeypatch):
    token = sessions.sign_in(cur, "l003", admin.DEMO_PASSWORD)
    [link] = account_links.issue_links(cur, ["L003"], "K001", send=False)
    assert (link.kind, link.username) == ("reset", "l003")
    assert link.expires_at - database.now() <= dt.timedelta(minutes=60)
    account_links.use_link(cur, token_of(link.url), GOOD)
    assert sessions.viewer_for_token(cur, token) is None
    with pytest.raises(SignInError):
        sessions.sign_in(cur, "l003", admin.DEMO_PASSWORD)
    assert sessions.sign_in(cur, "l003", GOOD)


def test_links_per_account_are_limited_per_hour(cur, new_cohort, monkeypatch):
    monkeypatch.setenv("TRACKER_LINK_REQUESTS_PER_ACCOUNT", "2")
    start = dt.datetime(2026, 11, 27, 9, 0)
    _at(monkeypatch, start)
    for _ in range(2):
        assert account_links.issue_links(cur, ["L901"], "K001", send=False)[0].url
    [refused] = account_links.issue_links(cur, ["L901"], "K001", send=False)
    assert refused.url == "" and "2 links in the last hour" in refused.problem
    _at(monkeypatch, start + dt.timedelta(minutes=61))
    assert account_links.issue_links(cur, ["L901"], "K001", send=False)[0].url


def test_links_and_requests_past_their_window_go_with_the_next_link(cur, new_cohort, monkeypatch):
    """A link is deleted a week past its expiry (until then a late click is told it expired or was used), by the
    next link made or used; a request for a link once it no longer counts (an hour); the limits still hold."""
    monkeypatch.setenv("TRACKER_INVITATION_HOURS", "48")
    monkeypatch.setenv("TRACKER_LINK_REQUESTS_PER_ACCOUNT", "2")
    start = dt.datetime(2026, 11, 27, 9, 0)

    def links() -> list[tuple]:
        return cur.execute(
            "SELECT person_id, used_at IS NOT NULL FROM account_links WHERE list_contains(?, person_id) "
            "ORDER BY created_at, person_id",
            [new_cohort],
        ).fetchall()

    _at(monkeypatch, start)
    used, expired = account_links.issue_links(cur, ["L901", "L902"], "K001", send=False)
    _at(monkeypatch, start + dt.timedelta(hours=1))
    account_links.use_link(cur, token_of(used.url), GOOD)
    later = start + dt.timedelta(days=2, hours=1)  # both expired, not yet a week ago
    _at(monkeypatch, later)
    [recent] = account_links.issue_links(cur, ["L903"], "K001", send=False)
    assert links() == [("L901", True), ("L902", False), ("L903", False)]
    with pytest.raises(TrackerError, match="used already"):
        account_links.link_holder(cur, token_of(used.url))

    week_past = start + dt.timedelta(days=9)  # a week past the first links' expiry
    _at(monkeypatch, week_past - dt.timedelta(minutes=1))
    [fresh] = account_links.issue_links(cur, ["L902"], "K001", send=False)  # a minute short of it: all kept
    assert len(links()) == 4
    _at(monkeypatch, week_past + dt.timedelta(minutes=1))
    account_links.use_link(cur, token_of(fresh.url), GOOD)  # the next write of a link
    assert links() == [("L903", False), ("L902", True)]
    with pytest.raises(TrackerError, match="not valid"):
        account_links.link_holder(cur, token_of(expired.url))
    with pytest.raises(TrackerError, match="expired on 2026-12-01 10:00 UTC"):  # kept: expired less than a week
        account_links.link_holder(cur, token_of(recent.url))
    requests = cur.execute(
        "SELECT account_key, requested_at FROM link_requests WHERE list_contains(?, account_key) ORDER BY requested_at",
        [new_cohort],
    ).fetchall()
    assert requests == [("L902", week_past - dt.timedelta(minutes=1))]  # the older ones went as it was made
    assert account_links.issue_links(cur, ["L902"], "K001", send=False)[0].url
    [refused] = account_links.issue_links(cur, ["L902"], "K001", send=False)
    assert refused.url == "" and "2 links in the last hour" in refused.problem
    made = cur.execute(
        "SELECT count(*) FROM audit_log WHERE action IN ('account invite', 'account reset link') "
        "AND list_contains(?, target)",
        [new_cohort],
    ).fetchone()[0]
    assert made == 5  # the audit log keeps every link


# ---- the forgotten password ---------------------------------------------------------------------
def test_forgot_password_answers_alike_and_mails_only_real_accounts(cur, smtp, monkeypatch):
    monkeypatch.setenv("TRACKER_LINK_REQUESTS_PER_SOURCE", "4")
    now = lambda job: job()  # noqa: E731 - deliver at once, so the test can read the inbox
    answers = {
        who: account_links.request_reset(cur, who, "203.0.113.9", deliver=now)
        for who in ("A003", "nobody-here", "a003@staff.milestone.example.org", "stranger@example.org")
    }
    assert len(set(answers.values())) == 1 and account_links.FORGOT_ANSWER in answers.values()
    assert [m["To"] for m in smtp.messages] == ["a003@staff.milestone.example.org"] * 2
    body = smtp.messages[-1].get_content()
    url = next(w for w in body.split() if w.startswith("https://milestone.example.org/set-password?token="))
    assert account_links.link_holder(cur, token_of(url)).username == "a003"
    with pytest.raises(TrackerError, match="Too many requests for reset links from here"):
        account_links.request_reset(cur, "a003", "203.0.113.9", deliver=now)
    account_links.request_reset(cur, "a003", "198.51.100.7", deliver=now)  # another source may still ask
    assert len(smtp.messages) == 3
    account_links.request_reset(cur, "a003", "198.51.100.8", deliver=now)  # but the account has had three this hour
    assert len(smtp.messages) == 3
    asked = cur.execute("SELECT count(*) FROM audit_log WHERE action = 'password reset asked'").fetchone()[0]
    assert asked == 6


def test_forgot_password_sends_nothing_for_disabled_or_single_sign_on_accounts(cur, smtp):
    admin.set_disabled(cur, "c002", True, actor="K001")
    admin.add_user(cur, "sso-l007", "L007", None, actor="K001")
    cur.execute("DELETE FROM accounts WHERE username = 'l007'")
    for who in ("c002", "sso-l007"):
        account_links.request_reset(cur, who, "local", deliver=lambda job: job())
    assert smtp.messages == []


# ---- e-mail through a real SMTP server ----------------------------------------------------------
def test_invitations_reach_a_real_smtp_server(cur, new_cohort, smtp):
    issued = account_links.issue_links(cur, new_cohort, "K001")
    assert all(i.mailed for i in issued) and account_links.links_table(issued).empty
    assert sorted(m["To"] for m in smtp.messages) == [
        "ines.duarte@learners.example.org",
        "noor.haddad@learners.example.org",
        "tomas.varga@learners.example.org",
    ]
    message = next(m for m in smtp.messages if m["To"].startswith("noor"))
    assert message["From"] == "milestone@program.example.org" and message["Subject"] == "Your Milestone account"
    body = message.get_content()
    assert "Hello Noor Haddad," in body and "Your user name: l901" in body
    url = next(w for w in body.split() if w.startswith("https://milestone.example.org/set-password?token="))
    assert account_links.use_link(cur, token_of(url), GOOD) == "l901"


def test_an_unreachable_mail_server_leaves_the_links_to_hand_out(cur, new_cohort, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("TRACKER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TRACKER_SMTP_PORT", str(closed))
    monkeypatch.setenv("TRACKER_MAIL_FROM", "milestone@program.example.org")
    issued = account_links.issue_links(cur, ["L901"], "K001")
    table = account_links.links_table(issued)
    assert table["person_id"].tolist() == ["L901"] and "Could not send e-mail through 127.0.0.1" in table["note"][0]
    assert account_links.link_holder(cur, token_of(table["link"][0])).person_id == "L901"


# ---- coordinators and the accounts overview -----------------------------------------------------
def test_the_overview_shows_every_state_and_only_to_coordinators(cur, new_cohort, monkeypatch):
    monkeypatch.setenv("TRACKER_MAX_FAILED_SIGN_INS", "2")
    coordinator = viewer(cur, "K001")
    account_links.issue_links(cur, ["L901"], "K001", send=False)
    admin.change_disabled(cur, coordinator, "c002", True)
    cur.execute("UPDATE accounts SET password_hash = NULL WHERE username = 'a004'")
    for _ in range(2):
        with pytest.raises(SignInError):
            sessions.sign_in(cur, "l005", "wrong-password", "203.0.113.9")
    shown = account_queries.account_overview(cur, coordinator).set_index("person_id")["state"]
    people = cur.execute("SELECT count(*) FROM (SELECT id FROM learners UNION ALL SELECT id FROM staff)").fetchone()
    assert len(shown) == people[0]
    assert shown[["L901", "L902", "C002", "A004", "L005", "L001"]].tolist() == [
        "invited", "none", "disabled", "single sign-on only", "delayed", "active"
    ]  # fmt: skip
    cohort = account_queries.account_overview(cur, coordinator, cohort="2027-09", state="none")
    assert cohort["person_id"].tolist() == ["L902", "L903"]
    advisors = account_queries.account_overview(cur, coordinator, role="advisor")
    want = cur.execute("SELECT id FROM staff WHERE list_contains(roles, 'advisor') ORDER BY id").fetchall()
    assert advisors["person_id"].tolist() == [r[0] for r in want]
    admin.unlock(cur, coordinator, "l005")
    assert account_queries.account_overview(cur, coordinator, state="delayed").empty
    for who in ("L001", "A001", "C001"):
        with pytest.raises(PermissionDenied):
            account_queries.account_overview(cur, viewer(cur, who))
        with pytest.raises(PermissionDenied):
            account_links.send_links(cur, viewer(cur, who), ["L002"])
        with pytest.raises(PermissionDenied):
            admin.unlock(cur, viewer(cur, who), "l002")
    actions = cur.execute("SELECT action FROM audit_log WHERE actor = 'K001' ORDER BY seq").fetchall()
    assert [a for (a,) in actions][-3:] == ["account invite", "account disable", "account unlock"]


# ---- self-service -------------------------------------------------------------------------------
def test_changing_ones_password_ends_the_other_sessions_only(cur):
    older = sessions.sign_in(cur, "l004", admin.DEMO_PASSWORD)
    mine = sessions.sign_in(cur, "l004", admin.DEMO_PASSWORD)
    ticket = sessions.cookie_ticket(cur, mine)
    cookie, _ = sessions.exchange_ticket(cur, ticket)
    learner = viewer(cur, "L004").with_username("l004")
    with pytest.raises(SignInError, match="current password is wrong"):
        admin.change_own_password(cur, learner, mine, "not-my-password", GOOD, "local")
    with pytest.raises(PasswordRejected):
        admin.change_own_password(cur, learner, mine, admin.DEMO_PASSWORD, "password123456", "local")
    admin.change_own_password(cur, learner, mine, admin.DEMO_PASSWORD, GOOD, "local")
    assert sessions.viewer_for_token(cur, older) is None
    assert sessions.viewer_for_token(cur, mine).person_id == "L004"
    assert sessions.viewer_for_token(cur, cookie).person_id == "L004"
    assert sessions.sign_in(cur, "l004", GOOD)


def test_users_invite_writes_the_links_of_a_cohort_to_hand_out(db_path, db, new_cohort, tmp_path):
    db.close()  # the command opens the database file itself
    out = tmp_path / "links.csv"
    run = subprocess.run(
        [sys.executable, "-m", "tracker", "users", "invite", "--cohort", "2027-09", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "3 people: 0 links sent by e-mail, 3 to hand out" in run.stdout
    lines = out.read_text().splitlines()
    assert lines[0] == "person_id,name,email,username,kind,link,expires_at,note" and len(lines) == 4
    assert all("/set-password?token=" in line and "e-mail is not set up" in line for line in lines[1:])


def test_the_sample_program_shows_accounts_in_every_state(cur):
    shown = account_queries.account_overview(cur, viewer(cur, "K001")).set_index("person_id")["state"]
    assert shown[["L057", "L060", "A008", "C003", "L001", "K001"]].tolist() == [
        "invited", "none", "disabled", "single sign-on only", "active", "active"
    ]  # fmt: skip
    people = cur.execute("SELECT count(*) FROM (SELECT id FROM learners UNION ALL SELECT id FROM staff)").fetchone()
    assert (shown == "active").sum() == people[0] - 4
