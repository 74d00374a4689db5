"""Work a local command hands to the running app: DuckDB lets one process open the database file, so while the
app runs, `python -m tracker backup`, `import` and `export` ask the app to do the work through its own connection.

The app writes where it listens and a fresh secret into a file beside the database that only its owner can
read (`tracker.duckdb.control`); a command presents the secret. The file goes when the app stops.

An answer that is not a success carries the kind of error as well as its message, so the command raises the same
error (and exits with the same code) as it would have working on the file itself."""

import contextlib
import json
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tracker.core.errors import DatabaseBusy, EnvironmentStop, ImportProblems, TrackerError

BACKUP = "/milestone/backup"  # POST {"token", "out"}: the app copies its database into the new file `out`
IMPORT = "/milestone/import"  # POST {"token", "kind", "file"}: the app imports the file whole, or nothing of it
EXPORT = "/milestone/export"  # POST {"token", "kind"}: the app answers with the records as CSV text
REMIND = (
    "/milestone/remind"  # POST {"token", "dry_run"}: the app sends today's reminder digests (tracker/mail/reminders.py)
)
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


# ---- what an answer says about a failure -------------------------------------------------------
def refusal(exc: TrackerError) -> dict[str, Any]:
    """A failure of work handed to the app, as the command will raise it again (see `_raise`)."""
    if isinstance(exc, ImportProblems):
        return {"error": "problems", "source": exc.source, "problems": exc.problems}
    return {"error": "environment" if isinstance(exc, EnvironmentStop) else "input", "message": str(exc)}


def _raise(answer: str, code: int) -> None:
    try:
        said = json.loads(answer)
    except ValueError:
        said = None
    if not isinstance(said, dict) or "error" not in said:
        raise TrackerError(answer or f"The running app refused the command ({code}).")
    if said["error"] == "problems":
        raise ImportProblems(str(said["source"]), [str(p) for p in said["problems"]])
    if said["error"] == "environment":
        raise EnvironmentStop(str(said["message"]))
    raise TrackerError(str(said["message"]))


def _ask(db_path: Path, route: str, asked: dict[str, Any], busy: DatabaseBusy) -> str:
    """POST the work to the running app with its secret; its answer, or the error it names. Raise `busy` when no
    app answers (none published its address, or the one that did has stopped)."""
    app = _published(db_path)
    if app is None:
        raise busy
    body = json.dumps({"token": app["token"], **asked}).encode()
    request = urllib.request.Request(  # noqa: S310 - the address the app itself published
        str(app["url"]) + route, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=3600) as answer:  # noqa: S310
            return str(answer.read().decode())
    except urllib.error.HTTPError as exc:
        _raise(exc.read().decode(), exc.code)
        raise AssertionError("unreachable") from None
    except OSError:
        raise busy from None


def backup_through_app(db_path: Path, out: Path, busy: DatabaseBusy) -> str:
    """Ask the running app to copy the database into `out`; raise `busy` when no app answers."""
    return _ask(db_path, BACKUP, {"out": str(out.resolve())}, busy)


def import_through_app(db_path: Path, kind: str, file: Path, busy: DatabaseBusy) -> dict[str, Any]:
    """Ask the running app to import `file` (whole, or nothing of it); {"added", "unchanged"} as it counted them."""
    try:
        with file.open("rb"):  # the app reads it as the same account; a missing file is named as it was typed
            pass
    except OSError as exc:
        raise TrackerError(f"{file}: cannot read the file ({exc.strerror}); check the name and the folder") from None
    answer = json.loads(_ask(db_path, IMPORT, {"kind": kind, "file": str(file.resolve())}, busy))
    return {"added": int(answer["added"]), "unchanged": int(answer["unchanged"])}


def export_through_app(db_path: Path, kind: str, busy: DatabaseBusy) -> str:
    """The records of one kind as CSV text, read by the running app."""
    return _ask(db_path, EXPORT, {"kind": kind}, busy)
