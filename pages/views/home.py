"""Home: each role's first question answered at the top of the page, with the action beside it: the learner's
"where do I stand and what next", the advisor's "who needs me and what do I record", the committee's "who needs
discussion"."""

import pandas as pd
import streamlit as st

from data_models import Framework, Role
from pages.views.plans import show_plan_reminders
from pages.views.progress import outcome_label, show_decisions
from pages.views.widgets import learner_cards, learner_table, pages, plain, term_names
from tracker.access.policy import Viewer, may_open_page
from tracker.views import summaries
from tracker.web import reads

FOCUS = 5  # competencies the learner is pointed to next


def render(viewer: Viewer) -> None:
    st.title(f"Welcome, {plain(viewer.name)}")
    if viewer.has(Role.learner):
        _learner_home(viewer)
        return
    if viewer.has(Role.coordinator) and reads.framework_differs():
        st.warning(
            "The framework file differs from the accepted version: nothing has changed yet. "
            "The Framework page lists the changes and how to accept them.",
            icon=":material/account_tree:",
        )
    if viewer.has(Role.advisor):
        _advisor_home(viewer)
    if viewer.sees_program:
        _program_home(viewer)


def _link(viewer: Viewer, path: str, label: str, icon: str) -> None:
    if path in pages() and may_open_page(viewer, path):
        st.page_link(pages()[path], label=label, icon=icon)


# ---- the learner: where do I stand, and what next ----------------------------------------------------------------
def _learner_home(viewer: Viewer) -> None:
    fw = reads.framework()
    show_plan_reminders(viewer)
    standing = reads.competency_standing(viewer, learner_id=viewer.person_id)
    if standing["level"].notna().sum() == 0:
        st.info(
            "Your advisor has not rated you yet. Start with a self-assessment: read the level descriptors and "
            "choose the level that fits you now."
        )
        _link(viewer, "self-assessment", "Start a self-assessment", ":material/edit_note:")
        show_decisions(fw, reads.learner_decisions(viewer, learner_id=viewer.person_id), key="home")
        return
    term = fw.term_name(standing["current_term"].iloc[0])
    st.caption(plain(term) + _latest_decision(viewer, fw))
    stand, nxt = st.columns([3, 2], gap="large")
    with stand:
        st.subheader("Where you stand")
        for d in summaries.domain_standing(standing).to_dict("records"):
            with st.container(border=True, key=f"home.domain.{d['domain_id']}"):
                figure, name = st.columns([2, 3], vertical_alignment="center")
                rated = pd.notna(d["level"])
                figure.metric(
                    plain(d["domain_name"]),
                    f"{d['level']:.1f}" if rated else "—",
                    delta=f"{d['vs_expected']:+.1f} vs expected {d['expected']:.1f}" if rated else None,
                    delta_color="normal",
                    label_visibility="collapsed",
                )
                behind = f" · {d['behind']} behind" if d["behind"] else ""
                # the whole name, wrapped: a long one is read whole, never cut
                name.markdown(f"**{plain(d['domain_name'])}**  \n{d['rated']} of {d['competencies']} rated{behind}")
    with nxt:
        st.subheader("What to work on next")
        focus = standing.dropna(subset=["level"]).sort_values(["vs_expected", "evidence_count"]).head(FOCUS)
        focus = focus[focus["vs_expected"] < 0]
        if focus.empty:
            st.success("Every rated competency is at or above the level expected now. Keep collecting evidence.")
        for c in focus.to_dict("records"):
            evidence = {0: "no evidence yet", 1: "1 evidence item"}.get(c["evidence_count"], "")
            evidence = evidence or f"{c['evidence_count']} evidence items"
            st.markdown(
                f"- **{plain(c['competency_name'])}** ({plain(c['domain_name'])}): level {c['level']:g}, "
                f"expected {c['expected']:g} now · {evidence}"
            )
        no_evidence = int((standing["evidence_count"] == 0).sum())
        if no_evidence:
            st.caption(f"{no_evidence} of {len(standing)} competencies have no evidence yet.")
        _link(viewer, "self-assessment", "Rate yourself and add evidence", ":material/edit_note:")
        _link(viewer, "progress", "See every competency and your forecast", ":material/trending_up:")
    show_decisions(fw, reads.learner_decisions(viewer, learner_id=viewer.person_id), key="home")


def _latest_decision(viewer: Viewer, fw: Framework) -> str:
    decisions = reads.learner_decisions(viewer, learner_id=viewer.person_id)
    if decisions.empty:
        return ""
    d = decisions.iloc[0]
    return (
        f" · latest committee decision: **{plain(outcome_label(fw, str(d['outcome'])))}** ({d['decided_on']:%Y-%m-%d})"
    )


# ---- the advisor: who needs me, and what do I record -------------------------------------------------------------
def _advisor_home(viewer: Viewer) -> None:
    fw = reads.framework()
    mine = reads.visible_learners(viewer)
    mine = mine[mine["advisor_id"] == viewer.person_id]
    work = reads.advisee_work(viewer, viewer.person_id)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Advisees", len(mine), border=True)
    c2.metric("To rate this term", int(work["to_rate"].notna().sum()), border=True)
    c3.metric("Self-assessments to review", int((work["to_review"] > 0).sum()), border=True)
    c4.metric("Behind the expected trajectory", int((work["behind"] > 0).sum()), border=True)
    show_plan_reminders(viewer)
    st.subheader("Who needs you")
    if work.empty:
        st.success("None of your advisees waits for a rating or a review, and none is behind.")
    else:
        st.caption("Open a learner to record a rating: the form is at the top of their progress page.")
        learner_cards(work, "home.advisees", lambda row: _advisee_needs(fw, row))
    _this_terms_work(viewer)


def _this_terms_work(viewer: Viewer) -> None:
    """This term's ratings against the assessment plan, and the self-assessments waiting longest (tracker/analysis/overdue.py)."""
    short = reads.learners_short(viewer, advisor=viewer.person_id)
    waiting = reads.waiting_per_learner(viewer, advisor=viewer.person_id)
    st.subheader(f"Ratings this term: {len(short)} advisees to rate")
    if short.empty:
        st.success(
            "Every active advisee holds your ratings for this term"
            + (", as many as the assessment plan asks." if reads.framework().has_assessment_plan else ".")
        )
    else:
        learner_table(
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
        learner_table(
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


def _advisee_needs(fw: Framework, row: dict) -> list[str]:
    needs = []
    if isinstance(row["to_rate"], str):
        needs.append(f"**Rate** {plain(fw.term_name(row['to_rate']))}: they self-assessed, with no rating of yours yet")
    if row["to_review"]:
        latest = f" (latest {row['latest_self_on']:%Y-%m-%d})" if pd.notna(row["latest_self_on"]) else ""
        needs.append(f"**Review** {row['to_review']} self-ratings newer than your rating{latest}")
    if row["behind"]:
        more = row["behind"] - summaries.WHY_FIRST
        needs.append(
            f"**Behind** in {row['behind']}: {plain(row['why_first'])}" + (f"; and {more} more" if more > 0 else "")
        )
    return needs


# ---- the committee and coordinators: who needs discussion --------------------------------------------------------
def _program_home(viewer: Viewer) -> None:
    summary = reads.cohort_overview(viewer)
    if summary.empty:
        st.info(
            "No learners yet. Import learners, staff and ratings on the Import records page or with "
            "`python -m tracker import`."
        )
        return
    if viewer.has(Role.committee) or viewer.has(Role.coordinator):
        st.subheader("Who needs discussion")
        agenda = reads.proposed_agenda(viewer, None, brief=True)
        if agenda.empty:
            st.success("No learner is behind, at risk, far from their advisor's view or waiting for a rating.")
        else:
            left, right = st.columns([3, 1], vertical_alignment="bottom")
            left.caption(
                f"{len(agenda)} learners: behind the expected levels, at risk of missing the graduation level, "
                "far from their advisor's ratings, or waiting for a rating. Most reasons first."
            )
            with right:
                _link(viewer, "review", "Plan a review meeting", ":material/gavel:")
            learner_cards(
                agenda,
                "home.discuss",
                lambda row: [plain(r[:1].upper() + r[1:]) for r in summaries.reason_list(row["reasons"])],
            )
    st.subheader("The program at a glance")
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
