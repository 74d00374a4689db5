"""Framework interchange: 1EdTech CASE JSON and Moodle's competency framework CSV, to and from our YAML.

Imports map what the source has (the framework, its outline of groups and competencies, levels where given)
and fill what it lacks (level descriptors, the calendar and its expected levels, evidence types) with defaults
the user edits, each one named in a warning; whatever the source holds that we cannot use is named in a
warning or kept as a note in a description, never dropped in silence.

Outlines deeper than domain → competency: every leaf is a competency, and every parent of leaves is a domain
named by its path from the top ("Competencies › Delivery-related › Analytical Thinking"); the descriptions of
the groups above a domain are added to the domain's description. So no name or description is lost.

Our own exports carry what the other format has no place for (CASE: `extensions`; Moodle: a comment in the
framework row's description), so they import back unchanged.
"""

import csv
import html
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import yaml

from data_models import AssessmentPlan, Framework
from tracker.core.errors import TrackerError
from tracker.core.text import csv_cell, csv_value
from tracker.framework.loading import parse_framework

NAMESPACE = uuid.UUID("6f1d1b7e-6c3b-4a43-9b59-2a2f4c8a6d10")  # stable CASE identifiers for our exports
DEFAULT_TERMS = 6
DEFAULT_EVIDENCE = [
    {"id": "reflection", "label": "Reflection"},
    {"id": "observation", "label": "Direct observation"},
    {"id": "artifact", "label": "Work product or artifact"},
    {"id": "feedback", "label": "Feedback from others"},
]
PATH_SEPARATOR = " › "
MOODLE_SHORTNAME_MAX = 100  # Moodle shortens id numbers and short names to 100 characters on import
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
# The names each column has carried (Moodle's own strings through its versions, and files in the wild),
# compared lower-cased with "(optional)" and everything but letters and digits removed.
MOODLE_ALIASES = [
    {"parentidnumber"},
    {"idnumber"},
    {"shortname"},
    {"description"},
    {"descriptionformat"},
    {"scalevalues"},
    {"scaleconfiguration"},
    {"ruletype"},
    {"ruleoutcome"},
    {"ruleconfig"},
    {"crossreferencedcompetencyidnumbers", "relatedidnumbers", "relatedcompetencies"},
    {"exportedid", "exportid"},
    {"isframework"},
    {"taxonomy", "taxonomies"},
]
# Item fields an import uses (or that only point back to the package); any other is named in a warning.
CASE_ITEM_FIELDS_KEPT = {
    "identifier", "uri", "fullStatement", "abbreviatedStatement", "humanCodingScheme", "notes", "lastChangeDateTime",
    "CFDocumentURI", "CFItemAssociationURI", "extensions", "language",
}  # fmt: skip
MOODLE_MARKER = "milestone"  # the comment in the framework row that carries what Moodle has no place for


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
    try:
        Framework.model_validate(document)  # quick; parsing the YAML with line numbers takes seconds when large
    except ValueError:
        parse_framework(text, source=f"{source} (as YAML)")  # every problem named, with its line
        raise
    return Imported(text, warnings)


# ---- outlines and texts, shared by both formats -------------------------------------------------
@dataclass
class Node:
    """One entry of a source's outline: a group or a competency."""

    code: str  # the human identifier (CASE humanCodingScheme, Moodle id number)
    name: str
    description: str = ""
    notes: list[str] = field(default_factory=list)  # what the source says that we keep only as text
    levels: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # fields of our own exports, set on the competency as they are


def outline_to_domains(
    tops: list[str], nodes: dict[str, Node], children: dict[str, list[str]], general: str, source: str, warnings: list
) -> list[dict]:
    """Every parent of leaves becomes a domain named by its path; every leaf a competency; loose leaves one domain."""
    taken: set[str] = set()
    domains: list[dict[str, Any]] = []
    deep = 0

    def walk(key: str, path: list[Node]) -> None:
        nonlocal deep
        kids = children.get(key, [])
        here = [*path, nodes[key]]
        leaves = [k for k in kids if not children.get(k)]
        if leaves:
            deep += len(path) > 0
            domains.append(_domain(here, [nodes[k] for k in leaves], taken, len(domains), warnings))
        for kid in kids:
            if children.get(kid):
                walk(kid, here)

    loose = []
    for top in tops:
        if children.get(top):
            walk(top, [])
        else:
            loose.append(nodes[top])
    if loose:
        group = Node(code="general", name=general)
        domains.append(_domain([group], loose, taken, len(domains), warnings))
        warnings.append(
            f"{len(loose)} top-level competencies of {source} have no group: they were put in one domain, {general!r}."
        )
    for d in domains:
        if re.search(r"\blevels?\b", d["name"], flags=re.I):
            warnings.append(
                f"{source}: the group {d['name']!r} looks like a description of levels; it was imported as a "
                "domain of competencies: if it describes levels, move its text to `scale` and delete the domain."
            )
    if deep:
        warnings.append(
            f"{source} has groups deeper than domain → competency: {deep} domains are named by their path "
            f"(…{PATH_SEPARATOR}…) and carry the descriptions of the groups above them."
        )
    return domains


def _domain(path: list[Node], leaves: list[Node], taken: set[str], index: int, warnings: list) -> dict:
    node = path[-1]
    above = [f"{n.name}: {n.description}" for n in path[:-1] if n.description]
    return {
        "id": _unique(_slug(node.code, f"domain-{index + 1}"), taken),
        "name": _fit(PATH_SEPARATOR.join(n.name for n in path), 500, f"domain {node.code}", warnings),
        "description": _fit(
            "\n\n".join([t for t in [node.description, *node.notes, *above] if t]), 10_000, node.code, warnings
        ),
        "competencies": [_competency(leaf, taken, warnings) for leaf in leaves],
    }


def _competency(node: Node, taken: set[str], warnings: list) -> dict:
    text = "\n\n".join([t for t in [node.description, *node.notes] if t])
    out = {
        "id": _unique(_slug(node.code, f"competency-{len(taken)}"), taken),
        "name": _fit(node.name, 500, f"competency {node.code}", warnings),
        "description": _fit(text, 10_000, f"competency {node.code}", warnings),
        "levels": node.levels,
    }
    return {**out, **node.extra}


def _fit(text: str, limit: int, what: str, warnings: list) -> str:
    if len(text) <= limit:
        return text
    warnings.append(f"the text of {what} was longer than {limit} characters and was shortened.")
    return text[: limit - 1] + "…"


def text_to_html(text: str) -> str:
    """Our plain text as the HTML Moodle stores: paragraphs at blank lines, line breaks kept."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(f"<p>{'<br>'.join(html.escape(line) for line in p.splitlines())}</p>" for p in paragraphs)


def html_to_text(markup: str | None) -> str:
    """HTML as Moodle stores it to plain text: paragraphs and line breaks kept, other tags and spacing dropped."""
    text = re.sub(r"<!--.*?-->", "", markup or "", flags=re.S)
    text = re.sub(r"\s+", " ", text)  # raw newlines inside HTML are spaces
    text = re.sub(r"<br\s*/?>", "\n", text, flags=re.I)
    text = re.sub(r"</(p|div|li|h[1-6])\s*>", "\n\n", text, flags=re.I)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# ---- CASE ---------------------------------------------------------------------------------------
def export_case(fw: Framework, publisher: str | None = None, changed: date | datetime | None = None) -> str:
    """Our framework as a CASE CFPackage: items, isChildOf associations, rubrics for the levels, extensions for the rest.

    `publisher` (or the framework's `publisher`) is the document's creator and publisher; `changed` (or the
    framework's `changed`) is every object's lastChangeDateTime, so a consumer sees when this version changed.
    """
    creator = publisher or fw.publisher
    when = changed or fw.changed
    if not creator:
        raise TrackerError(f"framework {fw.id}: no publisher; add `publisher:` to the YAML or pass --publisher.")
    if when is None:
        raise TrackerError(f"framework {fw.id}: no change date; add `changed:` (YYYY-MM-DD) to the YAML.")
    stamp = _case_time(when)

    def ident(*parts: str) -> str:
        return str(uuid.uuid5(NAMESPACE, "/".join([fw.id, *parts])))

    def link(identifier: str, title: str) -> dict:
        return {"identifier": identifier, "uri": f"urn:uuid:{identifier}", "title": title}

    doc_id = ident("document")
    doc_link = link(doc_id, fw.name)
    document = {
        "identifier": doc_id,
        "uri": doc_link["uri"],
        "CFPackageURI": link(ident("package"), fw.name),
        "title": fw.name,
        "version": fw.version,
        "creator": creator,
        "publisher": creator,
        "lastChangeDateTime": stamp,
        "adoptionStatus": "Adopted",
        "language": "en",
        "extensions": {
            "milestone": {
                "id": fw.id,
                "scale": [s.model_dump(exclude_defaults=True) for s in fw.scale],
                "calendar": fw.calendar.model_dump(mode="json", exclude_none=True),
                "evidence_types": [e.model_dump() for e in fw.evidence_types],
            }
            | ({"decision_outcomes": [o.model_dump() for o in fw.decision_outcomes]} if fw.decision_outcomes else {})
            | ({"crosswalk": fw.crosswalk.model_dump(mode="json")} if fw.crosswalk else {})
            | ({"assessment_plan": _plan(fw.assessment_plan)} if fw.assessment_plan else {})
        },
    }
    items, associations, rubrics = [], [], []
    for dpos, d in enumerate(fw.domains, start=1):
        did = ident("item", d.id)
        items.append(_case_item(link(did, d.name), "Domain", d.id, d.name, d.description, doc_link, stamp, {}))
        associations.append(_child_of(link(ident("assoc", d.id), ""), link(did, d.name), doc_link, dpos, stamp))
        for cpos, c in enumerate(d.competencies, start=1):
            cid = ident("item", c.id)
            ours = ({"expected": c.expected} if c.expected else {}) | (
                {"assessment_plan": _plan(c.assessment_plan)} if c.assessment_plan else {}
            )
            extra = {"milestone": ours} if ours else {}
            items.append(
                _case_item(link(cid, c.name), "Competency", c.id, c.name, c.description, doc_link, stamp, extra)
            )
            associations.append(
                _child_of(link(ident("assoc", c.id), ""), link(cid, c.name), link(did, d.name), cpos, stamp)
            )
            rubrics.append(_case_rubric(fw, c, link(cid, c.name), ident, stamp))
    associations += _replaced_by(fw, ident, link, stamp)
    for association in associations:
        association["CFDocumentURI"] = doc_link
    package = {"CFDocument": document, "CFItems": items, "CFAssociations": associations, "CFRubrics": rubrics}
    return json.dumps(package, indent=2, ensure_ascii=False)


def _plan(plan: AssessmentPlan) -> dict:
    return plan.model_dump(exclude_none=True)


def _case_time(when: date | datetime) -> str:
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day, tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _case_item(
    ref: dict, kind: str, code: str, name: str, description: str, doc: dict, stamp: str, extensions: dict
) -> dict:
    item = {
        "identifier": ref["identifier"],
        "uri": ref["uri"],
        "CFDocumentURI": doc,
        "CFItemType": kind,
        "humanCodingScheme": code,
        "abbreviatedStatement": name,
        "fullStatement": description or name,
        "lastChangeDateTime": stamp,
    }
    return {**item, "extensions": extensions} if extensions else item


def _case_rubric(fw: Framework, c: Any, item: dict, ident: Any, stamp: str) -> dict:
    rid, crit = ident("rubric", c.id), ident("criterion", c.id)
    return {
        "identifier": rid,
        "uri": f"urn:uuid:{rid}",
        "title": f"{c.name}: milestones",
        "description": f"The levels of {c.name}, one criterion level per level of the scale.",
        "lastChangeDateTime": stamp,
        "CFRubricCriteria": [
            {
                "identifier": crit,
                "uri": f"urn:uuid:{crit}",
                "rubricId": rid,
                "category": fw.domain_of[c.id].name,
                "description": c.name,
                "position": 1,
                "weight": 1,
                "CFItemURI": item,
                "lastChangeDateTime": stamp,
                "CFRubricCriterionLevels": [
                    {
                        "identifier": ident("level", c.id, str(lv.level)),
                        "uri": f"urn:uuid:{ident('level', c.id, str(lv.level))}",
                        "rubricCriterionId": crit,
                        "score": lv.level,
                        "quality": fw.level_label(lv.level),
                        "description": lv.descriptor,
                        "position": lv.level,
                        "lastChangeDateTime": stamp,
                    }
                    for lv in c.levels
                ],
            }
        ],
    }


def _replaced_by(fw: Framework, ident: Any, link: Any, stamp: str) -> list[dict]:
    """The crosswalk from the version before as CASE replacedBy associations: each old competency (identified as
    that version's export identified it: identifiers depend only on the framework and competency ids) is replaced
    by every competency that inherits its ratings. A retired competency has none."""
    if fw.crosswalk is None:
        return []
    out = []
    for old_id, heirs in fw.crosswalk.competencies.items():
        for position, new_id in enumerate(heirs, start=1):
            name = fw.competencies[new_id].name if new_id in fw.competencies else new_id
            out.append(
                {
                    "identifier": ident("replaced", old_id, new_id),
                    "uri": f"urn:uuid:{ident('replaced', old_id, new_id)}",
                    "associationType": "replacedBy",
                    "sequenceNumber": position,
                    "lastChangeDateTime": stamp,
                    "originNodeURI": link(ident("item", old_id), f"{old_id} ({fw.crosswalk.from_version})"),
                    "destinationNodeURI": link(ident("item", new_id), name),
                }
            )
    return out


def _child_of(ref: dict, child: dict, parent: dict, position: int, stamp: str) -> dict:
    return {
        "identifier": ref["identifier"],
        "uri": ref["uri"],
        "associationType": "isChildOf",
        "sequenceNumber": position,
        "lastChangeDateTime": stamp,
        "originNodeURI": child,
        "destinationNodeURI": parent,
    }


def import_case(text: str, source: str = "CASE package") -> Imported:
    """A CASE CFPackage: its outline as domains and competencies, rubrics as levels, other associations as notes."""
    try:
        package = json.loads(text)
        document, items = package["CFDocument"], package.get("CFItems") or []
        by_id = {i["identifier"]: i for i in items}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TrackerError(f"{source}: not a CASE package (CFDocument, CFItems, CFAssociations): {exc}") from None
    warnings: list[str] = []
    ours = (document.get("extensions") or {}).get("milestone", {})
    children, others = _case_outline(package, by_id, document["identifier"], source, warnings)
    tops = [i for i in children.get(document["identifier"], []) if i in by_id]
    if not tops:
        raise TrackerError(f"{source}: no item is a child of the CFDocument; nothing to import.")
    levels_of, scale_labels = _case_rubric_levels(package)
    nodes = {key: _case_node(item, levels_of.get(key, [])) for key, item in by_id.items()}
    kept = CASE_ITEM_FIELDS_KEPT | ({"CFItemType"} if ours else set())  # ours says Domain or Competency, as the outline
    unused = sorted({k for item in items for k in item if item[k]} - kept)
    if unused:
        warnings.append(
            f"{source}: these fields of its items have no place in our framework and were left out: "
            f"{', '.join(unused)}."
        )
    if "crosswalk" in ours:  # our own crosswalk, whole (its replacedBy associations say the same)
        others = [a for a in others if a["associationType"] != "replacedBy"]
    _case_notes(others, nodes, by_id, children, source, warnings)
    domains = outline_to_domains(tops, nodes, children, document.get("title") or "Competencies", source, warnings)
    meta: dict[str, Any] = {
        "id": ours.get("id") or _slug(document.get("title", ""), "framework"),
        "version": str(document.get("version") or "1"),
        "name": document.get("title") or "Framework",
    }
    publisher = document.get("publisher") or document.get("creator")
    if publisher:
        meta["publisher"] = str(publisher)[:500]
    changed = _case_date(document.get("lastChangeDateTime"))
    if changed:
        meta["changed"] = changed
    if not document.get("version"):
        warnings.append(f"{source} has no version: '1' was written; edit `version`.")
    if "calendar" in ours:
        meta["calendar"] = ours["calendar"]
    if "evidence_types" in ours:
        meta["evidence_types"] = ours["evidence_types"]
    if "decision_outcomes" in ours:
        meta["decision_outcomes"] = ours["decision_outcomes"]
    if "crosswalk" in ours:
        meta["crosswalk"] = ours["crosswalk"]
    if "assessment_plan" in ours:
        meta["assessment_plan"] = ours["assessment_plan"]
    scale = ours.get("scale") or ([{"level": k, "label": v} for k, v in sorted(scale_labels.items())] or None)
    graduation = ours.get("calendar", {}).get("graduation_level")
    return _assemble(meta, domains, scale, graduation, source, warnings)


def _case_date(value: Any) -> date | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _case_outline(
    package: dict, by_id: dict, doc_id: str, source: str, warnings: list
) -> tuple[dict[str, list[str]], list[dict]]:
    """The isChildOf tree (children in sequence order) and every other association, for notes."""
    parent_of: dict[str, str] = {}
    order: dict[str, float] = {}
    others = []
    for a in package.get("CFAssociations") or []:
        try:
            kind = a["associationType"]
            origin, destination = a["originNodeURI"]["identifier"], a["destinationNodeURI"]["identifier"]
        except (KeyError, TypeError):
            warnings.append(f"{source}: an association without type, origin or destination was left out: {a!r:.120}")
            continue
        if kind != "isChildOf":
            others.append(a)
        elif origin in by_id and (destination in by_id or destination == doc_id):
            if origin in parent_of:
                warnings.append(f"{source}: item {_code(by_id[origin])} has two parents; the first was kept.")
                continue
            parent_of[origin] = destination
            order[origin] = float(a.get("sequenceNumber") or 0)
        else:
            warnings.append(f"{source}: an isChildOf association names an item not in the package; it was left out.")
    children: dict[str, list[str]] = {}
    for child, parent in parent_of.items():
        children.setdefault(parent, []).append(child)
    for kids in children.values():
        kids.sort(key=lambda k: (order.get(k, 0), by_id[k].get("humanCodingScheme") or ""))
    reached = set(_reachable(doc_id, children))
    lost = [k for k in by_id if k not in reached]
    if lost:
        warnings.append(
            f"{source}: {len(lost)} items are not under the document by isChildOf and were left out: "
            + ", ".join(_code(by_id[k]) for k in lost[:10])
            + (" …" if len(lost) > 10 else "")
        )
    return children, others


def _reachable(key: str, children: dict[str, list[str]]) -> list[str]:
    out, stack, seen = [], [key], {key}
    while stack:
        for kid in children.get(stack.pop(), []):
            if kid not in seen:
                seen.add(kid)
                out.append(kid)
                stack.append(kid)
    return out


def _code(item: dict) -> str:
    return str(item.get("humanCodingScheme") or item.get("identifier"))


def _case_node(item: dict, levels: list[dict]) -> Node:
    ours = (item.get("extensions") or {}).get("milestone") or {}
    extra = {key: ours[key] for key in ("expected", "assessment_plan") if ours.get(key)}
    name, statement = _name(item), item.get("fullStatement") or ""
    return Node(
        code=item.get("humanCodingScheme") or "",
        name=name,
        description="" if statement == name else statement,  # our export repeats a name when there is no more
        notes=[f"CASE notes: {item['notes']}"] if item.get("notes") else [],
        levels=levels,
        extra=extra,
    )


def _case_notes(
    others: list[dict], nodes: dict[str, Node], by_id: dict, children: dict, source: str, warnings: list
) -> None:
    """Associations other than isChildOf, which our framework cannot hold, as a note on the item they start from."""
    kinds: dict[str, int] = {}
    for a in others:
        kind, origin, destination = a["associationType"], a["originNodeURI"], a["destinationNodeURI"]
        target = by_id.get(destination["identifier"])
        if target:
            label = f"{_code(target)} ({_name(target)})"
        else:
            label = " ".join(filter(None, [destination.get("title"), f"<{destination.get('uri')}>"]))
        where = nodes.get(origin["identifier"])
        if where is None:
            warnings.append(
                f"{source}: a {kind} association from outside the package ({origin.get('uri')}) was left out."
            )
            continue
        where.notes.append(f"CASE {kind}: {label}")
        kinds[kind] = kinds.get(kind, 0) + 1
    if kinds:
        listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        warnings.append(
            f"{source} has associations our framework cannot hold ({listed}): each was kept as a note "
            "('CASE <type>: <target>') in the description of the item it starts from."
        )


def _name(item: dict) -> str:
    return (
        item.get("abbreviatedStatement") or item.get("fullStatement") or item.get("humanCodingScheme") or "Unnamed"
    )[:500]


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
                    {"level": level, "descriptor": html_to_text(lv.get("description")) or "—"}
                )
                labels.setdefault(level, lv.get("quality") or f"Level {level}")
    return levels_of, labels


# ---- Moodle -------------------------------------------------------------------------------------
@dataclass
class MoodleRow:
    """One row of a Moodle framework CSV, read by column position as Moodle's importer reads it."""

    line: int
    parent: str
    idnumber: str
    shortname: str
    description: str
    descriptionformat: str
    scalevalues: str
    scaleconfiguration: str
    ruletype: str
    related: str
    isframework: bool
    taxonomy: str


def decode_moodle(data: bytes, source: str, warnings: list[str]) -> str:
    """Moodle's form asks for the encoding (UTF-8 by default); files from older sites are often Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        warnings.append(f"{source} is not UTF-8: it was read as Windows-1252; check accented letters.")
        return data.decode("cp1252", errors="replace")


def read_moodle_rows(text: str, source: str, warnings: list[str]) -> list[MoodleRow]:
    """Rows by position (columns 1–14), checking the header against every name Moodle's columns have had."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=first.count)  # Moodle's form offers comma, semicolon and tab
    if delimiter != ",":
        warnings.append(f"{source} is separated by {'tab' if delimiter == chr(9) else repr(delimiter)}, not commas.")
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))  # PHP's reader has no limit on a cell
    table = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not table or len(table[0]) < 13:
        raise TrackerError(
            f"{source}: not a Moodle competency framework CSV; its first row must name Moodle's columns in "
            f"this order: {', '.join(MOODLE_HEADERS)}."
        )
    _check_moodle_header(table[0], source, warnings)
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        cell = [csv_value(c) for c in [*cells, *[""] * 14][:14]]  # what our export guarded, as it was
        rows.append(
            MoodleRow(
                line=number,
                parent=cell[0].strip(),
                idnumber=cell[1].strip()[:MOODLE_SHORTNAME_MAX].strip(),
                shortname=cell[2].strip()[:MOODLE_SHORTNAME_MAX].strip(),
                description=cell[3],
                descriptionformat=cell[4].strip(),
                scalevalues=cell[5].strip(),
                scaleconfiguration=cell[6].strip(),
                ruletype=cell[7].strip(),
                related=cell[10].strip(),
                isframework=cell[12].strip() not in ("", "0"),  # PHP truthiness, as Moodle tests it
                taxonomy=cell[13].strip(),
            )
        )
    return rows


def _check_moodle_header(header: list[str], source: str, warnings: list[str]) -> None:
    def norm(name: str) -> str:
        return re.sub(r"[^a-z0-9]", "", name.lower().replace("(optional)", ""))

    unknown = [
        (position, name)
        for position, (name, aliases) in enumerate(zip(header, MOODLE_ALIASES, strict=False))
        if norm(name) not in aliases
    ]
    if len(unknown) > len(MOODLE_ALIASES) // 2:  # a Moodle in another language names its columns in it
        warnings.append(
            f"{source}: its header ({header[0]!r}, {header[1]!r}, …) is not in Moodle's English names; every column "
            "was read by its position, as Moodle reads it."
        )
        return
    for position, name in unknown:
        warnings.append(
            f"{source}: column {position + 1} is headed {name!r}; it was read as Moodle's "
            f"{MOODLE_HEADERS[position]!r}, by its position, as Moodle reads it."
        )


def import_moodle(text: str | bytes, source: str = "Moodle CSV") -> Imported:
    """Moodle's competency framework CSV (tool_lpimportcsv): the framework row, then competencies by parent."""
    warnings: list[str] = []
    if isinstance(text, bytes):
        text = decode_moodle(text, source, warnings)
    rows = read_moodle_rows(text, source, warnings)
    frameworks = [r for r in rows if r.isframework]
    if not frameworks:
        raise TrackerError(f"{source}: no row has 'Is framework' set (column 13); Moodle refuses such a file too.")
    if len(frameworks) > 1:
        warnings.append(
            f"{source}: {len(frameworks)} rows are marked 'Is framework'; the last (line {frameworks[-1].line}) "
            "was used, as Moodle does."
        )
    fw_row = frameworks[-1]
    ours = _moodle_marker(fw_row.description)
    nodes, children, tops = _moodle_outline([r for r in rows if not r.isframework], ours, source, warnings)
    domains = outline_to_domains(tops, nodes, children, fw_row.shortname or "Competencies", source, warnings)
    _moodle_unused(rows, fw_row, ours, source, warnings)
    values = [v.strip() for v in fw_row.scalevalues.split(",") if v.strip()]
    scale = ours.get("scale") or ([{"level": i, "label": v} for i, v in enumerate(values, start=1)] or None)
    if scale is not None and len(scale) < 2:
        warnings.append(f"{source}: the scale has one value ({values[0]!r}); a scale needs two, so ours was used.")
        scale = None
    graduation = _moodle_proficient(fw_row.scaleconfiguration, len(values))
    meta: dict[str, Any] = {
        "id": ours.get("id") or _slug(fw_row.idnumber, "framework"),
        "version": ours.get("version") or "1",
        "name": fw_row.shortname or "Framework",
    }
    for key in ("publisher", "changed", "calendar", "evidence_types", "decision_outcomes", "assessment_plan"):
        if key in ours:
            meta[key] = date.fromisoformat(ours[key]) if key == "changed" else ours[key]
    if "version" not in ours:
        warnings.append(f"{source} has no version: '1' was written; edit `version`.")
    return _assemble(meta, domains, scale, graduation, source, warnings)


def _moodle_outline(
    rows: list[MoodleRow], ours: dict, source: str, warnings: list[str]
) -> tuple[dict[str, Node], dict[str, list[str]], list[str]]:
    """Moodle's tree by parent id number; rows Moodle would skip or lose are named, and kept where they can be."""
    by_id: dict[str, MoodleRow] = {}
    for r in rows:
        if not r.idnumber or not r.shortname:
            warnings.append(f"{source}: line {r.line} has no id number or short name; Moodle skips it, and so did we.")
        elif r.idnumber in by_id:
            warnings.append(
                f"{source}: id number {r.idnumber!r} is on lines {by_id[r.idnumber].line} and {r.line}; the later "
                f"row was kept, as Moodle keeps it, and {by_id[r.idnumber].shortname!r} was left out."
            )
            by_id[r.idnumber] = r
        else:
            by_id[r.idnumber] = r
    children: dict[str, list[str]] = {}
    for r in by_id.values():
        parent = r.parent if r.parent in by_id or not r.parent else ""
        if parent != r.parent:
            warnings.append(
                f"{source}: line {r.line} ({r.idnumber}) names parent {r.parent!r}, which is not in the file; "
                "Moodle would drop it: it was kept at the top level."
            )
        children.setdefault(parent, []).append(r.idnumber)
    _break_loops(by_id, children, source, warnings)
    texts, levels, extras = ours.get("texts", {}), ours.get("levels", {}), ours.get("expected", {})
    plans = ours.get("plans", {})
    nodes = {
        key: Node(
            code=key,
            name=texts.get(key, {}).get("name") or r.shortname,
            description=texts.get(key, {}).get("description", _moodle_text(r)),
            levels=levels.get(key, []),
            extra=({"expected": extras[key]} if key in extras else {})
            | ({"assessment_plan": plans[key]} if key in plans else {}),
        )
        for key, r in by_id.items()
    }
    _moodle_related(by_id, nodes, source, warnings)
    return nodes, children, children.get("", [])


def _break_loops(by_id: dict[str, MoodleRow], children: dict[str, list[str]], source: str, warnings: list) -> None:
    """Rows whose parents lead round in a circle never reach the top (Moodle loses them): keep them at the top."""
    while unreached := [k for k in by_id if k not in set(_reachable("", children))]:
        key, seen = min(unreached, key=lambda k: by_id[k].line), set()
        while key not in seen:  # follow the parents round to a row of the loop itself
            seen.add(key)
            key = by_id[key].parent
        for kids in children.values():
            if key in kids:
                kids.remove(key)
        children.setdefault("", []).append(key)
        warnings.append(
            f"{source}: line {by_id[key].line} ({key}) is in a loop of parents ({by_id[key].parent!r}); Moodle "
            "would lose it: it was kept at the top level with what is under it."
        )


def _moodle_text(row: MoodleRow) -> str:
    """Description format 1 is HTML; 0 (Moodle auto-format), 2 (plain) and 4 (Markdown) are text already."""
    if row.descriptionformat in ("", "1"):
        return html_to_text(row.description)
    return "\n".join(line.strip() for line in row.description.strip().splitlines())


def _moodle_related(by_id: dict[str, MoodleRow], nodes: dict[str, Node], source: str, warnings: list[str]) -> None:
    """Moodle's cross-references (both ways) as a note on each competency; our framework has no links."""
    pairs: set[tuple[str, str]] = set()
    unknown = []
    for key, r in by_id.items():
        for raw in filter(None, (x.strip() for x in r.related.split(","))):
            other = raw.replace("%2C", ",")
            if other in by_id and other != key:
                pairs |= {(key, other), (other, key)}
            else:
                unknown.append(f"{other} (line {r.line})")
    for key in by_id:
        related = [o for k, o in sorted(pairs, key=lambda p: by_id[p[1]].line) if k == key]
        if related:
            nodes[key].notes.append(
                "Cross-referenced in Moodle: " + "; ".join(f"{by_id[o].shortname} ({o})" for o in related)
            )
    if pairs:
        warnings.append(
            f"{source} cross-references competencies ({len(pairs) // 2} pairs): each competency's are kept as a "
            "'Cross-referenced in Moodle:' note in its description."
        )
    if unknown:
        warnings.append(
            f"{source}: cross-references to id numbers not in the file were left out: {', '.join(unknown[:10])}"
        )


def _moodle_unused(rows: list[MoodleRow], fw_row: MoodleRow, ours: dict, source: str, warnings: list[str]) -> None:
    """What Moodle's file holds that our framework has no place for, named."""
    ruled = [r.idnumber for r in rows if r.ruletype and not r.isframework]
    if ruled:
        warnings.append(
            f"{source}: completion rules of {len(ruled)} competencies ({', '.join(ruled[:5])}"
            f"{' …' if len(ruled) > 5 else ''}) were left out: ours are rated, not derived from other competencies."
        )
    own = [r.idnumber for r in rows if not r.isframework and r.scalevalues and r.scalevalues != fw_row.scalevalues]
    if own:
        warnings.append(
            f"{source}: {len(own)} competencies ({', '.join(own[:5])}) have a scale of their own; the framework's "
            "scale is used for every competency."
        )
    if fw_row.taxonomy and not ours:
        warnings.append(
            f"{source}: the taxonomy terms ({fw_row.taxonomy}) were left out; our levels are named by path."
        )
    if html_to_text(fw_row.description) and not ours:
        warnings.append(f"{source}: the framework's own description was left out: our framework has no description.")


def _moodle_marker(description: str) -> dict:
    """What our own export put in the framework row's description, if it is ours."""
    found = re.search(rf"<!--\s*{MOODLE_MARKER}\s+(\{{.*\}})\s*-->", description or "", flags=re.S)
    if not found:
        return {}
    try:
        data = json.loads(found.group(1))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _moodle_proficient(config: str, n_values: int) -> float | None:
    """The lowest scale value Moodle marks proficient: our graduation level."""
    try:
        entries = json.loads(config) if config else []
        proficient = [int(e["id"]) for e in entries[1:] if str(e.get("proficient")) == "1"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return float(min(proficient)) if proficient and n_values else None


def export_moodle(fw: Framework) -> str:
    """Our framework as Moodle's framework CSV: the columns, order and conventions of Moodle's own exporter.

    Domains are top-level competencies and competencies their children; the scale is the framework's scale
    (values at and above the graduation level proficient). What Moodle has no place for (level descriptors,
    calendar, evidence types, exact texts) rides in a comment in the framework row's description.
    """
    rows: list[list[str]] = [MOODLE_HEADERS]
    levels = sorted(fw.scale, key=lambda s: s.level)
    proficient = [s.level >= fw.calendar.graduation_level for s in levels]
    config = [{"scaleid": "0"}] + [
        {"id": i, "scaledefault": int(i == proficient.index(True) + 1), "proficient": int(p)}
        for i, p in enumerate(proficient, start=1)
    ]
    texts: dict[str, dict[str, str]] = {}
    ours = {
        "id": fw.id,
        "version": fw.version,
        **({"publisher": fw.publisher} if fw.publisher else {}),
        **({"changed": fw.changed.isoformat()} if fw.changed else {}),
        "scale": [s.model_dump(exclude_defaults=True) for s in fw.scale],
        "calendar": fw.calendar.model_dump(mode="json", exclude_none=True),
        "evidence_types": [e.model_dump() for e in fw.evidence_types],
        **({"decision_outcomes": [o.model_dump() for o in fw.decision_outcomes]} if fw.decision_outcomes else {}),
        "levels": {c.id: [lv.model_dump() for lv in c.levels] for c in fw.competencies.values()},
        "expected": {c.id: c.expected for c in fw.competencies.values() if c.expected},
        **({"assessment_plan": _plan(fw.assessment_plan)} if fw.assessment_plan else {}),
        **(
            {"plans": plans}
            if (plans := {c.id: _plan(c.assessment_plan) for c in fw.competencies.values() if c.assessment_plan})
            else {}
        ),
        "texts": texts,
    }
    export_id = 0

    def row(parent: str, code: str, name: str, description: str) -> list[str]:
        nonlocal export_id
        export_id += 1
        exact = {}
        if len(name) > MOODLE_SHORTNAME_MAX or name != name.strip():
            exact["name"] = name
        if html_to_text(text_to_html(description)) != description:
            exact["description"] = description
        if exact:
            texts[code] = exact
        return [
            parent,
            code,
            name[:MOODLE_SHORTNAME_MAX],
            text_to_html(description),
            "1",
            "",
            "",
            "",
            "0",
            "null",
            "",
            str(export_id),
            "",
            "",
        ]

    body = []
    for d in fw.domains:
        body.append(row("", d.id, d.name, d.description))
        body += [row(d.id, c.id, c.name, c.description) for c in d.competencies]
    marker = json.dumps(ours, ensure_ascii=False, separators=(",", ":")).replace(">", "\\u003e")
    rows.append(
        [
            "",
            fw.id,
            fw.name[:MOODLE_SHORTNAME_MAX],
            f"<p>{html.escape(fw.name)}</p><!-- {MOODLE_MARKER} {marker} -->",
            "1",
            ",".join(s.label.replace(",", ";") for s in levels),
            json.dumps(config, separators=(",", ":")),
            "",
            "",
            "",
            "",
            "",
            "1",
            "domain,competency",
        ]
    )
    out = io.StringIO()
    # no cell a spreadsheet would run: a name typed as `=HYPERLINK(...)` is written with a leading apostrophe
    csv.writer(out, lineterminator="\n").writerows([csv_cell(c) for c in r] for r in rows + body)
    return out.getvalue()
