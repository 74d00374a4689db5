"""Text that came from a person, a file or an address: shown as text, written to CSV so no spreadsheet runs it,
linked only when it is a web or mail address."""

import re

import pandas as pd

from data_models.base import is_safe_link

__all__ = ["csv_cell", "csv_value", "csv_values", "frame_csv", "is_safe_link", "markdown_escaped"]

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&:=^%])")
# Streamlit's Markdown turns web and e-mail addresses in plain text into links after escapes are resolved, so an
# invisible word joiner (U+2060) goes where those patterns would match: the text reads and wraps the same.
_AUTOLINK = re.compile(r"(?<=[A-Za-z])(?=\\:\\?/)|(?<=www)(?=\\\.)|(?=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def markdown_escaped(text: object) -> str:
    """Escape every character Markdown (and Streamlit's own :color[], :icon: and $math$) gives a meaning, so the
    text shows as typed: never bold, a link, an image, HTML or an icon."""
    return _AUTOLINK.sub(WORD_JOINER, _MARKDOWN.sub(r"\\\1", str(text)))


# A cell starting with one of these is read by spreadsheets as a formula (OWASP: CSV injection).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell that no spreadsheet will run: text starting like a formula gets a leading apostrophe, and so does
    text that already starts with an apostrophe before such a character, so that `csv_value` undoes it exactly."""
    if isinstance(value, str) and (value.startswith(FORMULA_LEADS) or (value[:1] == "'" and value[1:2] in _LEADS)):
        return "'" + value
    return value


_LEADS = set(FORMULA_LEADS) | {"'"}


def csv_value(cell: str) -> str:
    """What `csv_cell` wrote, back as it was (the importer reads exports unchanged)."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in _LEADS else cell


def csv_values(column: pd.Series) -> pd.Series:
    """`csv_value` over a column of text cells, at the speed of a large import."""
    text = column.astype(str)
    guarded = (text.str[:1] == "'") & text.str[1:2].isin(_LEADS)
    return column.where(~guarded, text.str[1:]) if guarded.any() else column


def frame_csv(frame: pd.DataFrame) -> str:
    """A table as CSV text for a download: every text cell made safe with `csv_cell`."""
    safe = frame.copy()
    for name in safe.columns:
        if safe[name].dtype == object or pd.api.types.is_string_dtype(safe[name]):
            safe[name] = safe[name].map(csv_cell)
    return safe.to_csv(index=False, lineterminator="\n")
