"""Set a password with a one-time link (an invitation or a reset), reachable signed out."""

import streamlit as st

from pages.views import sign_in
from pages.views.widgets import new_password, say
from tracker.core.errors import TrackerError
from tracker.web import session


def render() -> None:
    token = st.query_params.get("token")
    if not token:  # without a link this address is the sign-in page
        sign_in.render()
        return
    st.title("Set your password")
    try:
        holder = session.link_holder(token)
    except TrackerError as exc:
        say("error", exc)
        if st.button("Go to sign-in", key="set_password.to_sign_in", icon=":material/login:"):
            st.query_params.clear()
            st.rerun()
        return
    st.text(f"Welcome, {holder.name}. Your user name is {holder.username}.")
    with st.form("set_password.form"):
        new = new_password("set_password", "The link works once.")
        submitted = st.form_submit_button("Set my password", type="primary")
    if not submitted or (password := new.confirmed()) is None:
        return
    try:
        username = session.use_link(token, password)
    except TrackerError as exc:
        say("error", exc)
        return
    st.session_state["sign_in.confirmation"] = f"Your password is set. Sign in as {username}."
    st.query_params.clear()
    st.rerun()
