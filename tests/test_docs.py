"""The README keeps up with the code: two Quick start commands, every command and setting named; the deployment
guide's proxy keeps the commands' routes to the machine."""

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


def test_the_sample_proxy_blocks_every_route_commands_use():
    """The routes a local command hands work to (tracker/storage/control.py) are for the machine itself: the sample
    nginx configuration answers 404 for each of them, and still forwards the pages and the browser's own routes."""
    from tracker.storage import control
    from tracker.web import server_paths

    deployment = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    samples = [b for b in re.findall(r"```nginx\n(.*?)```", deployment, re.S) if "location" in b]
    assert samples, "no nginx server block in docs/deployment.md"
    blocked = [
        re.compile(pattern)
        for sample in samples
        for pattern in re.findall(r"location ~ (\S+) \{ return 40[34]; \}", sample)
    ]

    def refused(path: str) -> bool:
        return any(p.search(path) for p in blocked)

    internal = [v for k, v in vars(control).items() if k.isupper() and isinstance(v, str) and v.startswith("/")]
    assert control.REMIND in internal
    for path in internal:
        assert refused(path) and refused(path + "/"), path
    for path in (server_paths.SESSION, server_paths.SIGN_OUT, server_paths.HEALTH, "/", "/progress", "/_stcore/stream"):
        assert not refused(path), path
