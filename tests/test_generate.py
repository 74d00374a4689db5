"""The seeded generator: deterministic, shaped like a real program, and the checked-in sample is its output."""

import io

import pandas as pd
import pytest

from tests.conftest import SAMPLE
from tracker.records.generate import generate

pytestmark = pytest.mark.xdist_group("test_generate")  # one worker: its module-scoped fixture is made once


@pytest.fixture(scope="module")
def program(framework):
    return generate(framework, n_learners=60, seed=7)


def test_same_seed_same_program(framework, program):
    again = generate(framework, n_learners=60, seed=7)
    pd.testing.assert_frame_equal(program.ratings, again.ratings)
    other = generate(framework, n_learners=60, seed=8)
    assert not program.ratings["level"].equals(other.ratings["level"])


def test_checked_in_sample_is_the_generators_output(program, tmp_path):
    program.write(tmp_path)
    for name in ("learners", "staff", "ratings", "evidence", "meetings", "decisions"):
        assert (tmp_path / f"{name}.csv").read_text() == (SAMPLE / f"{name}.csv").read_text(), name


def test_sample_has_the_shape_of_a_real_program(program, framework):
    learners, staff, ratings = program.learners, program.staff, program.ratings
    current = learners[learners["status"] != "graduated"]
    assert len(current) == 60 and current["cohort"].nunique() >= 3
    # two cohorts of 30 graduated before them, rated by advisors in every term
    graduated = learners[learners["status"] == "graduated"]
    assert graduated.groupby("cohort").size().tolist() == [30, 30]
    assert graduated["cohort"].max() < current["cohort"].min()
    theirs = ratings[ratings["learner_id"].isin(graduated["id"]) & (ratings["rater_role"] == "advisor")]
    assert theirs.groupby("learner_id")["term"].nunique().eq(len(framework.term_ids)).all()
    assert learners["profession"].nunique() >= 5
    assert {"Physician", "Nurse", "Pharmacist", "Laboratory scientist", "Physician assistant"} <= set(
        learners["profession"]
    )
    assert staff["roles"].str.contains("advisor").sum() >= 8
    assert staff["roles"].str.contains("committee").any() and staff["roles"].str.contains("coordinator").any()
    assert (learners["status"] == "leave").sum() == 1
    assert set(ratings["rater_role"]) == {"self", "advisor", "committee"}
    # committee members give the second opinion the assessment plan asks for, and only there
    committee = ratings[ratings["rater_role"] == "committee"]
    second = {c for c in framework.competencies if (framework.plan_for(c).ratings_per_term or 0) >= 2}
    assert set(committee["competency_id"]) == second == {"res-methods"}
    assert (ratings["comment"] != "").mean() > 0.2
    assert (ratings["evidence_ids"].fillna("") != "").any()
    assert ratings["corrects"].fillna("").ne("").sum() >= 2
    # several learners rate themselves well above their advisor
    lv = (
        ratings.assign(level=ratings["level"].astype(float))
        .pivot_table(
            index=["learner_id", "competency_id", "term"], columns="rater_role", values="level", aggfunc="first"
        )
        .dropna()
    )
    gap = (lv["self"] - lv["advisor"]).groupby(level="learner_id").mean()
    assert (gap >= 0.75).sum() >= 3


def test_every_id_in_the_sample_exists_in_the_framework(framework):
    ratings = pd.read_csv(SAMPLE / "ratings.csv", dtype=str, keep_default_na=False)
    evidence = pd.read_csv(SAMPLE / "evidence.csv", dtype=str, keep_default_na=False)
    assert set(ratings["competency_id"]) <= set(framework.competencies)
    assert set(ratings["term"]) <= set(framework.term_ids)
    assert set(ratings["framework_version"]) == {framework.version}
    assert set(evidence["type"]) <= set(framework.evidence_type_ids)
    assert {c for cs in evidence["competency_ids"] for c in cs.split(";")} <= set(framework.competencies)


def test_any_size_and_truth_for_known_growth(framework, tmp_path):
    big = generate(framework, n_learners=500, seed=1)
    assert (big.learners["status"] != "graduated").sum() == 500
    assert big.learners["id"].is_unique and big.ratings["id"].is_unique and big.evidence["id"].is_unique
    assert set(big.truth.columns) >= {"learner_id", "growth_per_term", "misses_graduation_level"}
    big.write(tmp_path, with_truth=True)
    assert (
        pd.read_csv(io.StringIO((tmp_path / "truth.csv").read_text()))["learner_id"].tolist()
        == big.learners["id"].tolist()
    )


def test_slowing_growth_gains_less_each_term(framework):
    """With growth="slowing" each term's true gain is a fixed share smaller than the last; the truth holds the
    level reached at the end."""
    program = generate(framework, n_learners=200, seed=4, growth="slowing", graduated_cohorts=1)
    ratings = program.ratings[program.ratings["rater_role"] == "advisor"].assign(
        level=lambda r: r["level"].astype(float), t=lambda r: r["term"].str[1:].astype(int)
    )
    graduated = program.learners.loc[program.learners["status"] == "graduated", "id"]
    means = ratings[ratings["learner_id"].isin(graduated)].groupby("t")["level"].mean()
    gains = means.diff().dropna().to_numpy()
    assert (gains[1:] < gains[:-1]).all(), gains  # slowing
    straight = generate(framework, n_learners=200, seed=4, graduated_cohorts=1)
    s = straight.ratings[straight.ratings["rater_role"] == "advisor"]
    s_means = s.assign(level=s["level"].astype(float), t=s["term"].str[1:].astype(int))
    s_means = s_means[s_means["learner_id"].isin(graduated)].groupby("t")["level"].mean()
    assert abs(s_means.diff().dropna().iloc[-1] - s_means.diff().dropna().iloc[0]) < 0.1  # a straight line
    truth = program.truth.set_index("learner_id")
    assert (truth["misses_graduation_level"] == (truth["final_true_level"] < 3.75)).all()


def test_the_sample_holds_a_signed_review_with_a_revision(program, framework):
    meetings, decisions = program.meetings, program.decisions
    assert len(meetings) == 1 and meetings["signed_on"].iloc[0] == meetings["held_on"].iloc[0]
    cohort = meetings["cohort"].iloc[0]
    active = program.learners[(program.learners["cohort"] == cohort) & (program.learners["status"] == "active")]
    agenda = [line.split(" | ")[0] for line in meetings["agenda"].iloc[0].splitlines()]
    assert sorted(agenda) == sorted(active["id"])
    at_meeting = decisions[decisions["meeting_id"] == meetings["id"].iloc[0]]
    assert sorted(at_meeting["learner_id"]) == sorted(agenda)
    assert set(decisions["outcome"]) <= set(framework.outcomes) and at_meeting["outcome"].nunique() >= 3
    revised = decisions[decisions["replaces"] != ""]
    assert len(revised) == 1 and revised["replaces"].iloc[0] in set(at_meeting["id"])
    planned = at_meeting[at_meeting["outcome"].str.endswith("-plan")]
    assert (planned["actions"] != "").all() and (planned["rationale"] != "").all()
