"""Framework interchange: CASE and Moodle files written by those systems' conventions import, validate and
drive the app; our framework exported to CASE and imported again is unchanged."""

import json
import subprocess
import sys

import yaml

from tests.conftest import FRAMEWORK_YAML, ROOT, viewer
from tracker import interchange, queries, store
from tracker.framework import load_framework, parse_framework
from tracker.generate import generate
from tracker.setup import seed_directory

FIXTURES = ROOT / "tests" / "fixtures"


def test_our_framework_round_trips_through_case(framework):
    package = interchange.export_case(framework)
    data = json.loads(package)
    assert {"CFDocument", "CFItems", "CFAssociations", "CFRubrics"} <= set(data)
    assert {i["CFItemType"] for i in data["CFItems"]} == {"Domain", "Competency"}
    assert all(a["associationType"] == "isChildOf" for a in data["CFAssociations"])
    back = interchange.import_case(package, "ours.json")
    assert back.warnings == []
    assert parse_framework(back.yaml_text).model_dump() == framework.model_dump()
    assert interchange.export_case(parse_framework(back.yaml_text)) == package  # stable identifiers


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
    assert fw.competencies["NE-1.1"].description == "Uses teaching strategies based on educational theory & evidence."
    assert "NE-3" in fw.competencies  # a top-level competency without children, grouped in one domain
    assert any("grouped in one domain" in w for w in imported.warnings)


def test_an_imported_framework_drives_the_store_and_queries(tmp_path):
    imported = interchange.import_moodle((FIXTURES / "moodle_framework.csv").read_text(), "moodle_framework.csv")
    path = tmp_path / "moodle.yaml"
    path.write_text(imported.yaml_text)
    fw = load_framework(path)
    generate(fw, n_learners=30, seed=2).write(tmp_path / "csv")
    db = store.open_database(tmp_path / "m.duckdb", fw, imported.yaml_text)
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
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracker",
            "framework",
            "export",
            str(FRAMEWORK_YAML),
            "--to",
            "case",
            "--out",
            str(exported),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(exported.read_text())["CFDocument"]["title"] == "Master of Science in Medical Education"
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
    assert run.returncode == 2 and "not a CASE package" in run.stderr and "Traceback" not in run.stderr


def test_the_yaml_written_is_plain_yaml():
    imported = interchange.import_case((FIXTURES / "case_framework.json").read_text())
    assert isinstance(yaml.safe_load(imported.yaml_text), dict)
