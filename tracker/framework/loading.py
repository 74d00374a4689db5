"""Load a competency framework YAML into data_models, reporting every problem with its line."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from data_models import Framework
from tracker.core.errors import FrameworkError

Loc = tuple[str | int, ...]


MAX_BYTES = 2_000_000  # a whole program's framework is tens of kilobytes; more is a wrong file


def read_framework_text(path: str | Path) -> str:
    """The text of a framework file: refused with a located message when missing, too large or not UTF-8."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise FrameworkError(
                str(path),
                [
                    f"{path}:1: the file is {size / 1e6:.1f} MB; a framework is at most {MAX_BYTES / 1e6:.0f} MB "
                    "(a whole program's framework is tens of kilobytes): check that this is the right file"
                ],
            )
        data = path.read_bytes()
    except OSError as exc:
        raise FrameworkError(str(path), [f"{path}: cannot read the file ({exc.strerror})"]) from None
    return decode_framework(data, path.name)


def decode_framework(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FrameworkError(
            source,
            [
                f"{source}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at byte {exc.start + 1}); "
                "save the file as UTF-8 in your editor"
            ],
        ) from None


def load_framework(path: str | Path) -> Framework:
    path = Path(path)
    return parse_framework(read_framework_text(path), source=path.name)


def parse_framework(text: str, source: str = "<framework>") -> Framework:
    """Validate completely; raise FrameworkError listing every problem as `file:line: path: message`."""
    if len(text) > MAX_BYTES:
        raise FrameworkError(source, [f"{source}:1: more than {MAX_BYTES / 1e6:.0f} MB; a framework is far smaller"])
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            duplicates = _duplicate_keys(node, source)
            if duplicates:
                raise FrameworkError(source, duplicates)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
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


# libyaml's parser when present (many times faster), with PyYAML's safe constructors
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _duplicate_keys(root: yaml.Node | None, source: str) -> list[str]:
    """A key given twice in one mapping, with the lines of both (YAML would silently keep the last)."""
    out: list[str] = []
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, value in node.value:
                line = key.start_mark.line + 1
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name is not None and name in seen:
                    out.append(
                        f"{source}:{line}: the key {name!r} appears twice in one mapping (lines {seen[name]} and {line}); "
                        "keep one"
                    )
                elif name is not None:
                    seen[name] = line
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return sorted(out, key=lambda m: int(m.split(":")[1]))


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
