"""Home: what needs this viewer's attention now."""

import pandas as pd
import streamlit as st

from data_models import Role
from pages.views.progress import show_decisions
from pages.views.widgets import open_learner, plain, term_names
from tracker import queries, web
from tracker.access import Viewer


def render(viewer: Viewer) -> None:
    st.title(f"Welcome, {plain(viewer.name)}")
    if viewer.has(Role.learner):
        _learner_home(viewer)
        return
    if viewer.has(Role.advisor):
        _advisor_home(viewer)
    if viewer.has(Role.coordinator) and web.framework_differs():
        st.warning(
            "The framework file differs from the accepted version: nothing has changed yet. "
            "The Framework page lists the changes and how to accept them.",
            icon=":material/account_tree:",
        )
    if viewer.sees_program:
        _program_home(viewer)


def _learner_home(viewer: Viewer) -> None:
    show_decisions(viewer, web.framework(), viewer.person_id, key="home")
    standing = web.competency_standing(viewer, learner_id=viewer.person_id)
    if standing["level"].notna().sum() == 0:
        st.info(
            "Your advisor has not rated you yet. Start with a self-assessment: open **Self-assessment**, "
            "read the level descriptors and choose the level that fits you now."
        )
        return
    fw = web.framework()
    st.subheader(f"Your standing at {plain(fw.term_name(standing['current_term'].iloc[0]))}")
    domains = queries.domain_standing(standing)
    cols = st.columns(len(domains))
    for col, d in zip(cols, domains.to_dict("records"), strict=True):
        rated = pd.notna(d["level"])
        col.metric(
            plain(d["domain_name"]),
            f"{d['level']:.1f}" if rated else "—",
            delta=f"{d['vs_expected']:+.1f} vs expected {d['expected']:.1f}" if rated else None,
            delta_color="normal",
            border=True,
        )
    st.subheader("What to work on next")
    focus = standing.dropna(subset=["level"]).sort_values(["vs_expected", "evidence_count"]).head(5)
    focus = focus[focus["vs_expected"] < 0]
    if focus.empty:
        st.success("Every rated competency is at or above the level expected now. Keep collecting evidence.")
    else:
        st.dataframe(
            focus[["domain_name", "competency_name", "level", "expected", "evidence_count"]],
            hide_index=True,
            key="home.focus",
            column_config={
                "domain_name": "Domain",
                "competency_name": "Competency",
                "level": "Your level",
                "expected": "Expected now",
                "evidence_count": "Evidence items",
            },
        )
    no_evidence = standing[standing["evidence_count"] == 0]
    if not no_evidence.empty:
        st.caption(
            f"{len(no_evidence)} competencies have no evidence yet: "
            + ", ".join(plain(n) for n in no_evidence["competency_name"].head(8))
            + ("…" if len(no_evidence) > 8 else "")
        )


def _advisor_home(viewer: Viewer) -> None:
    mine = web.visible_learners(viewer)
    mine = mine[mine["advisor_id"] == viewer.person_id]
    behind = web.learners_behind(viewer, advisor=viewer.person_id)
    short = web.learners_short(viewer, advisor=viewer.person_id)
    waiting = web.waiting_per_learner(viewer, advisor=viewer.person_id)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Advisees", len(mine), border=True)
    c2.metric("Behind the expected trajectory", len(behind), border=True)
    c3.metric("To rate this term", len(short), border=True)
    c4.metric("Advisees with self-assessments to review", len(waiting), border=True)
    st.subheader("Advisees behind their expected trajectory")
    if behind.empty:
        st.success("None of your advisees is a whole level or more below the expected level.")
    else:
        _learner_table(
            behind,
            "home.behind",
            {
                "learner_name": "Learner",
                "cohort": "Cohort",
                "current_term": "Term",
                "behind": "Competencies behind",
                "why": st.column_config.TextColumn("Why", width="large"),
            },
        )
    st.subheader("To rate this term")
    if short.empty:
        st.success(
            "Every active advisee holds your ratings for this term"
            + (", as many as the assessment plan asks." if web.framework().has_assessment_plan else ".")
        )
    else:
        _learner_table(
            short.rename(columns={"term": "current_term"}),
            "home.to_rate",
            {
                "learner_name": "Learner",
                "cohort": "Cohort",
                "current_term": "Term",
                "rated_this_term": "Competencies rated this term",
                "missing": st.column_config.TextColumn("What is missing", width="large"),
            },
        )
    st.subheader("Self-assessments waiting for your review")
    if waiting.empty:
        st.info("No self-assessment is waiting: every one is older than your latest rating of its competency.")
    else:
        _learner_table(
            waiting,
            "home.queue",
            {
                "learner_name": "Learner",
                "cohort": "Cohort",
                "competencies": "Competencies self-rated since your last rating",
                "waiting_since": st.column_config.DateColumn("Waiting since"),
                "days_waiting": st.column_config.NumberColumn("Days waiting"),
                "latest_self_on": st.column_config.DateColumn("Latest self-assessment"),
            },
        )
        st.caption("Longest waiting first. A self-assessment is reviewed by your rating of the same competency.")


def _program_home(viewer: Viewer) -> None:
    summary = web.cohort_overview(viewer)
    if summary.empty:
        st.info(
            "No learners yet. Import learners, staff and ratings on the Import records page or with `python -m tracker import`."
        )
        return
    st.subheader("The program at a glance")
    behind = web.learners_behind(viewer)
    st.dataframe(
        term_names(summary, "term"),
        hide_index=True,
        key="home.cohorts",
        column_config={
            "cohort": "Cohort",
            "learners": "Learners",
            "term": "Current term",
            "behind": "Behind",
            "on_leave": "On leave",
        },
    )
    if not behind.empty:
        st.subheader("Behind the expected trajectory")
        _learner_table(
            behind,
            "home.program_behind",
            {
                "learner_name": "Learner",
                "cohort": "Cohort",
                "current_term": "Term",
                "behind": "Competencies behind",
                "why": st.column_config.TextColumn("Why", width="large"),
            },
        )


def _learner_table(frame: pd.DataFrame, key: str, columns: dict) -> None:
    shown = frame[list(columns)]
    event = st.dataframe(
        term_names(shown, "current_term") if "current_term" in columns else shown,
        hide_index=True,
        key=key,
        column_config=columns,
        on_select="rerun",
        selection_mode="single-row",
    )
    rows = event.selection.rows if event else []
    if rows:
        open_learner(frame.iloc[rows[0]]["learner_id"])
    st.caption("Select a row to open the learner's progress.")
