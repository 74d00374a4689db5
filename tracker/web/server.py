"""HTTP routes served beside the Streamlit app (st.App in dashboard.py): the browser's session cookie, a health
check, and one handler that turns an uncaught error of a page into a message instead of a traceback."""

import contextlib
import hmac
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from tracker.accounts import sessions
from tracker.core.config import settings
from tracker.core.errors import ImportProblems, TrackerError
from tracker.core.text import markdown_escaped
from tracker.records import exporting, importing
from tracker.storage import backups, control, database
from tracker.storage.database import Cursor
from tracker.web import server_paths

log = logging.getLogger("milestone.server")
COMMAND_ACTOR = "cli"  # work a command hands to the app is audited as the command's own


def _cursor() -> Cursor:
    from tracker.web import (
        caching,  # the app's one cached database (same process)
    )

    return caching.cursor()


def _followed_cursor() -> Cursor:
    """The cursor for a command's read: in server mode after the copy has taken up every save made elsewhere."""
    from tracker.web import caching

    caching.follow(wait=True)
    return caching.cursor()


def _secure(request: Request) -> bool:
    """Mark the cookie Secure when the app is reached over HTTPS (TRACKER_COOKIE_SECURE=auto), or always/never."""
    mode = settings().cookie_secure
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def _origin(url: str) -> tuple[str, str, int] | None:
    """The origin (scheme, host, port) of an address; None for anything but http(s), such as an Origin of "null"."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def from_own_page(request: Request) -> bool:
    """Whether a browser's request comes from one of the app's own pages: its Origin header (else its Referer) names
    the address the request was sent to, or TRACKER_PUBLIC_URL's (behind a proxy). Browsers send Origin with every
    POST of a script (ours is one, tracker/web/session.py); a request that names neither is refused."""
    claimed = _origin(request.headers.get("origin") or request.headers.get("referer") or "")
    return claimed is not None and claimed in {_origin(str(request.url)), _origin(settings().public_url)}


CROSS_ORIGIN = "Not allowed: this request does not come from Milestone's own pages."


async def session(request: Request) -> Response:
    """Exchange a sign-in's one-time ticket for the browser's own session, kept in an HttpOnly cookie. Only for
    Milestone's own pages: another site's page must not sign a visitor in to an account of its choosing (login
    cross-site request forgery)."""
    if not from_own_page(request):
        return PlainTextResponse(CROSS_ORIGIN, status_code=403)
    form = await request.form()
    exchanged = await run_in_threadpool(sessions.exchange_ticket, _cursor(), str(form.get("ticket") or ""))
    if exchanged is None:
        return PlainTextResponse("Unknown or expired ticket.", status_code=403)
    token, expires = exchanged
    response = Response(status_code=204)
    response.set_cookie(
        server_paths.COOKIE,
        token,
        max_age=max(0, int((expires - database.now()).total_seconds())),  # as long as the session lasts
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


async def sign_out(request: Request) -> Response:
    """End the cookie's session (if any) and drop the cookie."""
    token = request.cookies.get(server_paths.COOKIE)
    if token:
        await run_in_threadpool(sessions.sign_out, _cursor(), token)
    response = Response(status_code=204)
    response.delete_cookie(server_paths.COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


async def health(request: Request) -> Response:
    def check() -> None:
        _cursor().execute("SELECT 1").fetchone()
        from tracker.web import caching

        replica = getattr(caching.database()[0], "replica", None)
        if replica is not None:  # server mode: PostgreSQL answers too
            replica.ping()

    try:
        await run_in_threadpool(check)
    except Exception as exc:
        log.warning("health check failed: %s", exc)
        return PlainTextResponse("database unavailable", status_code=503)
    return PlainTextResponse("ok")


_control_token = ""  # the secret a local command presents to hand work to the app (tracker/storage/control.py)


async def _asked(request: Request, *fields: str) -> dict[str, str] | None:
    """The command's request when it presents the app's secret and names every field as text; else None."""
    try:
        asked = await request.json()
    except ValueError:
        return None
    if not (
        _control_token
        and isinstance(asked, dict)
        and hmac.compare_digest(str(asked.get("token", "")), _control_token)
        and all(isinstance(asked.get(f), str) for f in fields)
    ):
        return None
    return asked


def _refused(exc: TrackerError) -> Response:
    status = 422 if isinstance(exc, ImportProblems) else 409
    return JSONResponse(control.refusal(exc), status_code=status)


NOT_ALLOWED = "Not allowed."


async def backup(request: Request) -> Response:
    """Copy the database into a new file, for `python -m tracker backup` run while the app holds the database."""
    asked = await _asked(request, "out")
    if asked is None:
        return PlainTextResponse(NOT_ALLOWED, status_code=403)
    try:
        await run_in_threadpool(lambda: backups.backup_open(_followed_cursor(), asked["out"]))
    except TrackerError as exc:
        return _refused(exc)
    return PlainTextResponse(f"The running app wrote a backup of {settings().db_path} to {asked['out']}.")


def _import(kind: str, file: str) -> importing.ImportResult:
    from tracker.web import caching

    result = importing.import_file(_cursor(), kind, file, caching.framework(), COMMAND_ACTOR)
    caching.saved_everything()  # any figure may have changed
    return result


async def import_records(request: Request) -> Response:
    """Import a file whole or not at all, for `python -m tracker import` run while the app holds the database:
    the same checks, the same transaction and the same messages as the command working on the file itself."""
    asked = await _asked(request, "kind", "file")
    if asked is None or asked["kind"] not in importing.KINDS:
        return PlainTextResponse(NOT_ALLOWED, status_code=403)
    try:
        result = await run_in_threadpool(_import, asked["kind"], asked["file"])
    except TrackerError as exc:
        return _refused(exc)
    return JSONResponse({"added": result.added, "unchanged": result.unchanged})


async def export_records(request: Request) -> Response:
    """The records of one kind as CSV, for `python -m tracker export` run while the app holds the database."""
    asked = await _asked(request, "kind")
    if asked is None or asked["kind"] not in exporting.EXPORT_SQL:
        return PlainTextResponse(NOT_ALLOWED, status_code=403)
    try:
        text = await run_in_threadpool(lambda: exporting.export_csv(_followed_cursor(), asked["kind"]))
    except TrackerError as exc:
        return _refused(exc)
    return PlainTextResponse(text, media_type="text/csv")


async def remind(request: Request) -> Response:
    """Send today's reminder digests, for `python -m tracker remind` run (by a scheduler) while the app holds the
    database."""
    from tracker.mail import reminders
    from tracker.storage import framework_tables

    try:
        asked = await request.json()
    except ValueError:
        asked = None
    if not (
        _control_token
        and isinstance(asked, dict)
        and hmac.compare_digest(str(asked.get("token", "")), _control_token)
        and isinstance(asked.get("dry_run"), bool)
    ):
        return PlainTextResponse("Not allowed.", status_code=403)

    def send() -> tuple[str, bool]:
        cur = _cursor()
        framework = framework_tables.accepted(cur)
        assert framework is not None  # the app accepted one as it opened the database
        return reminders.report(reminders.run(cur, framework, dry_run=asked["dry_run"]), asked["dry_run"])

    try:
        text, all_sent = await run_in_threadpool(send)
    except TrackerError as exc:
        return PlainTextResponse(str(exc), status_code=409)
    return PlainTextResponse(text, status_code=200 if all_sent else control.FAILED_SENDS)


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Open the database as the server starts; while it serves, a local command can find it and hand it a
    backup, an import or an export (tracker/storage/control.py)."""
    global _control_token
    from streamlit import config

    from tracker.web import warming

    try:  # open the database (migrations, framework) while the server starts, not on the first visitor's request
        await run_in_threadpool(_cursor)
        await run_in_threadpool(warming.warm_up)
        threading.Thread(target=warming.keep_warm, name="milestone-keep-warm", daemon=True).start()
    except TrackerError as exc:  # the first page says what is wrong, with what to do
        log.warning("database not ready at start: %s", exc)
    db_path = settings().db_path.resolve()
    host = config.get_option("server.address") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else host  # noqa: S104 - mapped to loopback
    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    url = f"http://{host}:{config.get_option('server.port')}" + (f"/{base}" if base else "")
    try:
        _control_token = control.publish(db_path, url)
    except OSError as exc:
        log.warning("no commands through the app: cannot write %s (%s)", control.control_file(db_path), exc)
    try:
        yield
    finally:
        control.withdraw(db_path)


def routes() -> list[BaseRoute]:
    return [
        Route(control.BACKUP, backup, methods=["POST"]),
        Route(control.IMPORT, import_records, methods=["POST"]),
        Route(control.EXPORT, export_records, methods=["POST"]),
        Route(control.REMIND, remind, methods=["POST"]),
        Route(server_paths.SESSION, session, methods=["POST"]),
        Route(server_paths.SIGN_OUT, sign_out, methods=["POST"]),
        Route(server_paths.HEALTH, health, methods=["GET"]),
    ]


def on_script_error(exc: Exception) -> bool:
    """An error no page expected: log it with a reference, show the reference, never the traceback."""
    import streamlit as st

    reference = uuid.uuid4().hex[:8]
    log.error("uncaught error %s", reference, exc_info=exc)
    if database.is_disk_full(exc) or database.is_damage(exc):
        exc = database.unreadable(settings().db_path, exc)
    if isinstance(exc, TrackerError):
        st.error(markdown_escaped(exc), icon=":material/error:")
    else:
        st.error(
            f"Something went wrong on this page (reference {reference}). Reload the page; if it happens again, "
            "tell the program coordinator the reference.",
            icon=":material/error:",
        )
    return True
