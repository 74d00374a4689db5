"""Framework revisions: what a new version changes, and its upgrade in one audited write."""

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from data_models import AssessmentPlan, Framework
from tracker.core.errors import FrameworkError, TrackerError
from tracker.framework.loading import parse_framework, read_framework_text
from tracker.storage.database import Cursor, audit, write
from tracker.storage.derived import MAPPED_RATINGS, refresh_term_levels
from tracker.storage.framework_tables import accepted, insert_version, rewrite_tables, table_rows, versions


class RevisionRefused(TrackerError):
    """A new framework version that cannot be accepted as it is; nothing was changed."""


# ---- what a new version changes -------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    kind: str  # competency, domain, level, term, target, plan
    change: str  # added, removed, renamed, merged, split, retired, changed, ...
    item: str  # the id it concerns
    detail: str
    ratings: int = 0
    learners: int = 0


@dataclass
class Revision:
    """A new version against the accepted one: its changes, and the ratings it would leave without a home."""

    old: Framework
    new: Framework
    changes: list[Change] = field(default_factory=list)
    homeless: list[str] = field(default_factory=list)
    refused: str | None = None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [c.__dict__ for c in self.changes], columns=["kind", "change", "item", "detail", "ratings", "learners"]
        )


def _usage(cur: Cursor) -> pd.DataFrame:
    """Every rating under the accepted framework: its competency, level and term there, and its learner."""
    from tracker.records.revision import ratings_under_accepted

    return ratings_under_accepted(cur)


def _count(usage: pd.DataFrame, mask: pd.Series) -> tuple[int, int]:
    part = usage[mask]
    return int(part["id"].nunique()), int(part["learner_id"].nunique())


def compare(cur: Cursor, new: Framework) -> Revision:
    """What `new` changes against the accepted version, each change with the ratings and learners it touches."""
    old = accepted(cur)
    if old is None:
        raise TrackerError("The database has no framework yet: run `python -m tracker init`.")
    rev = Revision(old, new)
    if new.version == old.version:
        same = new.model_dump() == old.model_dump()
        rev.refused = (
            f"version {new.version} is already accepted and this file is the same."
            if same
            else f"version {new.version} is already accepted with other content: change `version` in the file "
            "(for example to the next release) and run the upgrade again."
        )
        return rev
    earlier = [v.framework.version for v in versions(cur)[:-1]]
    if new.version in earlier:
        rev.refused = (
            f"version {new.version} was accepted before {old.version}; a revision needs a version of its own: "
            "change `version`."
        )
        return rev
    cw = new.crosswalk
    if cw is not None and cw.from_version != old.version:
        rev.refused = (
            f"its crosswalk says it revises version {cw.from_version}, but the accepted version is {old.version}: "
            "set `crosswalk.from_version` to it."
        )
    usage = _usage(cur)
    by_comp = usage["competency_id"]
    add = rev.changes.append

    # competencies
    heirs_of: dict[str, list[str]] = {}
    for cid, c in old.competencies.items():
        heirs = cw.successors(cid, new.competencies) if cw is not None else ([cid] if cid in new.competencies else None)
        n, k = _count(usage, by_comp == cid)
        if heirs is None:
            add(
                Change("competency", "removed", cid, f"{c.name}: no successor; the crosswalk must name one or []", n, k)
            )
            rev.homeless += _describe(usage[by_comp == cid], old, f"competency {cid} is removed without a successor")
            continue
        heirs_of[cid] = heirs
        if heirs == [cid]:
            nc = new.competencies[cid]
            if nc.name != c.name:
                add(Change("competency", "renamed", cid, f"{c.name} → {nc.name}", n, k))
            if new.domain_of[cid].id != old.domain_of[cid].id:
                add(Change("competency", "moved", cid, f"{old.domain_of[cid].name} → {new.domain_of[cid].name}", n, k))
            if [lv.descriptor for lv in nc.levels] != [lv.descriptor for lv in c.levels]:
                add(Change("competency", "descriptors changed", cid, nc.name, n, k))
        elif not heirs:
            add(Change("competency", "retired", cid, f"{c.name}: stays in history, counts in no standing", n, k))
    inherits: dict[str, list[str]] = {}
    for cid, heirs in heirs_of.items():
        for h in heirs:
            inherits.setdefault(h, []).append(cid)
    for cid, heirs in heirs_of.items():
        c = old.competencies[cid]
        n, k = _count(usage, by_comp == cid)
        names = ", ".join(f"{new.competencies[h].name} ({h})" for h in heirs)
        if len(heirs) > 1:
            add(Change("competency", "split", cid, f"{c.name} → {names}; each inherits its ratings", n, k))
        elif len(heirs) == 1 and heirs[0] != cid:
            if len(inherits[heirs[0]]) > 1:
                add(Change("competency", "merged", cid, f"{c.name} → {names}", n, k))
            else:
                add(Change("competency", "renamed", cid, f"{c.name} ({cid}) → {names}", n, k))
    for cid, c in new.competencies.items():
        if cid not in inherits:
            add(Change("competency", "added", cid, f"{c.name} ({new.domain_of[cid].name}); no ratings yet"))

    # domains
    for d in old.domains:
        nd = next((x for x in new.domains if x.id == d.id), None)
        n, k = _count(usage, by_comp.isin([c.id for c in d.competencies]))
        if nd is None:
            add(Change("domain", "removed", d.id, d.name, n, k))
        elif nd.name != d.name:
            add(Change("domain", "renamed", d.id, f"{d.name} → {nd.name}", n, k))
    for d in new.domains:
        if d.id not in old.domain_ids:
            add(Change("domain", "added", d.id, d.name))

    # levels
    levels = usage["level"].astype(float)
    mapping = cw.levels if cw is not None else {}
    for lv in old.levels:
        n, k = _count(usage, (levels >= lv - 0.5) & (levels <= lv + 0.5))
        to = mapping.get(lv, lv)
        if to != lv:
            add(Change("level", "mapped", str(lv), f"{lv} → {to} ({new.level_label(to)})", n, k))
        elif lv not in new.levels:
            add(Change("level", "removed", str(lv), f"{old.level_label(lv)}: map it under `crosswalk.levels`", n, k))
        elif new.level_label(lv) != old.level_label(lv):
            add(Change("level", "relabelled", str(lv), f"{old.level_label(lv)} → {new.level_label(lv)}", n, k))
    landed = levels.map(cw.map_level if cw is not None else float)
    outside = (landed < new.min_level) | (landed > new.max_level)
    rev.homeless += _describe(usage[outside], old, f"its level leaves the new scale {new.min_level}–{new.max_level}")
    for lv in new.levels:
        if lv not in old.levels:
            add(Change("level", "added", str(lv), new.level_label(lv)))

    # terms and targets
    terms = usage["term"]
    for t in old.calendar.terms:
        n, k = _count(usage, terms == t.id)
        if t.id not in new.term_ids:
            add(Change("term", "removed", t.id, t.label, n, k))
            rev.homeless += _describe(usage[terms == t.id], old, f"term {t.id} leaves the calendar")
        elif new.term_label(t.id) != t.label or new.term_index(t.id) != old.term_index(t.id):
            add(Change("term", "changed", t.id, f"{old.term_name(t.id)} → {new.term_name(t.id)}", n, k))
    for t in new.calendar.terms:
        if t.id not in old.term_ids:
            add(Change("term", "added", t.id, t.label))
    if new.calendar.graduation_level != old.calendar.graduation_level:
        add(
            Change(
                "target",
                "changed",
                "graduation",
                f"graduation level {old.calendar.graduation_level:g} → {new.calendar.graduation_level:g}",
                *_count(usage, usage["id"].notna()),
            )
        )
    for cid in new.competencies:
        if cid not in old.competencies:
            continue
        moved = [
            f"{t} {old.expected_level(cid, t):g} → {new.expected_level(cid, t):g}"
            for t in new.term_ids
            if t in old.term_ids and old.expected_level(cid, t) != new.expected_level(cid, t)
        ]
        if moved:
            add(Change("target", "changed", cid, "; ".join(moved), *_count(usage, by_comp == cid)))
        was, will = old.plan_for(cid), new.plan_for(cid)
        if was != will:  # the assessment plan rewrites no rating: only what the pages ask for
            add(Change("plan", "changed", cid, f"{_plan(was)} → {_plan(will)}"))
    rev.homeless = list(dict.fromkeys(rev.homeless))
    return rev


def _plan(plan: AssessmentPlan | None) -> str:
    return plan.words() if plan is not None else "no assessment plan"


def _describe(rows: pd.DataFrame, old: Framework, why: str) -> list[str]:
    return [
        f"rating {r.id} ({r.learner_id}, {r.original_id} under {r.framework_version}, level {r.level:g}, "
        f"{r.term}): {why}"
        for r in rows.itertuples()
    ]


# ---- the upgrade ------------------------------------------------------------------------------------
def upgrade(cur: Cursor, new: Framework, source_yaml: str, actor: str) -> Revision:
    """Accept `new` in one audited transaction, or refuse (RevisionRefused) naming every rating it would leave
    without a home. Ratings are not touched; the derived tables are recomputed under the new version."""
    rev = compare(cur, new)
    if rev.refused:
        raise RevisionRefused(f"The framework was not upgraded: {rev.refused}")
    if rev.homeless:
        raise RevisionRefused(
            f"The framework was not upgraded: {len(rev.homeless)} rating(s) would be left without a home. "
            "Name where they go in the file's `crosswalk:` section (competencies: old id -> the new ids, [] to "
            "retire; levels: old level -> new level), then run the upgrade again.\n" + "\n".join(rev.homeless)
        )
    history = [v.framework for v in versions(cur)] + [new]

    def work(c: Cursor) -> None:
        insert_version(c, new, source_yaml, actor)
        rewrite_tables(c, table_rows(history))
        refresh_term_levels(c)
        audit(
            c,
            actor,
            "framework upgrade",
            new.id,
            {
                "from": rev.old.version,
                "to": new.version,
                "changes": [f"{x.kind} {x.item} {x.change}: {x.detail}" for x in rev.changes],
            },
        )

    write(cur, work)
    return rev


def upgrade_file(cur: Cursor, path: Path, actor: str) -> Revision:
    text = read_framework_text(path)
    return upgrade(cur, parse_framework(text, source=path.name), text, actor)


# ---- a configured file that differs from the accepted version -----------------------------------------
@dataclass(frozen=True)
class Pending:
    """The configured framework file, when it differs from the accepted version."""

    path: Path
    revision: Revision | None  # None when the file does not load
    problem: str | None  # why it cannot be accepted as it is


def differs(cur: Cursor, path: Path) -> bool:
    """Whether the configured file differs from the accepted version (cheap: no ratings are read)."""
    old = accepted(cur)
    if old is None or not path.exists():
        return False
    try:
        return parse_framework(read_framework_text(path), source=path.name).model_dump() != old.model_dump()
    except FrameworkError:  # not readable as it is: it differs, and the Framework page says why
        return True


def pending(cur: Cursor, path: Path) -> Pending | None:
    """None when the configured file is the accepted version (or absent); else what it would change."""
    old = accepted(cur)
    if not path.exists():
        return None
    try:
        new = parse_framework(read_framework_text(path), source=path.name)
    except FrameworkError as exc:
        return Pending(path, None, str(exc))
    if old is None or new.model_dump() == old.model_dump():
        return None
    rev = compare(cur, new)
    problem = rev.refused or (
        f"{len(rev.homeless)} rating(s) would be left without a home; name their successors in `crosswalk:`."
        if rev.homeless
        else None
    )
    return Pending(path, rev, problem)


def crosswalk_rows(previous: Framework, fw: Framework) -> pd.DataFrame:
    """Where `previous`'s competencies went in `fw`, in words: one row per competency that did not stay as it was."""
    rows = []
    inherits: dict[str, list[str]] = {}
    heirs_of = {}
    for cid in previous.competencies:
        heirs = fw.crosswalk.successors(cid, fw.competencies) if fw.crosswalk else None
        heirs = heirs if heirs is not None else ([cid] if cid in fw.competencies else [])
        heirs_of[cid] = heirs
        for h in heirs:
            inherits.setdefault(h, []).append(cid)
    for cid, heirs in heirs_of.items():
        old_name = previous.competencies[cid].name
        if not heirs:
            change = "retired"
        elif len(heirs) > 1:
            change = "split"
        elif len(inherits[heirs[0]]) > 1:
            change = "merged"
        elif heirs[0] != cid or fw.competencies[heirs[0]].name != old_name:
            change = "renamed"
        else:
            continue
        to = "; ".join(fw.competencies[h].name for h in heirs) or "(no successor)"
        rows.append({"Change": change, "Was": f"{old_name} ({cid})", "Now": to})
    for cid, c in fw.competencies.items():
        if cid not in inherits:
            rows.append({"Change": "added", "Was": "", "Now": f"{c.name} ({cid})"})
    if fw.crosswalk is not None:
        for old_level, new_level in sorted(fw.crosswalk.levels.items()):
            if old_level != new_level:
                rows.append(
                    {
                        "Change": "level mapped",
                        "Was": f"{old_level} {previous.level_label(old_level)}",
                        "Now": f"{new_level} {fw.level_label(new_level)}",
                    }
                )
    return pd.DataFrame(rows, columns=["Change", "Was", "Now"])


# ---- framework versions ---------------------------------------------------------------------------------
def ratings_under_accepted(cur: Cursor) -> pd.DataFrame:
    """Every rating (superseded ones too) as the accepted framework reads it: its competency and level there, with
    the id and version it was made under. Counts for `framework diff`; no caller shows a row to a viewer."""
    sql = (
        "SELECT id, learner_id, competency_id AS original_id, framework_version, "  # noqa: S608 - constant SQL
        "mapped_competency_id AS competency_id, CAST(mapped_level AS DOUBLE) AS level, term FROM "
        + MAPPED_RATINGS
        + " ORDER BY learner_id, seq"
    )
    return cur.execute(sql).df()


def framework_versions(cur: Cursor) -> pd.DataFrame:
    """The accepted versions, newest first, with who accepted them and when."""
    return cur.execute(
        "SELECT version, name, accepted_at, accepted_by FROM framework_versions WHERE accepted_at IS NOT NULL "
        "ORDER BY accepted_at DESC"
    ).df()
