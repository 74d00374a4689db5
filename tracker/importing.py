"""CSV files -> validated models -> one transaction: a file lands whole or not at all."""

import csv
import datetime as dt
import functools
import io
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, TypeAdapter, ValidationError

from data_models import Decision, Evidence, Framework, Learner, Meeting, RaterRole, Rating, Staff
from data_models.ratings import RATING_RULES, RowRule
from tracker import review_records, store
from tracker.errors import ImportProblems, TrackerError
from tracker.framework import format_loc
from tracker.store import Cursor
from tracker.text import csv_cell, csv_values

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Kind:
    """One kind of record file: its model and its columns (a list is one cell, items separated by `;`)."""

    name: str
    model: type[BaseModel]
    columns: tuple[str, ...]


KINDS = {
    "learners": Kind(
        "learners", Learner, ("id", "name", "email", "cohort", "profession", "start_term", "status", "advisor_id")
    ),
    "staff": Kind("staff", Staff, ("id", "name", "email", "roles")),
    "ratings": Kind("ratings", Rating, tuple(store.RATING_FIELDS)),
    "evidence": Kind(
        "evidence", Evidence, ("id", "learner_id", "type", "title", "competency_ids", "url", "description", "added_on")
    ),
    "meetings": Kind("meetings", Meeting, tuple(Meeting.model_fields)),
    "decisions": Kind("decisions", Decision, tuple(Decision.model_fields)),
}


@dataclass
class ImportResult:
    kind: str
    added: int
    unchanged: int = 0


# ---- reading ----------------------------------------------------------------------------------
CHUNK = 50_000  # rows validated at once; progress is reported per chunk


def read_table(text: str, kind: Kind, source: str) -> pd.DataFrame:
    """Parse CSV text into a frame of strings, one column per field, indexed by row number in the file; a wrong
    header or a row with the wrong number of cells is a clear problem. An empty cell of a field with a default
    (a learner's status, say) means that default."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise ImportProblems(source, [f"{source} row 1 (header): not readable as CSV ({exc})"]) from None
    missing = [c for c in kind.columns if c not in header]
    unknown = [c for c in header if c not in kind.columns]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s): {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s): {', '.join(unknown)}")
        raise ImportProblems(
            source, [f"{source} row 1 (header): {'; '.join(parts)}. Expected: {','.join(kind.columns)}"]
        )
    cells = _cells_read_fast(text, len(header))
    if cells is None:
        cells = _cells_read_row_by_row(reader, len(header), source)
    frame = pd.DataFrame(
        {
            name: csv_values(pd.Series(column, dtype=object)).to_numpy()
            for name, column in zip(header, cells, strict=True)
        },
        index=pd.RangeIndex(2, len(cells[0]) + 2 if cells else 2, name="line"),
        columns=list(kind.columns),
    )
    for name, field in kind.model.model_fields.items():
        default = field.default
        if not field.is_required() and isinstance(default, str) and default:
            frame.loc[frame[name].str.strip() == "", name] = default
    return frame


def _cells_read_fast(text: str, width: int) -> list[np.ndarray] | None:
    """The columns of a plainly well-formed file, read by DuckDB's strict CSV reader (many times faster than the
    csv module). None when DuckDB refuses the file, or the file has what DuckDB reads differently from the csv
    module (a blank line, which DuckDB skips but the row numbers count; a line ending in a comma, whose empty last
    cell DuckDB forgives; a lone carriage return): the csv module then reads it and names every bad row. The two readers agree on every
    file the fast path accepts (tests/test_importing.py)."""
    lines = text.replace("\r\n", "\n")
    if not text.strip() or "\r" in lines or "\n\n" in lines or _ENDS_IN_COMMA.search(lines):
        return None
    names = [f"c{i}" for i in range(width)]
    columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
    select = ", ".join(f"coalesce({n}, '') AS {n}" for n in names)  # an empty cell is an empty string
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.csv"
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        con = duckdb.connect()
        try:
            found = con.execute(
                f"SELECT {select} FROM read_csv(?, header = true, auto_detect = false, delim = ',', "  # noqa: S608
                "quote = '\"', escape = '\"', strict_mode = true, allow_quoted_nulls = false, "
                f"columns = {columns})",
                [str(path)],
            ).fetchnumpy()
        except duckdb.Error:
            return None
        finally:
            con.close()
    return [np.asarray(found[n], dtype=object) for n in names]


_ENDS_IN_COMMA = re.compile(r",(\n|$)")


def _cells_read_row_by_row(reader: Any, width: int, source: str) -> list[np.ndarray]:
    """The columns of a file read by the csv module (its reader, past the header), every row with the wrong
    number of cells named."""
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ImportProblems(source, [f"{source} row {reader.line_num}: not readable as CSV ({exc})"]) from None
    ragged = [i + 2 for i, row in enumerate(rows) if len(row) != width]
    if ragged:
        raise ImportProblems(
            source,
            [
                f"{source} row {n}: {'more' if len(rows[n - 2]) > width else 'fewer'} cells than the {width} columns"
                for n in ragged
            ],
        )
    if not rows:
        return [np.array([], dtype=object) for _ in range(width)]
    return [np.array(column, dtype=object) for column in zip(*rows, strict=True)]


@functools.cache
def _adapter(model: type[BaseModel]) -> TypeAdapter:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _problem_lines(exc: ValidationError, source: str, offset: int, rows: bool = True) -> list[str]:
    out = []
    for e in exc.errors(include_url=False):
        loc = tuple(e["loc"])
        index, field_loc = (loc[0], loc[1:]) if rows else (0, loc)
        field = format_loc(field_loc) if field_loc else "(row)"
        msg = str(e["msg"]).removeprefix("Value error, ")
        out.append((offset + int(index) + 2, f"{source} row {offset + int(index) + 2}, {field}: {msg}"))
    return [m for _, m in sorted(out, key=lambda x: x[0])]


def validate_records(
    records: list[dict[Any, Any]], kind: Kind, source: str, progress: Progress | None = None
) -> tuple[list[tuple[int, Any]], list[str]]:
    """Validate every row against the model; return (row number, model) pairs and one problem per bad field."""
    models: list[tuple[int, Any]] = []
    problems: list[str] = []
    total = len(records)
    for start in range(0, total, CHUNK):
        chunk = records[start : start + CHUNK]
        try:
            valid = _adapter(kind.model).validate_python(chunk)
            models += [(start + i + 2, m) for i, m in enumerate(valid)]
        except ValidationError:
            for i, row in enumerate(chunk):  # the slow path, only for a chunk with a bad row: keep the good ones
                try:
                    models.append((start + i + 2, kind.model.model_validate(row)))
                except ValidationError as exc:
                    problems += _problem_lines(exc, source, start + i, rows=False)
        if progress:
            progress(min(start + CHUNK, total), total)
    return models, problems


# ---- column-wise validation: the model's own field types, each distinct value once ---------------------
@functools.cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter:
    field = model.model_fields[name]
    annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(list[annotation])  # type: ignore[valid-type]


def _validate_values(adapter: TypeAdapter, values: list[str]) -> tuple[np.ndarray, list[Any]]:
    """Which values the field type accepts, and what each becomes (None where refused)."""
    try:
        return np.ones(len(values), dtype=bool), adapter.validate_python(values)
    except ValidationError as exc:
        refused = {int(e["loc"][0]) for e in exc.errors(include_url=False)}
    kept = [i for i in range(len(values)) if i not in refused]
    parsed: list[Any] = [None] * len(values)
    for i, value in zip(kept, adapter.validate_python([values[i] for i in kept]), strict=True):
        parsed[i] = value
    ok = np.ones(len(values), dtype=bool)
    ok[list(refused)] = False
    return ok, parsed


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def validate_columns(
    table: pd.DataFrame, kind: Kind, source: str, rules: Iterable[RowRule] = (), progress: Progress | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Validate a file column by column: each field's distinct values through the model's own field type, then
    the model's rules across fields on whole columns. Rows that fail, and only those, go through the whole model
    for their problems, so the messages are the model's. Returns the valid rows' values (enums as their values),
    indexed by row number, and the problems."""
    columns: dict[str, pd.Series] = {}
    refused = np.zeros(len(table), dtype=bool)
    for done, name in enumerate(kind.columns, start=1):
        codes, uniques = pd.factorize(table[name])
        ok, parsed = _validate_values(_field_adapter(kind.model, name), uniques.tolist())
        refused |= ~ok[codes]
        column = pd.Series([_plain(v) for v in parsed], dtype=object)
        columns[name] = pd.Series(column.take(codes).to_numpy(), index=table.index, dtype=object)
        if progress:
            progress(len(table) * done // len(kind.columns), len(table))
    values = pd.DataFrame(columns, index=table.index)
    for rule in rules:
        fine = ~refused
        broken = np.asarray(rule.broken(values[fine]), dtype=bool)
        refused[np.flatnonzero(fine)[broken]] = True
    problems: list[str] = []
    for line in table.index[refused]:
        try:
            model = kind.model.model_validate(table.loc[line].to_dict())
        except ValidationError as exc:
            problems += _problem_lines(exc, source, int(line) - 2, rows=False)
        else:  # the model accepts what a column check refused: the model decides
            values.loc[line] = [_plain(getattr(model, name)) for name in kind.columns]
            refused[table.index.get_loc(line)] = False
    return values[~refused], problems


# ---- cross-record checks -----------------------------------------------------------------------
def _ids(cur: Cursor, sql: str, params: Iterable[Any] = ()) -> set[str]:
    return {r[0] for r in cur.execute(sql, list(params)).fetchall()}


def _duplicates_in_file(models: list[tuple[int, Any]], source: str) -> list[str]:
    first: dict[str, int] = {}
    out = []
    for line, m in models:
        if m.id in first:
            out.append(f"{source} row {line}, id: {m.id!r} appears again (first at row {first[m.id]})")
        else:
            first[m.id] = line
    return out


def _people_problems(
    cur: Cursor, kind: Kind, models: list[tuple[int, Any]], source: str
) -> tuple[list[str], list[Any], int]:
    """New people are added; an id already stored must match exactly (nothing is overwritten)."""
    problems = _duplicates_in_file(models, source)
    table = "learners" if kind.name == "learners" else "staff"
    existing = {
        r[0]: r
        for r in cur.execute(f"SELECT * EXCLUDE (recorded_at) FROM {table}").fetchall()  # noqa: S608 - fixed name
    }
    rows = store.learner_rows if kind.name == "learners" else store.staff_rows
    fresh, unchanged = [], 0
    for line, m in models:
        new_row = rows([m])[0][:-1]
        if m.id in existing:
            if tuple(existing[m.id]) == tuple(new_row):
                unchanged += 1
            else:
                problems.append(
                    f"{source} row {line}, id: {kind.name[:-1] if kind.name == 'learners' else 'staff member'} "
                    f"{m.id!r} already exists with other details; records are never overwritten "
                    "(change status with `python -m tracker learner-status`)"
                )
        else:
            fresh.append(m)
    if kind.name == "learners":
        advisors = _ids(cur, "SELECT id FROM staff WHERE list_contains(roles, 'advisor')")
        for line, m in models:
            if m.advisor_id and m.advisor_id not in advisors:
                problems.append(
                    f"{source} row {line}, advisor_id: no staff member {m.advisor_id!r} with the advisor role (import staff first)"
                )
    return problems, fresh, unchanged


def _evidence_problems(cur: Cursor, models: list[tuple[int, Evidence]], fw: Framework, source: str) -> list[str]:
    problems = _duplicates_in_file(models, source)
    learners = _ids(cur, "SELECT id FROM learners")
    stored = _ids(cur, "SELECT id FROM evidence")
    for line, e in models:
        if e.id in stored:
            problems.append(f"{source} row {line}, id: evidence {e.id!r} already exists")
        if e.learner_id not in learners:
            problems.append(f"{source} row {line}, learner_id: no learner {e.learner_id!r}")
        if e.type not in fw.evidence_type_ids:
            problems.append(
                f"{source} row {line}, type: {e.type!r} is not an evidence type of the framework ({', '.join(fw.evidence_type_ids)})"
            )
        for cid in e.competency_ids:
            if cid not in fw.competencies:
                problems.append(f"{source} row {line}, competency_ids: no competency {cid!r} in the framework")
    return problems


def _rating_problems(cur: Cursor, ratings: pd.DataFrame, fw: Framework, source: str) -> list[str]:
    """Every cross-record problem of a ratings file (validated columns), checked column-wise so a million rows
    stay quick."""
    f = ratings.reset_index()
    problems: list[tuple[Any, str]] = []

    def flag(mask: pd.Series, message: Callable[[Any], str]) -> None:
        for row in f[mask].itertuples():
            problems.append((row.line, f"{source} row {row.line}, {message(row)}"))

    again = f.duplicated("id")
    if again.any():
        first = f.drop_duplicates("id").set_index("id")["line"]
        flag(again, lambda r: f"id: {r.id!r} appears again (first at row {first[r.id]})")
    with store.registered(cur, "incoming_check", f[["id", "learner_id", "corrects"]]):
        taken = _ids(cur, "SELECT i.id FROM incoming_check i SEMI JOIN ratings r ON r.id = i.id")
        learners = _ids(cur, "SELECT DISTINCT l.id FROM learners l SEMI JOIN incoming_check i ON i.learner_id = l.id")
        stored_targets = {
            r[0]: (r[1], r[2])
            for r in cur.execute(
                "SELECT r.id, r.learner_id, r.competency_id FROM ratings r SEMI JOIN incoming_check i ON r.id = i.corrects"
            ).fetchall()
        }
    flag(
        f["id"].isin(taken),
        lambda r: f"id: rating {r.id!r} already exists; a correction is a new rating with `corrects` set",
    )
    flag(~f["learner_id"].isin(learners), lambda r: f"learner_id: no learner {r.learner_id!r}")
    flag(
        ~f["competency_id"].isin(list(fw.competencies)),
        lambda r: f"competency_id: no competency {r.competency_id!r} in framework {fw.id} {fw.version}",
    )
    flag(
        ~f["term"].isin(fw.term_ids),
        lambda r: f"term: {r.term!r} is not a term of the calendar ({', '.join(fw.term_ids)})",
    )
    lo, hi = fw.min_level, fw.max_level
    flag(~f["level"].between(lo, hi), lambda r: f"level: {r.level} leaves the scale {lo}–{hi}")
    versions = _ids(cur, "SELECT version FROM framework_versions WHERE framework_id = ?", [fw.id])
    flag(
        ~f["framework_version"].isin(versions),
        lambda r: (
            f"framework_version: {r.framework_version!r} is not a loaded version of {fw.id} ({', '.join(sorted(versions))})"
        ),
    )
    holders = {
        f"{sid}|{role}" for sid, roles in cur.execute("SELECT id, roles FROM staff").fetchall() for role in roles
    }
    assessed = f[f["rater_role"] != RaterRole.self.value]
    unheld = assessed.index[~(assessed["rater_id"] + "|" + assessed["rater_role"]).isin(holders)]
    flag(
        pd.Series(f.index.isin(unheld), index=f.index),
        lambda r: f"rater_id: no staff member {r.rater_id!r} with the {r.rater_role} role",
    )
    citing = f[f["evidence_ids"].map(len) > 0]
    cited = citing[["line", "learner_id", "evidence_ids"]].explode("evidence_ids").dropna(subset=["evidence_ids"])
    if not cited.empty:
        owner = dict(cur.execute("SELECT id, learner_id FROM evidence").fetchall())
        bad = cited[cited["evidence_ids"].map(owner.get) != cited["learner_id"]]
        for row in bad.itertuples():
            problems.append(
                (
                    row.line,
                    f"{source} row {row.line}, evidence_ids: no evidence {row.evidence_ids!r} of learner {row.learner_id!r}",
                )
            )
    corrections = f[f["corrects"].notna()]
    in_file = (
        dict(zip(f["id"], zip(f["learner_id"], f["competency_id"], strict=True), strict=True))
        if not corrections.empty
        else {}
    )
    for row in corrections.itertuples():
        target = stored_targets.get(row.corrects) or in_file.get(row.corrects)
        if target is None:
            problems.append((row.line, f"{source} row {row.line}, corrects: no rating {row.corrects!r} to correct"))
        elif target != (row.learner_id, row.competency_id):
            problems.append(
                (
                    row.line,
                    f"{source} row {row.line}, corrects: rating {row.corrects!r} is for another learner or competency",
                )
            )
    return [m for _, m in sorted(problems, key=lambda p: p[0])]


# ---- import ------------------------------------------------------------------------------------
def import_text(
    cur: Cursor,
    kind_name: str,
    text: str,
    source: str,
    fw: Framework,
    actor: str,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Validate the whole file, then write it in one transaction; on any problem write nothing.

    With `dry_run`, check everything and report what would be added, writing nothing (the import page's preview).
    """
    if kind_name not in KINDS:
        raise TrackerError(f"Unknown record kind {kind_name!r}; choose one of {', '.join(KINDS)}.")
    kind = KINDS[kind_name]
    table = read_table(text, kind, source)
    unchanged = 0
    fresh: list[Any] | pd.DataFrame
    if kind.name == "ratings":  # the large files: validated column-wise
        fresh, problems = validate_columns(table, kind, source, RATING_RULES, progress)
        problems += _rating_problems(cur, fresh, fw, source)
    else:
        models, problems = validate_records(table.to_dict("records"), kind, source, progress)
        fresh = [m for _, m in models]
        if kind.name in ("learners", "staff"):
            more, fresh, unchanged = _people_problems(cur, kind, models, source)
            problems += more
        elif kind.name in review_records.KINDS:
            problems += review_records.problems(cur, kind.name, models, fw, source)
        else:
            problems += _evidence_problems(cur, models, fw, source)
    if problems:
        raise ImportProblems(source, problems)
    if dry_run:
        return ImportResult(kind.name, len(fresh), unchanged)

    def work(c: Cursor) -> None:
        if isinstance(fresh, pd.DataFrame):
            if not fresh.empty:
                store.insert_ratings_frame(c, store.ratings_frame(fresh, fw))
                store.refresh_term_levels(c, fresh["learner_id"].unique().tolist())
        elif fresh and kind.name in review_records.KINDS:
            review_records.insert(c, kind.name, fresh)
        elif fresh:
            store.insert_records(c, kind.name, fresh)
        store.audit(c, actor, "import", kind.name, {"source": source, "added": len(fresh), "unchanged": unchanged})

    store.write(cur, work)
    return ImportResult(kind.name, len(fresh), unchanged)


def import_file(
    cur: Cursor, kind_name: str, path: str | Path, fw: Framework, actor: str, progress: Progress | None = None
) -> ImportResult:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrackerError(f"{path}: cannot read the file as UTF-8 CSV ({exc})") from None
    return import_text(cur, kind_name, text, path.name, fw, actor, progress)


def spreadsheet_to_csv(data: bytes, source: str) -> str:
    """The first sheet of an Excel workbook (.xlsx) as CSV text, so it goes through the same checks as a CSV file."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise ImportProblems(source, [f"{source}: not readable as an Excel workbook (.xlsx): {exc}"]) from None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in book.worksheets[0].iter_rows(values_only=True):
        if all(v is None for v in row):
            continue
        writer.writerow([_cell_text(v) for v in row])
    return buf.getvalue()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def uploaded_text(name: str, data: bytes) -> str:
    """An uploaded CSV or Excel file as CSV text."""
    if name.lower().endswith(".xlsx"):
        return spreadsheet_to_csv(data, name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportProblems(
            name, [f"{name}: not UTF-8 text ({exc}); save it as CSV UTF-8, or upload the .xlsx"]
        ) from None


def preview(text: str, rows: int = 50) -> pd.DataFrame:
    """The first rows of a file, as the user will see them before importing."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    body = [row for _, row in zip(range(rows), reader, strict=False)]
    width = len(header)
    return pd.DataFrame([(row + [""] * width)[:width] for row in body], columns=header)


def template_csv(kind_name: str) -> str:
    """An empty file of one kind: the header row that `import` expects."""
    return ",".join(KINDS[kind_name].columns) + "\n"


# ---- export ------------------------------------------------------------------------------------
EXPORT_SQL = {
    "learners": "SELECT id, name, email, cohort, profession, start_term, status, coalesce(advisor_id, '') AS advisor_id FROM learners ORDER BY id",
    "staff": "SELECT id, name, email, array_to_string(roles, ';') AS roles FROM staff ORDER BY id",
    "ratings": (
        "SELECT id, learner_id, competency_id, CAST(level AS VARCHAR) AS level, rater_id, rater_role, "
        "strftime(rated_on, '%Y-%m-%d') AS rated_on, term, comment, array_to_string(evidence_ids, ';') AS evidence_ids, "
        "framework_version, coalesce(corrects, '') AS corrects FROM ratings ORDER BY seq"
    ),
    "evidence": (
        "SELECT id, learner_id, type, title, array_to_string(competency_ids, ';') AS competency_ids, url, description, "
        "strftime(added_on, '%Y-%m-%d') AS added_on FROM evidence ORDER BY recorded_at, id"
    ),
} | review_records.EXPORT_SQL


def export_csv(cur: Cursor, kind_name: str) -> str:
    """The records of one kind as CSV text that `import` reads back unchanged."""
    if kind_name not in EXPORT_SQL:
        raise TrackerError(f"Cannot export {kind_name!r}; choose one of {', '.join(EXPORT_SQL)}.")
    result = cur.execute(EXPORT_SQL[kind_name])
    columns = [d[0] for d in result.description]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_cell(v) for v in row] for row in result.fetchall())  # no cell a spreadsheet would run
    return buf.getvalue()
