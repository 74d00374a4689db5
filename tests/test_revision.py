"""Framework revisions: a new version never loses or hides a rating, and nothing changes until it is accepted.

Each revision is applied to the sample program; the standings, the forecast's inputs and the learner report under
the new version are compared with the same figures computed here, in pandas, from the raw ratings and the
crosswalk.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from data_models import Framework
from tests.conftest import FRAMEWORK_YAML, app_as, goto, read, viewer
from tests.reference import classify
from tests.test_reports import text_of
from tracker.analysis import coverage, queries
from tracker.cli import main
from tracker.core.config import settings
from tracker.core.errors import TrackerError
from tracker.framework.loading import parse_framework
from tracker.plans import plan_actions, plan_queries
from tracker.records import revision
from tracker.records.setup import open_configured
from tracker.reports import packets
from tracker.storage import framework_tables

LEVELS = [{"level": i, "descriptor": f"descriptor {i}"} for i in range(1, 6)]


def _base() -> dict:
    data = yaml.safe_load(FRAMEWORK_YAML.read_text(encoding="utf-8"))
    data["version"] = "2026.2"
    return data


def _domain(data: dict, domain_id: str) -> list[dict]:
    return next(d for d in data["domains"] if d["id"] == domain_id)["competencies"]


def _replace(data: dict, domain_id: str, old: list[str], new: list[dict]) -> None:
    comps = _domain(data, domain_id)
    at = min(i for i, c in enumerate(comps) if c["id"] in old)
    comps[:] = [c for c in comps[:at] if c["id"] not in old] + new + [c for c in comps[at:] if c["id"] not in old]


def revised(change: str) -> tuple[str, dict[str, list[str]], dict[int, int]]:
    """A revision of the sample framework: its YAML, where old competencies went, and how old levels map."""
    data = _base()
    heirs: dict[str, list[str]] = {}
    levels: dict[int, int] = {}
    if change == "rename":
        _replace(
            data,
            "curriculum",
            ["curr-design"],
            [{"id": "curr-course-design", "name": "Curriculum design", "levels": LEVELS}],
        )
        heirs = {"curr-design": ["curr-course-design"]}
    elif change == "merge":
        _replace(
            data,
            "curriculum",
            ["curr-needs", "curr-objectives"],
            [{"id": "curr-planning", "name": "Needs and objectives", "levels": LEVELS}],
        )
        heirs = {"curr-needs": ["curr-planning"], "curr-objectives": ["curr-planning"]}
    elif change == "split":
        _replace(
            data,
            "research",
            ["res-analysis"],
            [
                {"id": "res-quant", "name": "Quantitative analysis", "levels": LEVELS},
                {"id": "res-qual", "name": "Qualitative analysis", "levels": LEVELS},
            ],
        )
        heirs = {"res-analysis": ["res-quant", "res-qual"]}
    elif change == "retire":
        _replace(data, "teaching", ["teach-feedback"], [])
        heirs = {"teach-feedback": []}
    elif change == "add":
        _domain(data, "teaching").append({"id": "teach-online", "name": "Online teaching", "levels": LEVELS})
    elif change == "scale":  # five levels to four: 4 and 5 become 3 and 4
        data["scale"] = data["scale"][:4]
        for d in data["domains"]:
            for c in d["competencies"]:
                c["levels"] = c["levels"][:4]
                c.pop("expected", None)
        data["calendar"]["expected"] = {"T1": 1, "T2": 1.5, "T3": 2, "T4": 2.5, "T5": 3, "T6": 3.5}
        data["calendar"]["graduation_level"] = 3.5
        levels = {4: 3, 5: 4}
    elif change == "term":  # a term in the middle: every later term moves one place
        data["calendar"]["terms"].insert(2, {"id": "T2S", "label": "Year 1 · Summer"})
        data["calendar"]["expected"]["T2S"] = 2
    elif change == "targets":
        data["calendar"]["expected"].update({"T4": 3.5, "T5": 4})
        _domain(data, "research")[0]["expected"] = {"T6": 4.5}
    else:
        raise AssertionError(change)
    if heirs or levels:
        data["crosswalk"] = {"from_version": "2026.1", "competencies": heirs, "levels": levels}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), heirs, levels


# ---- the independent computation ----------------------------------------------------------------------
def _map_level(level: float, levels: dict[int, int]) -> float:
    low, high = math.floor(level), math.ceil(level)
    return (levels.get(low, low) + levels.get(high, high)) / 2


def term_levels_by_hand(cur, fw: Framework, heirs: dict, levels: dict) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """Per learner, competency of `fw`, term and kind of rater: the latest live rating's level, mapped."""
    ratings = cur.execute("SELECT * FROM ratings").df()
    live = ratings[~ratings["id"].isin(set(ratings["corrects"].dropna()))].copy()
    live["competency"] = live["competency_id"].map(lambda c: heirs.get(c, [c]))
    live = live.explode("competency").dropna(subset=["competency"])
    live = live[live["competency"].isin(list(fw.competencies))]
    live["mapped"] = live["level"].astype(float).map(lambda x: _map_level(x, levels))
    live["t"] = live["term"].map(fw.term_index)
    live["is_self"] = live["rater_role"] == "self"
    live = live.sort_values(["rated_on", "seq"])
    return live.groupby(["learner_id", "competency", "t", "is_self"], as_index=False).tail(1)


def standing_by_hand(cur, fw: Framework, heirs: dict, levels: dict) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    per_term = term_levels_by_hand(cur, fw, heirs, levels)
    assessed = per_term[~per_term["is_self"]].sort_values("t")
    latest = assessed.groupby(["learner_id", "competency"]).tail(1).set_index(["learner_id", "competency"])
    current = assessed.groupby("learner_id")["t"].max()
    rows = []
    for learner in cur.execute("SELECT id, status FROM learners").df().itertuples():
        term = fw.term_ids[int(current.get(learner.id, 1)) - 1]
        for cid in fw.competencies:
            key = (learner.id, cid)
            level = float(latest.loc[key, "mapped"]) if key in latest.index else None
            expected = fw.expected_level(cid, term)
            standing = learner.status if learner.status != "active" else classify(level, expected)
            rows.append((learner.id, cid, level, expected, standing))
    return pd.DataFrame(rows, columns=["learner_id", "competency_id", "level", "expected", "standing"])


def fit_by_hand(cur, fw: Framework, heirs: dict, levels: dict) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    per_term = term_levels_by_hand(cur, fw, heirs, levels)
    rows = []
    for (learner, cid), g in per_term[~per_term["is_self"]].groupby(["learner_id", "competency"]):
        t, y = g["t"].astype(float).to_numpy(), g["mapped"].to_numpy()
        rows.append(
            (
                learner,
                cid,
                len(g),
                t.mean(),
                y.mean(),
                ((t - t.mean()) ** 2).sum(),
                ((t - t.mean()) * (y - y.mean())).sum(),
            )
        )
    return pd.DataFrame(rows, columns=["learner_id", "competency_id", "n", "t_mean", "y_mean", "sxx", "sxy"])


CHANGES = ["rename", "merge", "split", "retire", "add", "scale", "term", "targets"]
# In server mode one kind of change is enough: the upgrade's write and the reads through the copy are the same for
# every kind; what differs between kinds is the crosswalk, which the embedded mode checks for each.
IN_BOTH_MODES = "merge"
CHANGE_PARAMS = [pytest.param(c, marks=() if c == IN_BOTH_MODES else pytest.mark.one_mode) for c in CHANGES]


@pytest.mark.parametrize("change", CHANGE_PARAMS)
def test_standings_forecast_and_report_after_an_upgrade_follow_the_raw_ratings_and_the_crosswalk(cur, change):
    text, heirs, levels = revised(change)
    before = cur.execute("SELECT * FROM ratings ORDER BY id").df()
    revision.upgrade(cur, parse_framework(text), text, "test")
    fw = framework_tables.accepted(cur)
    assert fw is not None and fw.version == "2026.2"
    pd.testing.assert_frame_equal(cur.execute("SELECT * FROM ratings ORDER BY id").df(), before)  # never rewritten

    committee = viewer(cur, "C001")
    got = queries.competency_standing(cur, committee)
    want = standing_by_hand(cur, fw, heirs, levels)
    both = got.merge(want, on=["learner_id", "competency_id"], suffixes=("", "_want"), validate="one_to_one")
    assert len(both) == len(want) == len(got) and set(got["competency_id"]) == set(fw.competencies)
    assert np.allclose(both["level"], both["level_want"].astype(float), equal_nan=True)
    assert (both["expected"] == both["expected_want"]).all()
    assert (both["standing"] == both["standing_want"]).all()
    behind = queries.learners_behind(cur, committee)
    assert set(behind["learner_id"]) == set(want.loc[want["standing"] == "behind", "learner_id"])

    fit = queries.growth_fit(cur, committee)
    fit_want = fit_by_hand(cur, fw, heirs, levels)
    joined = fit.merge(fit_want, on=["learner_id", "competency_id"], suffixes=("", "_want"), validate="one_to_one")
    assert len(joined) == len(fit) == len(fit_want)
    for column in ("n", "t_mean", "y_mean", "sxx", "sxy"):
        assert np.allclose(joined[column], joined[f"{column}_want"]), column
    assert set(fit["competency_id"]) <= set(fw.competencies)

    priors = queries.program_priors(cur)
    risk = queries.graduation_risk(cur, committee, priors, fw)
    assert not risk.empty
    report = text_of(packets.learner_report(cur, committee, fw, "L001", priors)).replace("\n", " ")
    mine = got[got["learner_id"] == "L001"].set_index("competency_id")
    for cid in heirs.get(next(iter(heirs), ""), []) or list(fw.competencies)[:1]:
        name = fw.competencies[cid].name
        assert f"{name} {mine.loc[cid, 'level']:.1f}" in report, name
    if change == "retire":
        assert "retired (framework 2026.1)" in report


def test_a_carried_level_names_the_version_and_competency_it_came_from(cur):
    text, _, _ = revised("rename")
    revision.upgrade(cur, parse_framework(text), text, "test")
    rows = queries.competency_standing(cur, viewer(cur, "C001"), learner_id="L001").set_index("competency_id")
    assert rows.loc["curr-course-design", "carried_from"] == "from 2026.1: Course design"
    assert rows.loc["teach-methods", "carried_from"] == "from 2026.1: Instructional methods for diverse learners"
    history = queries.rating_history(cur, viewer(cur, "C001"), "L001", "curr-course-design")
    assert len(history) > 0 and set(history["competency_name"]) == {"Course design"}  # its original name
    assert set(history["framework_version"]) == {"2026.1"} and not history["retired"].any()


def test_retired_competencies_stay_in_the_history_marked_retired(cur):
    text, _, _ = revised("retire")
    revision.upgrade(cur, parse_framework(text), text, "test")
    history = queries.rating_history(cur, viewer(cur, "C001"), "L001")
    raw = cur.execute("SELECT count(*) FROM ratings WHERE learner_id = 'L001'").fetchone()[0]
    assert len(history) == raw  # every rating, the retired competency's too
    retired = history[history["competency_id"] == "teach-feedback"]
    assert len(retired) > 0 and retired["retired"].all()
    assert set(retired["competency_name"]) == {"Feedback and reflective teaching"}
    assert not history.loc[history["competency_id"] != "teach-feedback", "retired"].any()


def test_an_upgrade_that_would_leave_ratings_homeless_names_each_and_changes_nothing(cur):
    data = _base()
    _replace(data, "teaching", ["teach-feedback"], [])  # removed, and no crosswalk says where it went
    text = yaml.safe_dump(data, sort_keys=False)
    with pytest.raises(revision.RevisionRefused) as refused:
        revision.upgrade(cur, parse_framework(text), text, "test")
    ids = cur.execute("SELECT id FROM ratings WHERE competency_id = 'teach-feedback'").df()["id"]
    message = str(refused.value)
    assert f"{len(ids)} rating(s) would be left without a home" in message
    assert all(f"rating {i} " in message for i in ids)
    assert framework_tables.accepted(cur).version == "2026.1"  # type: ignore[union-attr]
    assert cur.execute("SELECT count(*) FROM framework_versions").fetchone()[0] == 1


def test_an_edited_file_with_the_same_version_is_refused_with_a_clear_message(cur):
    text = FRAMEWORK_YAML.read_text(encoding="utf-8").replace("name: Course design", "name: Curriculum design")
    with pytest.raises(revision.RevisionRefused, match="change `version`"):
        revision.upgrade(cur, parse_framework(text), text, "test")
    assert framework_tables.accepted(cur).competencies["curr-design"].name == "Course design"  # type: ignore[union-attr]


def test_a_changed_file_is_not_taken_up_until_upgrade_runs(db_path, tmp_path, monkeypatch, capsys):
    text, _, _ = revised("retire")
    new = tmp_path / "competencies.yaml"
    new.write_text(text, encoding="utf-8")
    monkeypatch.setenv("TRACKER_FRAMEWORK", str(new))
    db, fw = open_configured(settings())
    cur = db.cursor()
    assert fw.version == "2026.1" and "teach-feedback" in fw.competencies
    standing = queries.competency_standing(cur, viewer(cur, "C001"))
    assert "teach-feedback" in set(standing["competency_id"])
    waiting = revision.pending(cur, new)
    assert waiting is not None and waiting.problem is None
    assert [(c.change, c.item) for c in waiting.revision.changes] == [("retired", "teach-feedback")]  # type: ignore[union-attr]
    audit_before = cur.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    db.close()

    assert main(["framework", "diff", str(new)]) == 0
    out = capsys.readouterr()
    assert "differs from the accepted framework 2026.1" in out.err
    db, _ = open_configured(settings())
    cur = db.cursor()
    n, k = cur.execute(
        "SELECT count(*), count(DISTINCT learner_id) FROM ratings WHERE competency_id = 'teach-feedback'"
    ).fetchone()
    assert (
        f"teach-feedback: Feedback and reflective teaching: stays in history, counts in no standing — {n} ratings of {k} learners"
        in out.out
    )
    assert cur.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audit_before  # a diff writes nothing
    db.close()

    assert main(["framework", "upgrade", str(new)]) == 0
    db, fw = open_configured(settings())
    cur = db.cursor()
    assert fw.version == "2026.2" and "teach-feedback" not in fw.competencies
    assert revision.pending(cur, new) is None
    audit = cur.execute("SELECT actor, action, target FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    assert audit == ("cli", "framework upgrade", "msc-meded")
    standing = queries.competency_standing(cur, viewer(cur, "C001"))
    assert "teach-feedback" not in set(standing["competency_id"])
    db.close()


def table_with(at, column: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The first table on the page with this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def static_table_with(at, column: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The first static table (st.table, its cells escaped) on the page with this column."""
    return next(t.value for t in at.table if column in map(read, t.value.columns))


def test_the_coordinator_sees_a_pending_change_and_others_see_the_accepted_version(db_path, tmp_path, monkeypatch):
    text, _, _ = revised("rename")
    new = tmp_path / "competencies.yaml"
    new.write_text(text, encoding="utf-8")
    monkeypatch.setenv("TRACKER_FRAMEWORK", str(new))
    at = app_as("k001")
    assert any("differs from the accepted version" in read(w.value) for w in at.warning)
    at = goto(at, "framework")
    assert any("differs from the accepted version 2026.1" in read(w.value) for w in at.warning)
    changes = table_with(at, "detail")
    row = changes[changes["item"] == "curr-design"].iloc[0]
    assert row["change"] == "renamed" and "Curriculum design" in row["detail"]
    assert any(f"framework upgrade {new}" in c.value for c in at.code)
    assert "Course design" in set(map(read, static_table_with(at, "T1")["Competency"]))

    learner = goto(app_as("l001"), "framework")
    assert not any("differs" in read(w.value) for w in learner.warning)
    assert "Course design" in set(map(read, static_table_with(learner, "T1")["Competency"]))


def test_the_framework_page_shows_each_versions_changes_and_progress_marks_carried_levels(db_path, cur):
    text, _, _ = revised("merge")
    revision.upgrade(cur, parse_framework(text), text, "test")
    at = goto(app_as("c001"), "framework")
    walk = table_with(at, "Was")
    merged = walk[walk["Change"] == "merged"]
    assert set(merged["Was"]) == {"Needs assessment (curr-needs)", "Learning objectives (curr-objectives)"}
    assert set(merged["Now"]) == {"Needs and objectives"}
    at = goto(app_as("l001"), "progress")
    table = table_with(at, "carried_from")
    carried = table.loc[table["competency_name"] == "Needs and objectives", "carried_from"].iloc[0]
    assert carried.startswith("from 2026.1: ") and carried[len("from 2026.1: ") :] in {
        "Needs assessment",
        "Learning objectives",
    }


def test_a_crosswalk_must_name_competencies_and_levels_of_its_own_version():
    data = _base()
    data["crosswalk"] = {"from_version": "2026.1", "competencies": {"old": ["nowhere"]}, "levels": {5: 9}, "extra": 1}
    with pytest.raises(Exception, match="unknown field"):
        parse_framework(yaml.safe_dump(data))
    del data["crosswalk"]["extra"]
    with pytest.raises(Exception) as problems:
        parse_framework(yaml.safe_dump(data))
    assert "'nowhere' is not a competency of this version" in str(problems.value)
    assert "level 9 is not on this version's scale" in str(problems.value)


def test_an_unchanged_file_opens_without_a_pending_change(db, cur):
    assert revision.pending(cur, Path(FRAMEWORK_YAML)) is None


def test_a_broken_framework_file_leaves_the_accepted_version_in_force(db_path, tmp_path, monkeypatch):
    broken = tmp_path / "competencies.yaml"
    broken.write_text(FRAMEWORK_YAML.read_text(encoding="utf-8").replace("graduation_level: 4", "graduation_level: 9"))
    monkeypatch.setenv("TRACKER_FRAMEWORK", str(broken))
    db, fw = open_configured(settings())
    assert fw.version == "2026.1"
    waiting = revision.pending(db.cursor(), broken)
    assert waiting is not None and waiting.revision is None
    assert "calendar.graduation_level: 9.0 leaves the scale 1–5" in (waiting.problem or "")
    db.close()
    at = goto(app_as("k001"), "framework")
    assert any("differs from the accepted version" in read(w.value) for w in at.warning)


# ---- goals and evidence name competencies without a version: they read through the crosswalk too -----------------
@pytest.mark.parametrize("change", CHANGE_PARAMS)
def test_evidence_counts_after_an_upgrade_follow_the_crosswalk(cur, change):
    text, heirs, _ = revised(change)
    revision.upgrade(cur, parse_framework(text), text, "test")
    fw = framework_tables.accepted(cur)
    assert fw is not None
    committee = viewer(cur, "C001")
    # an item added under the new version names the new version's ids and is not walked again
    newest = list(fw.competencies)[-1]
    cur.execute(
        "INSERT INTO evidence VALUES ('E-after', 'L001', 'reflection', 'After the upgrade', [?], '', '', "
        "DATE '2026-11-01', now()::TIMESTAMP + INTERVAL 1 SECOND)",
        [newest],
    )
    raw = cur.execute("SELECT id, learner_id, competency_ids FROM evidence").df()
    raw["competency"] = [
        [newest] if i == "E-after" else [h for c0 in ids for h in heirs.get(c0, [c0])]
        for i, ids in zip(raw["id"], raw["competency_ids"], strict=True)
    ]
    per = raw.explode("competency").dropna(subset=["competency"])
    per = per[per["competency"].isin(list(fw.competencies))]
    want = per.groupby(["learner_id", "competency"]).size()
    got = queries.competency_standing(cur, committee).set_index(["learner_id", "competency_id"])["evidence_count"]
    assert got.sum() == want.sum() and want.sum() > 0
    for key, n in want.items():
        assert got.loc[key] == n, key
    if change in ("rename", "merge", "split"):
        inherited = [h for hs in heirs.values() for h in hs]
        assert got.loc[(slice(None), inherited)].sum() > 0  # the old competencies' evidence now counts for heirs
    coverage_rows = coverage.plan_coverage(cur, committee, fw, "L001").set_index("competency_id")
    for cid in coverage_rows.index:
        assert coverage_rows.loc[cid, "evidence"] == want.get(("L001", cid), 0), cid


def _goal(cur, fw, competency_id: str, target: float):  # type: ignore[no-untyped-def]
    return plan_actions.write_goal(
        cur, fw, viewer(cur, "L001"), "L001", competency_id, target, "T6", f"Practise {competency_id}"
    )


@pytest.mark.parametrize("change", ["rename", "merge", "scale"])
def test_a_goal_follows_its_competency_and_scale_through_an_upgrade(cur, framework, change):
    written = {"rename": "curr-design", "merge": "curr-needs", "scale": "teach-methods"}[change]
    goal = _goal(cur, framework, written, 4.5)
    text, heirs, levels = revised(change)
    revision.upgrade(cur, parse_framework(text), text, "test")
    fw = framework_tables.accepted(cur)
    committee = viewer(cur, "C001")
    row = plan_queries.learner_goals(cur, committee, fw, "L001").set_index("goal_id").loc[goal.id]
    now_id = heirs.get(written, [written])[0]
    assert (row["competency_id"], row["written_competency_id"]) == (now_id, written)
    assert row["competency_name"] == fw.competencies[now_id].name and not row["unplaced"]
    assert row["target_level"] == _map_level(4.5, levels)
    want = standing_by_hand(cur, fw, heirs, levels).set_index(["learner_id", "competency_id"]).loc[("L001", now_id)]
    assert row["level"] == pytest.approx(float(want["level"]))
    # its learner changes it under the current framework: the next version names the heir
    changed = plan_actions.write_goal(
        cur, fw, viewer(cur, "L001"), "L001", now_id, fw.max_level, "T6", "More", goal_id=goal.id, read_version=1
    )
    assert (changed.version, changed.competency_id) == (2, now_id)


@pytest.mark.parametrize("change", ["split", "retire"])
def test_a_goal_whose_competency_is_divided_or_retired_stays_under_its_old_name_to_be_written_anew(
    cur, framework, change
):
    written = {"split": "res-analysis", "retire": "teach-feedback"}[change]
    goal = _goal(cur, framework, written, 4.0)
    text, _, _ = revised(change)
    revision.upgrade(cur, parse_framework(text), text, "test")
    fw = framework_tables.accepted(cur)
    row = plan_queries.learner_goals(cur, viewer(cur, "A001"), fw, "L001").set_index("goal_id").loc[goal.id]
    assert row["unplaced"] and row["competency_id"] == written and pd.isna(row["level"])
    assert row["competency_name"] == framework.competencies[written].name  # its name when it was written
    words = row["status_words"]
    assert f"of framework 2026.1; version {fw.version}" in words and "write a new goal" in words
    if change == "split":
        assert "divides it into Quantitative analysis and Qualitative analysis" in words
    else:
        assert "retires it" in words
    with pytest.raises(TrackerError, match="write a new goal for the current framework"):
        plan_actions.write_goal(
            cur, fw, viewer(cur, "L001"), "L001", written, 4.0, "T6", "Again", goal_id=goal.id, read_version=1
        )
    at = goto(app_as("l001"), "plan")
    assert not at.exception, [e.message for e in at.exception]
    assert words in " ".join(read(m.value) for m in at.markdown)
    assert not [e for e in at.expander if e.label == "Change this goal"]  # it is written anew, not changed


def test_an_evidence_item_names_the_competencies_it_counts_for_now_and_those_retired(cur):
    cur.execute(
        "INSERT INTO evidence VALUES ('E-both', 'L001', 'reflection', 'Both', ['curr-design', 'teach-feedback'], "
        "'', '', DATE '2026-10-01', TIMESTAMP '2026-10-01 10:00')"
    )
    for change in ("rename", "retire"):
        text, _, _ = revised(change)
        data = yaml.safe_load(text)
        if change == "retire":  # the second revision, of the first: both crosswalks apply in turn
            data["version"] = "2026.3"
            data["crosswalk"]["from_version"] = "2026.2"
            _replace(
                data,
                "curriculum",
                ["curr-design"],
                [{"id": "curr-course-design", "name": "Curriculum design", "levels": LEVELS}],
            )
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        revision.upgrade(cur, parse_framework(text), text, "test")
    fw = framework_tables.accepted(cur)
    assert fw is not None and fw.version == "2026.3"
    items = queries.evidence_items(cur, viewer(cur, "A001"), "L001").set_index("id")
    item = items.loc["E-both"]
    assert list(item["competency_ids"]) == ["curr-design", "teach-feedback"]  # as recorded
    assert list(item["counts_for"]) == ["curr-course-design"]
    names = dict(zip(items.index, queries.evidence_competency_names(items, fw), strict=True))
    assert names["E-both"] == "Curriculum design, Feedback and reflective teaching (retired)"
    at = goto(app_as("a001", {"learner": "L001"}), "progress")
    at.session_state["progress.records"] = next(t.label for t in at.tabs if t.label.startswith("Evidence"))
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    shown = next(d.value for d in at.dataframe if "title" in d.value.columns)
    assert shown.set_index("title").loc["Both", "competency_ids"] == names["E-both"]
