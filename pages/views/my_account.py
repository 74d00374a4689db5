"""My account: one's own user name and roles, and changing one's password."""

import streamlit as st

from pages.views.widgets import new_password, say, show_confirmation
from tracker.access.policy import Viewer
from tracker.core.errors import TrackerError
from tracker.web import session


def render(viewer: Viewer) -> None:
    st.title("My account")
    show_confirmation("account")
    st.text(f"{viewer.name} · user name {viewer.username} · {', '.join(sorted(r.value for r in viewer.roles))}")
    if not session.has_password(viewer):
        st.info("You sign in through your institution's single sign-on; your password is kept there.")
        return
    st.subheader("Change my password")
    with st.form("account.password_form", clear_on_submit=True):
        current = st.text_input(
            "Current password", type="password", key="account.current", autocomplete="current-password"
        )
        new = new_password("account", "Your other sign-ins (other browsers and devices) end when you change it.")
        submitted = st.form_submit_button("Change my password", type="primary")
    if not submitted or (password := new.confirmed()) is None:
        return
    try:
        ended = session.change_own_password(viewer, current or "", password)
    except TrackerError as exc:
        say("error", exc)
        return
    st.session_state["account.confirmation"] = f"Your password is changed; {ended} other sign-in(s) ended."
    st.rerun()
