"""Shared model configuration and field types."""

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

LIST_SEPARATOR = ";"  # how a list is written in one CSV cell: "E1;E2"


def _split_cell(value: Any) -> Any:
    """A CSV cell holding a list ("a;b") becomes ["a", "b"]; an empty cell, []."""
    if isinstance(value, str):
        if LIST_SEPARATOR not in value:
            return [value.strip()] if value.strip() else []
        return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
    return value


def _blank_is_none(value: Any) -> Any:
    """An empty CSV cell of an optional reference means: none."""
    return None if isinstance(value, str) and not value.strip() else value


LINK_SCHEMES = ("http", "https", "mailto")


def is_safe_link(url: str) -> bool:
    """Only web and mail addresses are links (never javascript:, data: and the like)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in LINK_SCHEMES or any(c.isspace() or not c.isprintable() for c in url.strip()):
        return False
    return bool(parts.path) if scheme == "mailto" else bool(parts.netloc)


def _link_or_empty(value: Any) -> Any:
    if isinstance(value, str) and value.strip() and not is_safe_link(value):
        raise ValueError("a link must be a web address (http:// or https://) or an e-mail address (mailto:)")
    return value.strip() if isinstance(value, str) else value


# Control characters (NUL, escape, backspace, ...) in text are never meant: they come from a damaged file or a paste,
# and they break exports and terminals. Long text keeps tab and line breaks; a one-line text keeps none.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_LONG_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _no_control(pattern: re.Pattern[str]) -> Any:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found:
            raise ValueError(
                f"contains the control character U+{ord(found.group()):04X} at position {found.start() + 1}; remove it"
            )
        return value

    return AfterValidator(check)


Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), _no_control(_CONTROL)]
LongText = Annotated[str, StringConstraints(max_length=10_000), _no_control(_CONTROL_IN_LONG_TEXT)]
Link = Annotated[str, StringConstraints(max_length=2_000), AfterValidator(_link_or_empty)]
HalfLevel = Annotated[float, Field(multiple_of=0.5, ge=0)]
OptionalId = Annotated[Id | None, BeforeValidator(_blank_is_none)]


def CellList(item: Any) -> Any:
    """A list field that also accepts a CSV cell of `;`-separated items."""
    return Annotated[list[item], BeforeValidator(_split_cell)]


class Strict(BaseModel):
    """A model that refuses unknown fields, so a typo in a file fails loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)
