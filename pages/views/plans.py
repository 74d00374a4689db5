"""Learning plan: the learner writes and changes goals; the advisor of record comments and agrees them; the
committee and coordinators read. Every goal with its status in words, its agreement, comments and history."""

import pandas as pd
import streamlit as st

from data_models import Framework, Role
from pages.views.widgets import (
    learner_table,
    level_text,
    pages,
    pick_competency,
    pick_learner,
    plain,
    save,
    show_confirmation,
)
from tracker.access.policy import Viewer, may_write_goals
from tracker.web import reads, writes

STATUS_ICONS = {"met": ":material/check_circle:", "overdue": ":material/schedule:", "open": ":material/flag:"}


def render(viewer: Viewer) -> None:
    own = viewer.has(Role.learner)
    st.title("My learning plan" if own else "Learning plan")
    learner_id = pick_learner(viewer)
    if learner_id is None:
        return
    fw = reads.framework()
    writer = may_write_goals(viewer, learner_id)
    advisor = reads.is_advisor_of_record(viewer, learner_id)
    show_confirmation("plan")
    _origins(reads.learner_plans(viewer, learner_id), fw, own)
    everything = reads.learner_goals(viewer, learner_id)
    goals, closed = everything[everything["plan_open"]], everything[~everything["plan_open"]]
    if goals.empty:
        write = (
            "Write your first goal below: a competency, the level you aim for and by which term, what you will do "
            "and the evidence you will gather."
        )
        if closed.empty:
            st.info(f"No goals yet. {write}" if writer else "The learner has written no goals yet.")
        else:
            st.info("No goal in an open plan." + (f" {write}" if writer else ""))
    else:
        st.caption(_summary(goals))
    waiting = goals[goals["agreed_by"].isna()] if not goals.empty else goals
    agree_all = f"Agree the whole plan ({len(waiting)} {'goal' if len(waiting) == 1 else 'goals'} waiting)"
    if advisor and not waiting.empty and st.button(agree_all, type="primary", key="plan.agree_all"):
        read = dict(zip(waiting["goal_id"], waiting["version"].astype(int), strict=True))
        save("plan", lambda: _agree(viewer, learner_id, read))
    versions = reads.goal_versions(viewer, learner_id)
    comments = reads.goal_comments(viewer, learner_id)
    for goal in goals.to_dict("records"):
        _goal(viewer, fw, goal, versions, comments, writer, advisor)
    if not closed.empty:
        with st.expander(f"Goals of closed plans ({len(closed)}), kept as they were"):
            for goal in closed.to_dict("records"):
                _goal(viewer, fw, goal, versions, comments, writer=False, advisor=False)
    if writer:
        _new_goal_form(viewer, fw, learner_id)
    elif not advisor and not goals.empty:
        st.caption("The learner writes the goals; their advisor of record comments on them and agrees them.")


def _agree(viewer: Viewer, learner_id: str, read: dict[str, int]) -> str:
    agreed = writes.agree_goals(viewer, learner_id, read)
    return f"Agreed {len(agreed)} goal{'s' if len(agreed) != 1 else ''}."


def _summary(goals: pd.DataFrame) -> str:
    counts = goals["status"].value_counts()
    agreed = int(goals["agreed_by"].notna().sum())
    parts = [f"{counts.get(s, 0)} {s}" for s in ("met", "overdue", "open")]
    goals_word = "goal" if len(goals) == 1 else "goals"
    return (
        f"{len(goals)} {goals_word}: {', '.join(parts)} · {agreed} agreed, {len(goals) - agreed} waiting for agreement"
    )


def _origins(found: pd.DataFrame, fw: Framework, own: bool) -> None:
    """Where each plan came from: the committee decision that opened it, or the learner."""
    for p in found.to_dict("records"):
        with st.container(border=True, key=f"plan.origin.{p['plan_id']}"):
            if isinstance(p["decision_id"], str):
                st.markdown(
                    f"Opened by the committee's decision of {p['decided_on']:%Y-%m-%d}: "
                    f"**{plain(_outcome(fw, str(p['outcome'])))}** ({plain(p['decision_id'])})"
                )
                if isinstance(p["rationale"], str) and p["rationale"]:
                    st.text(p["rationale"])
            else:
                who = "you" if own else plain(p["opened_by_name"])
                st.markdown(f"Started by {who} on {p['opened_on']:%Y-%m-%d}")
            if not p["plan_open"]:
                st.caption(
                    f"Closed by the committee's decision of {p['closed_on']:%Y-%m-%d}: "
                    f"{plain(_outcome(fw, str(p['closed_outcome'])))} ({plain(p['closed_by'])}). "
                    "Its goals are kept as they were, below."
                )


def _outcome(fw: Framework, outcome: str) -> str:
    found = fw.outcomes.get(outcome)
    return found.label if found else outcome


def _goal(
    viewer: Viewer,
    fw: Framework,
    goal: dict,
    versions: pd.DataFrame,
    comments: pd.DataFrame,
    writer: bool,
    advisor: bool,
) -> None:
    goal_id, version = goal["goal_id"], int(goal["version"])
    with st.container(border=True, key=f"plan.goal.{goal_id}"):
        st.markdown(
            f"**{plain(goal['competency_name'])}** · level {goal['target_level']:g} by "
            f"{plain(fw.term_name(goal['by_term']) if goal['by_term'] in fw.term_ids else goal['by_term'])}"
        )
        icon = STATUS_ICONS.get(goal["status"], "")
        st.markdown(f"{icon} {plain(goal['status_words'])}")
        st.caption(plain(goal["agreement"]) + (f" · version {version}" if version > 1 else ""))
        st.caption("Actions")
        st.text(goal["actions"])
        if goal["evidence"]:
            st.caption("Evidence planned")
            st.text(goal["evidence"])
        said = comments[comments["goal_id"] == goal_id]
        for c in said.to_dict("records"):
            on = "" if int(c["version"]) == version else f" · on version {int(c['version'])}"
            st.caption(f"{c['written_on']:%Y-%m-%d} · {plain(c['author_name'])}{on}")
            st.text(c["comment"])
        history = versions[versions["goal_id"] == goal_id]
        if len(history) > 1:
            with st.expander(f"Earlier versions ({len(history) - 1})"):
                st.dataframe(
                    history.iloc[1:][
                        ["version", "target_level", "by_term", "actions", "evidence", "written_on"]
                    ].assign(agreed=history.iloc[1:]["agreed_by_name"].fillna("not agreed")),
                    hide_index=True,
                    key=f"plan.history.{goal_id}",
                    column_config={
                        "version": "Version",
                        "target_level": st.column_config.NumberColumn("Level aimed for", format="%.1f"),
                        "by_term": "By term",
                        "actions": "Actions",
                        "evidence": "Evidence planned",
                        "written_on": st.column_config.DateColumn("Written"),
                        "agreed": "Agreed by",
                    },
                )
        waits = advisor and not isinstance(goal["agreed_by"], str)
        if waits and st.button("Agree this goal", key=f"plan.agree.{goal_id}.{version}", icon=":material/handshake:"):
            save("plan", lambda: _agree(viewer, goal["learner_id"], {goal_id: version}))
        if writer or advisor:
            _comment_form(viewer, goal_id, version)
        if writer and not goal["unplaced"]:
            with st.expander("Change this goal"):
                _goal_form(viewer, fw, goal["learner_id"], goal)


def _comment_form(viewer: Viewer, goal_id: str, version: int) -> None:
    with st.form(f"plan.comment_form.{goal_id}", clear_on_submit=False, border=False):
        text = st.text_input("Comment", key=f"plan.comment.{goal_id}", max_chars=500)
        sent = st.form_submit_button("Add comment")
    if sent:

        def write() -> str:
            writes.comment_goal(viewer, goal_id, text, version)
            return "Comment added."

        save("plan", write, (f"plan.comment.{goal_id}",))


def _new_goal_form(viewer: Viewer, fw: Framework, learner_id: str) -> None:
    st.subheader("Write a goal")
    _goal_form(viewer, fw, learner_id, None)


def _goal_form(viewer: Viewer, fw: Framework, learner_id: str, goal: dict | None) -> None:
    """A new goal (goal None), or the next version of one: its competency stays, the rest may change."""
    # a saved new goal starts the next one on fresh widgets (a refused one keeps what was typed)
    written = st.session_state.get("plan.new.written", 0)
    prefix = f"plan.new.{written}" if goal is None else f"plan.edit.{goal['goal_id']}.{int(goal['version'])}"
    competency_id = pick_competency(fw, "plan.new.competency") if goal is None else goal["competency_id"]
    levels = fw.rating_levels
    with st.form(f"{prefix}.form"):
        start = levels.index(goal["target_level"]) if goal is not None and goal["target_level"] in levels else None
        target = st.selectbox(
            "Level aimed for",
            levels,
            index=start,
            placeholder="Choose a level",
            format_func=lambda v: f"{v:g} · {fw.level_label(v)}",
            key=f"{prefix}.target",
        )
        term_start = fw.term_ids.index(goal["by_term"]) if goal is not None and goal["by_term"] in fw.term_ids else 0
        by_term = st.selectbox(
            "By term", fw.term_ids, index=term_start, format_func=fw.term_name, key=f"{prefix}.by_term"
        )
        actions = st.text_area(
            "Actions: what you will do",
            value=goal["actions"] if goal is not None else "",
            max_chars=10_000,
            key=f"{prefix}.actions",
        )
        evidence = st.text_area(
            "Evidence you plan to gather",
            value=goal["evidence"] if goal is not None else "",
            max_chars=10_000,
            key=f"{prefix}.evidence",
        )
        submitted = st.form_submit_button("Save goal" if goal is None else "Save the change", type="primary")
    if not submitted:
        return
    if target is None:
        st.error("Choose the level you aim for: nothing was saved.")
        return

    def write() -> str:
        saved = writes.write_goal(
            viewer,
            learner_id,
            competency_id,
            float(target),
            by_term,
            actions,
            evidence,
            goal_id=None if goal is None else goal["goal_id"],
            read_version=None if goal is None else int(goal["version"]),
        )
        name = fw.competencies[competency_id].name
        if goal is None:
            st.session_state["plan.new.written"] = written + 1
        if saved.version == 1:
            return f"Saved your goal: {name}, level {saved.target_level:g} by {fw.term_name(by_term)}."
        return f"Saved the change to your goal in {name}; your advisor agrees it again."

    save("plan", write, (f"{prefix}.actions", f"{prefix}.evidence", f"{prefix}.target"))


def show_goals_summary(viewer: Viewer, fw: Framework, learner_id: str, everything: pd.DataFrame) -> None:
    """The progress page's part: each goal's status in words and its agreement, and the way to the plan."""
    goals = everything[everything["plan_open"]]
    if goals.empty and not may_write_goals(viewer, learner_id):
        return
    st.subheader("Learning plan")
    if goals.empty:
        st.caption(
            "No goals yet: write them on your learning plan."
            if everything.empty
            else f"No goal in an open plan; the goals of closed plans ({len(everything)}) are on the learning plan."
        )
    else:
        st.caption(_summary(goals))
        st.dataframe(
            goals.assign(
                by_term=goals["by_term"].map(lambda t: fw.term_name(t) if t in fw.term_ids else t),
                level=goals["level"].map(level_text),
            )[["competency_name", "target_level", "by_term", "level", "status_words", "agreement"]],
            hide_index=True,
            key="progress.goals",
            column_config={
                "competency_name": "Goal",
                "target_level": st.column_config.NumberColumn("Level aimed for", format="%.1f"),
                "by_term": "By term",
                "level": "Level now",
                "status_words": "Status",
                "agreement": "Agreement",
            },
        )
    if "plan" in pages():
        st.page_link(pages()["plan"], label="Open the learning plan", icon=":material/flag:")


def show_plan_reminders(viewer: Viewer) -> None:
    """Home: what of the learning plans waits for this viewer (a plan the committee asked for, goals to agree)."""
    if viewer.has(Role.learner):
        opened = reads.learner_plans(viewer, viewer.person_id)
        asked = opened[(opened["goals"] == 0) & opened["decision_id"].notna() & opened["plan_open"]]
        if not asked.empty:
            st.info(
                "The committee's decision asks for a learning plan: write your goals on *My learning plan*.",
                icon=":material/flag:",
            )
        return
    if not viewer.has(Role.advisor):
        return
    waiting = reads.goals_waiting_for_agreement(viewer)
    if waiting.empty:
        return
    st.subheader("Learning plans waiting for your agreement")
    per = waiting.groupby(["learner_id", "learner_name", "cohort"], as_index=False).agg(goals=("goal_id", "count"))
    learner_table(
        per,
        "home.plans_waiting",
        {"learner_name": "Learner", "cohort": "Cohort", "goals": "Goals to agree"},
        page="plan",
        what="learning plan",
    )
