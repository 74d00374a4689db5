"""End to end, layouts: in a 1400 × 1000 window, each role's home answers its first question above the fold with
the action beside it, names and reasons are read whole (never cut), and the cohort page's actions come before its
long heatmap."""

import pytest

from tests.test_e2e import browser as browser  # the module's Chromium (a fixture)
from tests.test_e2e import server as server  # the sample program served by `streamlit run` (a fixture)
from tests.test_e2e import settle, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

from playwright.sync_api import Locator, Page, expect  # noqa: E402

FOLD = 1000  # the window's height: what shows without scrolling


def _above_the_fold(item: Locator) -> None:
    box = item.bounding_box()
    assert box is not None and box["y"] + box["height"] <= FOLD, box


def _nothing_cut(page: Page) -> None:
    """No text of the page's main part is clipped: no element's content is wider than its box, none ends in "…"."""
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stMarkdownContainer"],'
                 + ' [data-testid="stMain"] [data-testid="stMetricValue"]')]
             .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 80))"""
    )
    assert clipped == []
    assert "…" not in page.inner_text("[data-testid='stMain']")


def _page(browser, url: str, user: str) -> Page:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": FOLD})
    sign_in(page, url, user)
    return page


def test_learner_home_shows_where_they_stand_and_what_next_above_the_fold(server, browser):
    page = _page(browser, server.url, "l001")
    main = page.locator("[data-testid='stMain']")
    for heading in ("Where you stand", "What to work on next"):
        _above_the_fold(main.get_by_role("heading", name=heading))
    for domain in ("Teaching", "Curriculum development and evaluation", "Interdisciplinary collaboration"):
        card = main.locator("[class*='st-key-home-domain-']").filter(has_text=domain)
        expect(card).to_have_count(1)
        _above_the_fold(card)
    link = main.get_by_role("link", name="Rate yourself and add evidence")
    _above_the_fold(link)
    _nothing_cut(page)
    link.click()
    expect(page.get_by_role("heading", name="Self-assessment").first).to_be_visible(timeout=30_000)
    page.close()


def test_advisor_home_shows_who_needs_them_and_opens_the_learner_to_rate(server, browser):
    page = _page(browser, server.url, "a003")
    main = page.locator("[data-testid='stMain']")
    _above_the_fold(main.get_by_role("heading", name="Who needs you"))
    cards = main.locator("[class*='st-key-home-advisees-card-']")
    assert cards.count() >= 2
    first = cards.first
    _above_the_fold(first)
    expect(first).to_contain_text("they self-assessed, with no rating of yours yet")
    name = first.locator("strong").first.inner_text()
    _nothing_cut(page)
    first.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", name="Learner progress")).to_be_visible(timeout=30_000)
    settle(page)
    expect(main.get_by_text(name).first).to_be_visible()
    _above_the_fold(main.get_by_text("Record a rating", exact=True))  # the form is where the advisor lands
    page.close()


def test_committee_home_lists_who_needs_discussion_a_page_at_a_time(server, browser):
    page = _page(browser, server.url, "c001")
    main = page.locator("[data-testid='stMain']")
    _above_the_fold(main.get_by_role("heading", name="Who needs discussion"))
    _above_the_fold(main.get_by_role("link", name="Plan a review meeting"))
    cards = main.locator("[class*='st-key-home-discuss-card-']")
    _above_the_fold(cards.first)
    expect(cards).to_have_count(6)
    first_page = cards.first.inner_text()
    expect(cards.first).to_contain_text("Behind in")
    _nothing_cut_but_the_more(page)
    page.get_by_label("Page", exact=True).fill("2")
    page.get_by_label("Page", exact=True).press("Enter")
    expect(cards.first).not_to_have_text(first_page, timeout=30_000)
    settle(page)
    expect(main.get_by_text("page 2 of")).to_be_visible()
    main.get_by_role("link", name="Plan a review meeting").click()
    expect(page.get_by_role("heading", name="Review meetings").first).to_be_visible(timeout=30_000)
    page.close()


def _nothing_cut_but_the_more(page: Page) -> None:
    """The committee's reasons name the few competencies furthest behind "and N more": a summary, not a cut."""
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stMarkdownContainer"]')]
             .filter(e => e.scrollWidth > e.clientWidth + 1).length"""
    )
    assert clipped == 0
    assert "…" not in page.inner_text("[data-testid='stMain']")


def test_cohort_page_acts_before_its_heatmap(server, browser):
    page = _page(browser, server.url, "c001")
    page.goto(f"{server.url}/cohort")
    settle(page)
    main = page.locator("[data-testid='stMain']")
    expect(main.get_by_role("heading", name="Cohort summary")).to_be_visible(timeout=30_000)
    for action in ("Open progress", "Download this view as CSV", "Download the cohort report (PDF)"):
        _above_the_fold(main.get_by_role("button", name=action))
    heatmap = main.locator("[data-testid='stExpander']").filter(has_text="Gap heatmap")
    expect(heatmap.locator("details")).not_to_have_attribute("open", "")  # folded until asked for
    assert heatmap.bounding_box()["y"] > main.get_by_role("button", name="Open progress").bounding_box()["y"]
    page.close()
