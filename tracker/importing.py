"""CSV files -> validated models -> one transaction: a file lands whole or not at all."""

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from data_models import Evidence, Framework, Learner, RaterRole, Rating, Role, Staff
from tracker import store
from tracker.errors import ImportProblems, TrackerError
from tracker.framework import format_loc
from tracker.store import Cursor

Progress = Callable[[int, int], None]
LIST_SEP = ";"


@dataclass(frozen=True)
class Kind:
    """One kind of record file: its model, its columns and which of them hold lists."""

    name: str
    model: type[BaseModel]
    columns: tuple[str, ...]
    list_columns: tuple[str, ...] = ()


KINDS = {
    "learners": Kind(
        "learners", Learner, ("id", "name", "email", "cohort", "profession", "start_term", "status", "advisor_id")
    ),
    "staff": Kind("staff", Staff, ("id", "name", "email", "roles"), ("roles",)),
    "ratings": Kind(
        "ratings",
        Rating,
        (
            "id",
            "learner_id",
            "competency_id",
            "level",
            "rater_id",
            "rater_role",
            "rated_on",
            "term",
            "comment",
            "evidence_ids",
            "framework_version",
            "corrects",
        ),
        ("evidence_ids",),
    ),
    "evidence": Kind(
        "evidence",
        Evidence,
        ("id", "learner_id", "type", "title", "competency_ids", "url", "description", "added_on"),
        ("competency_ids",),
    ),
}


@dataclass
class ImportResult:
    kind: str
    added: int
    unchanged: int = 0


# ---- reading -----------------------------------------------------------------------------------
def read_rows(text: str, kind: Kind, source: str) -> list[dict[str, Any]]:
    """Parse CSV text into dicts keyed by column; a wrong header is one clear problem."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
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
    reader.fieldnames = header
    try:
        return list(reader)
    except csv.Error as exc:
        raise ImportProblems(source, [f"{source} row {reader.line_num}: not readable as CSV ({exc})"]) from None


def to_model_input(row: dict[str, Any], kind: Kind) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in kind.columns:
        value = row.get(col)
        value = "" if value is None else str(value).strip()
        if col in kind.list_columns:
            out[col] = [v.strip() for v in value.split(LIST_SEP) if v.strip()]
        elif value != "":
            out[col] = value
    return out


def validate_rows(
    rows: Sequence[dict[str, Any]], kind: Kind, source: str, progress: Progress | None = None
) -> tuple[list[Any], list[str]]:
    """Validate every row; return the models and one problem line per bad field, with its row number."""
    models: list[Any] = []
    problems: list[str] = []
    total = len(rows)
    for i, row in enumerate(rows):
        line = i + 2  # row 1 is the header, as a spreadsheet numbers it
        extra = [k for k in row if k is None]
        if extra:
            problems.append(f"{source} row {line}: more cells than columns")
            continue
        try:
            models.append((line, kind.model.model_validate(to_model_input(row, kind))))
        except ValidationError as exc:
            for e in exc.errors(include_url=False):
                field = format_loc(tuple(e["loc"])) if e["loc"] else "(row)"
                msg = str(e["msg"]).removeprefix("Value error, ")
                problems.append(f"{source} row {line}, {field}: {msg}")
        if progress and (i % 1000 == 0 or i == total - 1):
            progress(i + 1, total)
    return models, problems


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


def _rating_problems(cur: Cursor, models: list[tuple[int, Rating]], fw: Framework, source: str) -> list[str]:
    problems = _duplicates_in_file(models, source)
    frame = pd.DataFrame(
        {
            "line": [ln for ln, _ in models],
            "id": [r.id for _, r in models],
            "learner_id": [r.learner_id for _, r in models],
            "corrects": [r.corrects for _, r in models],
            "competency_id": [r.competency_id for _, r in models],
        }
    )
    with store.registered(cur, "incoming_check", frame):
        taken = dict(cur.execute("SELECT i.id, i.line FROM incoming_check i JOIN ratings r USING (id)").fetchall())
        known_learners = _ids(
            cur, "SELECT DISTINCT i.learner_id FROM incoming_check i JOIN learners l ON l.id = i.learner_id"
        )
        stored_targets = {
            r[0]: (r[1], r[2])
            for r in cur.execute(
                "SELECT r.id, r.learner_id, r.competency_id FROM ratings r JOIN incoming_check i ON r.id = i.corrects"
            ).fetchall()
        }
        evidence_owner = dict(cur.execute("SELECT id, learner_id FROM evidence").fetchall())
    staff_roles = {r[0]: set(r[1]) for r in cur.execute("SELECT id, roles FROM staff").fetchall()}
    versions = _ids(cur, "SELECT version FROM framework_versions WHERE framework_id = ?", [fw.id])
    in_file = {r.id: (r.learner_id, r.competency_id) for _, r in models}
    lo, hi = fw.min_level, fw.max_level
    for line, r in models:
        at = f"{source} row {line}"
        if r.id in taken:
            problems.append(
                f"{at}, id: rating {r.id!r} already exists; a correction is a new rating with `corrects` set"
            )
        if r.learner_id not in known_learners:
            problems.append(f"{at}, learner_id: no learner {r.learner_id!r}")
        if r.competency_id not in fw.competencies:
            problems.append(f"{at}, competency_id: no competency {r.competency_id!r} in framework {fw.id} {fw.version}")
        if r.term not in fw.term_ids:
            problems.append(f"{at}, term: {r.term!r} is not a term of the calendar ({', '.join(fw.term_ids)})")
        if not lo <= r.level <= hi:
            problems.append(f"{at}, level: {r.level} leaves the scale {lo}–{hi}")
        if r.framework_version not in versions:
            problems.append(
                f"{at}, framework_version: {r.framework_version!r} is not a loaded version of {fw.id} ({', '.join(sorted(versions))})"
            )
        if r.rater_role is not RaterRole.self:
            needed = Role(r.rater_role.value)
            if needed not in staff_roles.get(r.rater_id, set()):
                problems.append(f"{at}, rater_id: no staff member {r.rater_id!r} with the {needed.value} role")
        for eid in r.evidence_ids:
            if evidence_owner.get(eid) != r.learner_id:
                problems.append(f"{at}, evidence_ids: no evidence {eid!r} of learner {r.learner_id!r}")
        if r.corrects:
            target = stored_targets.get(r.corrects) or in_file.get(r.corrects)
            if target is None:
                problems.append(f"{at}, corrects: no rating {r.corrects!r} to correct")
            elif target != (r.learner_id, r.competency_id):
                problems.append(f"{at}, corrects: rating {r.corrects!r} is for another learner or competency")
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
) -> ImportResult:
    """Validate the whole file, then write it in one transaction; on any problem write nothing."""
    if kind_name not in KINDS:
        raise TrackerError(f"Unknown record kind {kind_name!r}; choose one of {', '.join(KINDS)}.")
    kind = KINDS[kind_name]
    rows = read_rows(text, kind, source)
    models, problems = validate_rows(rows, kind, source, progress)
    unchanged = 0
    fresh: list[Any] = [m for _, m in models]
    if kind.name in ("learners", "staff"):
        more, fresh, unchanged = _people_problems(cur, kind, models, source)
        problems += more
    elif kind.name == "evidence":
        problems += _evidence_problems(cur, models, fw, source)
    else:
        problems += _rating_problems(cur, models, fw, source)
    if problems:
        raise ImportProblems(source, problems)

    def work(c: Cursor) -> None:
        if kind.name == "learners" and fresh:
            c.executemany("INSERT INTO learners VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", store.learner_rows(fresh))
        elif kind.name == "staff" and fresh:
            c.executemany("INSERT INTO staff VALUES (?, ?, ?, ?, ?)", store.staff_rows(fresh))
        elif kind.name == "evidence" and fresh:
            stamp = store.now()
            c.executemany(
                "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.id,
                        e.learner_id,
                        e.type,
                        e.title,
                        list(e.competency_ids),
                        e.url,
                        e.description,
                        e.added_on,
                        stamp,
                    )
                    for e in fresh
                ],
            )
        elif kind.name == "ratings" and fresh:
            store.insert_ratings_frame(c, store.ratings_frame(fresh, fw))
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
}


def export_csv(cur: Cursor, kind_name: str) -> str:
    """The records of one kind as CSV text that `import` reads back unchanged."""
    if kind_name not in EXPORT_SQL:
        raise TrackerError(f"Cannot export {kind_name!r}; choose one of {', '.join(EXPORT_SQL)}.")
    result = cur.execute(EXPORT_SQL[kind_name])
    columns = [d[0] for d in result.description]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(result.fetchall())
    return buf.getvalue()
