"""Accounts: hashed passwords, lockout, sign-out, disabled accounts, and an audit row for every write."""

import datetime as dt
import subprocess
import sys

import pytest

from tests.conftest import ROOT, viewer
from tracker.accounts import account_queries, admin, identity, sessions
from tracker.core.errors import SignInError, StaleIdentity, TrackerError
from tracker.records import actions, importing
from tracker.storage import database


def audit_actions(cur) -> list[str]:
    return [r[0] for r in cur.execute("SELECT action FROM audit_log ORDER BY seq").fetchall()]


def test_passwords_are_stored_as_argon2_hashes(cur):
    stored = cur.execute("SELECT password_hash FROM accounts WHERE username = 'l001'").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert admin.DEMO_PASSWORD not in stored


def test_a_hash_of_older_parameters_is_made_again_at_the_next_sign_in(cur):
    from argon2 import PasswordHasher

    older = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4).hash(admin.DEMO_PASSWORD)
    cur.execute("UPDATE accounts SET password_hash = ? WHERE username = 'l001'", [older])
    assert sessions.sign_in(cur, "l001", admin.DEMO_PASSWORD)
    stored = cur.execute("SELECT password_hash FROM accounts WHERE username = 'l001'").fetchone()[0]
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and stored != older
    assert sessions.sign_in(cur, "l001", admin.DEMO_PASSWORD)  # the same password, the new hash
    assert cur.execute("SELECT password_hash FROM accounts WHERE username = 'l001'").fetchone()[0] == stored


def _at(monkeypatch, when: dt.datetime) -> None:
    monkeypatch.setattr(database, "now", lambda: when)


def test_repeated_failures_slow_that_source_down_and_never_lock_the_owner_out(cur, monkeypatch):
    monkeypatch.setenv("TRACKER_MAX_FAILED_SIGN_INS", "3")
    start = dt.datetime(2026, 11, 27, 9, 0)
    _at(monkeypatch, start)
    for _ in range(3):  # three free attempts
        with pytest.raises(SignInError, match=r"^Wrong user name or password\.$"):
            sessions.sign_in(cur, "l001", "wrong-password", source="203.0.113.9")
    # now that source waits, even with the right password; the message does not tell whether it was right
    with pytest.raises(SignInError, match="Too many failed sign-ins from here: wait 15 seconds"):
        sessions.sign_in(cur, "l001", admin.DEMO_PASSWORD, source="203.0.113.9")
    # the owner, elsewhere, signs in at once
    assert sessions.viewer_for_token(cur, sessions.sign_in(cur, "l001", admin.DEMO_PASSWORD, "198.51.100.7"))
    # the wait doubles with each further failure, up to the longest delay
    _at(monkeypatch, start + dt.timedelta(seconds=16))
    with pytest.raises(SignInError, match=r"^Wrong user name or password\.$"):
        sessions.sign_in(cur, "l001", "wrong-password", source="203.0.113.9")
    with pytest.raises(SignInError, match="wait 30 seconds"):
        sessions.sign_in(cur, "l001", "wrong-password", source="203.0.113.9")
    failed = cur.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'sign-in failed' AND target = 'L001'"
    ).fetchone()[0]
    assert failed == 4
    admin.set_password(cur, "l001", "a-new-long-password", actor="K001")  # a coordinator lifts the wait
    token = sessions.sign_in(cur, "l001", "a-new-long-password", source="203.0.113.9")
    assert sessions.viewer_for_token(cur, token).person_id == "L001"


def test_unknown_accounts_get_the_same_answers_as_real_ones(cur, monkeypatch):
    monkeypatch.setenv("TRACKER_MAX_FAILED_SIGN_INS", "2")
    _at(monkeypatch, dt.datetime(2026, 11, 27, 9, 0))
    answers = {}
    for name in ("l001", "no-such-person"):
        said = []
        for _ in range(4):
            with pytest.raises(SignInError) as exc:
                sessions.sign_in(cur, name, "wrong-password", source="203.0.113.9")
            said.append(str(exc.value))
        answers[name] = said
    assert answers["l001"] == answers["no-such-person"]
    assert (
        cur.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'sign-in failed' AND actor = '(unknown account)'"
        ).fetchone()[0]
        == 2
    )


def test_sign_out_really_ends_the_session(cur):
    token = sessions.sign_in(cur, "a002", admin.DEMO_PASSWORD)
    assert sessions.viewer_for_token(cur, token).person_id == "A002"
    sessions.sign_out(cur, token)
    assert sessions.viewer_for_token(cur, token) is None
    assert audit_actions(cur)[-1] == "sign-out"


def test_a_sign_in_is_one_write_and_its_ticket_gives_one_cookie(cur, monkeypatch):
    """The ticket the browser exchanges for its cookie comes with the session: handing it over writes nothing (many
    sign-ins at once, and server mode's one write at a time). It works once, and only for a live session; a later
    ticket of the same session is a new one."""
    writes: list[object] = []
    real_write = database.write
    monkeypatch.setattr(database, "write", lambda c, work, *a: writes.append(work) or real_write(c, work, *a))
    token = sessions.sign_in(cur, "l005", admin.DEMO_PASSWORD)
    ticket = sessions.cookie_ticket(cur, token)
    assert len(writes) == 1
    assert ticket not in token and token not in ticket
    cookie, _ = sessions.exchange_ticket(cur, ticket)  # type: ignore[misc]
    assert sessions.viewer_for_token(cur, cookie).person_id == "L005"  # type: ignore[union-attr]
    assert sessions.exchange_ticket(cur, ticket) is None  # once only
    again = sessions.cookie_ticket(cur, token)
    assert again != ticket and len(writes) == 4  # the two exchanges, and a new ticket: written
    sessions.sign_out(cur, token)
    assert sessions.exchange_ticket(cur, again) is None


def test_a_new_session_deletes_sessions_and_failures_past_their_window(cur, monkeypatch):
    """Expired and ended sessions go with the next sign-in, but each account's latest (its last sign-in on the
    accounts page); failed sign-ins go once a day old, and those within the day still make their source wait."""
    monkeypatch.setenv("TRACKER_SESSION_HOURS", "12")
    monkeypatch.setenv("TRACKER_MAX_FAILED_SIGN_INS", "2")
    start = dt.datetime(2026, 11, 27, 9, 0)

    def sessions_of(*usernames: str) -> list[tuple]:
        return cur.execute(
            "SELECT username, created_at FROM sessions WHERE list_contains(?, username) ORDER BY username, created_at",
            [list(usernames)],
        ).fetchall()

    _at(monkeypatch, start)
    sessions.sign_in(cur, "l001", admin.DEMO_PASSWORD)  # expires; the account's latest
    sessions.sign_in(cur, "l002", admin.DEMO_PASSWORD)  # expires; not the latest
    hour = start + dt.timedelta(hours=1)
    _at(monkeypatch, hour)
    sessions.sign_in(cur, "l002", admin.DEMO_PASSWORD)  # expires; the latest
    monkeypatch.setenv("TRACKER_SESSION_HOURS", "48")
    live = sessions.sign_in(cur, "l006", admin.DEMO_PASSWORD)  # still live a day later
    monkeypatch.setenv("TRACKER_SESSION_HOURS", "12")
    _at(monkeypatch, hour + dt.timedelta(minutes=1))
    earlier = sessions.sign_in(cur, "l003", admin.DEMO_PASSWORD)  # ended; not the latest
    _at(monkeypatch, hour + dt.timedelta(minutes=2))
    latest = sessions.sign_in(cur, "l003", admin.DEMO_PASSWORD)  # ended; the latest
    sessions.sign_out(cur, earlier)
    sessions.sign_out(cur, latest)
    now = start + dt.timedelta(days=1)
    _at(monkeypatch, now - dt.timedelta(seconds=10))
    for _ in range(2):  # within the day: this source now waits 15 seconds
        with pytest.raises(SignInError):
            sessions.sign_in(cur, "l005", "wrong-password", source="203.0.113.9")
    _at(monkeypatch, start - dt.timedelta(minutes=1))  # more than a day before the next sign-in
    with pytest.raises(SignInError):
        sessions.sign_in(cur, "l007", "wrong-password", source="198.51.100.7")
    assert len(sessions_of("l001", "l002", "l003", "l006")) == 6
    assert cur.execute("SELECT count(*) FROM sign_in_failures").fetchone()[0] == 3

    _at(monkeypatch, now)
    sessions.sign_in(cur, "l004", admin.DEMO_PASSWORD)  # the next write that starts a session
    assert sessions_of("l001", "l002", "l003", "l006") == [
        ("l001", start), ("l002", hour), ("l003", hour + dt.timedelta(minutes=2)), ("l006", hour)
    ]  # fmt: skip
    assert sessions.viewer_for_token(cur, live).person_id == "L006"
    failures = cur.execute("SELECT username FROM sign_in_failures ORDER BY username").fetchall()
    assert failures == [("l005",)] * 2
    with pytest.raises(SignInError, match="wait 5 seconds"):
        sessions.sign_in(cur, "l005", admin.DEMO_PASSWORD, source="203.0.113.9")
    last = account_queries.account_overview(cur, viewer(cur, "K001")).set_index("person_id")["last_sign_in"]
    assert last["L001"] == start and last["L002"] == hour
    assert audit_actions(cur).count("sign-in") >= 6  # the audit log keeps every sign-in


def test_disabled_accounts_cannot_sign_in_and_lose_their_sessions(cur):
    token = sessions.sign_in(cur, "c001", admin.DEMO_PASSWORD)
    admin.set_disabled(cur, "c001", True, actor="k001")
    assert sessions.viewer_for_token(cur, token) is None
    with pytest.raises(SignInError, match="disabled"):
        sessions.sign_in(cur, "c001", admin.DEMO_PASSWORD)


def test_unknown_user_and_short_passwords(cur):
    with pytest.raises(SignInError, match="Wrong user name or password"):
        sessions.sign_in(cur, "nobody", "whatever-password")
    with pytest.raises(TrackerError, match="at least 12"):
        admin.add_user(cur, "new", "L003", "short", actor="k001")
    with pytest.raises(TrackerError, match="No learner or staff member"):
        admin.add_user(cur, "new", "ZZZ", "long-enough-pass", actor="k001")


def test_no_accounts_exist_outside_sample_mode(empty_db):
    assert empty_db.cursor().execute("SELECT count(*) FROM accounts").fetchone()[0] == 0


ISSUER = "https://login.example.edu"
NOW = dt.datetime(2026, 11, 27, 9, 0)


def claims(address: str, **changed: object) -> dict[str, object]:
    """An ID token's claims as st.user holds them, issued a few seconds before NOW by ISSUER."""
    issued = (NOW - dt.timedelta(seconds=5)).replace(tzinfo=dt.UTC).timestamp()
    return {"iss": ISSUER, "sub": "x1", "email": address, "email_verified": True, "iat": int(issued)} | changed


@pytest.mark.parametrize(
    ("changed", "refusal"),
    [
        ({"email_verified": False}, "has not verified your e-mail"),
        ({"email_verified": None}, "has not verified your e-mail"),
        ({"email_verified": "false"}, "has not verified your e-mail"),
        ({"iss": "https://evil.example"}, "another identity provider"),
        ({"iss": None}, "another identity provider"),
        ({"email": ""}, "did not say your e-mail"),
    ],
)
def test_an_identity_signs_in_only_with_a_verified_email_from_the_programs_provider(changed, refusal):
    assert identity.verified_email(claims("a@x.org"), ISSUER, NOW) == "a@x.org"
    assert identity.verified_email(claims("a@x.org", email_verified="true"), ISSUER + "/", NOW) == "a@x.org"
    with pytest.raises(SignInError, match=refusal) as refused:
        identity.verified_email(claims("a@x.org", **changed), ISSUER, NOW)
    assert not isinstance(refused.value, StaleIdentity)
    with pytest.raises(SignInError, match="TRACKER_SSO_ISSUER"):  # no issuer configured: nobody
        identity.verified_email(claims("a@x.org"), "", NOW)


def test_the_issuer_is_the_address_of_the_providers_discovery_document():
    assert identity.issuer_of(ISSUER + "/.well-known/openid-configuration") == ISSUER
    assert identity.issuer_of("https://login.example.edu/metadata.json") == ""


@pytest.mark.parametrize("age", [dt.timedelta(hours=13), dt.timedelta(minutes=10), -dt.timedelta(minutes=10)])
def test_an_identity_starts_a_session_only_right_after_the_provider_issued_it(age):
    """Streamlit keeps the identity for 30 days; once our session has expired (or a restore or a coordinator ended
    it) the cookie must not start another: the person signs in with the provider again."""
    old = claims("a@x.org", iat=(NOW - age).replace(tzinfo=dt.UTC).timestamp())
    with pytest.raises(StaleIdentity, match="Sign in with your institution again"):
        identity.verified_email(old, ISSUER, NOW)
    with pytest.raises(StaleIdentity):
        identity.verified_email(claims("a@x.org", iat=None), ISSUER, NOW)


def test_an_old_identity_starts_no_session_after_ours_has_expired(cur, monkeypatch):
    email = cur.execute("SELECT email FROM staff WHERE id = 'A003'").fetchone()[0]
    _at(monkeypatch, NOW)
    token = sessions.sign_in_by_identity(cur, claims(email), ISSUER)
    assert sessions.viewer_for_token(cur, token).person_id == "A003"
    later = NOW + dt.timedelta(hours=13)  # past TRACKER_SESSION_HOURS: our session has expired, the cookie has not
    _at(monkeypatch, later)
    assert sessions.viewer_for_token(cur, token) is None
    count = cur.execute("SELECT count(*) FROM sessions").fetchone()[0]
    with pytest.raises(StaleIdentity):
        sessions.sign_in_by_identity(cur, claims(email), ISSUER)
    assert cur.execute("SELECT count(*) FROM sessions").fetchone()[0] == count


def test_an_email_two_people_share_signs_nobody_in_and_is_audited(cur, monkeypatch):
    shared = cur.execute("SELECT email FROM staff WHERE id = 'A003'").fetchone()[0]
    cur.execute("UPDATE staff SET email = ? WHERE id = 'A004'", [shared.upper()])
    _at(monkeypatch, NOW)
    count = cur.execute("SELECT count(*) FROM sessions").fetchone()[0]
    with pytest.raises(SignInError, match=r"More than one person .* Ask the program coordinator"):
        sessions.sign_in_by_email(cur, shared)
    assert cur.execute("SELECT count(*) FROM sessions").fetchone()[0] == count
    action, detail = cur.execute("SELECT action, detail FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    assert action == "sign-in failed" and "A003" in detail and "A004" in detail


def test_an_unverified_email_or_another_issuer_is_refused_and_audited(cur, monkeypatch):
    email = cur.execute("SELECT email FROM staff WHERE id = 'A003'").fetchone()[0]
    _at(monkeypatch, NOW)
    for changed in ({"email_verified": False}, {"iss": "https://evil.example"}):
        with pytest.raises(SignInError):
            sessions.sign_in_by_identity(cur, claims(email, **changed), ISSUER)
    refusals = cur.execute("SELECT detail FROM audit_log WHERE action = 'sign-in failed' ORDER BY seq").fetchall()
    assert len(refusals) == 2 and "evil.example" in refusals[1][0]
    assert cur.execute("SELECT count(*) FROM audit_log WHERE action = 'sign-in'").fetchone()[0] == 0


def test_sso_sign_in_maps_the_email_to_an_account(cur):
    email = cur.execute("SELECT email FROM staff WHERE id = 'A003'").fetchone()[0]
    token = sessions.sign_in_by_email(cur, email.upper())
    assert sessions.viewer_for_token(cur, token).person_id == "A003"
    with pytest.raises(SignInError, match="No enabled account"):
        sessions.sign_in_by_email(cur, "stranger@example.org")


def test_every_kind_of_write_leaves_its_audit_row(cur, framework, tmp_path):
    learner, advisor = viewer(cur, "L001"), viewer(cur, "A001")
    advisee = cur.execute("SELECT id FROM learners WHERE advisor_id = 'A001' ORDER BY id LIMIT 1").fetchone()[0]
    actions.record_rating(cur, framework, learner, "L001", "teach-methods", 3, "T1", "self")
    item = actions.record_evidence(cur, framework, learner, "L001", "reflection", "Essay", ["teach-methods"])
    first = actions.record_rating(cur, framework, advisor, advisee, "teach-methods", 2, "T1", "adv")
    actions.record_rating(cur, framework, advisor, advisee, "teach-methods", 2.5, "T1", "fix", corrects=first.id)
    importing.import_text(
        cur, "staff", "id,name,email,roles\nA099,New Advisor,a099@x.org,advisor\n", "staff.csv", framework, "k001"
    )
    admin.add_user(cur, "a099", "A099", "long-enough-pass", actor="k001")
    admin.set_password(cur, "a099", "another-long-pass", actor="k001")
    admin.set_disabled(cur, "a099", True, actor="k001")
    with pytest.raises(SignInError):
        sessions.sign_in(cur, "l002", "wrong-password")
    rows = cur.execute("SELECT actor, action, target FROM audit_log ORDER BY seq DESC LIMIT 9").fetchall()[::-1]
    assert rows == [
        ("L001", "self-assessment", "L001"),
        ("L001", "evidence", "L001"),
        ("A001", "rating", advisee),
        ("A001", "correction", advisee),
        ("k001", "import", "staff"),
        ("k001", "account add", "A099"),
        ("k001", "account password", "A099"),
        ("k001", "account disable", "A099"),
        ("L002", "sign-in failed", "L002"),
    ]
    assert (
        item.id in cur.execute("SELECT detail FROM audit_log WHERE action = 'evidence' ORDER BY seq DESC").fetchone()[0]
    )


def test_audit_rows_cannot_be_changed_through_the_app_layer():
    # append-only: no module of the engine updates or deletes audit rows, ratings or evidence
    modules = sorted((ROOT / "tracker").rglob("*.py"))
    assert len(modules) > 40
    source = "".join(m.read_text() for m in modules)
    for table in ("audit_log", "ratings", "evidence"):
        assert f"UPDATE {table}" not in source and f"DELETE FROM {table}" not in source


def test_users_command_creates_an_sso_only_account(db_path):
    run = subprocess.run(
        [sys.executable, "-m", "tracker", "users", "add", "Lee", "L005", "--sso-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "Account lee created." in run.stdout
    again = subprocess.run(
        [sys.executable, "-m", "tracker", "users", "add", "lee", "L005", "--sso-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "exists already" in again.stderr


def test_one_address_trying_many_accounts_waits_whichever_account_it_tries_next(cur, monkeypatch):
    """Password spraying: one password tried on many accounts from one address. Each account sees one failure only,
    but the address as a whole is held up, and only that address."""
    monkeypatch.setenv("TRACKER_MAX_FAILED_SIGN_INS_PER_SOURCE", "4")
    start = dt.datetime(2026, 11, 27, 9, 0)
    _at(monkeypatch, start)
    for n in range(1, 5):
        with pytest.raises(SignInError, match=r"^Wrong user name or password\.$"):
            sessions.sign_in(cur, f"l{n:03d}", "Spring2026!spring", source="203.0.113.9")
    _at(monkeypatch, start + dt.timedelta(minutes=10))
    for name, password in (("l005", "Spring2026!spring"), ("l006", admin.DEMO_PASSWORD)):  # right or wrong
        with pytest.raises(SignInError, match="from this address, to any account: wait 50 minutes"):
            sessions.sign_in(cur, name, password, source="203.0.113.9")
    assert sessions.sign_in(cur, "l006", admin.DEMO_PASSWORD, source="198.51.100.7")  # elsewhere: at once
    _at(monkeypatch, start + dt.timedelta(hours=1, seconds=1))  # the first failure no longer counts
    assert sessions.sign_in(cur, "l006", admin.DEMO_PASSWORD, source="203.0.113.9")
