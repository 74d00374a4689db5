"""E-mail over SMTP (TRACKER_SMTP_* settings): plain-text messages to one person at a time."""

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from tracker.core.config import SmtpSettings, settings
from tracker.core.errors import TrackerError

TIMEOUT_SECONDS = 20


class MailError(TrackerError):
    """The SMTP server could not be reached or refused a message."""


def configured() -> bool:
    return settings().smtp.configured


def send(to: str, subject: str, body: str, smtp: SmtpSettings | None = None) -> None:
    """Send one plain-text message; raise MailError naming the server and what to check."""
    cfg = smtp or settings().smtp
    if not cfg.configured:
        raise MailError("E-mail is not set up: set TRACKER_SMTP_HOST and TRACKER_MAIL_FROM (see the README).")
    if cfg.tls not in ("starttls", "ssl", "none"):
        raise MailError(f"TRACKER_SMTP_TLS is {cfg.tls!r}; use starttls, ssl or none.")
    message = EmailMessage()
    message["From"] = cfg.sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=cfg.sender.rpartition("@")[2] or None)
    message.set_content(body)
    try:
        if cfg.tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=TIMEOUT_SECONDS)
        with client:
            if cfg.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if cfg.user:
                client.login(cfg.user, cfg.password)
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(
            f"Could not send e-mail through {cfg.host}:{cfg.port} ({type(exc).__name__}: {exc}); "
            "check the TRACKER_SMTP_* settings."
        ) from exc
