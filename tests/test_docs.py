"""The README keeps up with the code: two Quick start commands, every command and setting named."""

import re

from tests.conftest import ROOT
from tracker.cli import parser

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_command_is_documented():
    sub = next(a for a in parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert f"`{name}" in README, name
    for users_command in ("users add", "users passwd", "users disable", "users invite"):
        assert users_command in README


def test_every_setting_is_documented():
    source = (ROOT / "tracker" / "core" / "config.py").read_text()
    for name in re.findall(r'"(TRACKER_[A-Z_]+)"', source):
        assert f"`{name}`" in README, name


def test_screenshots_in_the_readme_exist():
    for path in re.findall(r"\]\((docs/screenshots/[^)]+)\)", README):
        assert (ROOT / path).exists(), path
