"""End to end, accounts: a coordinator invites a new cohort by e-mail (a real SMTP server on 127.0.0.1), one
learner sets a password through the link and signs in, another link expires; a learner changes their password and
an older session ends; learners and advisors never reach the accounts page."""

import shutil
import time

import pytest

from tests.conftest import FRAMEWORK_YAML, app_database
from tests.test_account_links import GOOD, NEW_COHORT, Inbox
from tests.test_e2e import Server, _free_port, settle, shot, sign_in
from tests.test_e2e import browser as browser  # the module's Chromium (a fixture)
from tracker.records import importing
from tracker.storage.opening import open_database

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.xdist_group("test_e2e_accounts"),  # one worker: the module's app server is shared
]

from aiosmtpd.controller import Controller  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

LINK_SECONDS = 30  # how long the invitations of the first test stay valid (TRACKER_INVITATION_HOURS): the
# learner who joins uses theirs within seconds of the invitation, the late one tries after it expired


@pytest.fixture(scope="module")
def server(tmp_path_factory, storage_mode: str, request: pytest.FixtureRequest):
    """The module's app server, in the test's storage mode (server mode: over a PostgreSQL database of its own)."""
    db, url = app_database(request, tmp_path_factory.mktemp("e2e-accounts"), storage_mode)
    srv = Server(db, server=url)
    yield srv
    srv.stop()


def _links(inbox: Inbox, count: int) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while len(inbox.messages) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(inbox.messages) == count
    links = {}
    for message in inbox.messages:
        words = message.get_content().split()
        links[message["To"]] = next(w for w in words if "/set-password?token=" in w)
    return links


def _set_password(page: Page, link: str, password: str) -> None:
    page.goto(link)
    settle(page)
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("Repeat the new password").fill(password)
    page.get_by_role("button", name="Set my password").click()


def test_coordinator_invites_a_cohort_one_learner_joins_another_link_expires(
    tmp_path, seeded_template, framework, browser, monkeypatch
):
    db = tmp_path / "invite.duckdb"
    shutil.copy(seeded_template, db)
    database = open_database(db, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    importing.import_text(database.cursor(), "learners", NEW_COHORT, "learners.csv", framework, "K001")
    database.close()
    inbox = Inbox()
    smtp_port, app_port = _free_port(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    for name, value in {
        "TRACKER_SMTP_HOST": "127.0.0.1",
        "TRACKER_SMTP_PORT": str(smtp_port),
        "TRACKER_SMTP_TLS": "none",
        "TRACKER_MAIL_FROM": "milestone@program.example.org",
        "TRACKER_PUBLIC_URL": f"http://127.0.0.1:{app_port}",
        "TRACKER_INVITATION_HOURS": str(LINK_SECONDS / 3600),
    }.items():
        monkeypatch.setenv(name, value)
    srv = Server(db, port=app_port)
    try:
        coordinator = browser.new_page(viewport={"width": 1400, "height": 1600})
        sign_in(coordinator, srv.url, "k001")
        coordinator.goto(f"{srv.url}/accounts")
        settle(coordinator)
        expect(coordinator.get_by_role("heading", name="Accounts")).to_be_visible(timeout=30_000)
        coordinator.get_by_label("Cohort").click()
        coordinator.get_by_role("option", name="2027-09").click()
        settle(coordinator)
        coordinator.get_by_role("button", name="Invite everyone shown without an account (3)").click()
        invited_at = time.monotonic()
        expect(coordinator.get_by_text("3 link(s) made: 3 sent by e-mail, 0 to hand out")).to_be_visible(timeout=30_000)
        settle(coordinator)
        shot(coordinator, "coordinator-accounts")
        links = _links(inbox, 3)
        assert all(link.startswith(f"{srv.url}/set-password?token=") for link in links.values())

        learner = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
        _set_password(learner, links["noor.haddad@learners.example.org"], GOOD)
        expect(learner.get_by_text("Your password is set. Sign in as l901.")).to_be_visible(timeout=30_000)
        learner.get_by_label("User name", exact=True).fill("l901")
        learner.get_by_label("Password", exact=True).fill(GOOD)
        learner.get_by_role("button", name="Sign in").click()
        expect(learner.get_by_role("button", name="Sign out")).to_be_visible(timeout=30_000)
        settle(learner)
        assert "Noor Haddad" in learner.inner_text("[data-testid='stSidebar']")

        late = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
        time.sleep(max(0.0, invited_at + LINK_SECONDS + 2 - time.monotonic()))
        late.goto(links["tomas.varga@learners.example.org"])
        settle(late)
        expect(late.get_by_text("This link expired on")).to_be_visible(timeout=30_000)
        assert late.get_by_label("New password", exact=True).count() == 0
        shot(late, "set-password-expired")

        coordinator.reload()
        settle(coordinator)
        coordinator.get_by_label("Cohort").click()
        coordinator.get_by_role("option", name="2027-09").click()
        settle(coordinator)
        expect(coordinator.get_by_text("3 shown: 2 none, 1 active")).to_be_visible(timeout=30_000)
    finally:
        srv.stop()
        controller.stop()


@pytest.mark.smoke
def test_changing_ones_password_ends_an_older_session(server, browser):
    older = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
    sign_in(older, server.url, "l002")
    newer = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
    sign_in(newer, server.url, "l002")
    newer.goto(f"{server.url}/account")
    settle(newer)
    newer.get_by_label("Current password").fill("milestone-demo")
    newer.get_by_label("New password", exact=True).fill(GOOD)
    newer.get_by_label("Repeat the new password").fill(GOOD)
    newer.get_by_role("button", name="Change my password").click()
    expect(newer.get_by_text("Your password is changed; 1 other sign-in(s) ended.")).to_be_visible(timeout=30_000)
    settle(newer)
    shot(newer, "learner-my-account")
    older.reload()
    expect(older.get_by_label("User name", exact=True)).to_be_visible(timeout=30_000)
    settle(older)
    assert "Signed in as" not in older.inner_text("body")
    newer.reload()  # the browser that changed it stays signed in
    settle(newer)
    expect(newer.get_by_role("button", name="Sign out")).to_be_visible(timeout=30_000)


@pytest.mark.parametrize("user", ["l003", "a002"])
def test_learners_and_advisors_never_reach_the_accounts_page(server, browser, user):
    page = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
    sign_in(page, server.url, user)
    assert "Accounts" not in page.inner_text("[data-testid='stSidebarNav']")
    for address in ("accounts", "accounts?cohort=2024-09", "set-password"):
        page.goto(f"{server.url}/{address}")
        settle(page)
        assert page.locator("[data-testid='stDataFrame']").count() == 0
        assert "Invite everyone" not in page.inner_text("body")
    page.goto(f"{server.url}/accounts")
    settle(page)
    expect(page.get_by_text("This page is not available to you: it is for coordinator.")).to_be_visible()
