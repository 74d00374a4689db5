"""A save draws again only the cached figures it changed (tracker/web/caching.py): one learner's rating leaves the other
learners' pages, the other cohorts' figures and the review meetings cached, and every figure it did change shows
the saved rating at once. Against a real database, through the app's own cached functions."""

import gc
import sys
import threading
import tomllib
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from data_models import Framework
from tests.conftest import ROOT, viewer
from tracker.access import policy
from tracker.core.errors import PermissionDenied
from tracker.records import actions
from tracker.review import agendas
from tracker.views import progress
from tracker.web import caching, reads, warming


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], Any]], bool]:
    """Whether a call of the app's cached functions ran a query (True) or was answered from the cache (False)."""
    runs: list[str] = []
    real_cursor, real_progress = caching.cursor, progress.learner_progress

    def cursor() -> Any:
        runs.append("query")
        return real_cursor()

    def learner_progress(*args: Any, **kwargs: Any) -> Any:
        runs.append("progress")
        return real_progress(*args, **kwargs)

    monkeypatch.setattr(caching, "cursor", cursor)
    monkeypatch.setattr(progress, "learner_progress", learner_progress)

    def ran(call: Callable[[], Any]) -> bool:
        runs.clear()
        call()
        return bool(runs)

    return ran


def pick(cur: Any) -> tuple[str, str, str, str, str]:
    """Two active learners of different cohorts; the first one's advisor."""
    (first, cohort, advisor), (second, other) = (
        cur.execute(
            "SELECT id, cohort, advisor_id FROM learners WHERE status = 'active' AND advisor_id IS NOT NULL "
            "ORDER BY id LIMIT 1"
        ).fetchone(),
        cur.execute(
            "SELECT id, cohort FROM learners WHERE status = 'active' AND cohort <> (SELECT cohort FROM learners "
            "WHERE status = 'active' AND advisor_id IS NOT NULL ORDER BY id LIMIT 1) ORDER BY id LIMIT 1"
        ).fetchone(),
    )
    return first, cohort, advisor, second, other


def test_one_learner_s_rating_draws_again_only_what_it_changed(db_path, framework: Framework, drawn, monkeypatch):
    # the priors are learned at the first call and not again within web.PRIORS_SECONDS (however long this process
    # has run before), so that a save draws again only what it changed
    monkeypatch.setattr(caching, "_priors_learned", {"records": -1, "at": -caching.PRIORS_SECONDS})
    cur = caching.cursor()
    rated, cohort, advisor_id, untouched, other_cohort = pick(cur)
    committee = viewer(cur, "C001")
    advisor = viewer(cur, advisor_id)
    figures: dict[str, Callable[[], Any]] = {
        "rated learner's page": lambda: reads.learner_progress(committee, rated),
        "other learner's page": lambda: reads.learner_progress(committee, untouched),
        "rated learner's cohort": lambda: reads.competency_standing(committee, cohort=cohort),
        "other cohort": lambda: reads.competency_standing(committee, cohort=other_cohort),
        "whole program": lambda: reads.competency_standing(committee),
        "other learner's evidence": lambda: reads.evidence_items(committee, untouched),
        "other learner's ratings": lambda: reads.rating_history(committee, untouched),
        "review meetings": lambda: reads.review_meetings(committee),
    }
    for figure in figures.values():
        assert drawn(figure)  # the first call runs its query
        assert not drawn(figure)  # the second is answered from the cache

    competency = next(iter(framework.competencies))
    term = actions.current_term(cur, framework, rated)
    before = reads.learner_progress(committee, rated).standing.set_index("competency_id").at[competency, "level"]
    level = 1.0 if before != 1.0 else 2.0
    actions.record_rating(cur, framework, advisor, rated, competency, level, term, "A fresh look")
    caching.saved(*caching.learner_records(rated))

    again = {name: drawn(figure) for name, figure in figures.items()}
    assert again == {
        "rated learner's page": True,
        "other learner's page": False,
        "rated learner's cohort": True,
        "other cohort": False,
        "whole program": True,
        "other learner's evidence": False,
        "other learner's ratings": False,
        "review meetings": False,
    }
    # what was drawn again shows the saved rating (the newest rating of the competency counts)
    page = reads.learner_progress(committee, rated).standing.set_index("competency_id")
    assert page.at[competency, "level"] == level
    cohort_rows = reads.competency_standing(committee, cohort=cohort)
    mine = cohort_rows[(cohort_rows["learner_id"] == rated) & (cohort_rows["competency_id"] == competency)]
    assert mine["level"].tolist() == [level]

    caching.saved()  # a write that names nothing: every figure is drawn again
    assert all(drawn(figure) for figure in figures.values())


def test_review_and_account_changes_leave_the_records_cached(db_path, drawn):
    cur = caching.cursor()
    committee = viewer(cur, "C001")
    standing = lambda: reads.competency_standing(committee)  # noqa: E731
    meetings = lambda: reads.review_meetings(committee)  # noqa: E731
    assert drawn(standing) and drawn(meetings)
    caching.saved(caching.ACCOUNTS)
    assert not drawn(standing) and not drawn(meetings)
    caching.saved(caching.REVIEW)
    assert not drawn(standing) and drawn(meetings)
    caching.saved_everything()
    assert drawn(standing) and drawn(meetings)


def test_the_committee_home_agenda_follows_ratings_late_and_reviews_at_once(
    db_path, framework: Framework, drawn, monkeypatch
):
    """The whole program's brief agenda on the committee's home is drawn from every learner's records: a rating
    leaves it cached (for at most web.PRIORS_SECONDS), while the meeting page's agenda is drawn again; a review
    change or an import draws both again."""
    monkeypatch.setattr(caching, "_priors_learned", {"records": -1, "at": -caching.PRIORS_SECONDS})
    cur = caching.cursor()
    rated, _, advisor_id, _, _ = pick(cur)
    committee = viewer(cur, "C001")
    home = lambda: reads.proposed_agenda(committee, None, brief=True)  # noqa: E731
    meeting = lambda: reads.proposed_agenda(committee, None)  # noqa: E731
    assert drawn(home) and drawn(meeting)
    assert not drawn(home) and not drawn(meeting)

    competency = next(iter(framework.competencies))
    term = actions.current_term(cur, framework, rated)
    actions.record_rating(cur, framework, viewer(cur, advisor_id), rated, competency, 1.0, term, "Seen again")
    caching.saved(*caching.learner_records(rated))
    assert not drawn(home) and drawn(meeting)

    monkeypatch.setattr(
        caching, "_priors_learned", {"records": caching._priors_learned["records"], "at": -caching.PRIORS_SECONDS}
    )
    assert drawn(home)  # once the interval has passed, the rating reaches it
    caching.saved(caching.REVIEW)
    assert drawn(home) and drawn(meeting)
    caching.saved_everything()
    assert drawn(home) and drawn(meeting)


def test_the_committee_home_agenda_is_drawn_once_for_every_viewer_of_the_program(db_path, framework, drawn):
    """Every committee member and coordinator sees the whole program: one drawing of the home's agenda serves them
    all, with the same rows as the agenda drawn for each; anyone else is refused, cached or not."""
    cur = caching.cursor()
    staff = [viewer(cur, p) for (p,) in cur.execute("SELECT id FROM staff ORDER BY id").fetchall()]
    organisers = [v for v in staff if policy.may_organise_meetings(v)]
    advisor = next(v for v in staff if not policy.may_organise_meetings(v))
    assert len(organisers) >= 2
    first = policy.program_viewer(cur)
    assert first is not None and first in organisers
    assert drawn(lambda: reads.proposed_agenda(first, None, brief=True))
    for other in organisers:
        assert not drawn(lambda other=other: reads.proposed_agenda(other, None, brief=True)), other.person_id
        expected = agendas.proposed_agenda(cur, other, framework, reads.priors(), None, brief=True)
        pd.testing.assert_frame_equal(reads.proposed_agenda(other, None, brief=True), expected)
    with pytest.raises(PermissionDenied):
        reads.proposed_agenda(advisor, None, brief=True)
    with pytest.raises(PermissionDenied):
        reads.proposed_agenda(viewer(cur, "L001"), None, brief=True)


def test_the_server_draws_the_committee_home_agenda_ahead_and_after_an_import(db_path, drawn, monkeypatch):
    """keep_warm (the server's thread) draws the whole program's agenda as it starts and again after an import,
    before any committee member asks for it."""
    passes = threading.Semaphore(0)

    class Wanted(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            passes.release()  # a pass is done
            return super().wait(timeout)

    monkeypatch.setattr(caching, "warm_wanted", Wanted())
    stop = threading.Event()
    warm = threading.Thread(target=warming.keep_warm, args=(stop,), daemon=True)
    warm.start()
    try:
        committee = viewer(caching.cursor(), "C001")
        assert passes.acquire(timeout=120)
        assert not drawn(lambda: reads.proposed_agenda(committee, None, brief=True))
        caching.saved_everything()  # an import
        assert passes.acquire(timeout=120)
        assert not drawn(lambda: reads.proposed_agenda(committee, None, brief=True))
        caching.saved(caching.ACCOUNTS)  # changes nothing the agenda is drawn from: no pass
        assert not passes.acquire(timeout=0.5)
    finally:
        stop.set()
        caching.warm_wanted.set()
        warm.join(timeout=60)
    assert not warm.is_alive()


def test_no_page_run_walks_every_object_the_server_loaded_and_saves_get_python_s_lock_back_soon(db_path):
    """Streamlit's full garbage collection after every script run is off, and the server's start sets what it loaded
    aside from the collector: one such collection took 0.1-0.2 s holding Python's lock, most of the app's processor
    time in the load test (bench/README.md). The server also has threads hand Python's lock on every millisecond
    rather than every five, so that a save waiting for it between its database calls is not held up by pages."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["postScriptGC"] is False
    gc.unfreeze()
    interval = sys.getswitchinterval()
    try:
        warming.warm_up()
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() <= 0.001
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
