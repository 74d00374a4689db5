"""Framework loading: every problem reported at once, each with file, line and field path."""

import re
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FRAMEWORK_YAML, ROOT
from tracker.core.errors import FrameworkError
from tracker.framework.loading import load_framework, parse_framework

GOOD = FRAMEWORK_YAML.read_text(encoding="utf-8")


def problems_of(text: str) -> list[str]:
    with pytest.raises(FrameworkError) as info:
        parse_framework(text, source="competencies.yaml")
    return info.value.problems


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[occurrence - 1]


def test_program_framework_loads_with_five_domains(framework):
    assert framework.domain_ids == ["teaching", "curriculum", "research", "leadership", "collaboration"]
    for domain in framework.domains:
        assert 4 <= len(domain.competencies) <= 6
        for c in domain.competencies:
            assert [lv.level for lv in c.levels] == [1, 2, 3, 4, 5]
    assert len(framework.term_ids) == 6
    assert framework.calendar.graduation_level == 4
    assert framework.expected_level("res-dissemination", "T1") == 1  # a per-competency override
    assert framework.expected_level("teach-methods", "T1") == 1.5  # the program default


def test_missing_level_is_named_with_line_and_path():
    text = GOOD.replace(
        '          - {level: 3, descriptor: "Selects methods', '          - {level: 6, descriptor: "Selects methods'
    )
    problems = problems_of(text)
    levels_line = line_of(text, "levels:", occurrence=1)
    assert f"competencies.yaml:{levels_line}: domains[0].competencies[0].levels: level 3 is missing" in problems
    assert any("level 6 is not on the scale 1–5" in p for p in problems)


def test_duplicate_competency_id_is_reported_at_its_line():
    text = GOOD.replace("id: lead-people", "id: teach-methods")
    problems = problems_of(text)
    assert problems == [
        f"competencies.yaml:{line_of(text, 'id: teach-methods', 2)}: domains[3].competencies[2].id: duplicate id 'teach-methods'"
    ]


def test_targets_that_fall_or_leave_the_scale_and_unknown_terms_all_reported_at_once():
    text = GOOD.replace("T5: 3.5, T6: 4}", "T5: 3.5, T6: 3, T9: 2}").replace(
        "graduation_level: 4", "graduation_level: 7"
    )
    text = text.replace("expected: {T1: 1, T2: 1.5, T3: 2}", "expected: {T1: 1, T2: 6, T3: 2}")
    problems = problems_of(text)
    joined = "\n".join(problems)
    assert "calendar.expected.T9: unknown term 'T9'" in joined
    assert "calendar.graduation_level: 7.0 leaves the scale 1–5" in joined
    assert "domains[3].competencies[1].expected.T2: 6.0 leaves the scale 1–5" in joined
    assert len(problems) >= 3
    assert all(re.match(r"competencies\.yaml:\d+: ", p) for p in problems)


def test_falling_default_trajectory_is_named():
    text = GOOD.replace("T5: 3.5, T6: 4}", "T5: 3.5, T6: 3}")
    assert problems_of(text) == [
        f"competencies.yaml:{line_of(text, 'T5: 3.5, T6: 3}')}: calendar.expected.T6: expected level falls from 3.5 at T5 to 3.0 at T6"
    ]


def test_wrong_types_unknown_and_missing_fields_all_reported():
    text = GOOD.replace("graduation_level: 4", "graduation_level: four").replace(
        "name: Teamwork and conflict", "nmae: Teamwork and conflict"
    )
    problems = problems_of(text)
    joined = "\n".join(problems)
    assert f"competencies.yaml:{line_of(text, 'graduation_level: four')}: calendar.graduation_level:" in joined
    assert "domains[4].competencies[2].nmae: unknown field (check its spelling)" in joined
    assert "domains[4].competencies[2].name: required field is missing" in joined


def test_not_yaml_names_the_line():
    problems = problems_of("id: x\nversion: [unclosed\n")
    assert problems[0].startswith("competencies.yaml:")
    assert "not valid YAML" in problems[0]


def test_validate_command_exits_1_listing_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("id: lead-people", "id: teach-methods").replace("T5: 3.5, T6: 4}", "T5: 3.5, T6: 3}"))
    run = subprocess.run(
        [sys.executable, "-m", "tracker", "validate", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 1
    assert "duplicate id 'teach-methods'" in run.stderr
    assert "expected level falls" in run.stderr
    assert "Traceback" not in run.stderr
    good = subprocess.run(
        [sys.executable, "-m", "tracker", "validate", str(FRAMEWORK_YAML)], cwd=ROOT, capture_output=True, text=True
    )
    assert good.returncode == 0
    assert "5 domains, 23 competencies" in good.stdout


def test_another_program_with_four_levels_loads():
    fw = load_framework(ROOT / "tests" / "fixtures" / "four_levels.yaml")
    assert fw.levels == [1, 2, 3, 4]
    assert fw.domain_ids == ["precepting", "didactics", "scholarship"]
    assert fw.expected_level("sch-project", "F1") == 1.5


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    domain=st.integers(0, 4),
    competency=st.integers(0, 3),
    level=st.integers(1, 5),
)
def test_any_removed_level_is_reported_at_its_path(domain, competency, level):
    data = yaml.safe_load(GOOD)
    comp = data["domains"][domain]["competencies"][competency]
    comp["levels"] = [lv for lv in comp["levels"] if lv["level"] != level]
    problems = problems_of(yaml.safe_dump(data, sort_keys=False))
    assert any(f"domains[{domain}].competencies[{competency}].levels: level {level} is missing" in p for p in problems)


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    )
)
def test_arbitrary_yaml_gives_located_problems_never_a_crash(value):
    try:
        parse_framework(yaml.safe_dump(value), source="x.yaml")
    except FrameworkError as exc:
        assert exc.problems
        assert all(p.startswith("x.yaml:") for p in exc.problems)
