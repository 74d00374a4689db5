"""Framework interchange: CASE and Moodle files written by those systems' conventions import, validate and
drive the app; our framework exported to CASE and imported again is unchanged."""

import csv
import datetime as dt
import io
import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from tests.conftest import FRAMEWORK_YAML, ROOT, viewer
from tracker.analysis import queries
from tracker.core.errors import TrackerError
from tracker.framework import interchange
from tracker.framework.loading import load_framework, parse_framework
from tracker.records.generate import generate
from tracker.records.setup import seed_directory
from tracker.storage import opening

FIXTURES = ROOT / "tests" / "fixtures"
CASE_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "case-1.0.json").read_text())
SHARED = ROOT.parent / "shared" / "interchange"  # real published files, placed beside the project with their sources
REAL = sorted(p for p in SHARED.glob("*") if p.suffix in (".csv", ".json")) if SHARED.is_dir() else []
WHEN = dt.date(2026, 3, 2)


def case_errors(package: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(CASE_SCHEMA, format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(json.loads(package))]


def test_a_revision_publishes_its_crosswalk_as_case_replaced_by(framework):
    """A renamed, a merged and a retired competency: each old one is replacedBy its heirs, identified as the
    earlier version's own export identified it; the package is valid and imports back to the same framework."""
    data = yaml.safe_load(FRAMEWORK_YAML.read_text(encoding="utf-8"))
    data["version"] = "2027.1"
    comps = data["domains"][1]["competencies"]
    old_ids = [c["id"] for c in comps[:3]]
    comps[0]["id"] = "renamed-" + old_ids[0]
    del comps[1:3]  # the second merges into the renamed one; the third is retired
    data["crosswalk"] = {
        "from_version": framework.version,
        "competencies": {old_ids[0]: [comps[0]["id"]], old_ids[1]: [comps[0]["id"]], old_ids[2]: []},
    }
    revised = parse_framework(yaml.safe_dump(data, allow_unicode=True))
    package = interchange.export_case(revised, publisher="School of Medical Education", changed=WHEN)
    assert case_errors(package) == []
    earlier = {
        i["humanCodingScheme"]: i["identifier"]
        for i in json.loads(interchange.export_case(framework, publisher="x", changed=WHEN))["CFItems"]
    }
    now = {i["humanCodingScheme"]: i["identifier"] for i in json.loads(package)["CFItems"]}
    replaced = {
        (a["originNodeURI"]["identifier"], a["destinationNodeURI"]["identifier"])
        for a in json.loads(package)["CFAssociations"]
        if a["associationType"] == "replacedBy"
    }
    assert replaced == {(earlier[old_ids[0]], now[comps[0]["id"]]), (earlier[old_ids[1]], now[comps[0]["id"]])}
    back = interchange.import_case(package, "revised.json")
    assert back.warnings == []
    again = parse_framework(back.yaml_text)
    assert again.crosswalk == revised.crosswalk
    assert again.model_copy(update={"publisher": revised.publisher, "changed": revised.changed}).model_dump() == (
        revised.model_dump()
    )


def test_our_framework_round_trips_through_case(framework):
    package = interchange.export_case(framework, publisher="School of Medical Education", changed=WHEN)
    data = json.loads(package)
    assert {"CFDocument", "CFItems", "CFAssociations", "CFRubrics"} <= set(data)
    assert {i["CFItemType"] for i in data["CFItems"]} == {"Domain", "Competency"}
    assert all(a["associationType"] == "isChildOf" for a in data["CFAssociations"])
    back = interchange.import_case(package, "ours.json")
    assert back.warnings == []
    again = parse_framework(back.yaml_text)
    assert again.publisher == "School of Medical Education" and again.changed == WHEN
    update = {"publisher": framework.publisher, "changed": framework.changed}
    assert again.model_copy(update=update).model_dump() == framework.model_dump()
    assert interchange.export_case(again) == package  # stable identifiers; publisher and date kept


def test_a_case_package_imports_with_defaults_named(tmp_path):
    imported = interchange.import_case((FIXTURES / "case_framework.json").read_text(), "case_framework.json")
    fw = parse_framework(imported.yaml_text)
    assert fw.name == "Health Professions Educator Competencies" and fw.version == "2.0"
    assert [d.id for d in fw.domains] == ["HPE.TE", "HPE.SC"]
    assert [c.id for c in fw.domains[0].competencies] == ["HPE.TE.1", "HPE.TE.2"]
    assert fw.competencies["HPE.TE.1"].name == "Learning design"
    assert fw.competencies["HPE.TE.2"].name == "Gives feedback that learners act on."
    joined = " ".join(imported.warnings)
    for lacking in ("no level scale", "level descriptors were missing", "no program calendar", "no evidence types"):
        assert lacking in joined


def test_a_moodle_export_imports_with_its_scale_and_proficiency():
    imported = interchange.import_moodle((FIXTURES / "moodle_framework.csv").read_text(), "moodle_framework.csv")
    fw = parse_framework(imported.yaml_text)
    assert fw.id == "NURSE-EDU" and fw.name == "Nurse educator competencies"
    assert [s.label for s in fw.scale] == ["Novice", "Advanced beginner", "Competent", "Proficient"]
    assert fw.calendar.graduation_level == 3  # the lowest value Moodle marks proficient
    assert [d.name for d in fw.domains] == [
        "Facilitate learning",
        "Evaluation strategies",
        "Nurse educator competencies",
    ]
    assert fw.competencies["NE-1.1"].description.startswith(
        "Uses teaching strategies based on educational theory & evidence.\n\nCross-referenced in Moodle:"
    )
    assert "NE-3" in fw.competencies  # a top-level competency without children, grouped in one domain
    assert any("put in one domain" in w for w in imported.warnings)
    assert "Cross-referenced in Moodle: Uses teaching strategies (NE-1.1)" in fw.competencies["NE-2.1"].description


def test_an_imported_framework_drives_the_store_and_queries(tmp_path):
    imported = interchange.import_moodle((FIXTURES / "moodle_framework.csv").read_text(), "moodle_framework.csv")
    path = tmp_path / "moodle.yaml"
    path.write_text(imported.yaml_text)
    fw = load_framework(path)
    generate(fw, n_learners=30, seed=2).write(tmp_path / "csv")
    db = opening.open_database(tmp_path / "m.duckdb", fw, imported.yaml_text)
    cur = db.cursor()
    seed_directory(cur, tmp_path / "csv", fw, "test")
    standing = queries.competency_standing(cur, viewer(cur, "C001"))
    assert set(standing["competency_id"]) == set(fw.competencies)
    assert standing["level"].dropna().between(1, 4).all()
    db.close()


def test_command_line_import_and_export(tmp_path):
    out = tmp_path / "case.yaml"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracker",
            "framework",
            "import",
            str(FIXTURES / "case_framework.json"),
            "--from",
            "case",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "note: case_framework.json has no program calendar" in run.stdout
    check = subprocess.run(
        [sys.executable, "-m", "tracker", "validate", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    exported = tmp_path / "ours.json"

    def export(path, *more):
        cmd = [sys.executable, "-m", "tracker", "framework", "export", str(path), *more, "--out", str(exported)]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)

    run = export(FRAMEWORK_YAML, "--to", "case")
    assert run.returncode == 0, run.stderr
    document = json.loads(exported.read_text())["CFDocument"]
    assert document["title"] == "Master of Science in Medical Education"
    assert document["creator"] == "Department of Medical Education"  # the YAML's publisher
    assert document["lastChangeDateTime"] == "2026-01-12T00:00:00Z"  # the YAML's changed date
    assert case_errors(exported.read_text()) == []
    run = export(FIXTURES / "four_levels.yaml", "--to", "case", "--publisher", "School of Pharmacy")
    assert run.returncode == 0, run.stderr
    assert "has no `changed:` date" in run.stdout  # the file's own time stands in, and the user is told
    assert json.loads(exported.read_text())["CFDocument"]["creator"] == "School of Pharmacy"
    run = export(FIXTURES / "four_levels.yaml", "--to", "case")
    assert run.returncode == 1 and "no publisher" in run.stderr and "Traceback" not in run.stderr
    run = export(FRAMEWORK_YAML, "--to", "moodle")
    assert run.returncode == 0, run.stderr
    back = interchange.import_moodle(exported.read_bytes(), "ours.csv")
    assert parse_framework(back.yaml_text).model_dump() == load_framework(FRAMEWORK_YAML).model_dump()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracker",
            "framework",
            "import",
            str(bad),
            "--from",
            "case",
            "--out",
            str(tmp_path / "x.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "not a CASE package" in run.stderr and "Traceback" not in run.stderr


def test_the_yaml_written_is_plain_yaml():
    imported = interchange.import_case((FIXTURES / "case_framework.json").read_text())
    assert isinstance(yaml.safe_load(imported.yaml_text), dict)


# ---- files shaped like the ones programs really have (tests/fixtures/README.md names each original) ----
def test_moodle_reads_old_headers_by_position_and_keeps_every_level():
    imported = interchange.import_moodle((FIXTURES / "moodle_clusters.csv").read_bytes(), "moodle_clusters.csv")
    fw = parse_framework(imported.yaml_text)
    assert [s.label for s in fw.scale] == ["Not yet competent", "Competent"]
    assert fw.calendar.graduation_level == 2  # the only value its scale configuration marks proficient
    names = [d.name for d in fw.domains]
    assert names == [
        "Levels",
        "Competencies › Teaching in the workplace › Observing learners",
        "Competencies › Teaching in the workplace › Giving feedback",
        "Competencies › Leading learning › Designing sessions",
    ]
    rows = list(csv.reader(io.StringIO((FIXTURES / "moodle_clusters.csv").read_text(), newline="")))[2:]
    every_name = {r[2] for r in rows}
    shown = {part for d in fw.domains for part in d.name.split(" › ")} | {c.name for c in fw.competencies.values()}
    assert every_name <= shown  # no group, competency or indicator lost its name
    assert len(fw.competencies) == sum(1 for r in rows if r[1] not in {r2[0] for r2 in rows})  # every leaf
    observing = fw.domain("observing")
    assert "Giving Feedback" not in observing.description
    assert "Teaching in the workplace: Teaching at the bedside" in observing.description
    assert fw.competencies["WT-OB-1"].description.endswith("Cross-referenced in Moodle: Level 1 (level-1)")
    joined = "\n".join(imported.warnings)
    for named in ("looks like a description of levels", "named by their path", "4 pairs", "taxonomy terms"):
        assert named in joined
    assert not any("column" in w for w in imported.warnings)  # old header names are Moodle's own


def test_moodle_rules_own_scales_and_accents_are_reported_not_lost():
    data = (FIXTURES / "moodle_referentiel.csv").read_bytes()
    imported = interchange.import_moodle(data, "moodle_referentiel.csv")
    fw = parse_framework(imported.yaml_text)
    assert [s.label for s in fw.scale] == ["Non pertinent", "Non validé", "Validé"]
    assert fw.calendar.graduation_level == 3
    assert [d.name for d in fw.domains] == ["Enseignement › Préparer une séance", "Évaluation"]
    assert "completion rules of 2 competencies (PEDA0EN, PEDA0ENCours)" in " ".join(imported.warnings)
    latin = interchange.import_moodle(data.decode("utf-8").encode("cp1252"), "latin.csv")
    assert parse_framework(latin.yaml_text).domains[1].name == "Évaluation"
    assert any("not UTF-8" in w for w in latin.warnings)


def test_moodle_columns_are_read_by_position_whatever_their_names():
    text = (FIXTURES / "moodle_framework.csv").read_text().replace('"Short name"', '"Nom court"', 1)
    semicolons = "\n".join(";".join(f'"{c}"' for c in row) for row in csv.reader(io.StringIO(text, newline="")))
    for variant in (text, semicolons):
        imported = interchange.import_moodle(variant, "renamed.csv")
        assert parse_framework(imported.yaml_text).competencies["NE-1.1"].name == "Uses teaching strategies"
        assert any("column 3 is headed 'Nom court'" in w for w in imported.warnings)


def test_moodle_rows_moodle_would_lose_are_named():
    text = (FIXTURES / "moodle_framework.csv").read_text()
    text += '"NE-9","NE-9.1","Orphan","","1","","","","","","","7","",""\n'
    text += '"NE-1","","No id number","","1","","","","","","","8","",""\n'
    imported = interchange.import_moodle(text, "odd.csv")
    fw = parse_framework(imported.yaml_text)
    assert "NE-9.1" in fw.competencies  # kept at the top level, not dropped as Moodle would
    joined = " ".join(imported.warnings)
    assert "names parent 'NE-9', which is not in the file" in joined
    assert "line 10 has no id number or short name" in joined


def test_a_file_without_a_framework_row_is_refused_with_the_column():
    text = "\n".join([*(FIXTURES / "moodle_framework.csv").read_text().splitlines()[:1], '"","X","Y"'])
    with pytest.raises(TrackerError, match=r"'Is framework' set \(column 13\)"):
        interchange.import_moodle(text, "none.csv")
    with pytest.raises(TrackerError, match="Parent ID number, ID number, Short name"):
        interchange.import_moodle("a,b,c\n1,2,3\n", "short.csv")


@pytest.mark.parametrize("path", [FRAMEWORK_YAML, FIXTURES / "four_levels.yaml"], ids=lambda p: p.name)
def test_our_framework_round_trips_through_moodle(path):
    fw = load_framework(path)
    exported = interchange.export_moodle(fw)
    rows = list(csv.reader(io.StringIO(exported, newline="")))
    assert rows[0] == interchange.MOODLE_HEADERS and all(len(r) == 14 for r in rows)
    assert rows[1][12] == "1" and all(r[12] == "" for r in rows[2:])  # as Moodle's exporter writes booleans
    assert rows[1][5].split(",") == [s.label for s in sorted(fw.scale, key=lambda s: s.level)]
    config = json.loads(rows[1][6])
    proficient = [e["id"] for e in config[1:] if e["proficient"]]
    levels = sorted(s.level for s in fw.scale)
    assert proficient == [i for i, lv in enumerate(levels, start=1) if lv >= fw.calendar.graduation_level]
    assert sum(e["scaledefault"] for e in config[1:]) == 1
    assert {r[1] for r in rows[2:]} == set(fw.domain_ids) | set(fw.competencies)
    assert all(r[0] in fw.domain_ids for r in rows[2:] if r[1] in fw.competencies)
    back = interchange.import_moodle(exported, "ours.csv")
    assert back.warnings == []
    assert parse_framework(back.yaml_text).model_dump() == fw.model_dump()
    assert interchange.export_moodle(parse_framework(back.yaml_text)) == exported


def test_moodle_export_writes_no_formula_and_imports_it_back_unchanged():
    data = yaml.safe_load(FRAMEWORK_YAML.read_text(encoding="utf-8"))
    first, second = data["domains"][0]["competencies"][:2]
    first["name"] = '=HYPERLINK("http://x","y")'
    second["name"] = "@SUM(1)"
    data["domains"][1]["name"] = "+1-2"
    data["name"] = "-cmd"
    fw = parse_framework(yaml.safe_dump(data, allow_unicode=True))
    exported = interchange.export_moodle(fw)
    cells = [c for row in csv.reader(io.StringIO(exported, newline="")) for c in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert {'\'=HYPERLINK("http://x","y")', "'@SUM(1)", "'+1-2", "'-cmd"} <= set(cells)
    back = interchange.import_moodle(exported, "ours.csv")
    assert back.warnings == []
    assert parse_framework(back.yaml_text).model_dump() == fw.model_dump()


@pytest.mark.parametrize("name", ["moodle_clusters.csv", "moodle_referentiel.csv", "moodle_framework.csv"])
def test_an_imported_moodle_file_round_trips_unchanged(name):
    first = interchange.import_moodle((FIXTURES / name).read_bytes(), name)
    again = interchange.import_moodle(interchange.export_moodle(parse_framework(first.yaml_text)), name)
    assert again.yaml_text == first.yaml_text


def test_case_import_keeps_every_association_it_cannot_use():
    imported = interchange.import_case((FIXTURES / "case_state_standards.json").read_text(), "state.json")
    fw = parse_framework(imported.yaml_text)
    package = json.loads((FIXTURES / "case_state_standards.json").read_text())
    others = [a for a in package["CFAssociations"] if a["associationType"] != "isChildOf"]
    descriptions = " ".join(c.description for c in fw.competencies.values())
    for a in others:
        assert f"CASE {a['associationType']}: " in descriptions
    assert "CASE exemplar: Sample lesson plan <https://education.example.org/exemplars/lesson-plan.pdf>" in (
        fw.competencies["HS.1.A.1"].description
    )
    assert f"({len(others) - 3} exactMatchOf, 1 exemplar, 1 isRelatedTo, 1 precedes)" in " ".join(imported.warnings)
    assert [d.name for d in fw.domains][:2] == [
        "Instructional Practice › Planning",
        "Instructional Practice › Assessment",
    ]
    assert fw.publisher == "State Board of Health Professions Education" and fw.changed == dt.date(2024, 8, 19)


@pytest.mark.parametrize("path", [FRAMEWORK_YAML, FIXTURES / "four_levels.yaml"], ids=lambda p: p.name)
def test_case_export_is_valid_against_the_case_schema(path):
    fw = load_framework(path)
    package = interchange.export_case(fw, publisher="A Publisher", changed=WHEN)
    assert case_errors(package) == []
    data = json.loads(package)
    stamps = {o["lastChangeDateTime"] for key in ("CFItems", "CFAssociations", "CFRubrics") for o in data[key]}
    stamps |= {c["lastChangeDateTime"] for r in data["CFRubrics"] for c in r["CFRubricCriteria"]}
    stamps |= {
        lv["lastChangeDateTime"]
        for r in data["CFRubrics"]
        for c in r["CFRubricCriteria"]
        for lv in c["CFRubricCriterionLevels"]
    }
    assert stamps == {data["CFDocument"]["lastChangeDateTime"]} == {"2026-03-02T00:00:00Z"}
    assert data["CFDocument"]["creator"] == data["CFDocument"]["publisher"] == "A Publisher"
    later = json.loads(interchange.export_case(fw, publisher="A Publisher", changed=dt.date(2026, 9, 1)))
    assert later["CFDocument"]["lastChangeDateTime"] == "2026-09-01T00:00:00Z"


def test_the_schema_catches_what_the_old_export_lacked(framework):
    data = json.loads(interchange.export_case(framework, publisher="P", changed=WHEN))
    del data["CFRubrics"][0]["CFRubricCriteria"][0]["CFRubricCriterionLevels"][0]["lastChangeDateTime"]
    del data["CFDocument"]["creator"]
    errors = case_errors(json.dumps(data))
    assert len(errors) == 2 and any("lastChangeDateTime" in e for e in errors)


def test_case_export_without_publisher_or_date_is_refused():
    fw = load_framework(FIXTURES / "four_levels.yaml")  # it names neither
    with pytest.raises(TrackerError, match="publisher"):
        interchange.export_case(fw, changed=WHEN)
    with pytest.raises(TrackerError, match="changed"):
        interchange.export_case(fw, publisher="P")


@pytest.mark.skipif(not REAL, reason=f"no real published files in {SHARED.name}/ beside the project (see README)")
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_a_real_published_file_imports_validates_and_round_trips(path, tmp_path):
    assert path.with_name(path.name + ".source.txt").is_file(), f"{path.name} needs a .source.txt naming its source"
    if path.suffix == ".json":
        first = interchange.import_case(path.read_text(encoding="utf-8-sig"), path.name)
        fw = parse_framework(first.yaml_text)
        package = interchange.export_case(fw, publisher=fw.publisher or "Publisher", changed=fw.changed or WHEN)
        assert case_errors(package) == []
        again = interchange.import_case(package, path.name)
    else:
        first = interchange.import_moodle(path.read_bytes(), path.name)
        fw = parse_framework(first.yaml_text)
        again = interchange.import_moodle(interchange.export_moodle(fw), path.name)
    assert parse_framework(again.yaml_text).model_dump() == fw.model_dump()


def test_an_editor_export_keeps_item_notes_and_names_fields_it_leaves_out():
    imported = interchange.import_case((FIXTURES / "case_editor_export.json").read_text(), "editor.json")
    fw = parse_framework(imported.yaml_text)
    assert fw.changed == dt.date(2019, 3, 14)  # a change time without a zone, as the editor writes it
    assert [d.name for d in fw.domains] == [
        "Feedback › Give feedback that learners act on.",
        "Feedback › Seek feedback on one's own teaching.",
        "Supervision",
    ]
    assert [c.id for c in fw.domains[0].competencies] == ["CT.FB.A.1", "CT.FB.A.2"]  # no sequence numbers: by code
    first = fw.competencies["CT.FB.A.1"].description
    assert first.startswith("CASE notes: Example:") and "CASE precedes: CT.FB.A.2" in first
    assert "CASE exactMatchOf: Destination <https://other-frameworks.example.org/uri/" in first
    assert "educationalLevel, listEnumeration" in imported.warnings[0]


@pytest.mark.parametrize("name", ["case_framework.json", "case_state_standards.json", "case_editor_export.json"])
def test_an_imported_case_package_exports_valid_and_round_trips(name):
    first = interchange.import_case((FIXTURES / name).read_text(), name)
    fw = parse_framework(first.yaml_text)
    package = interchange.export_case(fw)  # publisher and change date came from the package
    assert case_errors(package) == []
    assert parse_framework(interchange.import_case(package, name).yaml_text).model_dump() == fw.model_dump()


def test_a_moodle_file_in_another_language_with_a_broken_outline_keeps_what_moodle_would_lose():
    data = (FIXTURES / "moodle_localised.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    imported = interchange.import_moodle(data, "localised.csv")
    fw = parse_framework(imported.yaml_text)
    joined = "\n".join(imported.warnings)
    assert "separated by ';'" in joined and "not in Moodle's English names" in joined
    assert "column 1 is headed" not in joined  # one note for a translated header, not fourteen
    assert (
        "'1.1.2.1' is on lines 9 and 10; the later row was kept, as Moodle keeps it, and 'Observer sans intervenir'"
        in (joined)
    )
    assert fw.competencies["1.1.2.1"].name == "Observer sans intervenir ni interrompre"
    assert "1.1.3.2" in fw.competencies and "names parent '1.1.3.0', which is not in the file" in joined
    assert fw.domain("1.2.1.0").competencies[0].id == "1.2.1.1"  # a row that is its own parent, kept with its child
    assert "line 14 (1.2.1.0) is in a loop of parents" in joined
    assert fw.domain("1.1.1.0").name == (
        "AXE 1 : ENSEIGNER › UE 1 - ENSEIGNER AU LIT DU PATIENT › 1.1 Préparer la séance (10 heures)"
    )
    assert "AXE 1 : ENSEIGNER: Les unités « enseigner » (UE 1)" in fw.domain("1.1.1.0").description
    again = interchange.import_moodle(interchange.export_moodle(fw), "localised.csv")
    assert again.yaml_text == imported.yaml_text
