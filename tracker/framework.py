"""Load a competency framework YAML into data_models, reporting every problem with its line."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from data_models import Framework
from tracker.errors import FrameworkError

Loc = tuple[str | int, ...]


def load_framework(path: str | Path) -> Framework:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FrameworkError(str(path), [f"{path}: cannot read the file ({exc.strerror})"]) from None
    return parse_framework(text, source=path.name)


def parse_framework(text: str, source: str = "<framework>") -> Framework:
    """Validate completely; raise FrameworkError listing every problem as `file:line: path: message`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise FrameworkError(source, [f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise FrameworkError(source, [f"{source}:1: the file must hold a mapping with id, version, domains, ..."])
    try:
        framework = Framework.model_validate(data, context={"defer_problems": True})
    except ValidationError as exc:
        problems = [_located(source, node, tuple(e["loc"]), _message(e)) for e in exc.errors(include_url=False)]
        raise FrameworkError(source, problems) from None
    problems = [_located(source, node, loc, msg) for loc, msg in framework.problems()]
    if problems:
        raise FrameworkError(source, problems)
    return framework


def _message(error: Any) -> str:
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown field (check its spelling)"
    if error["type"] == "missing":
        return "required field is missing"
    return msg


def _located(source: str, root: yaml.Node | None, loc: Loc, message: str) -> str:
    return f"{source}:{_line_of(root, loc)}: {format_loc(loc)}: {message}"


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: Loc) -> int:
    """The line of the deepest YAML node the path reaches (1-based)."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
