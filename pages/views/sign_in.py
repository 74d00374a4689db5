"""Sign-in: local accounts, and single sign-on where the program has configured it."""

import streamlit as st

from pages.views.widgets import say, show_confirmation
from tracker.core.errors import SignInError, StaleIdentity, TrackerError
from tracker.web import session


def render() -> None:
    st.title("Milestone")
    st.caption("Competency progress for the program's learners, advisors and committees.")
    show_confirmation("sign_in")
    with st.form("sign_in", enter_to_submit=True):
        username = st.text_input("User name", key="sign_in.username")
        password = st.text_input("Password", type="password", key="sign_in.password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            session.sign_in(username or "", password or "")
        except SignInError as exc:
            say("error", exc)
        else:
            st.rerun()
    _forgot_password()
    if session.sso_configured():
        _single_sign_on()
    if session.demo_mode():
        with st.expander("Demo accounts (sample program)"):
            st.markdown(
                f"Every demo account signs in with the password `{session.DEMO_PASSWORD}`:\n"
                "- `l001` … `l060`: learners (but `l057` and `l060`, who have no account yet)\n"
                "- `a001` … `a007`: advisors (`a001` also sits on the committee; `a008` is disabled)\n"
                "- `c001`, `c002`: committee members (`c003` signs in only through single sign-on)\n"
                "- `k001`: the program coordinator, who manages them all on the *Accounts* page"
            )


def _forgot_password() -> None:
    """A reset link by e-mail; the answer never tells whether an account matched."""
    with st.expander("Forgot your password?"):
        if not session.mail_configured():
            st.write("Ask the program coordinator for a link to set a new password.")
            return
        with st.form("sign_in.forgot", clear_on_submit=True):
            who = st.text_input("User name or e-mail address", key="sign_in.forgot_who")
            asked = st.form_submit_button("Send me a link")
        if asked and who.strip():
            try:
                say("info", session.request_reset(who))
            except TrackerError as exc:
                say("error", exc)


def _single_sign_on() -> None:
    """Streamlit's OpenID Connect sign-in; the identity provider's verified e-mail picks the account, Milestone's
    records its roles. Streamlit keeps the provider's identity for 30 days: it starts a session only right after the
    provider gave it, so once our session has ended the person goes through the provider again."""
    st.divider()
    if not st.user.is_logged_in:
        st.button("Sign in with your institution", key="sign_in.sso", on_click=st.login, icon=":material/login:")
        return
    try:
        session.sign_in_by_identity(st.user.to_dict())
    except StaleIdentity as exc:
        say("info", exc)
        st.button("Sign in with your institution", key="sign_in.sso", on_click=st.login, icon=":material/login:")
        return
    except SignInError as exc:
        say("error", exc)
        st.button("Sign out of the institution's account", key="sign_in.sso_logout", on_click=st.logout)
        return
    st.rerun()
