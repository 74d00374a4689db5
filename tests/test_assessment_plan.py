"""The assessment plan: validation of competencies.yaml, coverage of a hand-made program with known answers, the
overdue lists and completion, and who may see them."""

import datetime as dt

import pytest
import yaml

from data_models import Framework
from tests.conftest import FRAMEWORK_YAML, viewer
from tracker.accounts import admin
from tracker.analysis import coverage, overdue
from tracker.core.errors import FrameworkError, PermissionDenied
from tracker.framework.loading import parse_framework
from tracker.records import importing

TODAY = dt.date(2026, 6, 1)

STAFF = (
    "id,name,email,roles\n"
    "A001,Ada Advisor,ada@staff.example.org,advisor\n"
    "A002,Bo Advisor,bo@staff.example.org,advisor\n"
    "C001,Cy Committee,cy@staff.example.org,committee\n"
    "K001,Kim Coordinator,kim@staff.example.org,coordinator\n"
)
LEARNERS = (
    "id,name,email,cohort,profession,start_term,status,advisor_id\n"
    "L1,Lena One,l1@example.org,X,Nurse,X,active,A001\n"
    "L2,Lou Two,l2@example.org,X,Nurse,X,active,A001\n"
    "L3,Lee Three,l3@example.org,X,Nurse,X,active,A002\n"
    "L4,Liv Four,l4@example.org,Y,Nurse,Y,leave,A002\n"
    "L5,Lux Five,l5@example.org,X,Nurse,X,active,A002\n"
)
EVIDENCE = (
    "id,learner_id,type,title,competency_ids,url,description,added_on\n"
    "E1,L1,observation,Observed session,teach-assessment;teach-methods,,,2026-02-01\n"
    "E2,L1,reflection,Reflection,teach-assessment,,,2026-03-01\n"
)
HEADER = "id,learner_id,competency_id,level,rater_id,rater_role,rated_on,term,comment,evidence_ids,framework_version,corrects\n"
RATINGS = [
    # L1: res-methods twice in T2 by two raters (the plan's two), teach-methods once; two competencies self-rated
    "R01,L1,res-methods,2.0,A001,advisor,2026-01-15,T1,,,2026.1,",
    "R02,L1,res-methods,2.0,C001,committee,2026-05-01,T2,,,2026.1,",
    "R03,L1,res-methods,2.5,A001,advisor,2026-05-10,T2,,,2026.1,",
    "R04,L1,teach-methods,2.0,A001,advisor,2026-05-10,T2,,,2026.1,",
    "R05,L1,teach-methods,2.5,L1,self,2026-05-12,T2,,,2026.1,",  # after the advisor's: waiting
    "R06,L1,curr-needs,2.0,L1,self,2026-01-10,T1,,,2026.1,",  # never assessed: waiting since 01-10
    "R07,L1,curr-needs,2.5,L1,self,2026-05-02,T2,,,2026.1,",
    # L2: rated in T1 only; self-rated in T2 (so cohort X is in T2); res-methods rests on 1 of 2 ratings
    "R08,L2,res-methods,2.0,A001,advisor,2026-01-20,T1,,,2026.1,",
    "R09,L2,res-methods,2.5,L2,self,2026-05-03,T2,,,2026.1,",
    # L3: a rating and its correction count once; the self-assessment before it is reviewed
    "R10,L3,teach-methods,2.0,L3,self,2026-05-08,T2,,,2026.1,",
    "R11,L3,teach-methods,1.0,A002,advisor,2026-05-09,T2,,,2026.1,",
    "R12,L3,teach-methods,2.0,A002,advisor,2026-05-11,T2,Correction: typo,,2026.1,R11",
    # L4 (on leave, cohort Y): never listed as overdue
    "R13,L4,teach-methods,1.5,A002,advisor,2026-01-15,T1,,,2026.1,",
]


@pytest.fixture
def program(empty_db, framework):
    cur = empty_db.cursor()
    for kind, text in (("staff", STAFF), ("learners", LEARNERS), ("evidence", EVIDENCE)):
        importing.import_text(cur, kind, text, f"{kind}.csv", framework, "test")
    # L5 is complete: every competency rated in T2, res-methods by two raters
    full = [
        f"F{i:02d},L5,{cid},2.0,A002,advisor,2026-05-05,T2,,,2026.1," for i, cid in enumerate(framework.competencies)
    ]
    full.append("F99,L5,res-methods,2.0,C001,committee,2026-05-04,T2,,,2026.1,")
    importing.import_text(cur, "ratings", HEADER + "\n".join(RATINGS + full) + "\n", "ratings.csv", framework, "test")
    for username, person in (("ada", "A001"), ("bo", "A002"), ("kim", "K001"), ("cy", "C001"), ("l1", "L1")):
        admin.add_user(cur, username, person, None, "test")
    return cur


def _without_plan(fw: Framework) -> Framework:
    data = fw.model_dump()
    data["assessment_plan"] = None
    for d in data["domains"]:
        for c in d["competencies"]:
            c["assessment_plan"] = None
    return Framework.model_validate(data)


# ---- the plan in competencies.yaml ---------------------------------------------------------------------
def test_a_competency_plan_overrides_the_programs_field_by_field(framework):
    assert framework.assessment_plan is not None
    methods = framework.plan_for("res-methods")
    assert (methods.ratings_per_term, methods.raters, methods.evidence_items, methods.evidence_by) == (2, 2, 1, "T3")
    assessment = framework.plan_for("teach-assessment")
    assert (assessment.ratings_per_term, assessment.raters, assessment.evidence_items) == (1, None, 3)
    assert assessment.evidence_by == "T4"
    assert _without_plan(framework).plan_for("res-methods") is None
    assert not _without_plan(framework).has_assessment_plan


def _yaml_with(change) -> str:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(FRAMEWORK_YAML.read_text(encoding="utf-8"))
    change(data)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["assessment_plan"].update(evidence_by="T9"), "assessment_plan.evidence_by: unknown term 'T9'"),
        (lambda d: d["assessment_plan"].update(ratings_per_term=0), "assessment_plan.ratings_per_term"),
        (lambda d: d["assessment_plan"].update(ratings=2), "assessment_plan.ratings"),
        (
            lambda d: d["domains"][0]["competencies"][1].update(assessment_plan={"raters": "two"}),
            "domains[0].competencies[1].assessment_plan.raters: Input should be a valid integer",
        ),
        (
            lambda d: d["domains"][2]["competencies"][0].update(assessment_plan={"evidence_by": "T0"}),
            "domains[2].competencies[0].assessment_plan.evidence_by: unknown term 'T0'",
        ),
    ],
)
def test_a_bad_plan_is_refused_naming_the_field(change, message):
    with pytest.raises(FrameworkError) as caught:
        parse_framework(_yaml_with(change), source="plan.yaml")
    assert any(message in p for p in caught.value.problems), caught.value.problems


def test_a_framework_without_a_plan_is_valid_and_covers_nothing(program, framework):
    bare = parse_framework(_yaml_with(_drop_plans), source="bare.yaml")
    assert not bare.has_assessment_plan
    kim = viewer(program, "K001")
    assert coverage.plan_coverage(program, kim, bare, "L1", TODAY).empty
    assert coverage.cohort_coverage(program, kim, bare, today=TODAY).empty
    # without a plan, only a learner with no rating this term is short
    short = overdue.learners_short(program, kim, bare, today=TODAY)
    assert short["learner_id"].tolist() == ["L2"]


def _drop_plans(data: dict) -> None:
    data.pop("assessment_plan")
    for d in data["domains"]:
        for c in d["competencies"]:
            c.pop("assessment_plan", None)


# ---- coverage --------------------------------------------------------------------------------------
def test_coverage_of_a_learner_counts_ratings_raters_and_evidence_against_the_plan(program, framework):
    got = coverage.plan_coverage(program, viewer(program, "A001"), framework, "L1", TODAY).set_index("competency_id")
    assert len(got) == len(framework.competencies)  # every competency: the program's plan asks of all
    assert (got["term"] == "T2").all()  # cohort X's latest rated term
    methods = got.loc["res-methods"]
    assert (methods.ratings_this_term, methods.raters, methods.thin) == (2, 2, False)
    assert methods.coverage == (
        "2 ratings this term (plan: 2); 2 raters (plan: 2); 0 of 1 evidence item, due by the end of T3"
    )
    assert got.loc["teach-methods"].coverage == "1 rating this term (plan: 1); 1 evidence item (plan: 1)"
    assert (
        got.loc["teach-assessment"].coverage == "0 of 1 rating this term; 2 of 3 evidence items, due by the end of T4"
    )
    assert got.loc["curr-needs"].evidence_state == "due"


def test_a_standing_on_fewer_ratings_than_the_plan_asks_is_marked_in_words(program, framework):
    from tracker.analysis import queries

    ada = viewer(program, "A001")
    got = coverage.plan_coverage(program, ada, framework, "L2", TODAY).set_index("competency_id")
    assert got.loc["res-methods"].thin and got.loc["res-methods"].thin_note == "rests on 1 of 2 ratings"
    assert not got["thin"].drop("res-methods").any()  # unrated competencies rest on nothing: not thin
    table = coverage.with_coverage(queries.competency_standing(program, ada, learner_id="L2"), got.reset_index())
    row = table.set_index("competency_id").loc["res-methods"]
    assert row.standing.endswith(", rests on 1 of 2 ratings")
    assert row.coverage.startswith("0 of 2 ratings this term; 1 of 2 raters")


def test_a_correction_counts_as_the_one_rating_it_replaces(program, framework):
    got = coverage.plan_coverage(program, viewer(program, "A002"), framework, "L3", TODAY).set_index("competency_id")
    assert got.loc["teach-methods"].ratings_this_term == 1
    assert got["raters"].isna().sum() == len(got) - 1  # raters are counted where the plan asks (res-methods)


def test_cohort_coverage_counts_active_learners_meeting_each_requirement(program, framework):
    kim = viewer(program, "K001")
    got = coverage.cohort_coverage(program, kim, framework, cohort="X", today=TODAY).set_index("competency_id")
    methods = got.loc["res-methods"]
    # cohort X's active learners: L1 (2 ratings, 2 raters), L2 (none this term, 1 rater), L3 (none), L5 (2 and 2)
    assert (methods.learners, methods.ratings_met, methods.raters_met, methods.thin) == (4, 2, 2, 1)
    assert methods.ratings == "2 of 4" and methods.plan == "2 ratings a term; 2 raters; 1 evidence item by T3"
    teach = got.loc["teach-methods"]
    assert (teach.ratings_met, teach.evidence_met, teach.evidence_overdue) == (3, 1, 0)  # L1, L3, L5; L1's E1


# ---- overdue work ------------------------------------------------------------------------------------
def _short_count(framework, rated: dict[str, int]) -> int:
    """Competencies whose ratings this term fall short of the plan, from the plan itself."""
    return sum(1 for c in framework.competencies if rated.get(c, 0) < (framework.plan_for(c).ratings_per_term or 0))


def test_an_advisor_sees_their_advisees_short_of_the_plan_none_first(program, framework):
    short = overdue.learners_short(program, viewer(program, "A001"), framework, advisor="A001", today=TODAY)
    assert short["learner_id"].tolist() == ["L2", "L1"]
    l2, l1 = short.to_dict("records")
    assert (l2["rated_this_term"], l2["missing"]) == (0, "no advisor or committee rating yet this term")
    assert l1["rated_this_term"] == 2
    assert l1["short"] == _short_count(framework, {"res-methods": 2, "teach-methods": 1})
    assert "Study design and ethics" not in l1["missing"] and "Needs assessment: 0 of 1" in l1["missing"]


def test_self_assessments_waiting_longest_come_first(program, framework):
    waiting = overdue.waiting_for_review(program, viewer(program, "A001"), framework, advisor="A001", today=TODAY)
    rows = list(zip(waiting["learner_id"], waiting["competency_id"], waiting["self_assessments"], strict=True))
    assert rows == [("L1", "curr-needs", 2), ("L2", "res-methods", 1), ("L1", "teach-methods", 1)]
    assert waiting["waiting_since"].dt.date.tolist() == [
        dt.date(2026, 1, 10),
        dt.date(2026, 5, 3),
        dt.date(2026, 5, 12),
    ]
    assert waiting["days_waiting"].tolist() == [(TODAY - dt.date(2026, 1, 10)).days, 29, 20]
    # L3's self-assessment was followed by an advisor rating: reviewed
    assert overdue.waiting_for_review(program, viewer(program, "A002"), framework, today=TODAY).empty


def test_completion_per_advisor_and_per_cohort(program, framework):
    kim = viewer(program, "K001")
    by_advisor = overdue.completion(program, kim, framework, "advisor", TODAY).set_index("advisor_id")
    a1, a2 = by_advisor.loc["A001"], by_advisor.loc["A002"]
    assert (a1.learners, a1.rated_this_term, a1.complete, a1.self_assessments_waiting) == (2, 1, 0, 3)
    assert a1.oldest_waiting_since.date() == dt.date(2026, 1, 10)
    assert (a2.learners, a2.rated_this_term, a2.complete, a2.share_complete) == (2, 2, 1, 0.5)  # L3, L5 (L4 on leave)
    by_cohort = overdue.completion(program, kim, framework, "cohort", TODAY).set_index("cohort")
    assert by_cohort.index.tolist() == ["X"]  # Y's only learner is on leave
    x = by_cohort.loc["X"]
    assert (x.term, x.learners, x.rated_this_term, x.complete, x.self_assessments_waiting) == ("T2", 4, 3, 1, 3)


# ---- access ---------------------------------------------------------------------------------------------
def test_an_advisor_sees_only_their_advisees_overdue_work(program, framework):
    bo = viewer(program, "A002")
    assert overdue.learners_short(program, bo, framework, advisor="A001", today=TODAY).empty
    assert set(overdue.learners_short(program, bo, framework, today=TODAY)["learner_id"]) == {"L3"}
    assert not set(overdue.waiting_for_review(program, bo, framework, today=TODAY)["learner_id"]) & {"L1", "L2"}
    with pytest.raises(PermissionDenied):
        coverage.plan_coverage(program, bo, framework, "L1", TODAY)
    assert set(coverage.cohort_coverage(program, bo, framework, today=TODAY)["learners"]) == {2}  # L3 and L5


def test_a_learner_sees_only_their_own_coverage(program, framework):
    lena = viewer(program, "L1")
    assert not coverage.plan_coverage(program, lena, framework, "L1", TODAY).empty
    with pytest.raises(PermissionDenied):
        coverage.plan_coverage(program, lena, framework, "L2", TODAY)
    assert set(overdue.waiting_for_review(program, lena, framework, today=TODAY)["learner_id"]) == {"L1"}


@pytest.mark.parametrize("person", ["A001", "C001", "L1"])
def test_completion_is_for_coordinators(program, framework, person):
    with pytest.raises(PermissionDenied):
        overdue.completion(program, viewer(program, person), framework, "advisor", TODAY)
    denied = program.execute("SELECT count(*) FROM audit_log WHERE action = 'permission denied'").fetchone()[0]
    assert denied == 1


def test_a_dated_calendar_sets_this_term_by_the_date(program, framework):
    data = framework.model_dump()
    for i, term in enumerate(data["calendar"]["terms"]):
        term["starts"], term["ends"] = dt.date(2026, 1 + 2 * i, 1), dt.date(2026, 2 + 2 * i, 28)
    dated = Framework.model_validate(data)
    assert coverage.dated_term(dated, dt.date(2026, 7, 15)) == 4
    # in T4 by the calendar, nobody of cohort X holds a rating this term
    short = overdue.learners_short(program, viewer(program, "K001"), dated, today=dt.date(2026, 7, 15))
    assert set(short["learner_id"]) == {"L1", "L2", "L3", "L5"} and set(short["term"]) == {"T4"}
    assert coverage.dated_term(dated, dt.date(2025, 12, 31)) is None


def test_framework_diff_names_a_changed_plan(program, framework):
    from tracker.records import revision

    data = framework.model_dump()
    data["version"] = "2026.2"
    research = next(d for d in data["domains"] if d["id"] == "research")
    next(c for c in research["competencies"] if c["id"] == "res-methods")["assessment_plan"] = {"raters": 3}
    changes = revision.compare(program, Framework.model_validate(data)).frame()
    plan = changes[changes["kind"] == "plan"]
    assert plan[["item", "detail"]].values.tolist() == [
        [
            "res-methods",
            "2 ratings a term; 2 raters; 1 evidence item by T3 → 1 rating a term; 3 raters; 1 evidence item by T3",
        ]
    ]
    assert (plan["ratings"] == 0).all()  # a plan rewrites no rating


def test_the_completion_download_is_spreadsheet_safe(program, framework):
    from tracker.core.text import frame_csv

    program.execute("UPDATE staff SET name = '=HYPERLINK(\"http://x\")' WHERE id = 'A001'")
    text = frame_csv(overdue.completion(program, viewer(program, "K001"), framework, "advisor", TODAY))
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_coverage_reads_ratings_through_the_crosswalk_as_standings_do(program, framework):
    """After an upgrade that merges two competencies, the merged one's coverage counts the ratings of both."""
    from tracker.records import revision

    data = yaml.safe_load(FRAMEWORK_YAML.read_text(encoding="utf-8"))
    data["version"] = "2026.2"
    research = next(d for d in data["domains"] if d["id"] == "research")["competencies"]
    levels = next(c for c in research if c["id"] == "res-methods")["levels"]
    research[:] = [c for c in research if c["id"] not in ("res-question", "res-methods")] + [
        {"id": "res-design", "name": "Question and design", "levels": levels, "assessment_plan": {"raters": 3}}
    ]
    data["crosswalk"] = {
        "from_version": "2026.1",
        "competencies": {"res-question": ["res-design"], "res-methods": ["res-design"]},
    }
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    revision.upgrade(program, parse_framework(text), text, "test")
    merged = parse_framework(text)
    kim = viewer(program, "K001")
    l5 = coverage.plan_coverage(program, kim, merged, "L5", TODAY).set_index("competency_id").loc["res-design"]
    # L5: res-question (A002) and res-methods (A002, C001) in T2, all now res-design
    assert (l5.ratings_this_term, l5.raters, l5.ratings_needed, l5.raters_needed) == (3, 2, 1, 3)
    assert l5.coverage.startswith("3 ratings this term (plan: 1); 2 of 3 raters")
    l1 = coverage.plan_coverage(program, kim, merged, "L1", TODAY).set_index("competency_id").loc["res-design"]
    assert (l1.ratings_this_term, l1.raters) == (2, 2)
