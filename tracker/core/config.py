"""Paths and settings, read once from the environment."""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the project folder (tracker/core/config.py is two below it)


@dataclass(frozen=True)
class Settings:
    db_path: Path  # the DuckDB file; in server mode this process's copy of PostgreSQL's records
    framework_path: Path
    sample_dir: Path
    max_failed_sign_ins: int
    max_failed_sign_ins_per_source: int
    lockout_minutes: int
    session_hours: int
    memory_limit: str
    cookie_secure: str
    invitation_hours: float
    reset_minutes: float
    link_requests_per_account: int
    link_requests_per_source: int
    public_url: str
    sso_issuer: str  # single sign-on: the issuer the provider's tokens must name ("": from server_metadata_url)
    smtp: "SmtpSettings"
    server_url: str = ""  # server mode: TRACKER_DB is a postgresql:// address (tracker/storage/replica.py)
    copy_temporary: bool = False  # server mode without TRACKER_COPY: the copy is this process's own, removed at close
    pg_lock_seconds: float = 20.0  # server mode: how long a save waits for the one write lock before it gives up
    pg_idle_seconds: float = 120.0  # server mode: a write holding the lock but silent this long is ended by PostgreSQL
    pg_statement_seconds: float = 300.0  # server mode: the longest one statement to PostgreSQL may run


@dataclass(frozen=True)
class SmtpSettings:
    """How the app sends e-mail (invitations, reset links); off while host or sender is unset."""

    host: str
    port: int
    tls: str  # starttls | ssl | none
    user: str
    password: str
    sender: str

    @property
    def configured(self) -> bool:
        return bool(self.host and self.sender)


def settings() -> Settings:
    db = os.environ.get("TRACKER_DB", "")
    server = db if db.startswith(("postgresql://", "postgres://")) else ""
    copy = os.environ.get("TRACKER_COPY", "")
    if server:
        path = Path(copy) if copy else Path(tempfile.gettempdir()) / f"milestone-copy-{os.getpid()}.duckdb"
    else:
        path = Path(db) if db else ROOT / "data" / "tracker.duckdb"
    return Settings(
        db_path=path,
        server_url=server,
        copy_temporary=bool(server and not copy),
        pg_lock_seconds=float(os.environ.get("TRACKER_PG_LOCK_SECONDS", "20")),
        pg_idle_seconds=float(os.environ.get("TRACKER_PG_IDLE_SECONDS", "120")),
        pg_statement_seconds=float(os.environ.get("TRACKER_PG_STATEMENT_SECONDS", "300")),
        framework_path=Path(os.environ.get("TRACKER_FRAMEWORK", ROOT / "competencies.yaml")),
        sample_dir=Path(os.environ.get("TRACKER_SAMPLE_DIR", ROOT / "sample_data")),
        max_failed_sign_ins=int(os.environ.get("TRACKER_MAX_FAILED_SIGN_INS", "5")),
        max_failed_sign_ins_per_source=int(os.environ.get("TRACKER_MAX_FAILED_SIGN_INS_PER_SOURCE", "30")),
        lockout_minutes=int(os.environ.get("TRACKER_LOCKOUT_MINUTES", "15")),
        session_hours=int(os.environ.get("TRACKER_SESSION_HOURS", "12")),
        memory_limit=os.environ.get("TRACKER_MEMORY_LIMIT", "512MB"),
        cookie_secure=os.environ.get("TRACKER_COOKIE_SECURE", "auto"),
        invitation_hours=float(os.environ.get("TRACKER_INVITATION_HOURS", "72")),
        reset_minutes=float(os.environ.get("TRACKER_RESET_MINUTES", "60")),
        link_requests_per_account=int(os.environ.get("TRACKER_LINK_REQUESTS_PER_ACCOUNT", "3")),
        link_requests_per_source=int(os.environ.get("TRACKER_LINK_REQUESTS_PER_SOURCE", "10")),
        public_url=os.environ.get("TRACKER_PUBLIC_URL", "http://localhost:8501").rstrip("/"),
        sso_issuer=os.environ.get("TRACKER_SSO_ISSUER", "").strip(),
        smtp=SmtpSettings(
            host=os.environ.get("TRACKER_SMTP_HOST", ""),
            port=int(os.environ.get("TRACKER_SMTP_PORT", "587")),
            tls=os.environ.get("TRACKER_SMTP_TLS", "starttls"),
            user=os.environ.get("TRACKER_SMTP_USER", ""),
            password=os.environ.get("TRACKER_SMTP_PASSWORD", ""),
            sender=os.environ.get("TRACKER_MAIL_FROM", ""),
        ),
    )
