"""Cohort summary: distributions, the gap heatmap, who is behind and why, trajectories, drill-in, CSV."""

import streamlit as st

from data_models import Role
from pages._widgets import open_learner
from tracker import charts, forecast, queries, web
from tracker.access import Viewer, require_role

ALL = "All"


def render(viewer: Viewer) -> None:
    require_role(web.cursor(), viewer, Role.advisor, Role.committee, Role.coordinator)
    st.title("Cohort summary" if viewer.sees_program else "My advisees")
    fw = web.framework()
    learners = web.visible_learners(viewer)
    if learners.empty:
        st.info(
            "No learners yet. A coordinator imports learners on the Records page or with `python -m tracker import learners`."
        )
        return
    c1, c2, c3 = st.columns(3)
    cohort = c1.selectbox("Cohort", [ALL, *sorted(learners["cohort"].unique())], key="cohort.cohort")
    term = c2.selectbox(
        "As of term",
        [ALL, *fw.term_ids],
        key="cohort.term",
        format_func=lambda t: "Latest ratings" if t == ALL else f"{t} · {fw.term_label(t)}",
    )
    domain = c3.selectbox(
        "Domain", [ALL, *fw.domain_ids], key="cohort.domain", format_func=lambda d: d if d == ALL else fw.domain(d).name
    )
    standing = web.competency_standing(
        viewer, cohort=None if cohort == ALL else cohort, as_of=None if term == ALL else fw.term_index(term)
    )
    if domain != ALL:
        standing = standing[standing["domain_id"] == domain]
    rated = standing.dropna(subset=["level"])
    n = standing["learner_id"].nunique()
    behind = queries.learners_behind(standing)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Learners", n, border=True)
    m2.metric("Behind the expected trajectory", len(behind), border=True)
    m3.metric("On leave", int((standing.drop_duplicates("learner_id")["status"] == "leave").sum()), border=True)
    m4.metric("Median level − expected", "—" if rated.empty else f"{rated['vs_expected'].median():+.1f}", border=True)
    if rated.empty:
        st.info(
            "No advisor or committee ratings for this selection yet: a new cohort shows here once advisors rate it."
        )
        return

    st.altair_chart(charts.level_distribution_chart(standing, fw.min_level, fw.max_level), key="cohort.distribution")
    st.altair_chart(charts.gap_heatmap(standing), key="cohort.heatmap")

    st.subheader("Behind the expected trajectory")
    if behind.empty:
        st.success("No learner in this selection is a whole level or more below the expected level.")
    else:
        st.dataframe(
            behind,
            hide_index=True,
            key="cohort.behind",
            column_config={
                "learner_id": "Id",
                "learner_name": "Learner",
                "cohort": "Cohort",
                "current_term": "Term",
                "behind": "Competencies behind",
                "worst_gap": st.column_config.NumberColumn("Worst gap", format="%+.1f"),
                "why": "Why",
            },
        )

    _graduation_risk(viewer, fw, standing, cohort, term)
    _calibration(viewer, cohort)

    traj = web.cohort_trajectory(viewer, cohort=None if cohort == ALL else cohort)
    if domain != ALL:
        traj = traj[traj["domain_id"] == domain]
    if not traj.empty:
        st.altair_chart(charts.cohort_trajectory_chart(traj, fw.min_level, fw.max_level), key="cohort.trajectory")

    st.subheader("Open a learner")
    names = dict(zip(learners["id"], learners["name"] + " · " + learners["id"], strict=True))
    ids = [i for i in standing["learner_id"].unique() if i in names]
    pick = st.selectbox("Learner", ids, format_func=names.__getitem__, key="cohort.open_learner")
    if st.button("Open progress", key="cohort.open"):
        open_learner(pick)
    st.download_button(
        "Download this view as CSV",
        web.download_csv(standing),
        file_name="cohort-summary.csv",
        mime="text/csv",
        key="cohort.download",
    )
    chosen_cohort, chosen_term = None if cohort == ALL else cohort, None if term == ALL else fw.term_index(term)
    st.download_button(
        "Download the cohort report (PDF)",
        data=lambda: web.cohort_report(viewer, chosen_cohort, chosen_term),
        file_name="cohort-report.pdf",
        mime="application/pdf",
        key="cohort.report",
        icon=":material/picture_as_pdf:",
    )


if __name__ == "__main__":  # run directly as a legacy page: go through the entry script and its sign-in
    from pages._widgets import run_entry_script

    run_entry_script()


def _graduation_risk(viewer: Viewer, fw, standing, cohort: str, term: str) -> None:  # type: ignore[no-untyped-def]
    target = fw.calendar.graduation_level
    st.subheader(f"Forecast: who may not reach level {target:g} by graduation")
    per_competency = web.forecasts(
        viewer, cohort=None if cohort == ALL else cohort, as_of=None if term == ALL else fw.term_index(term)
    )
    risk = forecast.risk_table(per_competency, standing, fw)
    at_risk = risk[risk["at_risk"]]
    st.caption(
        f"{len(at_risk)} of {len(risk)} active learners have less than a {forecast.RISK_BELOW:.0%} chance of being rated "
        f"{target:g} or above at the end of the program, at their present pace. The model: docs/measurement.md."
    )
    st.dataframe(
        risk.head(max(len(at_risk), 10)),
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
            "why": "Weakest domains",
        },
    )


def _calibration(viewer: Viewer, cohort: str) -> None:
    summary = queries.calibration_summary(web.calibration(viewer, cohort=None if cohort == ALL else cohort))
    off = summary[summary["rating"] != "calibrated"]
    st.subheader("Self-assessment calibration")
    st.caption(
        f"{(summary['rating'] == 'over-rates').sum()} learners rate themselves more than half a level above their "
        f"advisor on average, {(summary['rating'] == 'under-rates').sum()} more than half a level below; "
        f"the gap is closing for {(summary['trend'] == 'closing').sum()} and widening for {(summary['trend'] == 'widening').sum()}."
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
                "trend": "Gap",
            },
        )
