"""Open the database for the configured framework, and seed it with the sample program."""

from pathlib import Path

from data_models import Framework
from tracker import importing, plans, revision
from tracker.config import Settings
from tracker.errors import FrameworkError
from tracker.framework import parse_framework, read_framework_text
from tracker.store import Cursor, Database, open_database

IMPORT_ORDER = ("staff", "learners", "evidence", "ratings", "meetings", "decisions", "goals")


def open_configured(cfg: Settings) -> tuple[Database, Framework]:
    """The database and the framework in force: the one it accepted (a fresh database accepts the configured
    file). A configured file that differs waits for `framework upgrade` (revision.pending says what it changes)."""
    configured: Framework | FrameworkError
    try:
        text = read_framework_text(cfg.framework_path)
        configured = parse_framework(text, source=cfg.framework_path.name)
    except FrameworkError as problems:  # with an accepted version in the database, it stays in force
        configured, text = problems, ""
    db = open_database(cfg.db_path, configured, text, cfg.server_url, cfg.copy_temporary)
    framework = revision.accepted(db.cursor())
    assert framework is not None  # open_database accepts a framework or raises
    plans.open_missing(db.cursor(), framework)  # decisions recorded before their outcome opened a plan
    return db, framework


def is_empty(cur: Cursor) -> bool:
    return cur.execute("SELECT count(*) FROM learners").fetchone()[0] == 0  # type: ignore[index]


def seed_directory(
    cur: Cursor, folder: Path, framework: Framework, actor: str, progress: importing.Progress | None = None
) -> dict[str, int]:
    """Import the CSV files of a folder in IMPORT_ORDER, each file whole or not at all; the review meetings and
    decisions and the goals of learning plans are optional (a folder written before they existed has none)."""
    added = {}
    for kind in IMPORT_ORDER:
        if kind in ("meetings", "decisions", "goals") and not (folder / f"{kind}.csv").exists():
            continue
        result = importing.import_file(cur, kind, folder / f"{kind}.csv", framework, actor, progress)
        added[kind] = result.added
    return added
