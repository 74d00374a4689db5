"""One view per page: a learner's progress is read in one call below the pages (tracker/views/progress.py), behind
one access check, and the progress page and the review meeting's packet show that same view."""

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from tests.conftest import app_as, goto, viewer
from tracker.core.errors import PermissionDenied
from tracker.review import review_actions
from tracker.views import progress
from tracker.web import reads


def test_a_learner_s_view_of_another_learner_is_refused_and_recorded(db_path, cur) -> None:
    learner = viewer(cur, "L001")
    before = cur.execute("SELECT count(*) FROM audit_log WHERE action = 'permission denied'").fetchone()[0]
    with pytest.raises(PermissionDenied):
        reads.learner_progress(learner, "L002")
    after = cur.execute("SELECT count(*) FROM audit_log WHERE action = 'permission denied'").fetchone()[0]
    assert after == before + 1


def test_the_view_holds_the_learner_s_records_as_the_tables_hold_them(db_path, cur, framework) -> None:
    # a learner with a signed decision and goals in the sample program
    learner_id = cur.execute(
        "SELECT learner_id FROM decisions WHERE learner_id IN (SELECT learner_id FROM goals) ORDER BY learner_id"
    ).fetchone()[0]
    committee = viewer(cur, "C001")
    view = reads.learner_progress(committee, learner_id)
    count = lambda sql: cur.execute(sql, [learner_id]).fetchone()[0]  # noqa: E731
    assert view.learner.learner_id == learner_id
    assert len(view.history) == count("SELECT count(*) FROM ratings WHERE learner_id = ?")
    assert len(view.evidence) == count("SELECT count(*) FROM evidence WHERE learner_id = ?")
    assert sorted(view.decisions["id"]) == sorted(
        r[0] for r in cur.execute("SELECT id FROM decisions WHERE learner_id = ?", [learner_id]).fetchall()
    )
    assert set(view.goals["goal_id"]) <= {
        r[0] for r in cur.execute("SELECT id FROM goals WHERE learner_id = ?", [learner_id]).fetchall()
    }
    assert not view.goals.empty
    # every competency of the framework has a row, and the domains are the means of their competencies' rows
    assert sorted(view.table["competency_id"]) == sorted(framework.competencies)
    means = view.standing.groupby("domain_id")["level"].mean()
    domains = view.domains.set_index("domain_id")
    for domain_id, level in means.dropna().items():
        assert domains.at[domain_id, "level"] == pytest.approx(level)
    # the latest live advisor or committee rating of a competency is its level
    latest = cur.execute(
        """SELECT competency_id, CAST(level AS DOUBLE) FROM ratings r
           WHERE learner_id = ? AND rater_role IN ('advisor', 'committee')
             AND id NOT IN (SELECT corrects FROM ratings WHERE corrects IS NOT NULL)
           QUALIFY row_number() OVER (PARTITION BY competency_id ORDER BY term_index DESC, rated_on DESC, seq DESC) = 1""",
        [learner_id],
    ).fetchall()
    table = view.standing.set_index("competency_id")
    for competency_id, level in latest:
        if competency_id in table.index:
            assert table.at[competency_id, "level"] == pytest.approx(level), competency_id


def _open_meeting(cur, learner_id: str) -> str:
    """An open review meeting chaired by C001, with the learner on its agenda."""
    return review_actions.create_meeting(
        cur,
        viewer(cur, "C001"),
        "Progress committee",
        dt.date.today(),
        "This term",
        "C001",
        ["C002"],
        pd.DataFrame({"learner_id": [learner_id], "reasons": ["asked for"]}),
    )


def test_the_progress_page_and_the_meeting_packet_show_one_view(db_path, cur, monkeypatch) -> None:
    learner_id = "L004"
    meeting = _open_meeting(cur, learner_id)
    asked: list[tuple[Any, ...]] = []
    real = progress.learner_progress

    def learner_progress(*args: Any, **kwargs: Any) -> progress.LearnerProgress:
        asked.append(args[1:3])
        return real(*args, **kwargs)

    monkeypatch.setattr(progress, "learner_progress", learner_progress)
    at = app_as("c001", {"learner": learner_id})
    goto(at, "progress")
    assert [a[1] for a in asked] == [learner_id]
    page_table = next(d.value for d in at.dataframe if "competency_name" in d.value.columns)
    at.query_params["meeting"] = meeting
    goto(at, "review")
    assert at.expander[0].label == "The learner's packet"
    packet_table = next(d.value for d in at.dataframe if "standing" in d.value.columns)
    # the packet is the same view, answered from the one cached read: nothing was read again
    assert [a[1] for a in asked] == [learner_id]
    pd.testing.assert_frame_equal(packet_table.reset_index(drop=True), page_table.reset_index(drop=True))
