"""What an identity provider's claims (single sign-on, OpenID Connect) must say before they may sign anyone in: an
e-mail the provider has verified, the configured provider as issuer, and a token issued just now."""

import datetime as dt
from collections.abc import Mapping

from tracker.core.errors import SignInError, StaleIdentity

DISCOVERY_SUFFIX = "/.well-known/openid-configuration"

# Streamlit keeps the provider's identity in a cookie for 30 days, whatever our sessions last. The identity may start
# a session only right after the provider issued it (the page runs seconds after the provider's callback), so an
# expired, ended or restored-away session is never renewed from the cookie: the person goes through the provider
# again. The margin allows for slow networks and for the provider's clock running ahead of ours.
ISSUED_WITHIN_SECONDS = 300


def issuer_of(server_metadata_url: str) -> str:
    """The issuer a provider's discovery address names: OpenID Connect Discovery places the document at the issuer's
    address followed by /.well-known/openid-configuration ("" when the address does not end so)."""
    url = server_metadata_url.strip()
    return url[: -len(DISCOVERY_SUFFIX)] if url.endswith(DISCOVERY_SUFFIX) else ""


def verified_email(claims: Mapping[str, object], issuer: str, now: dt.datetime) -> str:
    """The e-mail an identity may sign in with, checked: SignInError when the provider is not the configured one or
    has not verified the e-mail; StaleIdentity when the identity was issued too long ago (or not said when).

    `claims` are the ID token's (st.user); `issuer` the configured provider's; `now` naive UTC."""
    if not issuer:
        raise SignInError(
            "Single sign-on is not set up completely: the provider's issuer is unknown. "
            "Ask the program coordinator to set TRACKER_SSO_ISSUER."
        )
    if str(claims.get("iss") or "").rstrip("/") != issuer.rstrip("/"):
        raise SignInError(
            "This sign-in comes from another identity provider than the program's. "
            "Sign in with your institution's account, or ask the program coordinator."
        )
    email = str(claims.get("email") or "").strip()
    if not email:
        raise SignInError("Your institution did not say your e-mail address. Ask the program coordinator.")
    if claims.get("email_verified") not in (True, "true"):  # some providers send the flag as text
        raise SignInError(
            "Your institution has not verified your e-mail address, so it cannot pick your account. "
            "Ask the program coordinator."
        )
    issued = claims.get("iat")
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        raise StaleIdentity("Your institution's sign-in does not say when it was made. Sign in again.")
    age = (now - dt.datetime.fromtimestamp(issued, dt.UTC).replace(tzinfo=None)).total_seconds()
    if abs(age) > ISSUED_WITHIN_SECONDS:
        raise StaleIdentity("Your sign-in with your institution has ended here. Sign in with your institution again.")
    return email
