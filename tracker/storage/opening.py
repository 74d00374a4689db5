"""Open the database: the embedded file or server mode's copy (the one place that chooses), migrated, with its framework."""

from pathlib import Path

import duckdb

from data_models import Framework
from tracker.core.config import settings
from tracker.core.errors import FrameworkError, TrackerError
from tracker.storage import backups, framework_tables
from tracker.storage.database import Database, unreadable
from tracker.storage.schema import apply_migrations


def open_database(
    path: str | Path,
    framework: "Framework | FrameworkError",
    source_yaml: str,
    server: str = "",
    temporary_copy: bool = False,
) -> Database:
    """Open (creating, migrating) the database. A database without a framework accepts this one; otherwise the
    database's accepted framework stays in force (tracker/records/revision.py) whatever `framework` says. With `server` (a
    postgresql:// address), `path` is this process's copy of PostgreSQL's records (tracker/storage/replica.py)."""
    if not server:  # the configured database's copy opens in server mode whoever opens it
        cfg = settings()
        if cfg.server_url and Path(path) == cfg.db_path:
            server, temporary_copy = cfg.server_url, cfg.copy_temporary
    if server:
        from tracker.storage import replica

        db: Database = replica.open_server(server, Path(path), temporary_copy)
    else:
        backups.refuse_unfinished(Path(path))  # never an empty database where a restore stopped or a file went
        db = Database(path)
    try:
        cur = db.cursor()
        if not server:
            apply_migrations(cur)
        framework_tables.sync(cur, framework, source_yaml)
    except (duckdb.Error, TrackerError) as exc:
        db.close()
        if isinstance(exc, TrackerError):
            raise
        raise unreadable(path, exc) from None
    return db
