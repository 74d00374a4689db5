"""The query layer against a small hand-made program, its figures computed independently from the raw rows."""

import datetime as dt

import pandas as pd
import pytest

from data_models import Evidence, Learner, Rating, Staff
from tests.conftest import ROOT, viewer
from tests.reference import classify
from tracker.analysis import queries
from tracker.framework.loading import load_framework, parse_framework
from tracker.records import importing, revision
from tracker.records.generate import generate
from tracker.records.setup import seed_directory
from tracker.storage import opening, record_rows

TERMS = ["T1", "T2", "T3", "T4", "T5", "T6"]


def R(rid, learner, comp, level, role, day, term, rater=None, corrects=None, comment=""):
    return Rating(
        id=rid,
        learner_id=learner,
        competency_id=comp,
        level=level,
        rater_id=rater or ("A1" if role == "advisor" else learner if role == "self" else "C1"),
        rater_role=role,
        rated_on=dt.date.fromisoformat(day),
        term=term,
        comment=comment,
        framework_version="2026.1",
        corrects=corrects,
    )


RATINGS = [
    R("r1", "X1", "teach-methods", 1.5, "advisor", "2025-01-10", "T1"),
    R("r2", "X1", "teach-methods", 2.0, "advisor", "2025-05-10", "T2"),
    R("r3", "X1", "teach-methods", 3.0, "advisor", "2025-06-01", "T2"),
    R("r4", "X1", "teach-methods", 2.0, "advisor", "2025-09-10", "T3"),
    R("r5", "X1", "teach-methods", 2.5, "advisor", "2025-09-12", "T3", corrects="r4"),
    R("r6", "X1", "teach-methods", 4.0, "self", "2025-09-01", "T3"),
    R("r7", "X1", "res-dissemination", 1.0, "advisor", "2025-09-10", "T3"),
    R("r8", "X1", "res-dissemination", 2.0, "self", "2025-09-02", "T3"),
    R("r9", "X1", "lead-people", 3.5, "committee", "2025-09-20", "T3"),
    R("r10", "X2", "teach-methods", 1.0, "advisor", "2025-05-10", "T2"),
    R("r11", "X1", "collab-ipe", 2.0, "self", "2025-09-03", "T3"),
]


@pytest.fixture
def small(empty_db, framework):
    cur = empty_db.cursor()
    cur.executemany(
        "INSERT INTO staff VALUES (?, ?, ?, ?, ?)",
        record_rows.staff_rows(
            [
                Staff(id="A1", name="Ada Advisor", email="a1@x.org", roles=["advisor"]),
                Staff(id="A2", name="Other Advisor", email="a2@x.org", roles=["advisor"]),
                Staff(id="C1", name="Cy Committee", email="c1@x.org", roles=["committee"]),
            ]
        ),
    )
    cur.executemany(
        "INSERT INTO learners VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        record_rows.learner_rows(
            [
                Learner(
                    id="X1",
                    name="Zoë Ng",
                    email="x1@x.org",
                    cohort="c1",
                    profession="Nurse",
                    start_term="2025-01",
                    advisor_id="A1",
                ),
                Learner(
                    id="X2",
                    name="José Ruiz",
                    email="x2@x.org",
                    cohort="c1",
                    profession="Physician",
                    start_term="2025-01",
                    status="leave",
                    advisor_id="A1",
                ),
                Learner(
                    id="X3",
                    name="Li Wei",
                    email="x3@x.org",
                    cohort="c2",
                    profession="Pharmacist",
                    start_term="2026-01",
                    advisor_id="A2",
                ),
            ]
        ),
    )
    record_rows.add_evidence(
        cur,
        [
            Evidence(
                id="E1",
                learner_id="X1",
                type="reflection",
                title="Essay",
                competency_ids=["teach-methods", "teach-assessment"],
                added_on="2025-03-01",
            ),
            Evidence(
                id="E2",
                learner_id="X1",
                type="observation",
                title="Observed",
                competency_ids=["teach-methods"],
                added_on="2025-08-01",
            ),
        ],
        actor="t",
    )
    record_rows.add_ratings(cur, RATINGS, framework, actor="t")
    return cur


def reference_standing(framework, learner: str, comp: str) -> dict:
    """The documented definition, computed in plain Python from the raw rows."""
    corrected = {r.corrects for r in RATINGS if r.corrects}
    live = [r for r in RATINGS if r.learner_id == learner and r.id not in corrected]
    order = {r.id: i for i, r in enumerate(RATINGS)}

    def latest(rows):
        return max(rows, key=lambda r: (TERMS.index(r.term), r.rated_on, order[r.id]), default=None)

    assessed = [r for r in live if r.rater_role != "self"]
    current_term = TERMS[max((TERMS.index(r.term) for r in assessed), default=0)]
    mine = [r for r in assessed if r.competency_id == comp]
    now = latest(mine)
    before = latest([r for r in mine if now and TERMS.index(r.term) < TERMS.index(now.term)])
    own = latest([r for r in live if r.rater_role == "self" and r.competency_id == comp])
    expected = framework.expected_level(comp, current_term)
    level = now.level if now else None
    standing = classify(level, expected)
    return {
        "level": level,
        "self_level": own.level if own else None,
        "expected": expected,
        "trend": (level - before.level) if now and before else None,
        "current_term": current_term,
        "standing": standing,
    }


@pytest.mark.parametrize(
    "comp", ["teach-methods", "res-dissemination", "lead-people", "collab-ipe", "teach-assessment"]
)
def test_standing_matches_the_definition_computed_from_raw_rows(small, framework, comp):
    committee = viewer(small, "C1")
    got = queries.competency_standing(small, committee, learner_id="X1").set_index("competency_id").loc[comp]
    want = reference_standing(framework, "X1", comp)
    for key in ("level", "self_level", "trend"):
        assert (pd.isna(got[key]) and want[key] is None) or got[key] == pytest.approx(want[key]), key
    assert got["expected"] == want["expected"]
    assert got["current_term"] == want["current_term"]
    assert got["standing"] == want["standing"]


def test_hand_checked_figures(small):
    s = queries.competency_standing(small, viewer(small, "C1"), learner_id="X1").set_index("competency_id")
    assert s.loc["teach-methods", "level"] == 2.5  # the correction supersedes 2.0
    assert s.loc["teach-methods", "trend"] == -0.5  # from 3.0, the later of two T2 ratings
    assert s.loc["teach-methods", "self_gap"] == 1.5
    assert s.loc["teach-methods", "evidence_count"] == 2
    assert s.loc["teach-assessment", "evidence_count"] == 1
    assert s.loc["res-dissemination", "standing"] == "behind"  # 1.0 against its own expected 2.0 at T3
    assert s.loc["lead-people", "level"] == 3.5  # committee ratings count as the level
    assert pd.isna(s.loc["collab-ipe", "level"])  # self-ratings never count as the level
    assert s.loc["collab-ipe", "self_level"] == 2.0


def test_learners_behind_give_the_reason_in_words_and_skip_leave(small):
    standing = queries.competency_standing(small, viewer(small, "C1"))
    behind = queries.learners_behind(small, viewer(small, "C1"))
    assert behind["learner_id"].tolist() == ["X1"]
    assert behind.iloc[0]["why"] == "Publication and presentation (Research and scholarship): level 1, expected 2"
    x2 = standing[standing["learner_id"] == "X2"]
    assert set(x2["standing"]) == {"leave"}


def test_domain_level_is_the_mean_of_rated_competencies(small, framework):
    standing = queries.competency_standing(small, viewer(small, "C1"), learner_id="X1")
    domains = queries.domain_standing(standing).set_index("domain_id")
    assert domains.loc["teaching", "level"] == 2.5  # only teach-methods is rated
    assert domains.loc["research", "level"] == 1.0
    expected_teaching = sum(framework.expected_level(c.id, "T3") for c in framework.domain("teaching").competencies) / 5
    assert domains.loc["teaching", "expected"] == pytest.approx(expected_teaching)


def test_as_of_term_ignores_later_ratings(small):
    s = queries.competency_standing(small, viewer(small, "C1"), learner_id="X1", as_of=2).set_index("competency_id")
    assert s.loc["teach-methods", "level"] == 3.0
    assert s.loc["teach-methods", "current_term"] == "T2"


def test_trajectory_per_term(small):
    traj = queries.trajectory(small, viewer(small, "A1"), "X1")
    tm = traj[traj["competency_id"] == "teach-methods"].set_index("term")
    assert tm.loc["T1", "level"] == 1.5 and tm.loc["T2", "level"] == 3.0 and tm.loc["T3", "level"] == 2.5
    assert tm.loc["T3", "self_level"] == 4.0
    assert pd.isna(tm.loc["T4", "level"])
    assert list(tm.index) == TERMS


def test_review_queue_lists_self_assessments_newer_than_the_advisor_rating(small):
    queue = queries.review_queue(small, viewer(small, "A1"))
    # X1's self-ratings of teach-methods (Sep 1) are older than the advisor's (Sep 12); collab-ipe has no advisor rating
    assert queue.set_index("learner_id").loc["X1", "to_review"] == 1


def test_cohort_trajectory_counts_learners_once(small):
    traj = queries.cohort_trajectory(small, viewer(small, "C1"))
    teaching = traj[(traj["domain_id"] == "teaching")].set_index("term")
    assert teaching.loc["T2", "learners"] == 2  # X1 and X2
    assert teaching.loc["T2", "median"] == pytest.approx((3.0 + 1.0) / 2)


def test_another_framework_drives_the_store_and_queries(tmp_path, monkeypatch):
    fw = load_framework(ROOT / "tests" / "fixtures" / "four_levels.yaml")
    generate(fw, n_learners=30, seed=3).write(tmp_path / "csv")
    db = opening.open_database(
        tmp_path / "other.duckdb", fw, (ROOT / "tests" / "fixtures" / "four_levels.yaml").read_text()
    )
    cur = db.cursor()
    added = seed_directory(cur, tmp_path / "csv", fw, "test")
    assert added["learners"] == 30 + 2 * 30 and added["ratings"] > 0  # and two graduated cohorts of 30
    standing = queries.competency_standing(cur, viewer(cur, "C001"))
    assert set(standing["domain_id"]) == {"precepting", "didactics", "scholarship"}
    assert standing["level"].dropna().between(1, 4).all()
    assert set(standing["current_term"].dropna()) <= {"S1", "F1", "S2", "F2"}
    db.close()


def test_current_levels_read_now_equal_the_computation_as_of_the_last_term(cur, framework):
    """The kept-current latest levels and the as-of computation are one definition: they must agree."""
    committee = viewer(cur, "C001")
    now = queries.competency_standing(cur, committee)
    as_of_last = queries.competency_standing(cur, committee, as_of=len(framework.term_ids))
    pd.testing.assert_frame_equal(now, as_of_last)


def test_cohort_summaries_equal_what_the_standing_rows_say(cur, framework):
    """The summaries computed in SQL equal the same figures computed in pandas from the full standing rows."""
    committee = viewer(cur, "C001")
    for picked in ({}, {"cohort": "2025-01"}, {"as_of": 2}, {"domain": "research", "cohort": "2026-01"}):
        rows = queries.competency_standing(cur, committee, cohort=picked.get("cohort"), as_of=picked.get("as_of"))
        if "domain" in picked:
            rows = rows[rows["domain_id"] == picked["domain"]]
        rated = rows.dropna(subset=["level"])
        totals = queries.selection_totals(cur, committee, **picked)
        assert totals["learners"] == rows["learner_id"].nunique()
        assert totals["behind"] == rows.loc[rows["standing"] == "behind", "learner_id"].nunique()
        assert totals["on_leave"] == rows.loc[rows["status"] == "leave", "learner_id"].nunique()
        assert totals["rated"] == len(rated)
        assert totals["median_vs_expected"] == pytest.approx(rated["vs_expected"].median())
        counts = queries.level_distribution(cur, committee, **picked).set_index(["competency_id", "level"])
        want = rated.groupby(["competency_id", "level"]).size()
        assert counts["learners"].sort_index().tolist() == want.sort_index().tolist()
        behind = queries.learners_behind(cur, committee, **picked).set_index("learner_id")
        late = rows[rows["standing"] == "behind"]
        assert set(behind.index) == set(late["learner_id"])
        for learner_id, mine in late.groupby("learner_id"):
            assert behind.loc[learner_id, "behind"] == len(mine)
            assert behind.loc[learner_id, "worst_gap"] == mine["vs_expected"].min()
            worst = mine.sort_values("vs_expected", kind="stable").iloc[0]
            assert behind.loc[learner_id, "why"].startswith(f"{worst.competency_name} ({worst.domain_name}): level ")
        assert behind["worst_gap"].is_monotonic_increasing


def test_the_heatmap_rows_are_the_learners_furthest_behind(cur):
    committee = viewer(cur, "C001")
    rated = queries.competency_standing(cur, committee).dropna(subset=["level"])
    mean_gap = rated.groupby("learner_id")["vs_expected"].mean().sort_values(kind="stable")
    grid = queries.furthest_behind(cur, committee, limit=7)
    assert set(grid["learner_id"]) == set(mean_gap.index[:7])
    assert len(grid) == len(rated[rated["learner_id"].isin(mean_gap.index[:7])])


def test_program_overview_per_cohort(cur):
    committee = viewer(cur, "C001")
    overview = queries.cohort_overview(cur, committee).set_index("cohort")
    learners = cur.execute(
        "SELECT cohort, count(*) AS n, count(*) FILTER (WHERE status = 'leave') AS leave FROM learners GROUP BY cohort"
    ).df()
    for row in learners.itertuples():
        assert overview.loc[row.cohort, "learners"] == row.n and overview.loc[row.cohort, "on_leave"] == row.leave
    behind = queries.learners_behind(cur, committee)
    assert overview["behind"].sum() == len(behind)
    assert overview.loc["2025-01", "term"] == "T6"


ADDED_DOMAIN = """  - id: added
    name: Added domain
    competencies:
      - id: added-one
        name: Added competency
        levels: [{level: 1, descriptor: a}, {level: 2, descriptor: b}, {level: 3, descriptor: c},
                 {level: 4, descriptor: d}, {level: 5, descriptor: e}]
"""


def test_every_learner_has_a_current_row_per_competency_after_every_kind_of_write(empty_db, framework, tmp_path):
    """current_levels holds a row for every learner and competency (rated or not), whatever wrote the learner:
    the importer, the bulk loader, or a changed framework."""
    cur = empty_db.cursor()

    def complete() -> bool:
        learners = cur.execute("SELECT count(*) FROM learners").fetchone()[0]
        rows = cur.execute("SELECT count(*) FROM current_levels").fetchone()[0]
        return learners > 0 and rows == learners * len(framework.competencies)

    generate(framework, n_learners=12, seed=9, graduated_cohorts=0).write(tmp_path / "csv")
    for kind in ("staff", "learners"):
        importing.import_file(cur, kind, tmp_path / "csv" / f"{kind}.csv", framework, "test")
    assert complete()  # learners without a rating yet
    standing = queries.competency_standing(cur, viewer(cur, "C001"))
    assert set(standing["standing"]) <= {"not rated", "leave"} and len(standing) == 12 * len(framework.competencies)
    for kind in ("evidence", "ratings"):
        importing.import_file(cur, kind, tmp_path / "csv" / f"{kind}.csv", framework, "test")
    assert complete()
    text = (ROOT / "competencies.yaml").read_text(encoding="utf-8").replace('version: "2026.1"', 'version: "2026.2"')
    text = text.replace("domains:\n", "domains:\n" + ADDED_DOMAIN, 1)
    other = parse_framework(text)
    revision.upgrade(cur, other, text, "test")  # a new version with one more domain and competency
    assert cur.execute("SELECT count(*) FROM current_levels").fetchone()[0] == 12 * len(other.competencies)
    assert set(cur.execute("SELECT DISTINCT competency_id FROM current_levels").df()["competency_id"]) == set(
        other.competencies
    )


def test_a_learner_written_without_a_refresh_still_stands_unrated(small):
    """X3 was inserted straight into the table (as this fixture does): no current rows, yet listed as not rated."""
    assert small.execute("SELECT count(*) FROM current_levels WHERE learner_id = 'X3'").fetchone()[0] == 0
    rows = queries.competency_standing(small, viewer(small, "C1"))
    x3 = rows[rows["learner_id"] == "X3"]
    assert len(x3) == 23 and set(x3["standing"]) == {"not rated"}
