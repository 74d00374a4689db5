"""The signed-in viewer of a browser session, and every step of signing in and out: passwords, single sign-on,
one-time links, a change of one's own password. The server-side session of a tab lives in session_state (never
sent to the browser); the browser keeps its own in an HttpOnly cookie set by an HTTP route (tracker/web/server.py),
so that a reload stays signed in and no script of the page can read it. session_state is never the authority on
who the viewer is: every run checks the token against the database."""

from collections.abc import Mapping

import streamlit as st

from tracker.access.policy import Viewer
from tracker.accounts import account_links, admin, identity, passwords, sessions
from tracker.core.config import settings
from tracker.mail import smtp
from tracker.web import caching, server_paths

COOKIE = server_paths.COOKIE
PASSWORD_MIN_LENGTH = passwords.MIN_LENGTH
SET_PASSWORD_PATH = account_links.SET_PASSWORD_PATH  # the page (reachable signed out) that spends a link
DEMO_PASSWORD = admin.DEMO_PASSWORD  # the sample program's demo accounts: the sign-in page lists them
TOKEN_KEY = "auth.token"  # noqa: S105 - a session-state key, not a secret


# ---- the signed-in viewer ----------------------------------------------------------------------
# The server-side session of this browser tab lives in session_state (never sent to the browser). The browser
# keeps its own session in an HttpOnly cookie, set by an HTTP route (tracker/web/server.py) in exchange for a
# one-time ticket, so that a reload stays signed in; no script of the page can read it.
def current_viewer() -> Viewer | None:
    """The viewer of this browser session, checked against the server-side session every run (in server mode
    after following PostgreSQL, so a sign-in or sign-out on another server holds here)."""
    caching.follow()
    token = st.session_state.get(TOKEN_KEY) or st.context.cookies.get(COOKIE)
    viewer = sessions.viewer_for_token(caching.cursor(), token)
    if viewer is None:
        st.session_state.pop(TOKEN_KEY, None)
        return None
    st.session_state[TOKEN_KEY] = token
    return viewer


def session_token() -> str:
    """This tab's session token (server-side; never shown)."""
    return str(st.session_state.get(TOKEN_KEY) or "")


def client_source() -> str:
    """Where a request comes from, for counting failed sign-ins: the client's address ("local" on loopback)."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "local"


def remember(token: str) -> None:
    """Sign this tab in with a new session, and have the browser fetch its cookie session on the next run."""
    old = st.context.cookies.get(COOKIE)
    if isinstance(old, str) and old:  # a new sign-in replaces whatever session the browser held
        sessions.sign_out(caching.cursor(), old)
    st.session_state[TOKEN_KEY] = token
    st.session_state["auth.cookie"] = "set"


def sign_out() -> None:
    token = st.session_state.pop(TOKEN_KEY, None) or st.context.cookies.get(COOKIE)
    if token:
        sessions.sign_out(caching.cursor(), token)
    st.session_state.clear()
    st.session_state["auth.cookie"] = "clear"


def hand_cookie_to_browser() -> None:
    """After a sign-in, the browser exchanges a one-time ticket for its HttpOnly cookie; after a sign-out, it
    asks the server to drop the cookie. Both are same-origin requests to tracker/web/server.py's routes."""
    action = st.session_state.pop("auth.cookie", None)
    if action == "set" and (token := st.session_state.get(TOKEN_KEY)):
        ticket = sessions.cookie_ticket(caching.cursor(), token)
        _run_in_browser(
            f"fetch('{server_paths.SESSION}', {{method: 'POST', credentials: 'same-origin', "
            f"headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: 'ticket={ticket}'}});"
        )
    elif action == "clear":
        _run_in_browser(f"fetch('{server_paths.SIGN_OUT}', {{method: 'POST', credentials: 'same-origin'}});")


def _run_in_browser(script: str) -> None:
    # `script` is our own, holding no user text (a ticket is URL-safe base64).
    st.iframe(f"<script>{script}</script>", height=1)


def sso_configured() -> bool:
    """Single sign-on is on when .streamlit/secrets.toml has an [auth] section."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError):
        return False
    except Exception:
        return False


@st.cache_data(show_spinner=False)
def _demo_mode(db_path: str, generation: tuple[int, ...]) -> bool:
    row = (
        caching.cursor()
        .execute("SELECT count(*) FROM audit_log WHERE action = 'account add' AND target = 'demo accounts'")
        .fetchone()
    )
    return bool(row and row[0])


def demo_mode() -> bool:
    return _demo_mode(str(settings().db_path), caching.generation_of(()))


# ---- signing in --------------------------------------------------------------------------------------
def sign_in(username: str, password: str) -> None:
    """Sign this tab in with a user name and password (SignInError says why not, and how long to wait)."""
    remember(sessions.sign_in(caching.cursor(), username, password, client_source()))


def sign_in_by_identity(claims: Mapping[str, object]) -> None:
    """Sign this tab in as the account of the e-mail the identity provider vouched for (its claims: st.user's),
    when tracker.accounts.identity accepts them; SignInError says why not, StaleIdentity that the person must sign
    in with the provider again."""
    remember(
        sessions.sign_in_by_identity(
            caching.cursor(), claims, sso_issuer(str(claims.get("provider") or "")), client_source()
        )
    )


def sso_issuer(provider: str = "") -> str:
    """The issuer the provider's tokens must name: TRACKER_SSO_ISSUER, else the one its server_metadata_url in
    .streamlit/secrets.toml names ([auth], or [auth.PROVIDER] for a named provider); "" when neither says."""
    if settings().sso_issuer:
        return settings().sso_issuer
    try:
        section = st.secrets["auth"]
        if provider and provider != "default" and provider in section:
            section = section[provider]
        return identity.issuer_of(str(section.get("server_metadata_url") or ""))
    except (FileNotFoundError, KeyError, AttributeError):
        return ""


def request_reset(who: str) -> str:
    """ "Forgot your password?": the answer to show, the same whether or not the account exists."""
    return account_links.request_reset(caching.cursor(), who, client_source())


def link_holder(token: str) -> account_links.LinkHolder:
    """Whose one-time link this is (TrackerError when it is spent, expired or unknown)."""
    return account_links.link_holder(caching.cursor(), token)


def use_link(token: str, password: str) -> str:
    """Spend a one-time link on a new password; returns the account's user name."""
    username = account_links.use_link(caching.cursor(), token, password, client_source())
    caching.saved(caching.ACCOUNTS)
    return username


def has_password(viewer: Viewer) -> bool:
    """Whether the viewer's account has a password (else it signs in only through single sign-on)."""
    return admin.has_password(caching.cursor(), viewer.username)


def change_own_password(viewer: Viewer, current: str, new: str) -> int:
    """The viewer's new password; their other sessions end. Returns how many ended."""
    ended = admin.change_own_password(caching.cursor(), viewer, session_token(), current, new, client_source())
    caching.saved(caching.ACCOUNTS)
    return ended


def mail_configured() -> bool:
    """Whether e-mail is set up (else links are handed out, and a forgotten password goes to a coordinator)."""
    return smtp.configured()
