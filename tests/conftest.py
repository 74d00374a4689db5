"""Shared fixtures: the real framework, a real DuckDB file seeded with the sample program, viewers."""

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st

from data_models import Framework
from tracker.access.policy import Viewer, viewer_for_person
from tracker.accounts import admin, sessions
from tracker.framework.loading import load_framework
from tracker.records.setup import seed_directory
from tracker.storage.database import Cursor, Database
from tracker.storage.opening import open_database
from tracker.web import caching

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK_YAML = ROOT / "competencies.yaml"
SAMPLE = ROOT / "sample_data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--server-mode",
        action="store_true",
        help="run the database fixtures in server mode: each test's database in a PostgreSQL the tests start, "
        "read through a DuckDB copy (TRACKER_DB=postgresql://..., TRACKER_COPY)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not server_mode(config):
        return
    skip = pytest.mark.skip(
        reason="the embedded mode's own file (damage, restore, commands handed to the app; the growth processes, "
        "which open their own file in either mode): server mode's counterparts are in tests/test_server_mode.py"
    )
    for item in items:
        if "embedded_only" in item.keywords:
            item.add_marker(skip)


def server_mode(config: pytest.Config) -> bool:
    return bool(config.getoption("--server-mode"))


def _open_test_database(path: Path, framework: Framework) -> Database:
    """The test's database: the file itself, or in server mode the copy of TRACKER_DB's PostgreSQL database."""
    url = os.environ.get("TRACKER_DB", "")
    server = url if url.startswith("postgresql://") else ""
    return open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"), server)


@pytest.fixture(scope="session")
def framework() -> Framework:
    return load_framework(FRAMEWORK_YAML)


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory, framework: Framework) -> Path:
    """The sample program loaded once through the real importer, then copied for each test."""
    path = tmp_path_factory.mktemp("template") / "sample.duckdb"
    db = open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    seed_directory(db.cursor(), SAMPLE, framework, "test-setup")
    admin.create_demo_accounts(db.cursor())
    db.con.execute("CHECKPOINT")
    db.close()
    return path


# ---- server mode: a PostgreSQL server the tests start ---------------------------------------------
@pytest.fixture(scope="session")
def postgres():  # type: ignore[no-untyped-def]
    """A PostgreSQL server for the session (Debian's `postgresql` package), stopped at the end."""
    from tests import postgres_server

    if postgres_server.binaries() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql): server mode is not tested")
    server = postgres_server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def server_template(postgres, framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    """A PostgreSQL database holding the sample program and demo accounts, loaded once through a copy."""
    url = postgres.create_database("seeded")
    db = open_database(
        tmp_path_factory.mktemp("seeding") / "copy.duckdb", framework, FRAMEWORK_YAML.read_text(encoding="utf-8"), url
    )
    seed_directory(db.cursor(), SAMPLE, framework, "test-setup")
    admin.create_demo_accounts(db.cursor())
    db.close()
    return "seeded"


def _database_from_template(postgres, template: str) -> str:  # type: ignore[no-untyped-def]
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return str(postgres.url(name))


@pytest.fixture
def server_db(postgres, server_template: str) -> str:  # type: ignore[no-untyped-def]
    """A fresh PostgreSQL database with the sample program (a copy of the template); its address."""
    return _database_from_template(postgres, server_template)


# With --server-mode: makes a fresh PostgreSQL database holding the sample program, for tests that start their own
# app over a copy of the seeded template (the browser tests); None in the embedded mode.
fresh_server_database: Callable[[], str] | None = None


@pytest.fixture(scope="session", autouse=True)
def _server_mode_databases(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    global fresh_server_database
    if server_mode(request.config):
        postgres, template = request.getfixturevalue("postgres"), request.getfixturevalue("server_template")
        fresh_server_database = lambda: _database_from_template(postgres, template)  # noqa: E731
    yield
    fresh_server_database = None


@pytest.fixture
def db_path(
    tmp_path: Path, seeded_template: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Path:
    """The test's database file: a copy of the seeded sample program; with --server-mode, the copy (TRACKER_COPY)
    of a fresh PostgreSQL database holding the sample program (TRACKER_DB)."""
    path = tmp_path / "tracker.duckdb"
    monkeypatch.setenv("TRACKER_FRAMEWORK", str(FRAMEWORK_YAML))
    if server_mode(request.config):
        monkeypatch.setenv("TRACKER_DB", request.getfixturevalue("server_db"))
        monkeypatch.setenv("TRACKER_COPY", str(path))
        return path
    shutil.copy(seeded_template, path)
    monkeypatch.setenv("TRACKER_DB", str(path))
    return path


@pytest.fixture
def db(db_path: Path, framework: Framework):  # type: ignore[no-untyped-def]
    database = _open_test_database(db_path, framework)
    yield database
    database.close()


@pytest.fixture
def cur(db: Database) -> Cursor:
    return db.cursor()


@pytest.fixture
def empty_db(tmp_path: Path, framework: Framework, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    path = tmp_path / "empty.duckdb"
    if server_mode(request.config):
        import uuid

        postgres = request.getfixturevalue("postgres")
        monkeypatch.setenv("TRACKER_DB", postgres.create_database(f"e_{uuid.uuid4().hex[:12]}"))
        monkeypatch.setenv("TRACKER_COPY", str(path))
    else:
        monkeypatch.setenv("TRACKER_DB", str(path))
    database = _open_test_database(path, framework)
    yield database
    database.close()


def viewer(cur: Cursor, person_id: str) -> Viewer:
    found = viewer_for_person(cur, person_id)
    assert found is not None, person_id
    return found


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    # st.cache_data / st.cache_resource outlive a test in one process
    st.cache_data.clear()
    st.cache_resource.clear()
    # and so would the moment the priors were last learned: each test starts as a freshly started app, whatever
    # the age of the test process (a save then relearns them only PRIORS_SECONDS later, as in the app)
    monkeypatch.setattr(caching, "_priors_learned", {"records": -1, "at": 0.0})
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


# ---- the real app through AppTest --------------------------------------------------------------
def app_as(username: str | None, query: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """The real dashboard, signed in through the real sign-in code (None: anonymous)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    if username:
        from tracker.core.config import settings

        cfg = settings()  # the test's database (in server mode: its copy, through which a sign-in is written)
        db = (
            _open_test_database(cfg.db_path, load_framework(FRAMEWORK_YAML))
            if cfg.server_url
            else Database(cfg.db_path)
        )
        at.session_state["auth.token"] = sessions.sign_in(db.cursor(), username, admin.DEMO_PASSWORD)
        db.close()
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def read(markdown: str) -> str:
    """What a person reads of a Markdown string the app sent (its escapes removed)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def goto(at, url_path: str):  # type: ignore[no-untyped-def]
    """Open a page registered by st.navigation (AppTest.switch_page only knows file pages)."""
    wanted = "" if url_path == "home" else url_path  # the default page is served at the root
    at._page_hash = next(h for h, info in at._registered_pages.items() if info.get("url_pathname") == wanted)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at
