"""Milestone: the Streamlit entry point. Configure, sign in, build the navigation for the viewer's roles, run."""

import streamlit as st
from streamlit import config
from streamlit.runtime.pages_manager import PagesManager

from data_models import Role
from pages import cohort, framework_browser, home, import_records, progress, records, self_assessment, sign_in
from pages._widgets import PAGE_PATHS, PAGES
from tracker import web
from tracker.errors import TrackerError

if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
    # Until st.navigation has run once in the server process, Streamlit treats pages/ beside this script as
    # legacy pages and may run a page file, or this script as one of them, without our navigation. Turn that
    # off for good and start this run again as a normal one. (AppTest resets the flag before every run, and a
    # rerun there would swallow the widget event under test; its runs go through the pages' __main__ guards.)
    PagesManager.uses_pages_directory = False
    st.rerun()

st.set_page_config(page_title="Milestone", page_icon=":material/timeline:", layout="wide")

try:
    viewer = web.current_viewer()
except TrackerError as exc:  # e.g. the database file is held by another process
    problem = str(exc)
    st.navigation(
        [st.Page(lambda: st.error(problem), title="Milestone", url_path="unavailable")], position="hidden"
    ).run()
    st.stop()
web.clear_cookie_if_signed_out()

if viewer is None:
    # Every page's address shows sign-in until someone signs in; then the same address shows the page.
    st.navigation(
        [st.Page(sign_in.render, title="Sign in", url_path="sign-in", default=True)]
        + [st.Page(sign_in.render, title=f"Sign in · {path}", url_path=path) for path in PAGE_PATHS],
        position="hidden",
    ).run()
    st.stop()

web.write_cookie_if_pending()


def _page(render, title: str, url_path: str, icon: str, default: bool = False) -> st.Page:  # type: ignore[no-untyped-def]
    def run() -> None:
        try:
            render(viewer)
        except TrackerError as exc:  # a refused request or bad input: say so, never a traceback
            st.error(str(exc), icon=":material/block:")

    page = st.Page(run, title=title, url_path=url_path, icon=icon, default=default)
    PAGES[url_path] = page
    return page


pages: list[st.Page] = [_page(home.render, "Home", "home", ":material/home:", default=True)]
if viewer.has(Role.learner):
    pages += [
        _page(progress.render, "My progress", "progress", ":material/trending_up:"),
        _page(self_assessment.render, "Self-assessment", "self-assessment", ":material/edit_note:"),
    ]
else:
    pages += [_page(progress.render, "Learner progress", "progress", ":material/trending_up:")]
if viewer.roles & {Role.advisor, Role.committee, Role.coordinator}:
    pages += [_page(cohort.render, "Cohort summary", "cohort", ":material/groups:")]
if viewer.has(Role.coordinator):
    pages += [
        _page(import_records.render, "Import records", "import", ":material/upload_file:"),
        _page(records.render, "Records and audit", "records", ":material/folder_open:"),
    ]
pages += [_page(framework_browser.render, "Framework", "framework", ":material/account_tree:")]

with st.sidebar:
    st.caption("Signed in as")
    st.text(f"{viewer.name} · {', '.join(sorted(r.value for r in viewer.roles))}")
    if st.button("Sign out", key="auth.sign_out", icon=":material/logout:"):
        web.sign_out()
        if web.sso_configured() and st.user.is_logged_in:
            st.logout()  # also forget the identity provider's sign-in, or it would sign us in again
        st.rerun()

st.navigation(pages, position="sidebar").run()
