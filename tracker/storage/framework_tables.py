"""The framework's tables: the accepted versions and their crosswalks, kept in step with the accepted framework on every opening."""

from dataclasses import dataclass
from decimal import Decimal

from data_models import Framework
from tracker.core.errors import FrameworkError
from tracker.framework.loading import parse_framework
from tracker.storage.database import Cursor, audit, now, write
from tracker.storage.derived import refresh_term_levels


# ---- the accepted versions -----------------------------------------------------------------------
@dataclass(frozen=True)
class Version:
    framework: Framework
    source_yaml: str
    accepted_at: object
    accepted_by: str


def versions(cur: Cursor) -> list[Version]:
    """Every accepted version, oldest first; the last is in force."""
    rows = cur.execute(
        "SELECT source_yaml, accepted_at, accepted_by, version FROM framework_versions "
        "WHERE accepted_at IS NOT NULL ORDER BY accepted_at, loaded_at"
    ).fetchall()
    return [Version(parse_framework(text, source=f"version {v}"), text, at, by) for text, at, by, v in rows]


def accepted(cur: Cursor) -> Framework | None:
    found = versions(cur)
    return found[-1].framework if found else None


def _framework_rows(fw: Framework) -> dict[str, list[tuple]]:
    comps = [
        (c.id, c.name, d.id, d.name, di, ci) for di, d in enumerate(fw.domains) for ci, c in enumerate(d.competencies)
    ]
    expected = [
        (cid, term, fw.term_index(term), fw.expected_level(cid, term))
        for cid in fw.competencies
        for term in fw.term_ids
    ]
    terms = [(t.id, i, t.label) for i, t in enumerate(fw.calendar.terms, start=1)]
    return {"fw_competencies": comps, "fw_expected": expected, "fw_terms": terms}


def trace(history: list[Framework], start: int, competency_id: str) -> list[str]:
    """The competencies of the last version that inherit ratings of `competency_id` made under version `start`."""
    now_ids = [competency_id]
    for fw in history[start + 1 :]:
        following: list[str] = []
        for cid in now_ids:
            if fw.crosswalk is not None:
                following += fw.crosswalk.successors(cid, fw.competencies) or []
            elif cid in fw.competencies:
                following.append(cid)
        now_ids = list(dict.fromkeys(following))
    return now_ids


def trace_level(history: list[Framework], start: int, level: float) -> float:
    """A level of version `start` on the last version's scale (clamped to it)."""
    for fw in history[start + 1 :]:
        if fw.crosswalk is not None:
            level = fw.crosswalk.map_level(level)
        level = min(max(level, fw.min_level), fw.max_level)
    return level


def _history_rows(history: list[Framework]) -> dict[str, list[tuple]]:
    """fw_history (every version's competencies), fw_crosswalk and fw_level_map (the earlier versions' competencies
    and levels under the last version; a level only where it changes)."""
    current = history[-1]
    names: list[tuple] = []
    walk: list[tuple] = []
    levels: list[tuple] = []
    seen_versions: set[str] = set()
    for i, fw in enumerate(history):
        if fw.version in seen_versions:
            continue
        seen_versions.add(fw.version)
        later = i < len(history) - 1
        for d in fw.domains:
            for c in d.competencies:
                heirs = trace(history, i, c.id) if later else [c.id]
                names.append((fw.version, c.id, c.name, d.name, not heirs))
                if later and fw.version != current.version:
                    walk += [(fw.version, c.id, h) for h in heirs] or [(fw.version, c.id, None)]
        if later and fw.version != current.version:
            for lv in fw.rating_levels:
                mapped = trace_level(history, i, lv)
                if mapped != lv:
                    levels.append((fw.version, lv, mapped))
    return {"fw_history": names, "fw_crosswalk": walk, "fw_level_map": levels}


def _comparable(rows: list[tuple]) -> list[str]:
    """Rows in one form whichever side they come from: a DECIMAL column reads back as Decimal, and an integer
    level was written as an int, so every number compares as a float."""
    return sorted(
        repr(tuple(float(v) if isinstance(v, int | float | Decimal) and not isinstance(v, bool) else v for v in row))
        for row in rows
    )


def rewrite_tables(c: Cursor, wanted: dict[str, list[tuple]]) -> bool:
    """Make the derived framework tables hold `wanted`; True when any changed. An opening with nothing changed
    writes nothing: a table rewritten has every derived level table refreshed after it, which at 100,000 learners
    takes a minute."""
    changed = False
    for table, rows in wanted.items():
        have = c.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - fixed table names
        if _comparable(have) == _comparable(rows):
            continue
        changed = True
        c.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            c.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608 - fixed table names
    return changed


def table_rows(history: list[Framework]) -> dict[str, list[tuple]]:
    return _framework_rows(history[-1]) | _history_rows(history)


def sync(cur: Cursor, configured: Framework | FrameworkError, source_yaml: str) -> Framework:
    """At start: a database without a framework accepts the configured one; otherwise the accepted version
    stays in force (whatever the configured file holds, even problems) and its derived tables are made to
    match it. Returns the framework in force."""
    found = versions(cur)
    if not found:
        if isinstance(configured, FrameworkError):
            raise configured

        def first(c: Cursor) -> bool:
            if versions(c):  # another server accepted one first (in server mode the write follows it first)
                return False
            insert_version(c, configured, source_yaml, "init")
            rewrite_tables(c, table_rows([configured]))
            refresh_term_levels(c)
            audit(c, "init", "framework accepted", configured.id, {"version": configured.version})
            return True

        if write(cur, first):
            return configured
        found = versions(cur)
    history = [v.framework for v in found]

    def follow(c: Cursor) -> None:
        if rewrite_tables(c, table_rows(history)):
            refresh_term_levels(c)

    write(cur, follow)
    return history[-1]


def insert_version(c: Cursor, fw: Framework, source_yaml: str, actor: str) -> None:
    stamp = now()
    c.execute(
        "INSERT INTO framework_versions (framework_id, version, name, source_yaml, loaded_at, accepted_at, accepted_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [fw.id, fw.version, fw.name, source_yaml, stamp, stamp, actor],
    )
