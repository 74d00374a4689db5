"""End to end, learning plans: a learner writes a goal in the browser, their advisor agrees it, the learner reads
the agreement."""

import pytest

from tests.test_e2e import _fresh_server, open_as, pick, settle, shot
from tests.test_e2e import browser as browser  # the module's Chromium (a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

from playwright.sync_api import Page, expect  # noqa: E402

ACTIONS = "Run two feedback workshops for residents, one observed by my advisor."


def test_a_learner_writes_a_goal_and_the_advisor_agrees_it(tmp_path, seeded_template, browser):
    srv = _fresh_server(tmp_path, seeded_template)

    def as_user(user: str, path: str) -> Page:
        return open_as(browser, srv.url, user, path)

    try:
        page = as_user("l001", "plan")
        expect(page.get_by_role("heading", name="My learning plan")).to_be_visible(timeout=30_000)
        pick(page, "Competency", "Teaching · Feedback and reflective teaching")
        pick(page, "Level aimed for", "4 · ")
        pick(page, "By term", "(T6)")
        page.get_by_label("Actions: what you will do").fill(ACTIONS)
        page.get_by_label("Evidence you plan to gather").fill("Workshop evaluations and the observation form")
        page.get_by_role("button", name="Save goal").click()
        expect(page.get_by_text("Saved your goal: Feedback and reflective teaching")).to_be_visible(timeout=30_000)
        settle(page)
        expect(page.get_by_test_id("stText").filter(has_text=ACTIONS)).to_be_visible()
        expect(page.get_by_role("textbox", name="Actions: what you will do").last).to_have_value("")
        expect(page.get_by_text("Not agreed yet").first).to_be_visible()
        shot(page, "learner-plan")
        page.context.close()

        page = as_user("a001", "plan?learner=L001")
        expect(page.get_by_test_id("stText").filter(has_text=ACTIONS)).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Agree this goal").click()
        expect(page.get_by_text("Agreed 1 goal.")).to_be_visible(timeout=30_000)
        settle(page)
        expect(page.get_by_text("Agreed by Ava Ibrahim on").first).to_be_visible()
        expect(page.get_by_role("button", name="Agree this goal")).to_have_count(0)
        shot(page, "advisor-plan")
        page.context.close()

        page = as_user("l001", "progress")
        expect(page.get_by_role("heading", name="Learning plan")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("link", name="Open the learning plan")).to_be_visible()
        page.context.close()
    finally:
        srv.stop()
