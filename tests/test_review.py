"""The committee's review cycle against a real database: agenda, drafts, sign-off, revision, and who sees what."""

import contextlib
import datetime as dt
import io
import os
import threading
import time

import duckdb
import pandas as pd
import psycopg
import pytest

from tests.conftest import SAMPLE as ROOT_SAMPLE
from tests.conftest import _open_test_database, viewer
from tracker.analysis import queries
from tracker.core.errors import PermissionDenied, TrackerError
from tracker.records import actions, exporting
from tracker.review import agendas, review_actions, review_queries
from tracker.review.review_actions import Action, ConsensusLevel, Draft
from tracker.storage import database, replica

HELD_ON = dt.date(2026, 11, 24)
FRAMEWORK_TEXT = (ROOT_SAMPLE.parent / "competencies.yaml").read_text(encoding="utf-8")


def _agenda(*learners: str) -> pd.DataFrame:
    return pd.DataFrame({"learner_id": list(learners), "reasons": ["listed by hand"] * len(learners)})


@pytest.fixture
def meeting(cur):
    """A meeting chaired by A001 with C001, about L002 (advisee of A001) and L008 (advisee of A002), both of cohort
    2025-09 (the sample's own review is of cohort 2025-01)."""
    coordinator = viewer(cur, "K001")
    return review_actions.create_meeting(
        cur, coordinator, "Autumn review", HELD_ON, "End of term", "A001", ["C001"], _agenda("L002", "L008")
    )


def _decide_two(cur, framework, meeting: str) -> None:
    chair = viewer(cur, "A001")
    review_actions.save_draft(
        cur,
        framework,
        chair,
        meeting,
        "L002",
        Draft(
            outcome="learning-plan",
            rationale="Research methods lag two terms.",
            actions=[Action("Agree a learning plan", "A001", dt.date(2026, 12, 15))],
            levels=[ConsensusLevel("res-dissemination", 3.0, "The poster shows more than the advisor rated.")],
        ),
    )
    review_actions.save_draft(cur, framework, viewer(cur, "C001"), meeting, "L008", Draft(outcome="on-track"))


def test_proposed_agenda_names_each_learners_reasons(cur, framework):
    coordinator = viewer(cur, "K001")
    priors = queries.program_priors(cur)
    agenda = agendas.proposed_agenda(cur, coordinator, framework, priors)
    behind = set(queries.learners_behind(cur, coordinator)["learner_id"])
    risk = queries.graduation_risk(cur, coordinator, priors, framework)
    at_risk = set(risk.loc[risk["at_risk"], "learner_id"])
    # independently from the raw ratings: learners whose latest self-assessed term has no advisor rating
    ratings = cur.execute(
        "SELECT learner_id, rater_role, max(term_index) AS t FROM ratings r JOIN learners l ON l.id = r.learner_id "
        "WHERE l.status = 'active' GROUP BY ALL"
    ).df()
    wide = ratings.pivot_table(index="learner_id", columns="rater_role", values="t", aggfunc="max").fillna(0)
    unrated = set(wide.index[wide["self"] > wide["advisor"]])
    assert behind and at_risk and unrated
    assert set(queries.without_advisor_rating(cur, coordinator)["learner_id"]) == unrated
    listed = dict(zip(agenda["learner_id"], agenda["reasons"], strict=True))
    assert behind | at_risk | unrated <= set(listed)
    for learner in behind:
        assert "behind in" in listed[learner]
    for learner in unrated:
        assert "no advisor rating yet" in listed[learner]
    assert agenda["learner_id"].is_unique


def test_a_meeting_is_set_up_with_committee_members_only(cur):
    coordinator = viewer(cur, "K001")
    before = cur.execute("SELECT count(*) FROM review_meetings").fetchone()[0]
    with pytest.raises(TrackerError, match="A002"):
        review_actions.create_meeting(cur, coordinator, "Review", HELD_ON, "T3", "A001", ["A002"], _agenda("L002"))
    with pytest.raises(PermissionDenied):
        review_actions.create_meeting(cur, viewer(cur, "A002"), "Review", HELD_ON, "T3", "A001", [], _agenda("L002"))
    with pytest.raises(PermissionDenied):
        review_actions.create_meeting(cur, viewer(cur, "L002"), "Review", HELD_ON, "T3", "A001", [], _agenda("L002"))
    assert cur.execute("SELECT count(*) FROM review_meetings").fetchone()[0] == before


def test_whole_cohort_agenda_lists_its_active_learners(cur):
    coordinator = viewer(cur, "K001")
    agenda = agendas.whole_cohort(cur, coordinator, "2025-01")
    expected = cur.execute("SELECT id FROM learners WHERE cohort = '2025-01' AND status = 'active'").fetchall()
    assert sorted(agenda["learner_id"]) == sorted(r[0] for r in expected)


def test_drafts_keep_what_was_entered_and_check_it(cur, framework, meeting):
    chair = viewer(cur, "A001")
    with pytest.raises(TrackerError, match="rationale"):
        review_actions.save_draft(cur, framework, chair, meeting, "L002", Draft(outcome="monitor"))
    with pytest.raises(TrackerError, match="comment"):
        review_actions.save_draft(
            cur, framework, chair, meeting, "L002", Draft(levels=[ConsensusLevel("res-dissemination", 3.0, " ")])
        )
    with pytest.raises(TrackerError, match="not on the agenda"):
        review_actions.save_draft(cur, framework, chair, meeting, "L001", Draft(outcome="on-track"))
    _decide_two(cur, framework, meeting)
    drafts = review_queries.decision_drafts(cur, chair, meeting).set_index("learner_id")
    kept = review_actions.draft_from_row(drafts.loc["L002"].to_dict())
    assert kept.outcome == "learning-plan" and kept.actions[0].due_on == dt.date(2026, 12, 15)
    assert kept.levels == [ConsensusLevel("res-dissemination", 3.0, "The poster shows more than the advisor rated.")]
    assert drafts.loc["L008", "outcome"] == "on-track"


def test_sign_off_makes_final_decisions_and_committee_ratings(cur, framework, meeting):
    _decide_two(cur, framework, meeting)
    with pytest.raises(PermissionDenied):
        review_actions.sign_off(cur, framework, viewer(cur, "C001"), meeting)  # a member, not the chair
    ids = review_actions.sign_off(cur, framework, viewer(cur, "A001"), meeting)
    assert len(ids) == 2
    rows = cur.execute(
        "SELECT learner_id, outcome, signed_by, replaces FROM decisions WHERE meeting_id = ? ORDER BY learner_id",
        [meeting],
    ).fetchall()
    assert rows == [("L002", "learning-plan", "A001", None), ("L008", "on-track", "A001", None)]
    committee = cur.execute(
        # the sign-off's consensus ratings, dated the day of the meeting (the sample holds earlier committee ratings)
        "SELECT learner_id, competency_id, level, rater_id, rated_on FROM ratings WHERE rater_role = 'committee' "
        "AND rated_on = ?",
        [HELD_ON],
    ).fetchall()
    assert committee == [("L002", "res-dissemination", 3.0, "A001", HELD_ON)]
    level = cur.execute(
        "SELECT level FROM current_levels WHERE learner_id = 'L002' AND competency_id = 'res-dissemination'"
    ).fetchone()[0]
    assert float(level) == 3.0
    assert cur.execute("SELECT count(*) FROM decision_drafts").fetchone()[0] == 0
    actions = cur.execute(
        "SELECT action, owner_id, due_on FROM decision_actions WHERE decision_id IN (SELECT unnest(?))", [ids]
    ).fetchall()
    assert actions == [("Agree a learning plan", "A001", dt.date(2026, 12, 15))]
    audited = {r[0] for r in cur.execute("SELECT action FROM audit_log").fetchall()}
    assert {"review meeting", "decision draft", "decision", "sign-off", "rating"} <= audited
    with pytest.raises(TrackerError, match="final"):
        review_actions.save_draft(cur, framework, viewer(cur, "A001"), meeting, "L002", Draft(outcome="on-track"))
    with pytest.raises(TrackerError, match="signed off already"):
        review_actions.sign_off(cur, framework, viewer(cur, "A001"), meeting)


def test_a_revision_is_a_new_decision_naming_the_one_it_replaces(cur, framework, meeting):
    _decide_two(cur, framework, meeting)
    review_actions.sign_off(cur, framework, viewer(cur, "A001"), meeting)
    first = cur.execute("SELECT id FROM decisions WHERE learner_id = 'L008'").fetchone()[0]
    with pytest.raises(TrackerError, match="rationale"):
        review_actions.revise_decision(cur, framework, viewer(cur, "C002"), first, "monitor", "")
    new = review_actions.revise_decision(
        cur, framework, viewer(cur, "C002"), first, "monitor", "New concerns from placement."
    )
    history = review_queries.learner_decisions(cur, viewer(cur, "K001"), learner_id="L008")
    assert history["id"].tolist() == [new, first]
    assert history["current"].tolist() == [True, False]
    assert history["replaced_by"].tolist()[1] == new and history["replaces"].tolist()[0] == first
    assert cur.execute("SELECT outcome FROM decisions WHERE id = ?", [first]).fetchone()[0] == "on-track"
    with pytest.raises(TrackerError, match="revised already"):
        review_actions.revise_decision(cur, framework, viewer(cur, "C002"), first, "on-track", "Again.")
    counts = review_queries.decision_counts(cur, viewer(cur, "K001"), cohort="2025-09")
    assert dict(zip(counts["outcome"], counts["learners"], strict=True)) == {"learning-plan": 1, "monitor": 1}
    plans = review_queries.plans_to_open(cur, viewer(cur, "K001"), framework)
    assert "L002" in set(plans["learner_id"]) and "L008" not in set(plans["learner_id"])
    # independently: the learners whose latest unreplaced decision requires a plan
    latest = cur.execute(
        "SELECT learner_id, arg_max(outcome, seq) FROM decisions WHERE id NOT IN "
        "(SELECT replaces FROM decisions WHERE replaces IS NOT NULL) GROUP BY learner_id"
    ).fetchall()
    needs = {o.id for o in framework.outcomes.values() if o.requires_plan}
    assert sorted(plans["learner_id"]) == sorted(learner for learner, outcome in latest if outcome in needs)


def test_learners_and_advisors_see_only_their_own_signed_decisions(cur, framework, meeting):
    _decide_two(cur, framework, meeting)
    learner, advisor = viewer(cur, "L002"), viewer(cur, "A002")
    assert review_queries.learner_decisions(cur, learner, learner_id="L002").empty  # drafts are not decisions
    review_actions.sign_off(cur, framework, viewer(cur, "A001"), meeting)
    own = review_queries.learner_decisions(cur, learner)
    assert own["learner_id"].tolist() == ["L002"] and own["rationale"].tolist() == ["Research methods lag two terms."]
    advisees = cur.execute(
        "SELECT DISTINCT d.learner_id FROM decisions d JOIN learners l ON l.id = d.learner_id WHERE l.advisor_id = 'A002'"
    ).fetchall()
    assert sorted(set(review_queries.learner_decisions(cur, advisor)["learner_id"])) == sorted(r[0] for r in advisees)
    assert "L008" in {r[0] for r in advisees} and "L002" not in {r[0] for r in advisees}
    assert {"L002", "L008"} < set(review_queries.learner_decisions(cur, viewer(cur, "K001"))["learner_id"])
    with pytest.raises(PermissionDenied):
        review_queries.learner_decisions(cur, learner, learner_id="L008")
    with pytest.raises(PermissionDenied):
        review_queries.learner_decisions(cur, advisor, learner_id="L002")


@pytest.mark.parametrize("who", ["L002", "A002", "K001"])
def test_no_one_outside_the_committee_reads_drafts_or_decides_by_any_route(cur, framework, meeting, who):
    _decide_two(cur, framework, meeting)
    person = viewer(cur, who)
    with pytest.raises(PermissionDenied):
        review_queries.decision_drafts(cur, person, meeting)
    if who != "K001":
        with pytest.raises(PermissionDenied):
            review_queries.meeting_agenda(cur, person, meeting)
        with pytest.raises(PermissionDenied):
            review_queries.review_meetings(cur, person)
    else:  # the coordinator reads the agenda, never the draft outcomes
        assert review_queries.meeting_agenda(cur, person, meeting)["draft_outcome"].isna().all()
    with pytest.raises(PermissionDenied):
        review_actions.save_draft(cur, framework, person, meeting, "L002", Draft(outcome="on-track"))
    with pytest.raises(PermissionDenied):
        review_actions.sign_off(cur, framework, person, meeting)
    review_actions.sign_off(cur, framework, viewer(cur, "A001"), meeting)
    signed = cur.execute("SELECT id FROM decisions WHERE learner_id = 'L002'").fetchone()[0]
    with pytest.raises(PermissionDenied):
        review_actions.revise_decision(cur, framework, person, signed, "on-track", "I disagree.")
    if who != "K001":  # nor through the import or export of records
        from tracker.records import actions

        row = f"D-x,,L002,on-track,,2026-11-25,A001,{signed},\n"
        text = "id,meeting_id,learner_id,outcome,rationale,decided_on,signed_by,replaces,actions\n" + row
        with pytest.raises(PermissionDenied):
            actions.import_records(cur, framework, person, "decisions", text, "decisions.csv", dry_run=False)
        with pytest.raises(PermissionDenied):
            exporting.export_records(cur, person, "decisions")
    assert cur.execute("SELECT count(*) FROM decisions WHERE learner_id IN ('L002', 'L008')").fetchone()[0] == 2
    refused = cur.execute("SELECT count(*) FROM audit_log WHERE action = 'permission denied' AND actor = ?", [who])
    assert refused.fetchone()[0] >= 2


def test_a_committee_member_not_on_the_meeting_cannot_draft(cur, framework, meeting):
    with pytest.raises(PermissionDenied):
        review_actions.save_draft(cur, framework, viewer(cur, "C003"), meeting, "L002", Draft(outcome="on-track"))


def test_program_outcomes_come_from_the_framework(framework):
    assert list(framework.outcomes)[:5] == [
        "on-track",
        "monitor",
        "learning-plan",
        "remediation-plan",
        "ready-to-graduate",
    ]
    assert framework.outcomes["extend-program"].requires_plan


def test_minutes_learner_report_and_cohort_report_hold_the_decisions(cur, framework, meeting):
    from tests.test_reports import text_of
    from tracker.reports import packets

    _decide_two(cur, framework, meeting)
    review_actions.sign_off(cur, framework, viewer(cur, "A001"), meeting)
    coordinator = viewer(cur, "K001")
    minutes = " ".join(text_of(packets.meeting_minutes(cur, coordinator, framework, meeting)).split())
    names = dict(cur.execute("SELECT id, name FROM learners WHERE id IN ('L002', 'L008')").fetchall())
    assert "Minutes: Autumn review" in minutes and "Signed off by the chair" in minutes
    assert f"{names['L002']} (L002)" in minutes and "Research methods lag two terms." in minutes
    assert "Learning plan required" in minutes and "Agree a learning plan" in minutes
    assert "The poster shows more than the advisor rated." in minutes  # the consensus level changed
    priors = queries.program_priors(cur)
    learner = " ".join(text_of(packets.learner_report(cur, coordinator, framework, "L002", priors)).split())
    assert "Committee decisions, newest first" in learner and "Research methods lag two terms." in learner
    cohort = cur.execute("SELECT cohort FROM learners WHERE id = 'L002'").fetchone()[0]
    summary = " ".join(text_of(packets.cohort_report(cur, coordinator, framework, cohort, None, priors)).split())
    assert "Current decisions: Learning plan required 1" in summary
    with pytest.raises(PermissionDenied):
        packets.meeting_minutes(cur, viewer(cur, "A002"), framework, meeting)


def test_meetings_and_decisions_round_trip_through_export_and_import(cur, framework, meeting, tmp_path):
    from tests.conftest import FRAMEWORK_YAML
    from tracker.records import exporting, importing
    from tracker.storage.opening import open_database

    _decide_two(cur, framework, meeting)
    review_actions.sign_off(cur, framework, viewer(cur, "A001"), meeting)
    first = cur.execute("SELECT id FROM decisions WHERE learner_id = 'L008'").fetchone()[0]
    review_actions.revise_decision(cur, framework, viewer(cur, "C002"), first, "monitor", "=cmd|' /C calc'!A0 concerns")
    exported = {kind: exporting.export_csv(cur, kind) for kind in ("meetings", "decisions")}
    assert "'=cmd" in exported["decisions"]  # no cell a spreadsheet would run
    other = open_database(tmp_path / "other.duckdb", framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    try:
        for kind in ("staff", "learners", "evidence", "ratings"):
            importing.import_file(other.cursor(), kind, ROOT_SAMPLE / f"{kind}.csv", framework, "test")
        for kind in ("meetings", "decisions"):
            result = importing.import_text(other.cursor(), kind, exported[kind], f"{kind}.csv", framework, "test")
            assert result.added == len(pd.read_csv(io.StringIO(exported[kind]), dtype=str))
        again = {kind: exporting.export_csv(other.cursor(), kind) for kind in ("meetings", "decisions")}
    finally:
        other.close()
    assert again == exported


def test_a_bad_decisions_file_names_every_problem_and_imports_nothing(cur, framework, meeting):
    from tracker.core.errors import ImportProblems
    from tracker.records import importing

    text = (
        "id,meeting_id,learner_id,outcome,rationale,decided_on,signed_by,replaces,actions\n"
        "D1,,L001,monitor,,2026-11-24,C001,,\n"
        "D2,,L999,on-track,,2026-11-24,A002,,\n"
        f"D3,{meeting},L001,graduate-now,Because,2026-11-24,C001,D9,\n"
        "D4,,L001,on-track,,2026-11-24,C001,,2026-12-01 | X99 | Call\n"
    )
    before = cur.execute("SELECT count(*) FROM decisions").fetchone()[0]
    with pytest.raises(ImportProblems) as caught:
        importing.import_text(cur, "decisions", text, "decisions.csv", framework, "test")
    found = "\n".join(caught.value.problems)
    for expected in (
        "row 2, rationale: required",
        "row 3, learner_id: no learner 'L999'",
        "row 3, signed_by: no staff member 'A002' with the committee role",
        "row 4, outcome: 'graduate-now' is not an outcome",
        f"row 4, meeting_id: no signed-off meeting {meeting!r}",
        "row 4, replaces: no decision 'D9'",
        "row 5, actions: owner 'X99'",
    ):
        assert expected in found, expected
    assert cur.execute("SELECT count(*) FROM decisions").fetchone()[0] == before


def test_the_command_line_exports_and_imports_decisions(db_path, framework, tmp_path):
    import subprocess
    import sys

    from tests.conftest import FRAMEWORK_YAML, ROOT
    from tracker.storage.opening import open_database

    db = open_database(db_path, framework, FRAMEWORK_YAML.read_text(encoding="utf-8"))
    cur = db.cursor()
    meeting = review_actions.create_meeting(
        cur, viewer(cur, "K001"), "Review", HELD_ON, "End of term", "A001", ["C001"], _agenda("L002", "L008")
    )
    _decide_two(cur, framework, meeting)
    review_actions.sign_off(cur, framework, viewer(cur, "A001"), meeting)
    stored = cur.execute("SELECT count(*) FROM decisions").fetchone()[0]
    db.close()
    out = tmp_path / "decisions.csv"
    run = [sys.executable, "-m", "tracker", "export", "decisions", "--out", str(out)]
    done = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"Wrote {stored} decisions" in done.stdout
    exported = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(exported) == stored and {"L002", "L008"} <= set(exported["learner_id"])
    assert exported.set_index("learner_id").at["L002", "actions"] == "2026-12-15 | A001 | Agree a learning plan"
    again = [sys.executable, "-m", "tracker", "import", "decisions", str(out)]
    done = subprocess.run(again, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "already exists" in done.stderr  # records are never imported twice


def test_a_framework_names_its_own_outcomes_once(framework):
    from tracker.core.errors import FrameworkError
    from tracker.framework.loading import parse_framework

    text = FRAMEWORK_TEXT.replace(
        "  - {id: extend-program, label: Extension of the program recommended, requires_plan: true}",
        "  - {id: monitor, label: Watch}\n  - {id: extra, label: Extra}\n  - {id: extra, label: Again}",
    )
    with pytest.raises(FrameworkError) as caught:
        parse_framework(text, "mine.yaml")
    found = "\n".join(caught.value.problems)
    assert "'monitor' is a standard outcome already" in found and "duplicate outcome id 'extra'" in found


def test_two_sign_offs_at_once_make_one_set_of_decisions(cur, framework, meeting, storage_mode, tmp_path):
    """The chair signs off twice at once (two tabs, or two servers): both pass the check before the write, both
    wait for the write's turn; the one that comes second is refused inside its write and leaves nothing."""
    _decide_two(cur, framework, meeting)
    chair = viewer(cur, "A001")
    second_db = _open_test_database(tmp_path / "second.duckdb", framework) if storage_mode == "server" else None
    other = second_db.cursor() if second_db else database.thread_cursor(cur)
    outcomes: list[object] = []

    def sign(c) -> None:  # type: ignore[no-untyped-def]
        try:
            outcomes.append(review_actions.sign_off(c, framework, chair, meeting))
        except TrackerError as exc:
            outcomes.append(exc)

    signers = [threading.Thread(target=sign, args=(c,)) for c in (cur, other)]
    with _turn_held(storage_mode):  # nobody writes until both have checked
        for t in signers:
            t.start()
        time.sleep(1.0)
    for t in signers:
        t.join(30)
    assert sorted(type(o).__name__ for o in outcomes) == ["TrackerError", "list"], outcomes
    assert "signed off already" in str(next(o for o in outcomes if isinstance(o, TrackerError)))
    if second_db:
        second_db.close()
        cur.execute("SELECT 1")
        database.write(cur, lambda c: None)  # takes up what the other server wrote
    counts = cur.execute(
        "SELECT (SELECT count(*) FROM decisions WHERE meeting_id = $m), "
        "(SELECT count(*) FROM audit_log WHERE action = 'sign-off' AND target = $m)",
        {"m": meeting},
    ).fetchone()
    assert counts == (2, 1)


@contextlib.contextmanager
def _turn_held(storage_mode: str):  # type: ignore[no-untyped-def]
    """Hold the write's turn: PostgreSQL's write lock in server mode, the embedded writers' shared turn otherwise."""
    if storage_mode != "server":
        with database._CONTENDED:
            yield
        return
    with psycopg.connect(os.environ["TRACKER_DB"]) as con, con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", [replica.WRITE_LOCK])
        yield


def _signed_decision(cur, framework, meeting: str) -> str:  # type: ignore[no-untyped-def]
    """The meeting decided and signed off; the id of its decision about L002."""
    _decide_two(cur, framework, meeting)
    review_actions.sign_off(cur, framework, viewer(cur, "A001"), meeting)
    return str(
        cur.execute("SELECT id FROM decisions WHERE meeting_id = ? AND learner_id = 'L002'", [meeting]).fetchone()[0]
    )


def test_the_database_refuses_a_second_decision_correction_or_revision(cur, framework, meeting):
    """What must be unique is a constraint: rows written past every check are refused by the database itself."""
    decision_id = _signed_decision(cur, framework, meeting)
    rated = cur.execute("SELECT id FROM ratings WHERE corrects IS NULL AND rater_role = 'advisor' LIMIT 1").fetchone()[
        0
    ]
    copy = "INSERT INTO ratings SELECT * REPLACE ('{new}' AS id, '{target}' AS corrects) FROM ratings WHERE id = '{target}'"
    writes = {
        "second decision": f"INSERT INTO decisions SELECT * REPLACE ('D-TWICE' AS id) FROM decisions WHERE id = '{decision_id}'",
        "second revision": (
            f"INSERT INTO decisions SELECT d.* REPLACE (d.id || '-R' || n AS id, NULL AS meeting_id, "
            f"'{decision_id}' AS replaces) FROM decisions d, range(2) t(n) WHERE d.id = '{decision_id}'"
        ),
        "second correction": copy.format(new="R-C1", target=rated) + "; " + copy.format(new="R-C2", target=rated),
    }
    for what, sql in writes.items():
        before = cur.execute("SELECT (SELECT count(*) FROM decisions), (SELECT count(*) FROM ratings)").fetchone()
        with pytest.raises(duckdb.ConstraintException, match=r"(?i)duplicate key"):

            def work(c, sql=sql) -> None:  # type: ignore[no-untyped-def]
                for statement in sql.split("; "):
                    c.execute(statement)

            database.write(cur, work)
        after = cur.execute("SELECT (SELECT count(*) FROM decisions), (SELECT count(*) FROM ratings)").fetchone()
        assert after == before, what


def test_refused_revisions_and_evidence_for_another_are_audited(cur, framework, meeting):
    """Every refusal leaves a trace for whoever reviews access: a revision by a non-member, evidence for another."""
    decision_id = _signed_decision(cur, framework, meeting)

    def refusals() -> list[tuple]:
        return cur.execute(
            "SELECT actor, target FROM audit_log WHERE action = 'permission denied' ORDER BY seq"
        ).fetchall()

    before = refusals()
    with pytest.raises(PermissionDenied):
        review_actions.revise_decision(cur, framework, viewer(cur, "A002"), decision_id, "on-track", "Because.")
    with pytest.raises(PermissionDenied):
        actions.record_evidence(
            cur, framework, viewer(cur, "A001"), "L002", "reflection", "Not mine", ["teach-methods"]
        )
    new = refusals()[len(before) :]
    assert new == [("A002", f"revising decision {decision_id}"), ("A001", "adding evidence for learner L002")]
