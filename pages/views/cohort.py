"""Cohort summary: distributions, the gap heatmap, who is behind and why, trajectories, drill-in, CSV."""

from typing import Any

import pandas as pd
import streamlit as st

from data_models import Framework, Role
from pages.views.widgets import chart, choose_learner, open_learner, plain, term_names
from tracker.access.policy import Viewer
from tracker.reports import charts
from tracker.views import summaries
from tracker.web import reads

ALL = "All"
HEATMAP_LEARNERS = 40  # rows of the heatmap: a screen's worth, furthest behind first
RISK_ROWS = 200  # rows of the forecast table at most


def render(viewer: Viewer) -> None:
    st.title("Cohort summary" if viewer.sees_program else "My advisees")
    fw = reads.framework()
    learners = reads.visible_learners(viewer)
    if learners.empty:
        st.info(
            "No learners yet. A coordinator imports learners on the Import records page or with `python -m tracker import learners`."
        )
        return
    c1, c2, c3 = st.columns(3)
    cohort = c1.selectbox("Cohort", [ALL, *sorted(learners["cohort"].unique())], key="cohort.cohort")
    term = c2.selectbox(
        "As of term",
        [ALL, *fw.term_ids],
        key="cohort.term",
        format_func=lambda t: "Latest ratings" if t == ALL else fw.term_name(t),
    )
    domain = c3.selectbox(
        "Domain", [ALL, *fw.domain_ids], key="cohort.domain", format_func=lambda d: d if d == ALL else fw.domain(d).name
    )
    picked: dict[str, Any] = {
        "cohort": None if cohort == ALL else cohort,
        "as_of": None if term == ALL else fw.term_index(term),
        "domain": None if domain == ALL else domain,
    }
    totals = reads.selection_totals(viewer, **picked)
    behind = reads.learners_behind(viewer, **picked)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Learners", totals["learners"], border=True)
    m2.metric("Behind the expected trajectory", totals["behind"], border=True)
    m3.metric("On leave", totals["on_leave"], border=True)
    median = totals["median_vs_expected"]
    m4.metric("Median level − expected", "—" if median is None else f"{median:+.1f}", border=True)
    if not totals["rated"]:
        st.info(
            "No advisor or committee ratings for this selection yet: a new cohort shows here once advisors rate it."
        )
        return

    _actions(viewer, learners, cohort, picked)
    chart(
        charts.level_distribution_chart,
        reads.level_distribution(viewer, **picked),
        fw.min_level,
        fw.max_level,
        key="cohort.distribution",
    )
    grid = reads.furthest_behind(viewer, **picked, limit=HEATMAP_LEARNERS)
    shown = grid["learner_id"].nunique()
    heatmap = st.expander(
        f"Gap heatmap: the {shown} learners furthest below the expected levels",
        icon=":material/grid_on:",
        key="cohort.heatmap_open",
        on_change="rerun",
    )
    with heatmap:  # drawn only when opened: a browser draws a folded chart all the same
        if heatmap.open:
            chart(charts.gap_heatmap, grid, key="cohort.heatmap")
        if shown < totals["learners"]:
            st.caption(
                f"The heatmap shows the {shown} learners furthest below the expected levels on average, of "
                f"{totals['learners']}; pick a cohort or a domain to narrow it, or download the view as CSV above."
            )

    st.subheader("Behind the expected trajectory")
    if behind.empty:
        st.success("No learner in this selection is a whole level or more below the expected level.")
    else:
        # a cell is one line: the three competencies furthest behind and how many more (every one is in the CSV)
        more = (behind["behind"] - summaries.WHY_FIRST).clip(lower=0)
        brief = behind.assign(why=behind["why_first"] + more.map(lambda n: f"; and {n} more" if n else ""))
        st.dataframe(
            term_names(brief, "current_term"),
            hide_index=True,
            key="cohort.behind",
            column_config={
                "learner_id": "Id",
                "learner_name": "Learner",
                "cohort": "Cohort",
                "current_term": "Term",
                "behind": "Competencies behind",
                "worst_gap": st.column_config.NumberColumn("Worst gap", format="%+.1f"),
                "why": st.column_config.TextColumn("Furthest behind", width="large"),
                "why_first": None,
            },
        )

    _plan_coverage(viewer, fw, picked["cohort"])
    if viewer.has(Role.coordinator):
        _completion(viewer)
    _graduation_risk(viewer, fw, picked["cohort"], picked["as_of"])
    _decisions(viewer, fw, picked["cohort"])
    _calibration(viewer, cohort)

    traj = reads.cohort_trajectory(viewer, cohort=None if cohort == ALL else cohort)
    if domain != ALL:
        traj = traj[traj["domain_id"] == domain]
    if not traj.empty:
        chart(charts.cohort_trajectory_chart, traj, fw.min_level, fw.max_level, key="cohort.trajectory")


def _actions(viewer: Viewer, learners: pd.DataFrame, cohort: str, picked: dict[str, Any]) -> None:
    """Open a learner and the downloads, right under the figures they act on."""
    opener, downloads = st.columns([3, 2], vertical_alignment="bottom")
    with opener:
        pick = choose_learner(
            learners if cohort == ALL else learners[learners["cohort"] == cohort], "cohort.open_learner"
        )
        if pick is not None and st.button("Open progress", key="cohort.open", type="primary"):
            open_learner(pick)
    with downloads:
        st.download_button(
            "Download this view as CSV",
            lambda: reads.download_csv(reads.competency_standing(viewer, **picked)),
            file_name="cohort-summary.csv",
            mime="text/csv",
            key="cohort.download",
            icon=":material/download:",
        )
        st.download_button(
            "Download the cohort report (PDF)",
            data=lambda: reads.cohort_report(viewer, picked["cohort"], picked["as_of"]),
            file_name="cohort-report.pdf",
            mime="application/pdf",
            key="cohort.report",
            icon=":material/picture_as_pdf:",
        )


def _plan_coverage(viewer: Viewer, fw: Framework, cohort: str | None) -> None:
    """Coverage of the assessment plan this term, per competency, for the learners of the cohort chosen."""
    if not fw.has_assessment_plan:
        return
    st.subheader("Assessment plan this term")
    plan = reads.cohort_coverage(viewer, cohort)
    if plan.empty:
        st.info("No active learners in this selection.")
        return
    st.dataframe(
        plan[["competency_name", "plan", "ratings", "raters_share", "evidence_share", "evidence_overdue", "thin"]],
        hide_index=True,
        key="cohort.plan",
        column_config={
            "competency_name": "Competency",
            "plan": st.column_config.TextColumn("The plan asks", width="medium"),
            "ratings": "Enough ratings this term",
            "raters_share": "Enough raters",
            "evidence_share": "Enough evidence",
            "evidence_overdue": "Evidence overdue",
            "thin": st.column_config.NumberColumn(
                "Standings on too few ratings", help="The level rests on fewer ratings than the plan asks"
            ),
        },
    )
    st.caption(
        "Active learners who meet each part of the plan in the term their cohort is in now (whatever the term "
        "chosen above), of all active learners of the selection."
    )


def _completion(viewer: Viewer) -> None:
    """Completion this term per advisor and per cohort, with downloads, for coordinators."""
    st.subheader("Completion this term")
    for by, label, columns in (
        ("advisor", "Per advisor", {"advisor_id": "Id", "advisor_name": "Advisor"}),
        ("cohort", "Per cohort", {"cohort": "Cohort", "term": "Term"}),
    ):
        done = reads.completion(viewer, by)
        st.markdown(f"**{label}**")
        st.dataframe(
            done,
            hide_index=True,
            key=f"cohort.completion.{by}",
            column_config=columns
            | {
                "learners": "Active learners",
                "rated_this_term": "Rated this term",
                "complete": "Complete under the plan",
                "share_complete": st.column_config.ProgressColumn(
                    "Share complete", format="percent", min_value=0.0, max_value=1.0
                ),
                "self_assessments_waiting": "Self-assessments waiting",
                "oldest_waiting_since": st.column_config.DateColumn("Oldest waiting since"),
            },
        )
        st.download_button(
            f"Download completion {label.lower()} as CSV",
            reads.download_csv(done),
            file_name=f"completion-per-{by}.csv",
            mime="text/csv",
            key=f"cohort.completion.{by}.download",
            icon=":material/download:",
        )


def _graduation_risk(viewer: Viewer, fw: Framework, cohort: str | None, as_of: int | None) -> None:
    target = fw.calendar.graduation_level
    st.subheader(f"Forecast: who may not reach level {target:g} by graduation")
    risk = reads.graduation_risk(viewer, cohort=cohort, as_of=as_of)
    history = reads.priors(as_of).history
    if history is None:
        st.info(
            "No graduated cohort yet: the forecast assumes each learner keeps growing in a straight line, at a pace "
            "between their own and the program's, and widens its uncertainty by "
            f"{summaries.SHAPE_SD:g} level for every term to come, since growth rarely runs straight. Once a "
            "cohort graduates, the forecast learns from its whole course how learners grow.",
            icon=":material/info:",
        )
    at_risk = int(risk["at_risk"].sum())
    shown = min(max(at_risk, 10), RISK_ROWS)
    basis = (
        "at their present pace"
        if history is None
        else f"judged by how the {history.learners} learners of the graduated cohorts grew from the same point"
    )
    st.caption(
        f"{at_risk} of {len(risk)} active learners have less than a {summaries.RISK_BELOW:.0%} chance of being rated "
        f"{target:g} or above at the end of the program, {basis}"
        + (f"; the {shown} least likely are listed" if shown < len(risk) and at_risk > shown else "")
        + ". The model: docs/measurement.md"
        + ("" if history is None or not viewer.sees_program else "; how right it has been: Forecast backtest")
        + "."
    )
    st.dataframe(
        term_names(risk.head(shown), "current_term"),
        hide_index=True,
        key="cohort.risk",
        column_config={
            "learner_id": "Id",
            "learner_name": "Learner",
            "cohort": "Cohort",
            "current_term": "Term",
            "p_reach": st.column_config.ProgressColumn(
                f"Chance of reaching {target:g}", format="percent", min_value=0.0, max_value=1.0
            ),
            "forecast": st.column_config.NumberColumn("Forecast (mean)", format="%.1f"),
            "sd": st.column_config.NumberColumn("±", format="%.1f"),
            "at_risk": "At risk",
            "why": st.column_config.TextColumn("Weakest domains", width="large"),
        },
    )


def _decisions(viewer: Viewer, fw: Framework, cohort: str | None) -> None:
    counts = reads.decision_counts(viewer, cohort=cohort)
    st.subheader("Committee decisions")
    if counts.empty:
        st.caption("No signed committee decision for these learners yet (Review meetings).")
        return
    st.caption("Each learner's current decision (a revision counts, not the decision it replaced).")
    st.table(  # a few rows: static, drawn at once
        pd.DataFrame(
            {
                "Outcome": counts["outcome"].map(lambda o: plain(fw.outcomes[o].label if o in fw.outcomes else o)),
                "Learners": counts["learners"],
            }
        ),
        hide_index=True,
        width="content",
    )


def _calibration(viewer: Viewer, cohort: str) -> None:
    summary = summaries.calibration_summary(reads.calibration(viewer, cohort=None if cohort == ALL else cohort))
    off = summary[summary["rating"] != "calibrated"]
    st.subheader("Self-assessment calibration")
    st.caption(
        f"{(summary['rating'] == 'over-rates').sum()} learners rate themselves more than half a level above their "
        f"advisor on average, {(summary['rating'] == 'under-rates').sum()} more than half a level below; "
        f"since their first term with both ratings, the self − advisor gap shrank for "
        f"{(summary['trend'] == 'closing').sum()} and grew for {(summary['trend'] == 'widening').sum()}."
    )
    if not off.empty:
        st.dataframe(
            off,
            hide_index=True,
            key="cohort.calibration",
            column_config={
                "learner_id": "Id",
                "learner_name": "Learner",
                "cohort": "Cohort",
                "first_gap": st.column_config.NumberColumn("First term gap", format="%+.1f"),
                "latest_gap": st.column_config.NumberColumn("Latest gap", format="%+.1f"),
                "change": st.column_config.NumberColumn("Change", format="%+.1f"),
                "terms": "Terms",
                "rating": "Self-rating",
                "trend": st.column_config.TextColumn(
                    "Gap since first term", help="closing: the self − advisor gap shrank; widening: it grew"
                ),
            },
        )
