"""Learner progress: standing against expected, the competency table, trajectory, evidence, and rating."""

from collections.abc import Callable

import pandas as pd
import streamlit as st

from data_models import Framework, Role
from pages.views import plans as plan_view
from pages.views.widgets import (
    chart,
    level_and_term,
    level_text,
    pick_competency,
    pick_learner,
    plain,
    save,
    say,
    show_confirmation,
    show_descriptors,
)
from tracker.access.policy import Viewer
from tracker.reports import charts
from tracker.views.progress import CALIBRATED_WITHIN, LearnerProgress, trajectory_line
from tracker.web import reads, writes

# the questions first: where the learner stands and whether they will get there; the details after
TABLE_COLUMNS = [
    "competency_name",
    "standing",
    "level",
    "expected",
    "p_reach",
    "forecast",
    "coverage",  # words: after the figures, so that they stay in view beside the standing
    "domain_name",
    "self_level",
    "self_gap",
    "trend",
    "carried_from",
    "last_rated_on",
    "evidence_count",
    "evidence_coverage",
]


def render(viewer: Viewer) -> None:
    st.title("My progress" if viewer.has(Role.learner) else "Learner progress")
    learner_id = pick_learner(viewer)
    if learner_id is None:
        return
    fw = reads.framework()
    view = reads.learner_progress(viewer, learner_id)
    rates = not viewer.has(Role.learner) and view.learner.status == "active"
    show_standing(
        viewer,
        fw,
        view,
        actions_after_header=(lambda: _rating_form(viewer, learner_id, fw, view.standing)) if rates else None,
    )
    show_decisions(fw, view.decisions)
    plan_view.show_goals_summary(viewer, fw, learner_id, view.goals)
    _report_button(viewer, learner_id)
    show_records(view, viewer.has(Role.learner), fw)


def show_standing(
    viewer: Viewer,
    fw: Framework,
    view: LearnerProgress,
    key: str = "progress",
    actions_after_header: Callable[[], None] | None = None,
) -> None:
    """A learner's standing: who they are, per domain, the competency table, trajectory and calibration. The
    progress page and the review meeting's packet show the same; `key` keeps their widgets apart, and
    `actions_after_header` (the advisor's rating form) sits right under the learner's line, above the fold."""
    first = view.learner
    st.markdown(
        f"**{plain(first.learner_name)}** · cohort {plain(first.cohort)} · status **{plain(first.status)}** · "
        f"assessed up to **{plain(fw.term_name(first.current_term))}**"
    )
    if first.status == "leave":
        st.warning(
            "This learner is on leave: standings are frozen at the last assessed term and not flagged as behind."
        )
    if actions_after_header is not None:
        actions_after_header()
    if not view.rated:
        st.info(
            "No advisor or committee rating yet. "
            + (
                "Your self-assessments appear below once you make them."
                if viewer.has(Role.learner)
                else "Record the first rating with *Record a rating* above."
            )
        )
    domains = view.domains
    left, right = st.columns([3, 2])
    chart(charts.domain_standing_chart, domains, fw.min_level, fw.max_level, key=f"{key}.domains_chart", where=left)
    chart(charts.domain_radar_spec, domains, fw.min_level, fw.max_level, key=f"{key}.radar_chart", where=right)

    target = fw.calendar.graduation_level
    plan = view.coverage
    columns = TABLE_COLUMNS if not plan.empty else [c for c in TABLE_COLUMNS if c != "coverage"]
    st.subheader("Competencies")
    st.dataframe(
        view.table[columns],
        hide_index=True,
        key=f"{key}.table",
        height="content",  # every competency, no inner scroll bar
        column_config={
            "domain_name": "Domain",
            "competency_name": "Competency",
            "level": st.column_config.NumberColumn(
                "Advisor level", format="%.1f", help="Latest advisor or committee rating"
            ),
            "carried_from": st.column_config.TextColumn(
                "Carried over", help="A level rated under an earlier framework version, read through its crosswalk"
            ),
            "self_level": st.column_config.NumberColumn("Self level", format="%.1f"),
            "self_gap": st.column_config.NumberColumn("Self − advisor", format="%+.1f"),
            "expected": st.column_config.NumberColumn("Expected now", format="%.1f"),
            "trend": st.column_config.NumberColumn("Since last term", format="%+.1f"),
            "standing": st.column_config.TextColumn(
                "Standing", help="Marked when it rests on fewer ratings than the assessment plan asks"
            ),
            "coverage": st.column_config.TextColumn(
                "Assessment plan",
                help="This term's ratings, the raters so far and the evidence, against the plan",
                width="medium",
            ),
            "forecast": st.column_config.NumberColumn("Forecast at graduation", format="%.1f"),
            "p_reach": st.column_config.ProgressColumn(
                f"Chance of reaching {target:g}", format="percent", min_value=0.0, max_value=1.0
            ),
            "last_rated_on": st.column_config.DateColumn("Last rated"),
            "evidence_count": st.column_config.NumberColumn("Evidence"),
            "evidence_coverage": "Evidence is",
        },
    )
    _plan_gaps(plan)
    _evidence_gaps(view.standing)
    _overall_outlook(view, fw)
    _trajectory(view, fw, key)
    _calibration(view, key)


def show_decisions(fw: Framework, decisions: pd.DataFrame, key: str = "progress") -> None:
    """The committee's signed decisions about a learner, newest first (drafts never show here)."""
    if decisions.empty:
        return
    st.subheader("Committee decisions")
    for d in decisions.to_dict("records"):
        with st.container(border=True, key=f"{key}.decision.{d['id']}"):
            revises = f" · revises {d['replaces']}" if isinstance(d["replaces"], str) else ""
            replaced = f" · revised later by {d['replaced_by']}" if isinstance(d["replaced_by"], str) else ""
            st.markdown(
                f"**{plain(outcome_label(fw, str(d['outcome'])))}** · {d['decided_on']:%Y-%m-%d} · signed by "
                f"{plain(d['signed_by_name'] or d['signed_by'])}{plain(revises)}{plain(replaced)}"
            )
            if d["rationale"]:
                st.text(d["rationale"])
            if d["actions"]:
                st.caption("Actions: " + plain(d["actions"]))


def outcome_label(fw: Framework, outcome: str) -> str:
    found = fw.outcomes.get(outcome)
    return found.label if found else outcome


def _report_button(viewer: Viewer, learner_id: str) -> None:
    if problem := reads.reports_unavailable():
        st.caption(f"PDF report unavailable: {plain(problem)}")
        return
    st.download_button(
        "Download the learner report (PDF)",
        data=lambda: reads.learner_report(viewer, learner_id),
        file_name=f"{learner_id}-report.pdf",
        mime="application/pdf",
        key="progress.report",
        icon=":material/picture_as_pdf:",
    )


def _plan_gaps(plan: pd.DataFrame) -> None:
    """The assessment plan this term, in words: where the standing rests on too few ratings, what is short."""
    if plan.empty or plan.iloc[0].status != "active":
        return
    term = plan.iloc[0].term
    thin = plan.loc[plan["thin"], "competency_name"].tolist()
    short = plan.loc[plan["ratings_short"].fillna(False), "competency_name"].tolist()
    overdue = plan.loc[plan["evidence_state"] == "overdue", "competency_name"].tolist()
    if thin:
        st.caption(
            f"Standing on fewer ratings than the assessment plan asks ({len(thin)}): "
            + ", ".join(plain(n) for n in thin)
        )
    if short:
        st.caption(
            f"Fewer ratings in {plain(term)} than the plan asks ({len(short)} of {len(plan)}): "
            + ", ".join(plain(n) for n in short[:8])
            + ("…" if len(short) > 8 else "")
        )
    if overdue:
        st.caption(f"Evidence overdue under the plan ({len(overdue)}): " + ", ".join(plain(n) for n in overdue))


def _evidence_gaps(standing: pd.DataFrame) -> None:
    none = standing.loc[standing["evidence_coverage"] == "none", "competency_name"].tolist()
    old = standing.loc[standing["evidence_coverage"] == "old", "competency_name"].tolist()
    if none:
        st.caption(f"No evidence yet ({len(none)}): " + ", ".join(plain(n) for n in none))
    if old:
        st.caption(f"Only evidence older than a year ({len(old)}): " + ", ".join(plain(n) for n in old))


TREND_WORDS = {
    "closing": "the self − advisor gap shrank since the first term with both ratings",
    "widening": "the self − advisor gap grew since the first term with both ratings",
    "steady": "the self − advisor gap is about as it was in the first term with both ratings",
}


def _calibration(view: LearnerProgress, key: str) -> None:
    summary = view.calibration_summary
    if summary is None:
        return
    st.subheader("Self-assessment against advisor ratings")
    chart(charts.calibration_chart, view.calibration, CALIBRATED_WITHIN, key=f"{key}.calibration_chart")
    st.caption(
        f"Latest term: self-ratings {summary.latest_gap:+.1f} levels from the advisor's on average "
        f"({summary.rating}); {TREND_WORDS.get(summary.trend, summary.trend)}."
    )


def _overall_outlook(view: LearnerProgress, fw: Framework) -> None:
    outlook = view.overall
    if outlook is None:
        return
    st.caption(
        f"Chance of reaching level {fw.calendar.graduation_level:g} or above at graduation, over all competencies: "
        f"{outlook['p_reach']:.0%} (forecast {outlook['forecast']:.1f} ± {outlook['sd']:.1f}), judged by how the "
        f"graduated cohorts' learners grew from level {outlook['last_level']:.1f} at {outlook['last_term']}"
        f"{outlook['as_rated']}, levels net of each rater's "
        "strictness. The competencies' own forecasts extend each one's straight line."
    )


def _trajectory(view: LearnerProgress, fw: Framework, key: str) -> None:
    st.subheader("Trajectory")
    options = [("domain", d.id) for d in fw.domains] + [("competency", c) for c in fw.competencies]
    labels = {("domain", d.id): f"Domain · {d.name}" for d in fw.domains} | {
        ("competency", c.id): f"{fw.domain_of[c.id].name} · {c.name}" for c in fw.competencies.values()
    }
    kind, item = st.selectbox("Show", options, format_func=labels.__getitem__, key=f"{key}.trajectory_of")
    shown = trajectory_line(view, fw, kind, item)
    chart(
        charts.trajectory_chart,
        shown.line,
        fw.min_level,
        fw.max_level,
        shown.title,
        shown.band,
        shown.goal_marks,
        key=f"{key}.trajectory_chart",
    )
    if shown.goals_elsewhere:
        st.caption(
            "Goals of the learning plan show on their competency's trajectory: "
            + ", ".join(map(plain, shown.goals_elsewhere))
        )
    outlook = shown.outlook
    if outlook is not None:
        half = charts.BAND_Z * outlook["sd"]
        st.caption(
            f"Forecast at graduation ({plain(fw.term_name(outlook['final_term']))}): {outlook['forecast']:.1f} ± {outlook['sd']:.1f} "
            f"(80% band {outlook['forecast'] - half:.1f}–{outlook['forecast'] + half:.1f}); chance of reaching "
            f"level {fw.calendar.graduation_level:g}: {outlook['p_reach']:.0%}"
            + (", learned from the graduated cohorts" if shown.learned else ", along a straight line")
            + ". How it is forecast: docs/measurement.md."
        )


NEWEST_COMMENTS = 5


def show_records(view: LearnerProgress, own: bool, fw: Framework, key: str = "progress") -> None:
    """Narrative comments, evidence and every rating of the learner, in tabs. Only the tab open is drawn: the
    browser draws a table in a tab it does not show, which made the page settle later."""
    history, evidence = view.history, view.evidence
    comments, items, all_ratings = st.tabs(
        ["Narrative comments", f"Evidence ({len(evidence)})", "All ratings"], key=f"{key}.records", on_change="rerun"
    )
    with comments:
        if comments.open:
            noted = history[history["comment"] != ""]
            if noted.empty:
                st.info("No narrative comments yet.")
            elif len(noted) > NEWEST_COMMENTS and not st.toggle(
                f"Show all {len(noted)} comments", key=f"{key}.all_comments"
            ):
                noted = noted.head(NEWEST_COMMENTS)
            for r in noted.itertuples():
                with st.container(border=True):
                    st.caption(
                        f"{r.rated_on:%Y-%m-%d} · {plain(r.term)} · {plain(r.rater_name)} ({r.rater_role}) · "
                        f"{plain(r.competency_name)} · level {level_text(r.level)}"
                        + (" · superseded" if r.superseded else "")
                        + (
                            f" · retired in the framework (rated under {plain(r.framework_version)})"
                            if r.retired
                            else ""
                        )
                    )
                    st.text(r.comment)
    with items:
        if items.open:
            if evidence.empty:
                st.info("No evidence attached yet." + (" Add some on the Self-assessment page." if own else ""))
            else:
                st.dataframe(
                    view.evidence,
                    hide_index=True,
                    key=f"{key}.evidence",
                    column_config={
                        "id": None,
                        "added_on": st.column_config.DateColumn("Added"),
                        "type": "Type",
                        "title": "Title",
                        "competency_ids": "Competencies",
                        "counts_for": None,
                        "retired_names": None,
                        "url": None,
                        "link": st.column_config.LinkColumn("Link"),
                        "description": "Description",
                    },
                )
    with all_ratings:
        if all_ratings.open:
            st.dataframe(
                history,
                hide_index=True,
                key=f"{key}.history",
                column_config={
                    "id": "Rating",
                    "rated_on": st.column_config.DateColumn("Date"),
                    "term": "Term",
                    "term_index": None,
                    "domain_name": "Domain",
                    "competency_id": None,
                    "competency_name": "Competency",
                    "level": st.column_config.NumberColumn("Level", format="%.1f"),
                    "rater_role": "Role",
                    "rater_name": "Rater",
                    "comment": "Comment",
                    "evidence_ids": "Evidence",
                    "corrects": "Corrects",
                    "superseded": "Superseded",
                    "framework_version": "Framework version",
                    "retired": st.column_config.CheckboxColumn("Retired", help="No successor in the current framework"),
                },
            )


def _rating_form(viewer: Viewer, learner_id: str, fw: Framework, standing: pd.DataFrame) -> None:
    unrated = standing["level"].notna().sum() == 0
    with st.expander("Record a rating", expanded=bool(unrated), icon=":material/edit_note:"):
        _rating_fields(viewer, learner_id, fw, standing)
    show_confirmation("progress.rate")  # outside the fold: the saved rating is said even if it closes


def _rating_fields(viewer: Viewer, learner_id: str, fw: Framework, standing: pd.DataFrame) -> None:
    form_side, descriptors = st.columns([3, 2])
    with form_side:
        cid = pick_competency(fw, "progress.rate_competency")
    comp = fw.competencies[cid]
    row = standing[standing["competency_id"] == cid].iloc[0]
    with descriptors:
        st.caption("Level descriptors")
        show_descriptors(fw, cid)
    current = None if row.level != row.level else float(row.level)
    with form_side:
        st.caption(
            f"Current advisor level {level_text(row.level)} · self level {level_text(row.self_level)} · "
            f"expected now {level_text(row.expected)}"
        )
        with st.form(f"progress.rate_form.{cid}"):  # per competency: it starts at its level
            level, term = level_and_term(fw, learner_id, "Level", current, "progress.rate_level", "progress.rate_term")
            comment = st.text_area("Narrative comment", key="progress.rate_comment", max_chars=10_000)
            submitted = st.form_submit_button("Save rating", type="primary")
    if submitted:
        if level is None:
            say("error", "Choose a level before saving: nothing was saved.")
            return
        chosen = float(level)

        def write() -> str:
            rating = writes.record_rating(viewer, learner_id, cid, chosen, term, comment or "")
            return f"Saved: {comp.name}, level {rating.level:g} ({fw.term_name(term)})."

        save("progress.rate", write, ("progress.rate_level", "progress.rate_comment"))
