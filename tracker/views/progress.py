"""One learner's progress, read at once for one viewer: what the progress page and the review meeting's packet show
(standing, forecast, coverage of the assessment plan, goals, decisions, and the data of every chart), behind one
access check."""

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from data_models import Framework
from tracker.access.policy import Viewer, require_learner
from tracker.analysis import coverage, forecast, queries
from tracker.analysis.forecast import Priors
from tracker.plans import plan_queries
from tracker.reports import charts
from tracker.review import review_queries
from tracker.storage.database import Cursor, Database


@dataclass(frozen=True)
class LearnerProgress:
    """Everything a learner's progress page shows, read for one viewer, with what its tables and charts need."""

    standing: pd.DataFrame  # per competency: level, expected, standing, self-rating, evidence (competency_standing)
    forecast: pd.DataFrame  # per competency: the straight-line forecast at graduation (growth_forecast)
    trajectory: pd.DataFrame
    history: pd.DataFrame  # every rating, newest first
    evidence: pd.DataFrame  # the evidence items, their type and competencies in words
    calibration: pd.DataFrame  # self − advisor gap per term
    outlook: pd.DataFrame  # the learned forecast of the learner's mean level and each domain (empty without history)
    coverage: pd.DataFrame  # the assessment plan this term, per competency (empty without a plan)
    goals: pd.DataFrame  # the current goals of the learner's plans, with their status today
    decisions: pd.DataFrame  # the committee's signed decisions, newest first
    domains: pd.DataFrame  # per domain: the mean level against the mean expected level (bars and radar)
    table: pd.DataFrame  # the competency table: each standing with its forecast and its coverage of the plan
    overall: dict | None  # the learned chance of reaching the graduation level over all competencies
    calibration_summary: pd.Series | None  # the latest self − advisor gap and its trend

    @property
    def learner(self) -> pd.Series:
        """Who the learner is: id, name, cohort, status and the term assessed up to."""
        return self.standing.iloc[0]

    @property
    def rated(self) -> bool:
        """Whether any advisor or committee rating is on record."""
        return bool(self.standing["level"].notna().any())


def _overall(outlook: pd.DataFrame, framework: Framework) -> dict | None:
    """The learned outlook over all competencies, with `as_rated`: the level as rated beside the level net of the
    raters' strictness, in words."""
    found = forecast.unit_outlook(outlook, framework, forecast.LEARNER)
    if found is None:
        return None
    return found | {"as_rated": forecast.as_rated(found["last_level"], found["rated_level"])}


def _named_evidence(evidence: pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """The evidence items with their type and competencies in words under the accepted framework."""
    types = {e.id: e.label for e in framework.evidence_types}
    return evidence.assign(
        type=evidence["type"].map(lambda t: types.get(t, t)),
        competency_ids=queries.evidence_competency_names(evidence, framework),
    )


CALIBRATED_WITHIN = queries.CALIBRATED_WITHIN  # a mean self − advisor gap this close counts as calibrated
_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="learner-reads")


def learner_progress(
    db: Database, viewer: Viewer, learner_id: str, priors: Priors, framework: Framework, today: dt.date | None = None
) -> LearnerProgress:
    """The page's reads, checked once against what the viewer may see, then run side by side, each on its reading
    thread's own cursor. Each read is small and mostly the fixed cost of planning a query, so running them together
    roughly halves the page's wait."""
    require_learner(db.cursor(), viewer, learner_id)
    today = today or dt.date.today()
    reads: dict[str, Callable[[Cursor], pd.DataFrame]] = {
        "standing": lambda cur: queries.competency_standing(cur, viewer, learner_id=learner_id),
        "forecast": lambda cur: queries.growth_forecast(cur, viewer, priors, framework, learner_id=learner_id),
        "trajectory": lambda cur: queries.trajectory(cur, viewer, learner_id),
        "history": lambda cur: queries.rating_history(cur, viewer, learner_id),
        "evidence": lambda cur: queries.evidence_items(cur, viewer, learner_id),
        "calibration": lambda cur: queries.calibration(cur, viewer, learner_id=learner_id),
        "outlook": lambda cur: queries.learned_outlook(cur, viewer, priors, framework, learner_id),
        "coverage": lambda cur: coverage.plan_coverage(cur, viewer, framework, learner_id, today),
        "goals": lambda cur: plan_queries.learner_goals(cur, viewer, framework, learner_id=learner_id, today=today),
        "decisions": lambda cur: review_queries.learner_decisions(cur, viewer, learner_id=learner_id),
    }

    def on_own_cursor(read: Callable[[Cursor], pd.DataFrame]) -> pd.DataFrame:
        return read(db.cursor())  # called on a reading thread: that thread's cursor

    running = {name: _READERS.submit(on_own_cursor, read) for name, read in reads.items()}
    read = {name: future.result() for name, future in running.items()}
    return LearnerProgress(
        **read | {"evidence": _named_evidence(read["evidence"], framework)},
        domains=queries.domain_standing(read["standing"]),
        table=coverage.with_coverage(forecast.with_forecast(read["standing"], read["forecast"]), read["coverage"]),
        overall=_overall(read["outlook"], framework),
        calibration_summary=None
        if read["calibration"].empty
        else queries.calibration_summary(read["calibration"]).iloc[0],
    )


@dataclass(frozen=True)
class TrajectoryLine:
    """One line of the trajectory chart (a domain's or a competency's), with its forecast and the goals on it."""

    title: str
    line: pd.DataFrame
    band: pd.DataFrame | None  # the forecast's 80% band from the last assessed term to graduation
    goal_marks: pd.DataFrame
    outlook: dict | None
    learned: bool  # the forecast is learned from the graduated cohorts (else a straight line)
    goals_elsewhere: list[str]  # for a domain: the competencies of it whose goals show on their own line


def trajectory_line(view: LearnerProgress, framework: Framework, kind: str, item: str) -> TrajectoryLine:
    """The trajectory of a domain (`kind` "domain") or a competency, as the chart and its caption show it."""
    domain = kind == "domain"
    line = (
        queries.trajectory_of(view.trajectory, domain_id=item)
        if domain
        else queries.trajectory_of(view.trajectory, competency_id=item)
    )
    learned = forecast.unit_outlook(view.outlook, framework, item) if domain else None
    outlook = learned or forecast.line_outlook(
        view.forecast, framework, domain_id=item if domain else None, competency_id=None if domain else item
    )
    band = None
    if outlook is not None:
        band = charts.outlook_frame(
            outlook["last_term"], outlook["last_level"], outlook["final_term"], outlook["forecast"], outlook["sd"]
        )
    goals = view.goals
    shown = goals[goals["competency_id"] == item] if not domain else goals.head(0)
    elsewhere = (
        goals.loc[goals["domain_id"] == item, "competency_name"].drop_duplicates().tolist()
        if domain and not goals.empty
        else []
    )
    return TrajectoryLine(
        title=framework.domain(item).name if domain else framework.competencies[item].name,
        line=line,
        band=band,
        goal_marks=charts.goal_marks(shown),
        outlook=outlook,
        learned=bool(learned),
        goals_elsewhere=elsewhere,
    )
