"""Open the database for the configured framework, and seed it with the sample program."""

from pathlib import Path

from data_models import Framework
from tracker import importing
from tracker.config import Settings
from tracker.framework import parse_framework, read_framework_text
from tracker.store import Cursor, Database, open_database

IMPORT_ORDER = ("staff", "learners", "evidence", "ratings")


def open_configured(cfg: Settings) -> tuple[Database, Framework]:
    text = read_framework_text(cfg.framework_path)
    framework = parse_framework(text, source=cfg.framework_path.name)
    db = open_database(cfg.db_path, framework, text)
    return db, framework


def is_empty(cur: Cursor) -> bool:
    return cur.execute("SELECT count(*) FROM learners").fetchone()[0] == 0  # type: ignore[index]


def seed_directory(
    cur: Cursor, folder: Path, framework: Framework, actor: str, progress: importing.Progress | None = None
) -> dict[str, int]:
    """Import staff, learners, evidence and ratings CSVs from a folder, each file whole or not at all."""
    added = {}
    for kind in IMPORT_ORDER:
        result = importing.import_file(cur, kind, folder / f"{kind}.csv", framework, actor, progress)
        added[kind] = result.added
    return added
