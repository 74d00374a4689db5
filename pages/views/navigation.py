"""Sign-in, then the navigation of the viewer's roles: the one run of every browser session (main)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from data_models import Role
from pages.views import (
    account_admin,
    backtest,
    cohort,
    framework_browser,
    home,
    import_records,
    my_account,
    plans,
    progress,
    records,
    review,
    self_assessment,
    set_password,
    sign_in,
)
from pages.views.widgets import pages as session_pages
from pages.views.widgets import say
from tracker.access.policy import Viewer, may_open_page
from tracker.core.errors import TrackerError
from tracker.web import reads, session

ICON = str(Path(__file__).resolve().parent.parent / "assets" / "milestone.png")


@dataclass(frozen=True)
class View:
    url_path: str
    title: str
    icon: str
    render: Callable[[Viewer], None]


def views_for(viewer: Viewer) -> list[View]:
    """Every page of the app, in sidebar order; which the viewer may open is tracker.access.PAGE_ROLES."""
    learner = viewer.has(Role.learner)
    return [
        View("home", "Home", ":material/home:", home.render),
        View("progress", "My progress" if learner else "Learner progress", ":material/trending_up:", progress.render),
        View("self-assessment", "Self-assessment", ":material/edit_note:", self_assessment.render),
        View("plan", "My learning plan" if learner else "Learning plan", ":material/flag:", plans.render),
        View("cohort", "Cohort summary", ":material/groups:", cohort.render),
        View("backtest", "Forecast backtest", ":material/fact_check:", backtest.render),
        View("review", "Review meetings", ":material/gavel:", review.render),
        View("import", "Import records", ":material/upload_file:", import_records.render),
        View("records", "Records and audit", ":material/folder_open:", records.render),
        View("accounts", "Accounts", ":material/manage_accounts:", account_admin.render),
        View("framework", "Framework", ":material/account_tree:", framework_browser.render),
        View("account", "My account", ":material/person:", my_account.render),
    ]


def _page(
    view: View, viewer: Viewer, default: bool = False, url_path: str | None = None, listed: bool = True
) -> st.Page:
    def run() -> None:
        try:
            reads.require_page(viewer, view.url_path)  # a page outside one's roles says so, and is audited
            view.render(viewer)
        except TrackerError as exc:  # a refused request or bad input: say so, never a traceback
            say("error", str(exc))
        except Exception as exc:  # a damaged block of the database met while reading: say how to restore it
            damage = reads.damage(exc)
            if damage is None:
                raise
            say("error", str(damage))

    visible = listed and may_open_page(viewer, view.url_path)
    return st.Page(
        run,
        title=view.title,
        icon=view.icon,
        url_path=url_path or view.url_path,
        default=default,
        visibility="visible" if visible else "hidden",
    )


def signed_in_navigation(viewer: Viewer) -> st.Page:
    views = views_for(viewer)
    # Home is served at the root; its own address /home, and /sign-in after signing in, show it as well.
    pages = [_page(views[0], viewer, default=True, url_path="index")]
    pages += [_page(views[0], viewer, url_path=path, listed=False) for path in ("home", "sign-in")]
    pages.append(
        st.Page(_signed_in_link, title="Set your password", url_path=session.SET_PASSWORD_PATH, visibility="hidden")
    )
    for view in views[1:]:
        page = _page(view, viewer)
        session_pages()[view.url_path] = page
        pages.append(page)
    with st.sidebar:
        st.caption("Signed in as")
        st.text(f"{viewer.name} · {', '.join(sorted(r.value for r in viewer.roles))}")
        if st.button("Sign out", key="auth.sign_out", icon=":material/logout:"):
            session.sign_out()
            if session.sso_configured() and st.user.is_logged_in:
                st.logout()  # also forget the identity provider's sign-in, or it would sign us in again
            st.rerun()
    return st.navigation(pages, position="sidebar")


def _signed_in_link() -> None:
    st.title("Set your password")
    st.info("You are signed in. To use a link that sets a password, sign out first, then open the link again.")


def anonymous_navigation() -> st.Page:
    """Every address shows sign-in until someone signs in; then the same address shows its page."""
    paths = ["sign-in", *(view.url_path for view in views_for(Viewer("", "", frozenset())))]
    pages = [st.Page(sign_in.render, title="Sign in", url_path="index", default=True)]
    pages += [st.Page(sign_in.render, title="Sign in", url_path=path, visibility="hidden") for path in paths]
    # a one-time link (invitation or reset) opens this page; without a token it is the sign-in page
    pages.append(
        st.Page(
            set_password.render,
            title="Set your password",
            url_path=session.SET_PASSWORD_PATH,
            visibility="hidden",
        )
    )
    return st.navigation(pages, position="hidden")


def main() -> None:
    st.set_page_config(page_title="Milestone", page_icon=ICON, layout="wide")
    try:
        viewer = session.current_viewer()
    except TrackerError as exc:  # e.g. the database file is held by another process
        problem = str(exc)
        st.navigation(
            [st.Page(lambda: say("error", problem), title="Milestone", url_path="unavailable")], position="hidden"
        ).run()
        return
    session.hand_cookie_to_browser()
    page = anonymous_navigation() if viewer is None else signed_in_navigation(viewer)
    page.run()
