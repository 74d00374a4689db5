"""Forecast backtest: how the graduation forecast would have done on the program's own graduated cohorts."""

from typing import Any

import streamlit as st

from data_models import Role
from pages.views.widgets import chart
from tracker.access.policy import Viewer
from tracker.reports import charts
from tracker.web import reads

ALL = "Every term"


def render(viewer: Viewer) -> None:
    reads.require_role(viewer, Role.committee, Role.coordinator)
    st.title("Forecast backtest")
    fw = reads.framework()
    target = fw.calendar.graduation_level
    terms = fw.term_ids[:-1]  # the forecast is made before the final term
    term = st.selectbox(
        "Forecast made at term",
        [ALL, *terms],
        key="backtest.term",
        format_func=lambda t: t if t == ALL else f"{t} · {fw.term_label(t)}",
    )
    result = reads.backtest(viewer, None if term == ALL else fw.term_index(term))
    if len(result.cohorts) < 2:
        st.info(
            f"The program has {len(result.cohorts)} graduated cohort(s). The backtest leaves one graduated cohort "
            "out at a time, learns from the others, and compares what the forecast would have said with what "
            "happened: it needs at least two graduated cohorts (learners whose status is graduated, rated in the "
            "final term)."
        )
        return
    st.caption(
        f"For each graduated cohort ({', '.join(result.cohorts)}), the forecast is learned from the other "
        "graduated cohorts only, and each learner is forecast at each term they were rated in, from their ratings "
        "up to it, levels net of "
        "each rater's strictness as the other cohorts' ratings show it. A flag is a chance below 50% of reaching "
        f"level {target:g} at graduation. *Found*: the share of those who missed it "
        "that were flagged; *false alarms*: the share of those who reached it that were flagged; *calibration "
        "error*: the mean gap between the stated chance and the share that reached it, over tenths of stated "
        "chance (docs/measurement.md)."
    )
    columns: dict[str, Any] = {
        "term": "Term",
        "cohort": "Cohort",
        "learners": "Learners",
        "missed": "Missed the level",
        "flagged": "Flagged",
        "found": st.column_config.NumberColumn("Found", format="percent"),
        "false_alarms": st.column_config.NumberColumn("False alarms", format="percent"),
        "stated": st.column_config.NumberColumn("Mean stated chance", format="percent"),
        "observed": st.column_config.NumberColumn("Reached it", format="percent"),
        "calibration_error": st.column_config.NumberColumn("Calibration error", format="%.3f"),
    }
    st.subheader("Over every graduated cohort")
    st.dataframe(result.by_term, hide_index=True, key="backtest.by_term", column_config=columns)
    chart(charts.forecast_calibration_chart, result.calibration, key="backtest.calibration")
    st.subheader("Per cohort")
    st.dataframe(result.by_cohort, hide_index=True, key="backtest.by_cohort", column_config=columns)
