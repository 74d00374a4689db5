"""The house's layering holds (pyproject.toml, [tool.importlinter]): packages import downwards only, no circle between
packages or between the modules of one, pages reach the engine through the web adapter, Streamlit stays in the web
adapter. And the check bites: a copy of the code with a circle, or with an import against the layering, fails it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.xdist_group("test_layers")  # one worker: its module-scoped fixture is made once

LINT = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]


def lint(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run(
        [*LINT, "--config", str(folder / "pyproject.toml")], cwd=folder, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's code and its import contracts, to break on purpose."""
    folder = tmp_path_factory.mktemp("house")
    for package in ("tracker", "pages", "data_models"):
        shutil.copytree(ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    return folder


def test_the_project_keeps_every_import_contract() -> None:
    run = lint(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def _with_line(path: Path, line: str) -> str:
    """Add an import at the end of a module; returns the text before, to put it back."""
    before = path.read_text()
    path.write_text(before + f"\n{line}\n")
    return before


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # a circle between two modules of one package: opening imports database, and now database imports opening
        ("tracker/storage/database.py", "from tracker.storage import opening  # noqa", "No circle"),
        # a circle between two packages, through modules that do not import each other
        ("tracker/access/policy.py", "from tracker.analysis import coverage  # noqa", "No circle"),
        # the storage reaching up into the web adapter
        ("tracker/storage/derived.py", "from tracker.web import caching  # noqa", "import downwards only"),
        # a page going around the web adapter to the storage
        ("pages/views/home.py", "from tracker.storage import database  # noqa", "through the web adapter"),
        # Streamlit below the web adapter
        ("tracker/analysis/queries.py", "import streamlit  # noqa", "Streamlit only"),
    ],
)
def test_a_circle_or_an_import_against_the_layering_breaks_the_check(
    code: Path, module: str, line: str, broken: str
) -> None:
    path = code / module
    before = _with_line(path, line)
    try:
        run = lint(code)
    finally:
        path.write_text(before)
    assert run.returncode != 0, run.stdout
    failed = [block for block in run.stdout.split("\n\n") if "BROKEN" in block]
    assert any(broken in block for block in failed), run.stdout


def test_the_copy_is_clean_before_it_is_broken(code: Path) -> None:
    run = lint(code)
    assert run.returncode == 0, run.stdout + run.stderr
