"""Framework interchange: 1EdTech CASE JSON and Moodle's competency framework CSV, to and from our YAML.

Imports map what the source has (the framework, its domains and competencies, levels where given) and fill
what it lacks (level descriptors, the calendar and its expected levels, evidence types) with defaults the
user edits, each one named in a warning. Our own CASE export carries the rest in `extensions`, so it
imports back unchanged.
"""

import csv
import html
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

from data_models import Framework
from tracker.errors import TrackerError
from tracker.framework import parse_framework

NAMESPACE = uuid.UUID("6f1d1b7e-6c3b-4a43-9b59-2a2f4c8a6d10")  # stable CASE identifiers for our exports
DEFAULT_TERMS = 6
DEFAULT_EVIDENCE = [
    {"id": "reflection", "label": "Reflection"},
    {"id": "observation", "label": "Direct observation"},
    {"id": "artifact", "label": "Work product or artifact"},
    {"id": "feedback", "label": "Feedback from others"},
]
MOODLE_HEADERS = [
    "Parent ID number",
    "ID number",
    "Short name",
    "Description",
    "Description format",
    "Scale values",
    "Scale configuration",
    "Rule type (optional)",
    "Rule outcome (optional)",
    "Rule config (optional)",
    "Cross-referenced competency ID numbers",
    "Exported ID (optional)",
    "Is framework",
    "Taxonomy",
]


@dataclass
class Imported:
    """A framework as our YAML, and what had to be filled in because the source did not say."""

    yaml_text: str
    warnings: list[str] = field(default_factory=list)


# ---- shared -------------------------------------------------------------------------------------
def _slug(text: str, fallback: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.:@-]+", "-", text.strip()).strip("-")[:64]
    return slug if slug and slug[0].isalnum() else fallback


def _plain(text: str | None) -> str:
    """HTML (as Moodle stores descriptions) to plain text."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text or ""))).strip()


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _assemble(
    meta: dict,
    domains: list[dict],
    scale: list[dict] | None,
    graduation: float | None,
    source: str,
    warnings: list[str],
) -> Imported:
    """Fill what the source lacks, then validate the result with the project's own loader."""
    if not scale:
        scale = [
            {"level": i, "label": label}
            for i, label in enumerate(["Entering", "Developing", "Competent", "Proficient", "Aspirational"], start=1)
        ]
        warnings.append(f"{source} has no level scale: the five-level milestone scale was used; edit `scale`.")
    levels = [s["level"] for s in scale]
    lo, hi = min(levels), max(levels)
    labels = {s["level"]: s["label"] for s in scale}
    missing = 0
    for d in domains:
        for c in d["competencies"]:
            given = {lv["level"] for lv in c.get("levels", [])}
            for level in levels:
                if level not in given:
                    missing += 1
                    c.setdefault("levels", []).append(
                        {
                            "level": level,
                            "descriptor": f"{labels[level]}: describe the observable behaviour at this level.",
                        }
                    )
            c["levels"].sort(key=lambda lv: lv["level"])
    if missing:
        warnings.append(
            f"{missing} level descriptors were missing in {source}: placeholders were written; edit each "
            "competency's `levels`."
        )
    calendar = meta.pop("calendar", None)
    if calendar is None:
        target = graduation if graduation is not None else max(lo, hi - 1)
        step = (target - lo) / max(DEFAULT_TERMS - 1, 1)
        expected = {f"T{i}": round((lo + step * (i - 1)) * 2) / 2 for i in range(1, DEFAULT_TERMS + 1)}
        expected[f"T{DEFAULT_TERMS}"] = target
        calendar = {
            "terms": [{"id": f"T{i}", "label": f"Term {i}"} for i in range(1, DEFAULT_TERMS + 1)],
            "expected": expected,
            "graduation_level": target,
        }
        warnings.append(
            f"{source} has no program calendar: six terms rising evenly to the graduation level "
            f"{target:g} were written; edit `calendar`."
        )
    evidence = meta.pop("evidence_types", None)
    if evidence is None:
        evidence = DEFAULT_EVIDENCE
        warnings.append(f"{source} lists no evidence types: a default list was written; edit `evidence_types`.")
    document = {**meta, "scale": scale, "calendar": calendar, "evidence_types": evidence, "domains": domains}
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
    parse_framework(text, source=f"{source} (as YAML)")  # every problem named, before anything is written
    return Imported(text, warnings)


# ---- CASE ---------------------------------------------------------------------------------------
def export_case(fw: Framework) -> str:
    """Our framework as a CASE CFPackage: items, isChildOf associations, rubrics for the levels, extensions for the rest."""

    def ident(*parts: str) -> str:
        return str(uuid.uuid5(NAMESPACE, "/".join([fw.id, *parts])))

    def uri(identifier: str) -> str:
        return f"urn:uuid:{identifier}"

    doc_id = ident("document")
    document = {
        "identifier": doc_id,
        "uri": uri(doc_id),
        "title": fw.name,
        "version": fw.version,
        "creator": fw.name,
        "lastChangeDateTime": "2026-01-01T00:00:00+00:00",
        "adoptionStatus": "Adopted",
        "language": "en",
        "extensions": {
            "milestone": {
                "id": fw.id,
                "scale": [s.model_dump() for s in fw.scale],
                "calendar": fw.calendar.model_dump(),
                "evidence_types": [e.model_dump() for e in fw.evidence_types],
            }
        },
    }
    items, associations, rubrics = [], [], []
    for dpos, d in enumerate(fw.domains, start=1):
        did = ident("item", d.id)
        items.append(
            {
                "identifier": did,
                "uri": uri(did),
                "CFItemType": "Domain",
                "humanCodingScheme": d.id,
                "abbreviatedStatement": d.name,
                "fullStatement": d.description or d.name,
                "lastChangeDateTime": document["lastChangeDateTime"],
            }
        )
        associations.append(_child_of(ident("assoc", d.id), did, d.name, doc_id, fw.name, dpos))
        for cpos, c in enumerate(d.competencies, start=1):
            cid = ident("item", c.id)
            items.append(
                {
                    "identifier": cid,
                    "uri": uri(cid),
                    "CFItemType": "Competency",
                    "humanCodingScheme": c.id,
                    "abbreviatedStatement": c.name,
                    "fullStatement": c.description or c.name,
                    "lastChangeDateTime": document["lastChangeDateTime"],
                    "extensions": {"milestone": {"expected": c.expected}} if c.expected else {},
                }
            )
            associations.append(_child_of(ident("assoc", c.id), cid, c.name, did, d.name, cpos))
            rid, crit = ident("rubric", c.id), ident("criterion", c.id)
            rubrics.append(
                {
                    "identifier": rid,
                    "uri": uri(rid),
                    "title": f"{c.name}: milestones",
                    "CFRubricCriteria": [
                        {
                            "identifier": crit,
                            "uri": uri(crit),
                            "rubricId": rid,
                            "position": 1,
                            "CFItemURI": {"identifier": cid, "uri": uri(cid), "title": c.name},
                            "CFRubricCriterionLevels": [
                                {
                                    "identifier": ident("level", c.id, str(lv.level)),
                                    "uri": uri(ident("level", c.id, str(lv.level))),
                                    "rubricCriterionId": crit,
                                    "score": lv.level,
                                    "quality": fw.level_label(lv.level),
                                    "description": lv.descriptor,
                                    "position": lv.level,
                                }
                                for lv in c.levels
                            ],
                        }
                    ],
                }
            )
    for item in items:
        if not item.get("extensions"):
            item.pop("extensions", None)
    package = {"CFDocument": document, "CFItems": items, "CFAssociations": associations, "CFRubrics": rubrics}
    return json.dumps(package, indent=2, ensure_ascii=False)


def _child_of(identifier: str, child: str, child_title: str, parent: str, parent_title: str, position: int) -> dict:
    return {
        "identifier": identifier,
        "uri": f"urn:uuid:{identifier}",
        "associationType": "isChildOf",
        "sequenceNumber": position,
        "lastChangeDateTime": "2026-01-01T00:00:00+00:00",
        "originNodeURI": {"identifier": child, "uri": f"urn:uuid:{child}", "title": child_title},
        "destinationNodeURI": {"identifier": parent, "uri": f"urn:uuid:{parent}", "title": parent_title},
    }


def import_case(text: str, source: str = "CASE package") -> Imported:
    """A CASE CFPackage: top-level items become domains, their descendants competencies, rubrics their levels."""
    try:
        package = json.loads(text)
        document, items = package["CFDocument"], package.get("CFItems", [])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TrackerError(f"{source}: not a CASE package (CFDocument, CFItems, CFAssociations): {exc}") from None
    warnings: list[str] = []
    ours = (document.get("extensions") or {}).get("milestone", {})
    by_id = {i["identifier"]: i for i in items}
    parent_of: dict[str, str] = {}
    order: dict[str, float] = {}
    for a in package.get("CFAssociations", []):
        if a.get("associationType") == "isChildOf":
            child, parent = a["originNodeURI"]["identifier"], a["destinationNodeURI"]["identifier"]
            parent_of[child] = parent
            order[child] = float(a.get("sequenceNumber") or 0)
    children: dict[str, list[str]] = {}
    for child, parent in parent_of.items():
        children.setdefault(parent, []).append(child)
    for kids in children.values():
        kids.sort(key=lambda k: (order.get(k, 0), by_id.get(k, {}).get("humanCodingScheme") or ""))
    tops = [i for i in children.get(document["identifier"], []) if i in by_id]
    if not tops:
        raise TrackerError(f"{source}: no item is a child of the CFDocument; nothing to import.")
    levels_of, scale_labels = _case_rubric_levels(package)
    taken: set[str] = set()
    domains: list[dict[str, Any]] = []
    for top in tops:
        node = by_id[top]
        leaves = _descendants(top, children) or [top]
        domain = {
            "id": _unique(_slug(node.get("humanCodingScheme") or "", f"domain-{len(domains) + 1}"), taken),
            "name": _name(node),
            "description": node.get("fullStatement", ""),
            "competencies": [],
        }
        for leaf in leaves:
            item = by_id[leaf]
            comp: dict[str, Any] = {
                "id": _unique(_slug(item.get("humanCodingScheme") or "", f"competency-{len(taken)}"), taken),
                "name": _name(item),
                "description": item.get("fullStatement", ""),
                "levels": levels_of.get(leaf, []),
            }
            expected = ((item.get("extensions") or {}).get("milestone") or {}).get("expected")
            if expected:
                comp["expected"] = expected
            domain["competencies"].append(comp)
        domains.append(domain)
    meta: dict[str, Any] = {
        "id": ours.get("id") or _slug(document.get("title", ""), "framework"),
        "version": str(document.get("version") or "1"),
        "name": document.get("title") or "Framework",
    }
    if not document.get("version"):
        warnings.append(f"{source} has no version: '1' was written; edit `version`.")
    if "calendar" in ours:
        meta["calendar"] = ours["calendar"]
    if "evidence_types" in ours:
        meta["evidence_types"] = ours["evidence_types"]
    scale = ours.get("scale") or ([{"level": k, "label": v} for k, v in sorted(scale_labels.items())] or None)
    graduation = ours.get("calendar", {}).get("graduation_level")
    return _assemble(meta, domains, scale, graduation, source, warnings)


def _name(item: dict) -> str:
    return (
        item.get("abbreviatedStatement") or item.get("fullStatement") or item.get("humanCodingScheme") or "Unnamed"
    )[:500]


def _descendants(node: str, children: dict[str, list[str]]) -> list[str]:
    """The competencies under a domain: its leaves, in order (deeper outlines are flattened)."""
    out = []
    for child in children.get(node, []):
        out += _descendants(child, children) or [child]
    return out


def _case_rubric_levels(package: dict) -> tuple[dict[str, list[dict]], dict[int, str]]:
    levels_of: dict[str, list[dict]] = {}
    labels: dict[int, str] = {}
    for rubric in package.get("CFRubrics", []) or []:
        for criterion in rubric.get("CFRubricCriteria", []) or []:
            item = (criterion.get("CFItemURI") or {}).get("identifier")
            for lv in criterion.get("CFRubricCriterionLevels", []) or []:
                if item is None or lv.get("score") is None:
                    continue
                level = int(float(lv["score"]))
                levels_of.setdefault(item, []).append(
                    {"level": level, "descriptor": _plain(lv.get("description")) or "—"}
                )
                labels.setdefault(level, lv.get("quality") or f"Level {level}")
    return levels_of, labels


# ---- Moodle -------------------------------------------------------------------------------------
def import_moodle(text: str, source: str = "Moodle CSV") -> Imported:
    """Moodle's competency framework export (tool_lpimportcsv): the framework row, then competencies by parent."""
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    if not rows or "ID number" not in rows[0] or "Parent ID number" not in rows[0]:
        raise TrackerError(
            f"{source}: not a Moodle competency framework CSV; the header must hold {', '.join(MOODLE_HEADERS)}."
        )
    frameworks = [r for r in rows if (r.get("Is framework") or "").strip() in ("1", "true", "True")]
    if len(frameworks) != 1:
        raise TrackerError(f"{source}: expected exactly one row with 'Is framework' = 1, found {len(frameworks)}.")
    fw_row = frameworks[0]
    comps = [r for r in rows if r is not fw_row]
    children: dict[str, list[dict]] = {}
    for r in comps:
        children.setdefault((r.get("Parent ID number") or "").strip(), []).append(r)
    warnings: list[str] = [f"{source} has no version: '1' was written; edit `version`."]
    taken: set[str] = set()
    domains: list[dict[str, Any]] = []
    loose = []
    for top in children.get("", []):
        leaves = _moodle_leaves(top, children)
        if not leaves:
            loose.append(top)
            continue
        domains.append(_moodle_domain(top, leaves, taken, len(domains)))
    if loose:
        name = (fw_row.get("Short name") or "Competencies").strip()
        domains.append(
            {
                "id": _unique("general", taken),
                "name": name,
                "description": "",
                "competencies": [_moodle_competency(r, taken) for r in loose],
            }
        )
        warnings.append(f"{len(loose)} top-level competencies without children were grouped in one domain, {name!r}.")
    values = [v.strip() for v in (fw_row.get("Scale values") or "").split(",") if v.strip()]
    scale = [{"level": i, "label": v} for i, v in enumerate(values, start=1)] if len(values) >= 2 else None
    graduation = _moodle_proficient(fw_row.get("Scale configuration") or "", len(values))
    meta = {
        "id": _slug(fw_row.get("ID number") or "", "framework"),
        "version": "1",
        "name": (fw_row.get("Short name") or "Framework").strip(),
    }
    return _assemble(meta, domains, scale, graduation, source, warnings)


def _moodle_leaves(node: dict, children: dict[str, list[dict]]) -> list[dict]:
    out = []
    for child in children.get((node.get("ID number") or "").strip(), []):
        out += _moodle_leaves(child, children) or [child]
    return out


def _moodle_domain(top: dict, leaves: list[dict], taken: set[str], index: int) -> dict:
    return {
        "id": _unique(_slug(top.get("ID number") or "", f"domain-{index + 1}"), taken),
        "name": (top.get("Short name") or "Domain").strip(),
        "description": _plain(top.get("Description")),
        "competencies": [_moodle_competency(r, taken) for r in leaves],
    }


def _moodle_competency(row: dict, taken: set[str]) -> dict:
    return {
        "id": _unique(_slug(row.get("ID number") or "", f"competency-{len(taken)}"), taken),
        "name": (row.get("Short name") or "Competency").strip(),
        "description": _plain(row.get("Description")),
        "levels": [],
    }


def _moodle_proficient(config: str, n_values: int) -> float | None:
    """The lowest scale value Moodle marks proficient: our graduation level."""
    try:
        entries = json.loads(config) if config else []
        proficient = [int(e["id"]) for e in entries[1:] if str(e.get("proficient")) == "1"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return float(min(proficient)) if proficient and n_values else None
