"""The accounts pages through the real app (AppTest): a coordinator's accounts page, one's own account, the
set-password page of a one-time link, and the forgotten password on the sign-in page."""

import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, app_as, goto, read, viewer
from tests.test_account_links import GOOD, NEW_COHORT, smtp, token_of  # noqa: F401 - smtp is a fixture
from tracker.accounts import account_links, admin, sessions
from tracker.core.errors import SignInError
from tracker.records import importing


def _state_of(cur, person_id: str) -> str:
    from tracker.accounts import account_queries

    shown = account_queries.account_overview(cur, viewer(cur, "K001"))
    return shown.set_index("person_id").loc[person_id, "state"]


def _anonymous(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_coordinator_invites_a_new_cohort_and_gets_the_links_to_hand_out(db_path, cur, framework):
    importing.import_text(cur, "learners", NEW_COHORT, "learners.csv", framework, "K001")
    at = goto(app_as("k001"), "accounts")
    people = cur.execute("SELECT count(*) FROM (SELECT id FROM learners UNION ALL SELECT id FROM staff)").fetchone()
    assert len(at.dataframe[0].value) == people[0]
    at.selectbox(key="accounts.cohort").select("2027-09").run()
    shown = at.dataframe[0].value
    assert shown["person_id"].tolist() == ["L901", "L902", "L903"] and set(shown["state"]) == {"none"}
    at.button(key="accounts.invite_all").click().run()
    assert not at.exception
    assert [read(s.value) for s in at.success] == ["3 link(s) made: 0 sent by e-mail, 3 to hand out (below)."]
    links = next(d.value for d in at.dataframe if "link" in d.value.columns)
    assert links["person_id"].tolist() == ["L901", "L902", "L903"]
    assert account_links.link_holder(cur, token_of(links["link"][1])).username == "l902"
    assert any(b.label == "Download the links (CSV)" for b in at.get("download_button"))
    assert set(at.dataframe[-1].value["state"]) == {"invited"}
    invited = cur.execute("SELECT target FROM audit_log WHERE action = 'account invite' AND actor = 'K001'")
    assert sorted(r[0] for r in invited.fetchall()) == ["L901", "L902", "L903"]


def test_coordinator_disables_enables_and_unlocks_a_selection(db_path, cur, monkeypatch):
    monkeypatch.setenv("TRACKER_MAX_FAILED_SIGN_INS", "2")
    for _ in range(3):
        with pytest.raises(SignInError):
            sessions.sign_in(cur, "l011", "wrong-password", "203.0.113.9")
    assert _state_of(cur, "L011") == "delayed"
    at = goto(app_as("k001"), "accounts")
    at.multiselect(key="accounts.chosen").set_value(["L010", "A004"]).run()
    at.button(key="accounts.disable").click().run()
    assert [read(s.value) for s in at.success] == ["Disabled 2 account(s): a004, l010."]
    assert _state_of(cur, "L010") == _state_of(cur, "A004") == "disabled"
    at.multiselect(key="accounts.chosen").set_value(["L010"]).run()
    at.button(key="accounts.enable").click().run()
    assert _state_of(cur, "L010") == "active" and _state_of(cur, "A004") == "disabled"
    at.selectbox(key="accounts.state").select("delayed").run()
    assert at.dataframe[0].value["person_id"].tolist() == ["L011"]
    at.multiselect(key="accounts.chosen").set_value(["L011"]).run()
    at.button(key="accounts.unlock").click().run()
    assert _state_of(cur, "L011") == "active"
    assert sessions.sign_in(cur, "l011", admin.DEMO_PASSWORD, "203.0.113.9")
    rows = cur.execute(
        "SELECT actor, action, target FROM audit_log WHERE actor = 'K001' ORDER BY seq DESC LIMIT 4"
    ).fetchall()[::-1]
    assert rows == [
        ("K001", "account disable", "A004"),
        ("K001", "account disable", "L010"),
        ("K001", "account enable", "L010"),
        ("K001", "account unlock", "L011"),
    ]


@pytest.mark.parametrize("user", ["l001", "a002", "a001", "c001"])
def test_no_one_but_a_coordinator_sees_the_accounts_page_or_its_link(db_path, user):
    at = goto(app_as(user), "accounts")
    assert [read(e.value) for e in at.error] == ["This page is not available to you: it is for coordinator."]
    assert not at.dataframe and not at.multiselect and [b.key for b in at.button] == ["auth.sign_out"]


def test_my_account_changes_the_password_and_ends_the_other_sessions(db_path, cur):
    older = sessions.sign_in(cur, "l002", admin.DEMO_PASSWORD)
    at = goto(app_as("l002"), "account")
    at.text_input(key="account.current").input(admin.DEMO_PASSWORD)
    at.text_input(key="account.new").input(GOOD)
    at.text_input(key="account.repeat").input(GOOD)
    at.button(key="FormSubmitter:account.password_form-Change my password").click().run()
    assert not at.exception and not at.error, [read(e.value) for e in at.error]
    assert [read(s.value) for s in at.success] == ["Your password is changed; 1 other sign-in(s) ended."]
    assert sessions.viewer_for_token(cur, older) is None
    assert at.button(key="auth.sign_out")  # this tab stays signed in
    assert sessions.sign_in(cur, "l002", GOOD)


def test_my_account_refuses_a_wrong_current_password(db_path, cur):
    at = goto(app_as("l002"), "account")
    at.text_input(key="account.current").input("not-the-password")
    at.text_input(key="account.new").input(GOOD)
    at.text_input(key="account.repeat").input(GOOD)
    at.button(key="FormSubmitter:account.password_form-Change my password").click().run()
    assert [read(e.value) for e in at.error] == ["The current password is wrong; nothing was changed."]
    assert sessions.sign_in(cur, "l002", admin.DEMO_PASSWORD)


def test_both_password_pages_refuse_two_different_new_passwords_alike(db_path, cur, framework):
    """My account and a one-time link use the same new-password fields: two that differ change nothing."""
    at = goto(app_as("l002"), "account")
    at.text_input(key="account.current").input(admin.DEMO_PASSWORD)
    at.text_input(key="account.new").input(GOOD)
    at.text_input(key="account.repeat").input(GOOD + "x")
    at.button(key="FormSubmitter:account.password_form-Change my password").click().run()
    refused = ["The two new passwords differ; nothing was changed."]
    assert [read(e.value) for e in at.error] == refused
    assert sessions.sign_in(cur, "l002", admin.DEMO_PASSWORD)
    importing.import_text(cur, "learners", NEW_COHORT, "learners.csv", framework, "K001")
    [link] = account_links.issue_links(cur, ["L901"], "K001", send=False)
    at = goto(_anonymous({"token": token_of(link.url)}), "set-password")
    at.text_input(key="set_password.new").input(GOOD)
    at.text_input(key="set_password.repeat").input(GOOD + "x")
    at.button(key="FormSubmitter:set_password.form-Set my password").click().run()
    assert [read(e.value) for e in at.error] == refused
    assert account_links.link_holder(cur, token_of(link.url)).username == "l901"  # the link still works
    for page in (goto(app_as("l002"), "account"), goto(_anonymous({"token": token_of(link.url)}), "set-password")):
        fields = [t for t in page.text_input if t.key and t.key.endswith((".new", ".repeat"))]
        assert [t.label for t in fields] == ["New password", "Repeat the new password"]
        assert any(c.value.startswith("At least ") for c in page.caption)


def test_a_link_opens_the_set_password_page_signed_out(db_path, cur, framework):
    importing.import_text(cur, "learners", NEW_COHORT, "learners.csv", framework, "K001")
    [link] = account_links.issue_links(cur, ["L901"], "K001", send=False)
    at = goto(_anonymous({"token": token_of(link.url)}), "set-password")
    assert [t.value for t in at.title] == ["Set your password"]
    assert "Welcome, Noor Haddad. Your user name is l901." in [t.value for t in at.text]
    at.text_input(key="set_password.new").input("noor-haddad-2027")
    at.text_input(key="set_password.repeat").input("noor-haddad-2027")
    at.button(key="FormSubmitter:set_password.form-Set my password").click().run()
    assert [read(e.value) for e in at.error] == [
        "The password must not contain your user name, name or e-mail address; choose another."
    ]
    at.text_input(key="set_password.new").input(GOOD)
    at.text_input(key="set_password.repeat").input(GOOD)
    at.button(key="FormSubmitter:set_password.form-Set my password").click().run()
    assert not at.exception
    assert [read(s.value) for s in at.success] == ["Your password is set. Sign in as l901."]
    assert at.text_input(key="sign_in.password")
    assert sessions.viewer_for_token(cur, sessions.sign_in(cur, "l901", GOOD)).person_id == "L901"


def test_a_spent_or_unknown_link_says_so_and_offers_sign_in(db_path):
    at = goto(_anonymous({"token": "not-a-real-token"}), "set-password")
    assert [read(e.value) for e in at.error] == [
        "This link is not valid. Copy the whole link from the message, or ask for a new one."
    ]
    assert [t.key for t in at.text_input] == []
    at.button(key="set_password.to_sign_in").click().run()
    assert at.text_input(key="sign_in.password") and not at.error


def test_forgot_password_without_email_says_to_ask_the_coordinator(db_path):
    at = _anonymous()
    assert "Ask the program coordinator for a link to set a new password." in [m.value for m in at.markdown]
    assert [t.key for t in at.text_input] == ["sign_in.username", "sign_in.password"]


def test_forgot_password_mails_a_link_and_answers_alike(db_path, cur, smtp):  # noqa: F811 - the fixture
    answers = []
    for who in ("l006", "no-such-user"):
        at = _anonymous()
        at.text_input(key="sign_in.forgot_who").input(who)
        at.button(key="FormSubmitter:sign_in.forgot-Send me a link").click().run()
        answers.append([read(i.value) for i in at.info])
    assert answers[0] == answers[1] == [account_links.FORGOT_ANSWER]
    deadline = time.monotonic() + 20
    while not smtp.messages and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [m["To"] for m in smtp.messages] == [
        cur.execute("SELECT email FROM learners WHERE id = 'L006'").fetchone()[0]
    ]


def _with_identity(cur, issued_ago: float, **changed: object) -> AppTest:
    """The sign-in page, single sign-on configured, in a browser whose Streamlit identity cookie holds A003's
    verified e-mail from the program's provider, issued `issued_ago` seconds ago (claims `changed` as given)."""
    email = cur.execute("SELECT email FROM staff WHERE id = 'A003'").fetchone()[0]
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.secrets["auth"] = {"server_metadata_url": "https://login.example.edu/.well-known/openid-configuration"}
    at.user = {
        "is_logged_in": True,
        "provider": "default",
        "iss": "https://login.example.edu",
        "email": email,
        "email_verified": True,
        "iat": int(time.time() - issued_ago),
    } | changed
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_an_old_identity_cookie_sends_the_person_through_the_provider_again(db_path, cur):
    """After our session expired (TRACKER_SESSION_HOURS) or a restore lost it, Streamlit's identity cookie remains;
    it must not start a session: the page offers the provider's sign-in again."""
    sessions_before = cur.execute("SELECT count(*) FROM sessions").fetchone()[0]
    at = _with_identity(cur, issued_ago=13 * 3600)
    assert [read(i.value) for i in at.info] == [
        "Your sign-in with your institution has ended here. Sign in with your institution again."
    ]
    assert at.button(key="sign_in.sso").label == "Sign in with your institution"
    assert "auth.token" not in at.session_state
    assert cur.execute("SELECT count(*) FROM sessions").fetchone()[0] == sessions_before
    fresh = _with_identity(cur, issued_ago=2)  # back from the provider: signed in
    assert fresh.session_state["auth.token"] and not fresh.info


@pytest.mark.parametrize(
    ("changed", "refusal"),
    [
        ({"email_verified": False}, "Your institution has not verified your e-mail address"),
        ({"iss": "https://login.elsewhere.example"}, "This sign-in comes from another identity provider"),
    ],
)
def test_an_unverified_email_or_another_provider_signs_nobody_in(db_path, cur, changed, refusal):
    at = _with_identity(cur, issued_ago=2, **changed)
    assert "auth.token" not in at.session_state
    assert [read(e.value) for e in at.error] and read(at.error[0].value).startswith(refusal)
    assert at.button(key="sign_in.sso_logout").label == "Sign out of the institution's account"
