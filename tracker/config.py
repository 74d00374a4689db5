"""Paths and settings, read once from the environment."""

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    db_path: Path
    framework_path: Path
    sample_dir: Path
    max_failed_sign_ins: int
    lockout_minutes: int
    session_hours: int
    memory_limit: str
    cookie_secure: str


def settings() -> Settings:
    return Settings(
        db_path=Path(os.environ.get("TRACKER_DB", ROOT / "data" / "tracker.duckdb")),
        framework_path=Path(os.environ.get("TRACKER_FRAMEWORK", ROOT / "competencies.yaml")),
        sample_dir=Path(os.environ.get("TRACKER_SAMPLE_DIR", ROOT / "sample_data")),
        max_failed_sign_ins=int(os.environ.get("TRACKER_MAX_FAILED_SIGN_INS", "5")),
        lockout_minutes=int(os.environ.get("TRACKER_LOCKOUT_MINUTES", "15")),
        session_hours=int(os.environ.get("TRACKER_SESSION_HOURS", "12")),
        memory_limit=os.environ.get("TRACKER_MEMORY_LIMIT", "512MB"),
        cookie_secure=os.environ.get("TRACKER_COOKIE_SECURE", "auto"),
    )
