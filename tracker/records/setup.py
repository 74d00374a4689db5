"""Open the database for the configured framework, and seed it with a program's records from a folder of CSV files (the
sample program), in import order."""

from pathlib import Path

from data_models import Framework
from tracker.core.config import Settings
from tracker.core.errors import FrameworkError
from tracker.framework.loading import parse_framework, read_framework_text
from tracker.plans import plan_actions
from tracker.records import importing
from tracker.storage import framework_tables
from tracker.storage.database import Cursor, Database
from tracker.storage.opening import open_database

IMPORT_ORDER = ("staff", "learners", "evidence", "ratings", "meetings", "decisions", "goals")


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
    framework = framework_tables.accepted(db.cursor())
    assert framework is not None  # open_database accepts a framework or raises
    plan_actions.open_missing(db.cursor(), framework)  # decisions recorded before their outcome opened a plan
    return db, framework


def is_empty(cur: Cursor) -> bool:
    return cur.execute("SELECT count(*) FROM learners").fetchone()[0] == 0  # type: ignore[index]
