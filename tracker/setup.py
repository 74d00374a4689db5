"""Open the database for the configured framework, and seed it with the sample program."""

from pathlib import Path

from data_models import Framework
from tracker import importing
from tracker.config import Settings
from tracker.framework import load_framework
from tracker.store import Cursor, Database, open_database

IMPORT_ORDER = ("staff", "learners", "evidence", "ratings", "meetings", "decisions")


def open_configured(cfg: Settings) -> tuple[Database, Framework]:
    framework = load_framework(cfg.framework_path)
    db = open_database(cfg.db_path, framework, cfg.framework_path.read_text(encoding="utf-8"))
    return db, framework


def is_empty(cur: Cursor) -> bool:
    return cur.execute("SELECT count(*) FROM learners").fetchone()[0] == 0  # type: ignore[index]


def seed_directory(
    cur: Cursor, folder: Path, framework: Framework, actor: str, progress: importing.Progress | None = None
) -> dict[str, int]:
    """Import the CSV files of a folder in IMPORT_ORDER, each file whole or not at all; the review meetings and
    decisions are optional (a folder written before they existed has none)."""
    added = {}
    for kind in IMPORT_ORDER:
        if kind in ("meetings", "decisions") and not (folder / f"{kind}.csv").exists():
            continue
        result = importing.import_file(cur, kind, folder / f"{kind}.csv", framework, actor, progress)
        added[kind] = result.added
    return added
