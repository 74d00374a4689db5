"""Work a local command hands to the running app: DuckDB lets one process open the database file, so while the
app runs, `python -m tracker backup` asks the app to make the copy through its own connection.

The app writes where it listens and a fresh secret into a file beside the database that only its owner can
read (`tracker.duckdb.control`); a command presents the secret. The file goes when the app stops."""

import contextlib
import json
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tracker.errors import DatabaseBusy, TrackerError

BACKUP = "/milestone/backup"  # POST {"token", "out"}: the app copies its database into the new file `out`
REMIND = "/milestone/remind"  # POST {"token", "dry_run"}: the app sends today's reminder digests (tracker/remind.py)
FAILED_SENDS = 502  # the status of a reminder run through the app in which a send failed (its text says which)


def control_file(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".control")


def publish(db_path: Path, url: str) -> str:
    """Write the app's address and a new secret beside the database (owner-only); return the secret."""
    token = secrets.token_urlsafe(32)
    path = control_file(db_path)
    fresh = path.with_name(path.name + ".new")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"url": url, "token": token, "pid": os.getpid()}, f)
    fresh.replace(path)
    return token


def withdraw(db_path: Path) -> None:
    with contextlib.suppress(OSError):
        control_file(db_path).unlink()


def _published(db_path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(control_file(db_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and {"url", "token"} <= set(found) else None


def remind_through_app(db_path: Path, dry_run: bool, busy: DatabaseBusy) -> tuple[str, bool]:
    """Ask the running app to send today's reminder digests; its report, and whether every send went out."""
    app = _published(db_path)
    if app is None:
        raise busy
    body = json.dumps({"token": app["token"], "dry_run": dry_run}).encode()
    request = urllib.request.Request(  # noqa: S310 - the address the app itself published
        str(app["url"]) + REMIND, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=3600) as answer:  # noqa: S310
            return str(answer.read().decode()), True
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        if exc.code == FAILED_SENDS:
            return text, False
        raise TrackerError(text or f"The app refused to send the reminders ({exc.code}).") from None
    except OSError:
        raise busy from None


def backup_through_app(db_path: Path, out: Path, busy: DatabaseBusy) -> str:
    """Ask the running app to copy the database into `out`; raise `busy` when no app answers."""
    app = _published(db_path)
    if app is None:
        raise busy
    body = json.dumps({"token": app["token"], "out": str(out.resolve())}).encode()
    request = urllib.request.Request(  # noqa: S310 - the address the app itself published
        str(app["url"]) + BACKUP, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=3600) as answer:  # noqa: S310
            return str(answer.read().decode())
    except urllib.error.HTTPError as exc:
        raise TrackerError(exc.read().decode() or f"The app refused the backup ({exc.code}).") from None
    except OSError:
        raise busy from None
