"""Shared fixtures: the real framework, a real DuckDB file seeded with the sample program, viewers."""

import os
import re
import shutil
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


MODES = ("embedded", "server")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--modes",
        default=",".join(MODES),
        help="the storage modes to test, of embedded (a DuckDB file) and server (PostgreSQL, which the tests start, "
        "read through a DuckDB copy); both by default. A test that reads or writes a database runs once per mode",
    )
    parser.addoption("--server-mode", action="store_true", help="the same as --modes server")
    parser.addoption("--embedded-mode", action="store_true", help="the same as --modes embedded")


def chosen_modes(config: pytest.Config) -> tuple[str, ...]:
    if config.getoption("--server-mode"):
        return ("server",)
    if config.getoption("--embedded-mode"):
        return ("embedded",)
    modes = tuple(m.strip() for m in str(config.getoption("--modes")).split(",") if m.strip())
    unknown = set(modes) - set(MODES)
    if unknown or not modes:
        raise pytest.UsageError(f"--modes takes {' and '.join(MODES)}, separated by a comma; not {sorted(unknown)}")
    return modes


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that reads or writes a database (its fixtures ask for `storage_mode`: db_path, db, cur, empty_db, the
    browser tests' app server) runs in each storage mode: `test_x[embedded]`, `test_x[server]`. Module scope, so a
    module's shared app server is started once per mode."""
    if "storage_mode" in metafunc.fixturenames:
        metafunc.parametrize("storage_mode", MODES, scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Both modes run every test that reads or writes through the storage layer. A test that touches no database
    (charts from frames, models, parsers, the framework) runs once, with the embedded mode. Server mode leaves out
    what it would only repeat: tests that read the sample program only as input to what they check (`one_mode`:
    chart specs, PDF layout), the browser tests but the smoke ones (`smoke`), and the tests about the embedded file
    itself (`embedded_only`); the embedded mode leaves out server mode's own tests (`server_only`)."""
    modes = chosen_modes(config)
    kept, left = [], []
    for item in items:
        marks = item.keywords
        callspec = getattr(item, "callspec", None)
        mode = callspec.params.get("storage_mode") if callspec else None
        if mode is None:  # no database fixture: runs once, in the mode it is about
            mode = "server" if "server_only" in marks else "embedded"
        if mode == "server":
            runs = not ({"embedded_only", "one_mode"} & set(marks)) and ("e2e" not in marks or "smoke" in marks)
        else:
            runs = "server_only" not in marks
        (kept if runs and mode in modes else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
    # the slow tests first (browser tests, app servers, PostgreSQL, the growth processes), so that the many short
    # ones fill the workers at the end instead of one long test running alone; a module's tests stay together
    items[:] = [i for i in kept if "slow" in i.keywords] + [i for i in kept if "slow" not in i.keywords]


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"storage modes: {', '.join(chosen_modes(config))}; a test that reads or writes a database runs in each "
        "(server mode: a PostgreSQL the tests start, read through a DuckDB copy)"
    )


@pytest.fixture(scope="module")
def storage_mode() -> str:
    """The storage mode of a test (parametrized by pytest_generate_tests; the embedded mode when not)."""
    return "embedded"


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
def server_template(postgres, framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:  # type: ignore[no-untyped-def]
    """A PostgreSQL database holding the sample program and demo accounts, loaded once through a copy; its name, and
    that copy's file. A test's database is a clone of the one (CREATE DATABASE ... TEMPLATE) and its copy a copy of
    the other: the copy is as far as the clone (the same epoch and change), so it starts without copying a row."""
    url = postgres.create_database("seeded")
    path = tmp_path_factory.mktemp("seeding") / "copy.duckdb"
    db = open_database(path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"), url)
    seed_directory(db.cursor(), SAMPLE, framework, "test-setup")
    admin.create_demo_accounts(db.cursor())
    db.con.execute("CHECKPOINT")
    db.close()
    return "seeded", path


def _database_from_template(postgres, template: str) -> str:  # type: ignore[no-untyped-def]
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return str(postgres.url(name))


@pytest.fixture
def server_db(postgres, server_template: tuple[str, Path]) -> str:  # type: ignore[no-untyped-def]
    """A fresh PostgreSQL database with the sample program (a copy of the template); its address."""
    return _database_from_template(postgres, server_template[0])


def app_database(request: pytest.FixtureRequest, folder: Path, mode: str) -> tuple[Path, str]:
    """The database of an app server a test starts (the browser tests), holding the sample program: the embedded
    file, or in server mode a fresh PostgreSQL database (its address) and the server's copy, as far as it."""
    path = folder / "tracker.duckdb"
    if mode == "server":
        postgres, template = request.getfixturevalue("postgres"), request.getfixturevalue("server_template")
        shutil.copy(template[1], path)
        return path, _database_from_template(postgres, template[0])
    shutil.copy(request.getfixturevalue("seeded_template"), path)
    return path, ""


@pytest.fixture
def db_path(tmp_path: Path, storage_mode: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """The test's database file: a copy of the seeded sample program; in server mode the copy (TRACKER_COPY) of a
    fresh PostgreSQL database holding the sample program (TRACKER_DB)."""
    monkeypatch.setenv("TRACKER_FRAMEWORK", str(FRAMEWORK_YAML))
    path, server = app_database(request, tmp_path, storage_mode)
    if server:
        monkeypatch.setenv("TRACKER_DB", server)
        monkeypatch.setenv("TRACKER_COPY", str(path))
    else:
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
def empty_db(  # type: ignore[no-untyped-def]
    tmp_path: Path,
    storage_mode: str,
    framework: Framework,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
):
    path = tmp_path / "empty.duckdb"
    if storage_mode == "server":
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
