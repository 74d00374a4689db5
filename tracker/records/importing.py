"""CSV files -> validated models -> one transaction: a file lands whole or not at all."""

import csv
import datetime as dt
import functools
import io
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, TypeAdapter, ValidationError

from data_models import Decision, Evidence, Framework, Goal, Learner, Meeting, Rating, Staff
from data_models.base import LIST_SEPARATOR
from data_models.ratings import RATING_RULES, RowRule
from tracker.core.errors import ImportProblems, TrackerError
from tracker.core.text import FORMULA_LEADS, csv_values
from tracker.framework.loading import format_loc
from tracker.records import plan_records, review_records, rules
from tracker.storage import database, derived, record_rows
from tracker.storage.database import Cursor

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
    "ratings": Kind("ratings", Rating, tuple(record_rows.RATING_FIELDS)),
    "evidence": Kind(
        "evidence", Evidence, ("id", "learner_id", "type", "title", "competency_ids", "url", "description", "added_on")
    ),
    "meetings": Kind("meetings", Meeting, tuple(Meeting.model_fields)),
    "decisions": Kind("decisions", Decision, tuple(Decision.model_fields)),
    "goals": Kind("goals", Goal, tuple(Goal.model_fields)),
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
    header = read_header(reader, kind, source)
    cells = _cells_read_fast(text, len(header))
    lines: Any = pd.RangeIndex(2, len(cells[0]) + 2 if cells else 2, name="line")
    if cells is None:
        cells, numbers = _cells_read_row_by_row(reader, len(header), source)
        lines = pd.Index(numbers, name="line", dtype="int64")
    return _table(dict(zip(header, cells, strict=True)), lines, kind)


def read_header(reader: Any, kind: Kind, source: str) -> list[str]:
    """The header row of a file (from a csv reader), refused when a column is repeated, missing or unknown."""
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise ImportProblems(source, [f"{source} row 1 (header): not readable as CSV ({exc})"]) from None
    repeated = [
        f"{source} row 1 (header), {name}: the column appears more than once "
        f"(columns {', '.join(str(i + 1) for i, h in enumerate(header) if h == name)}); keep one"
        for name in dict.fromkeys(h for h in header if header.count(h) > 1)
    ]
    if repeated:
        raise ImportProblems(source, repeated)
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
    return header


def _table(cells: dict[str, Any], lines: Any, kind: Kind, undone: bool = False) -> pd.DataFrame:
    """Cells by column name as the frame the checks read: one column per field, indexed by row number. The
    apostrophe an export puts before a formula-like cell is taken off (`undone`: already done)."""
    frame = pd.DataFrame(
        {
            name: column if undone else csv_values(pd.Series(column, dtype=object)).to_numpy()
            for name, column in cells.items()
        },
        index=lines,
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


def _cells_read_row_by_row(reader: Any, width: int, source: str) -> tuple[list[np.ndarray], list[int]]:
    """The columns of a file read by the csv module (its reader, past the header), every row with the wrong
    number of cells named, and the row number of each row kept. A blank line is skipped but keeps its number,
    so rows are named as a spreadsheet numbers them."""
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ImportProblems(source, [f"{source} row {reader.line_num}: not readable as CSV ({exc})"]) from None
    numbers = [i + 2 for i, row in enumerate(rows) if row]
    rows = [row for row in rows if row]
    ragged = [(n, row) for n, row in zip(numbers, rows, strict=True) if len(row) != width]
    if ragged:
        raise ImportProblems(
            source,
            [
                f"{source} row {n}: {'more' if len(row) > width else 'fewer'} cells than the {width} columns"
                for n, row in ragged
            ],
        )
    if not rows:
        return [np.array([], dtype=object) for _ in range(width)], []
    return [np.array(column, dtype=object) for column in zip(*rows, strict=True)], numbers


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
    records: list[dict[Any, Any]],
    kind: Kind,
    source: str,
    progress: Progress | None = None,
    lines: list[int] | None = None,
) -> tuple[list[tuple[int, Any]], list[str]]:
    """Validate every row against the model; return (row number, model) pairs and one problem per bad field.
    `lines` are the rows' numbers in the file (by default 2, 3, ...: the header is row 1)."""
    numbers = lines if lines is not None else list(range(2, len(records) + 2))
    models: list[tuple[int, Any]] = []
    problems: list[str] = []
    total = len(records)
    for start in range(0, total, CHUNK):
        chunk = records[start : start + CHUNK]
        try:
            valid = _adapter(kind.model).validate_python(chunk)
            models += [(numbers[start + i], m) for i, m in enumerate(valid)]
        except ValidationError:
            for i, row in enumerate(chunk):  # the slow path, only for a chunk with a bad row: keep the good ones
                try:
                    models.append((numbers[start + i], kind.model.model_validate(row)))
                except ValidationError as exc:
                    problems += _problem_lines(exc, source, numbers[start + i] - 2, rows=False)
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
    rows = record_rows.learner_rows if kind.name == "learners" else record_rows.staff_rows
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
    if kind.name == "ratings":
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "upload.csv"
            path.write_text(text, encoding="utf-8")
            return import_ratings(cur, path, source, fw, actor, progress, dry_run)
    table = read_table(text, kind, source)
    models, problems = validate_records(table.to_dict("records"), kind, source, progress, [int(n) for n in table.index])
    fresh = [m for _, m in models]
    unchanged = 0
    if kind.name in ("learners", "staff"):
        more, fresh, unchanged = _people_problems(cur, kind, models, source)
        problems += more
    elif kind.name in review_records.KINDS:
        problems += review_records.problems(cur, kind.name, models, fw, source)
    elif kind.name in plan_records.KINDS:
        problems += plan_records.problems(cur, models, fw, source)
    else:
        problems += _evidence_problems(cur, models, fw, source)
    if problems:
        raise ImportProblems(source, problems)
    if dry_run:
        return ImportResult(kind.name, len(fresh), unchanged)

    def work(c: Cursor) -> None:
        if fresh and kind.name in review_records.KINDS:
            review_records.insert(c, kind.name, fresh, fw, actor)
        elif fresh and kind.name in plan_records.KINDS:
            plan_records.insert(c, fresh)
        elif fresh:
            record_rows.insert_records(c, kind.name, fresh)
        database.audit(c, actor, "import", kind.name, {"source": source, "added": len(fresh), "unchanged": unchanged})

    database.write(cur, work)
    return ImportResult(kind.name, len(fresh), unchanged)


# ---- ratings: any size, in bounded memory ------------------------------------------------------
STAGED = "import_cells"  # the file's cells as text (a temporary table of the importing connection)
_CSV_LEADS = {*FORMULA_LEADS, "'"}  # what tracker.text.csv_value takes the apostrophe off
_LEADS_SQL = ", ".join("'" + c.replace("'", "''") + "'" for c in sorted(_CSV_LEADS))
PROBLEMS_SHOWN = 1_000  # a file with more problems lists these, then how many more


def import_ratings(
    cur: Cursor,
    path: Path,
    source: str,
    fw: Framework,
    actor: str,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """A ratings CSV file of any size: its cells go to a temporary table, are validated a chunk at a time into
    another (rating_check), the rules (tracker/records/rules.py) run over that table at once, and the ratings are copied
    from it in one transaction. Memory stays bounded by the chunk and the database's own limit."""
    kind = KINDS["ratings"]
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = read_header(csv.reader(f), kind, source)
    except UnicodeDecodeError:
        decode_csv(path.read_bytes(), source)  # raises, naming the row
        raise
    try:
        staged = _stage_cells(cur, path, header)
        if staged is None:  # not plainly well-formed: the csv module reads it and names every bad row
            table = read_table(decode_csv(path.read_bytes(), source), kind, source)
            _create_checked(cur)
            problems = _check_chunk(cur, table, kind, source)
            total = len(table)
            del table
        else:
            total, problems = staged, _check_staged(cur, header, kind, source, progress)
        problems += [f"{source} row {p.line}, {p.field}: {p.message}" for p in rules.rating_problems(cur, fw)]
        if problems:
            problems = sorted(problems, key=_line_of)
            if len(problems) > PROBLEMS_SHOWN:
                more = len(problems) - PROBLEMS_SHOWN
                problems = [*problems[:PROBLEMS_SHOWN], f"{source}: and {more:,} more problem(s)"]
            raise ImportProblems(source, problems)
        if dry_run:
            return ImportResult(kind.name, total)

        def work(c: Cursor) -> None:
            if total:
                record_rows.insert_checked_ratings(c, rules.CHECKED, fw)
                learners = [r[0] for r in c.execute(f"SELECT DISTINCT learner_id FROM {rules.CHECKED}").fetchall()]  # noqa: S608
                derived.refresh_term_levels(c, learners)
            database.audit(c, actor, "import", kind.name, {"source": source, "added": total, "unchanged": 0})

        database.write(cur, work)
        return ImportResult(kind.name, total)
    finally:
        for view in (rules.CHECKED, PARSED, "import_values"):
            with suppress(duckdb.Error):  # a view in the staged path, a table in the other
                cur.execute(f"DROP VIEW IF EXISTS temp.{view}")
        for name in (STAGED, rules.CHECKED, ACCEPTED, *(f"valid_{n}" for n in kind.columns)):
            cur.execute(f"DROP TABLE IF EXISTS temp.{name}")


def _line_of(problem: str) -> int:
    found = re.search(r" row (\d+)", problem)
    return int(found.group(1)) if found else 0


def _stage_cells(cur: Cursor, path: Path, header: list[str]) -> int | None:
    """Copy a plainly well-formed file's cells into the temporary table STAGED (row i of the table is line i + 2
    of the file) and return how many rows it holds; None when the fast reader must not read it (see
    _cells_read_fast) or refuses it."""
    if not _plainly_well_formed(path):
        return None
    names = [f"c{i}" for i in range(len(header))]
    columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
    try:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {STAGED} AS SELECT * FROM read_csv(?, header = true, "  # noqa: S608
            "auto_detect = false, delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
            f"allow_quoted_nulls = false, columns = {columns})",
            [str(path)],
        )
    except duckdb.Error:
        cur.execute(f"DROP TABLE IF EXISTS temp.{STAGED}")
        return None
    return int(cur.execute(f"SELECT count(*) FROM {STAGED}").fetchone()[0])  # type: ignore[index]  # noqa: S608


def _plainly_well_formed(path: Path, block: int = 1 << 24) -> bool:
    """No lone carriage return, blank line or line ending in a comma anywhere in the file (read in blocks)."""
    tail = b""
    with path.open("rb") as f:
        while data := f.read(block):
            text = (tail + data).replace(b"\r\n", b"\n")
            if b"\r" in text[:-1] or b"\n\n" in text or b",\n" in text:
                return False
            tail = text[-1:]
    return bool(tail) and tail != b","


PARSED = "import_parsed"  # each staged row's values as the model reads them, and whether every one is valid
ACCEPTED = "import_accepted"
# How a validated value is kept, per field: its SQL type, and the plain value (a list as `;`-joined text).
_KEPT = {"level": "DOUBLE", "rated_on": "DATE"}


class _Columns:
    """Attribute access that yields DuckDB column expressions, so a RowRule (written with ==, != and &) becomes
    one SQL condition over a whole table."""

    def __getattr__(self, name: str) -> Any:
        return duckdb.ColumnExpression(name)


def _check_staged(cur: Cursor, header: list[str], kind: Kind, source: str, progress: Progress | None) -> list[str]:
    """Validate the staged cells with the model's own field types, each distinct value of a column once (a file
    of millions of rows holds far fewer distinct learners, dates or levels), then the model's rules across
    fields as SQL over the whole table. Valid rows go to rating_check; a refused row goes through the whole model
    for its problems, so the messages are the model's."""
    position = {name: header.index(name) for name in kind.columns}
    values = ", ".join(
        f"CASE WHEN starts_with(c{i}, chr(39)) AND substr(c{i}, 2, 1) IN ({_LEADS_SQL}) THEN substr(c{i}, 2) "
        f"ELSE coalesce(c{i}, '') END AS {name}"
        for name, i in position.items()
    )
    cur.execute(f"CREATE OR REPLACE TEMP VIEW import_values AS SELECT rowid + 2 AS line, {values} FROM {STAGED}")  # noqa: S608
    for done, name in enumerate(kind.columns, start=1):
        _validate_distinct(cur, kind, name)
        if progress:
            progress(done, len(kind.columns) + 1)
    # a text column whose every distinct cell is valid and unchanged by its type (most ids) needs no join
    same = {n for n in kind.columns if _KEPT.get(n, "VARCHAR") == "VARCHAR" and _unchanged(cur, n)}
    joined = [n for n in kind.columns if n not in same]
    for n in same:
        cur.execute(f"DROP TABLE valid_{n}")
    # a view, not a copy: the database keeps within its memory limit with the staged cells alone
    cur.execute(
        f"CREATE OR REPLACE TEMP VIEW {PARSED} AS SELECT v.line, "  # noqa: S608 - our constants
        + " AND ".join(["true", *(f"valid_{n}.ok" for n in joined)])
        + " AS ok, "
        + ", ".join(f"v.{n} AS {n}" if n in same else f"valid_{n}.value AS {n}" for n in kind.columns)
        + " FROM import_values v "
        + " ".join(f"JOIN valid_{n} ON valid_{n}.raw = v.{n}" for n in joined)
    )
    rules_hold = " AND ".join(f"NOT coalesce({rule.broken(_Columns())}, false)" for rule in RATING_RULES) or "true"
    columns = ", ".join(rules.CHECK_COLUMNS)
    _create_checked(cur, ACCEPTED)  # rows the whole model accepts though a column check refused them
    cur.execute(
        f"CREATE OR REPLACE TEMP VIEW {rules.CHECKED} AS SELECT {columns} FROM {PARSED} WHERE ok AND {rules_hold} "  # noqa: S608
        f"UNION ALL SELECT * FROM {ACCEPTED}"
    )
    refused = cur.execute(
        f"SELECT line FROM {PARSED} WHERE NOT (ok AND {rules_hold}) ORDER BY line LIMIT ?",  # noqa: S608
        [PROBLEMS_SHOWN + 1],
    ).fetchall()
    problems: list[str] = []
    for (line,) in refused[:PROBLEMS_SHOWN]:
        raw = cur.execute("SELECT * EXCLUDE (line) FROM import_values WHERE line = ?", [line]).fetchdf()
        try:
            model = kind.model.model_validate(raw.iloc[0].to_dict())
        except ValidationError as exc:
            problems += _problem_lines(exc, source, int(line) - 2, rows=False)
        else:  # the model accepts what a column check refused: the model decides
            frame = pd.DataFrame([[_plain(getattr(model, n)) for n in kind.columns]], columns=list(kind.columns))
            with record_rows.registered(
                cur, "checked_chunk", rules.check_frame(frame.set_axis(pd.Index([line]), axis=0))
            ):
                cur.execute(f"INSERT INTO {ACCEPTED} SELECT * FROM checked_chunk")  # noqa: S608
    if len(refused) > PROBLEMS_SHOWN:
        more = cur.execute(f"SELECT count(*) FROM {PARSED} WHERE NOT (ok AND {rules_hold})").fetchone()[0]  # type: ignore[index]  # noqa: S608
        problems.append(f"{source}: and {more - PROBLEMS_SHOWN:,} more row(s) with problems")
    if progress:
        progress(len(kind.columns) + 1, len(kind.columns) + 1)
    return problems


def _unchanged(cur: Cursor, name: str) -> bool:
    """Whether every distinct cell of a column is valid and stays as written."""
    sql = f"SELECT coalesce(bool_and(ok AND value IS NOT DISTINCT FROM raw), true) FROM valid_{name}"  # noqa: S608
    return bool(cur.execute(sql).fetchone()[0])  # type: ignore[index]


def _validate_distinct(cur: Cursor, kind: Kind, name: str, batch: int = 500_000) -> None:
    """The temporary table valid_<name>: each distinct cell of the column, whether the field type accepts it,
    and what it becomes (`batch` values validated at once)."""
    kept = _KEPT.get(name, "VARCHAR")
    table = f"valid_{name}"
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {table} (raw VARCHAR, ok BOOLEAN, value {kept})")
    adapter = _field_adapter(kind.model, name)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE distinct_cells AS SELECT DISTINCT {name} AS raw FROM import_values")  # noqa: S608
    count = cur.execute("SELECT count(*) FROM distinct_cells").fetchone()[0]  # type: ignore[index]
    for start in range(0, count, batch):
        found = cur.execute(
            "SELECT raw FROM distinct_cells WHERE rowid >= ? AND rowid < ?", [start, start + batch]
        ).fetchnumpy()
        cells = list(found["raw"])
        ok, parsed = _validate_values(adapter, cells)
        plain = [None if v is None else _joined(v) if isinstance(v, list) else _plain(v) for v in parsed]
        frame = pd.DataFrame({"raw": cells, "ok": ok, "value": pd.Series(plain, dtype=object)})
        with record_rows.registered(cur, "valid_chunk", frame):
            cur.execute(f"INSERT INTO {table} SELECT raw, ok, CAST(value AS {kept}) FROM valid_chunk")  # noqa: S608
    cur.execute("DROP TABLE distinct_cells")


def _joined(items: list[Any]) -> str:
    return LIST_SEPARATOR.join(str(_plain(i)) for i in items)


def _create_checked(cur: Cursor, name: str = rules.CHECKED) -> None:
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} (line BIGINT, id VARCHAR, learner_id VARCHAR, "
        "competency_id VARCHAR, level DOUBLE, rater_id VARCHAR, rater_role VARCHAR, rated_on DATE, term VARCHAR, "
        "comment VARCHAR, evidence_ids VARCHAR, framework_version VARCHAR, corrects VARCHAR)"
    )


def _check_chunk(cur: Cursor, table: pd.DataFrame, kind: Kind, source: str) -> list[str]:
    """Validate one chunk column-wise; append its valid rows to rating_check; return its problems."""
    values, problems = validate_columns(table, kind, source, RATING_RULES)
    if len(values):
        with record_rows.registered(cur, "checked_chunk", rules.check_frame(values)):
            cur.execute(f"INSERT INTO {rules.CHECKED} SELECT * FROM checked_chunk")  # noqa: S608 - our constant
    return problems


def import_file(
    cur: Cursor, kind_name: str, path: str | Path, fw: Framework, actor: str, progress: Progress | None = None
) -> ImportResult:
    path = Path(path)
    try:
        if kind_name == "ratings" and not path.name.lower().endswith(".xlsx"):  # read in bounded memory
            return import_ratings(cur, path, path.name, fw, actor, progress)
        data = path.read_bytes()
    except OSError as exc:
        raise TrackerError(f"{path}: cannot read the file ({exc.strerror}); check the name and the folder") from None
    return import_text(cur, kind_name, uploaded_text(path.name, data), path.name, fw, actor, progress)


# An .xlsx is a zip archive that the reader expands whole in memory: one that expands past these (a "zip bomb")
# is refused before it is opened. A workbook of a program's records expands to a few megabytes, 5 to 20 times its
# size; a ratio is only judged past a megabyte, where expanding it could matter.
XLSX_MAX_EXPANDED = 100 * 1024 * 1024
XLSX_MAX_RATIO = 100
XLSX_RATIO_FROM = 1024 * 1024


def check_workbook_archive(data: bytes, source: str) -> None:
    """Refuse, naming the file, an .xlsx that is not a zip archive or that would expand past our limits. The sizes
    are those the archive declares: Python's zip reader never expands a member past its declared size."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ImportProblems(
            source,
            [
                f"{source}: not an Excel workbook (.xlsx), which is a zip archive; save it again from the spreadsheet "
                "as .xlsx, or as CSV UTF-8"
            ],
        ) from None
    mb = 1024 * 1024
    if expanded > XLSX_MAX_EXPANDED:
        raise ImportProblems(
            source,
            [
                f"{source}: expands to {expanded / mb:,.0f} MB when opened, more than the {XLSX_MAX_EXPANDED // mb} MB "
                "a workbook may; save it as CSV UTF-8 (read in bounded memory) or split it into smaller files"
            ],
        )
    if expanded > XLSX_RATIO_FROM and expanded > XLSX_MAX_RATIO * len(data):
        raise ImportProblems(
            source,
            [
                f"{source}: expands to {expanded / max(len(data), 1):,.0f} times its size when opened (a workbook of "
                f"records expands less than {XLSX_MAX_RATIO} times), so it was not opened; save it again from the "
                "spreadsheet, or as CSV UTF-8"
            ],
        )


def spreadsheet_to_csv(data: bytes, source: str) -> str:
    """The first sheet of an Excel workbook (.xlsx) as CSV text, so it goes through the same checks as a CSV file."""
    from openpyxl import load_workbook

    check_workbook_archive(data, source)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise ImportProblems(source, [f"{source}: not readable as an Excel workbook (.xlsx): {exc}"]) from None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in book.worksheets[0].iter_rows(values_only=True):
        # a blank row stays a blank line, so the rows after it keep their own numbers
        writer.writerow([] if all(v is None or v == "" for v in row) else [_cell_text(v) for v in row])
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
    return decode_csv(data, name)


def decode_csv(data: bytes, name: str) -> str:
    """The text of a CSV file; refused, naming the row, when it is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportProblems(
            name,
            [
                f"{name} row {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                "save it as CSV UTF-8, or use the .xlsx"
            ],
        ) from None


def preview(text: str, rows: int = 50) -> pd.DataFrame:
    """The first rows of a file, as the user will see them before importing."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    body = [row for _, row in zip(range(rows), reader, strict=False)]
    width = len(header)
    # a repeated column is a problem of the file, but the preview still shows it (a table needs unique names)
    names = [h if header.count(h) == 1 else f"{h} (column {i + 1})" for i, h in enumerate(header)]
    return pd.DataFrame([(row + [""] * width)[:width] for row in body], columns=names)


def template_csv(kind_name: str) -> str:
    """An empty file of one kind: the header row that `import` expects."""
    return ",".join(KINDS[kind_name].columns) + "\n"
