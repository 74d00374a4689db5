"""Review meetings: set one up with its agenda, discuss one learner at a time, decide, sign off, revise."""

import datetime as dt
from dataclasses import replace

import pandas as pd
import streamlit as st

from data_models import Framework, Role
from data_models.decisions import ON_TRACK
from pages.views.progress import outcome_label, show_decisions, show_records, show_standing
from pages.views.widgets import level_text, plain, save, saved_and_rerun, say, show_confirmation
from tracker.access.policy import Viewer
from tracker.web import reads, writes
from tracker.web.writes import Action, ConsensusLevel, Draft

NEW = "new"
ALL = "All"
KEY = "review"


def render(viewer: Viewer) -> None:
    st.title("Review meetings")
    fw = reads.framework()
    show_confirmation(KEY)
    meetings = reads.review_meetings(viewer)
    names = {NEW: "Set up a new meeting"} | {m.id: f"{m.held_on:%Y-%m-%d} · {m.title}" for m in meetings.itertuples()}
    # a meeting just set up, one named in the address, or the newest
    wanted = st.session_state.pop(f"{KEY}.open_meeting", None) or st.query_params.get("meeting")
    if wanted in names:
        st.session_state[f"{KEY}.meeting"] = wanted
    elif st.session_state.get(f"{KEY}.meeting") not in names:
        st.session_state[f"{KEY}.meeting"] = list(names)[1 if len(names) > 1 else 0]
    chosen = st.selectbox("Meeting", list(names), format_func=names.__getitem__, key=f"{KEY}.meeting")
    if chosen == NEW:
        _set_up(viewer, fw)
        return
    meeting = meetings[meetings["id"] == chosen].iloc[0]
    _meeting(viewer, fw, str(chosen), meeting)


# ---- setting a meeting up ----------------------------------------------------------------------
def _set_up(viewer: Viewer, fw: Framework) -> None:
    committee = reads.committee_members(viewer)
    if committee.empty:
        st.info("No staff member holds the committee role yet: import staff with the role `committee` first.")
        return
    staff = dict(zip(committee["id"], committee["name"], strict=True))
    learners = reads.visible_learners(viewer)
    c1, c2 = st.columns(2)
    title = c1.text_input("Title", key=f"{KEY}.title", placeholder="Progress committee, autumn review")
    period = c2.text_input("Review period", key=f"{KEY}.period", placeholder="End of Year 2 · Term 3")
    held_on = c1.date_input("Date", key=f"{KEY}.held_on", value=dt.date.today())
    cohort = c2.selectbox("Cohort", [ALL, *sorted(learners["cohort"].unique())], key=f"{KEY}.cohort")
    chair = c1.selectbox(
        "Chair",
        list(staff),
        index=list(staff).index(viewer.person_id) if viewer.person_id in staff else 0,
        format_func=staff.__getitem__,
        key=f"{KEY}.chair",
    )
    members = c2.multiselect(
        "Members", [s for s in staff if s != chair], format_func=staff.__getitem__, key=f"{KEY}.members"
    )
    modes = {"proposed": "The learners the app proposes", "cohort": "Every learner of the cohort"}
    mode = st.radio("Agenda", list(modes), format_func=modes.__getitem__, key=f"{KEY}.agenda_mode", horizontal=True)
    picked = None if cohort == ALL else cohort
    if mode == "cohort" and picked is None:
        st.info("Choose a cohort to review every one of its learners.")
        return
    agenda = reads.proposed_agenda(viewer, picked) if mode == "proposed" else reads.whole_cohort(viewer, str(picked))
    st.caption(
        f"{len(agenda)} learners, discussed in this order"
        + (
            ": those behind the expected levels, at risk of missing the graduation level, with a self–advisor gap of "
            "a level or more, or with no advisor rating yet this term (most reasons first)."
            if mode == "proposed"
            else "."
        )
    )
    st.dataframe(
        agenda,
        hide_index=True,
        key=f"{KEY}.proposed",
        column_config={"learner_id": "Id", "learner_name": "Learner", "cohort": "Cohort", "reasons": "Why listed"},
    )
    if st.button("Set up the meeting", key=f"{KEY}.create", type="primary"):

        def write() -> str:
            meeting_id = writes.create_meeting(viewer, title, held_on, period, chair, members, agenda, cohort=picked)
            st.session_state[f"{KEY}.open_meeting"] = meeting_id
            return f"The meeting is set up with {len(agenda)} learners on its agenda."

        save(KEY, write, (f"{KEY}.title", f"{KEY}.period", f"{KEY}.members"))


# ---- one meeting -------------------------------------------------------------------------------
def _meeting(viewer: Viewer, fw: Framework, meeting_id: str, meeting: pd.Series) -> None:
    everyone = reads.staff_names(viewer)
    staff = dict(zip(everyone["id"], everyone["name"], strict=True))
    others = ", ".join(staff.get(m, m) for m in meeting.members if m != meeting.chair_id)
    st.markdown(
        f"**{plain(meeting.title)}** · {meeting.held_on:%Y-%m-%d} · {plain(meeting.period)} · chair "
        f"**{plain(meeting.chair_name)}**"
        + (f" · members {plain(others)}" if others else "")
        + (" · signed off" if meeting.signed else " · open")
    )
    agenda = reads.meeting_agenda(viewer, meeting_id)
    shown = agenda.assign(
        draft_outcome=agenda["draft_outcome"].map(lambda o: outcome_label(fw, o) if isinstance(o, str) else ""),
        outcome=agenda["outcome"].map(lambda o: outcome_label(fw, o) if isinstance(o, str) else ""),
    )
    st.dataframe(
        shown[["position", "learner_name", "cohort", "reasons", "draft_outcome", "outcome"]],
        hide_index=True,
        key=f"{KEY}.agenda",
        column_config={
            "position": "#",
            "learner_name": "Learner",
            "cohort": "Cohort",
            "reasons": "Why listed",
            "draft_outcome": "Draft" if viewer.has(Role.committee) and not meeting.signed else None,
            "outcome": "Decision",
        },
    )
    if meeting.signed:
        st.success(f"Signed off on {meeting.signed_at:%Y-%m-%d}: these decisions are final.")
        _signed(viewer, fw, meeting_id)
        return
    seat = viewer.has(Role.committee) and viewer.person_id in {meeting.chair_id, *meeting.members}
    if not seat:
        st.info("The meeting is open: its members record the decisions, and its chair signs them off.")
        return
    _discuss(viewer, fw, meeting_id, agenda, staff)
    if viewer.person_id == meeting.chair_id:
        _sign_off(viewer, fw, meeting_id, agenda)


def _discuss(viewer: Viewer, fw: Framework, meeting_id: str, agenda: pd.DataFrame, staff: dict) -> None:
    ids = agenda["learner_id"].tolist()
    names = dict(zip(ids, agenda["learner_name"], strict=True))
    key = f"{KEY}.learner.{meeting_id}"
    if (wanted := st.session_state.pop(f"{KEY}.next_learner", None)) in ids:  # "Save and go to the next learner"
        st.session_state[key] = wanted
    if st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]
    st.subheader("Discuss")
    learner_id = st.selectbox(
        "Learner", ids, format_func=lambda i: f"{ids.index(i) + 1} of {len(ids)} · {names[i]}", key=key
    )
    reasons = agenda.set_index("learner_id").at[learner_id, "reasons"]
    st.caption(f"Listed because: {plain(reasons)}")
    draft = reads.meeting_draft(viewer, meeting_id, learner_id)
    view = reads.learner_progress(viewer, learner_id)
    with st.expander("The learner's packet", expanded=True):
        show_standing(viewer, fw, view, key=f"{KEY}.packet")
        show_decisions(fw, view.decisions, key=f"{KEY}.packet")
        show_records(view, False, fw, key=f"{KEY}.packet")
    _consensus(viewer, fw, meeting_id, learner_id, view.standing, draft)
    _actions(viewer, fw, meeting_id, learner_id, draft, staff | {learner_id: f"{names[learner_id]} (learner)"})
    _decision_form(viewer, fw, meeting_id, learner_id, draft, ids)


def _save(viewer: Viewer, fw: Framework, meeting_id: str, learner_id: str, draft: Draft) -> None:
    writes.save_draft(viewer, meeting_id, learner_id, draft)


def _consensus(
    viewer: Viewer, fw: Framework, meeting_id: str, learner_id: str, standing: pd.DataFrame, draft: Draft
) -> None:
    st.subheader("Consensus levels")
    changed = {c.competency_id: c for c in draft.levels}
    table = standing[["competency_id", "domain_name", "competency_name", "level", "expected"]].assign(
        consensus=standing["competency_id"].map(lambda c: changed[c].level if c in changed else None),
        comment=standing["competency_id"].map(lambda c: changed[c].comment if c in changed else ""),
    )
    table["consensus"] = table["consensus"].fillna(table["level"])
    st.dataframe(
        table.drop(columns="competency_id"),
        hide_index=True,
        key=f"{KEY}.consensus",
        column_config={
            "domain_name": "Domain",
            "competency_name": "Competency",
            "level": st.column_config.NumberColumn("Current level", format="%.1f"),
            "expected": st.column_config.NumberColumn("Expected now", format="%.1f"),
            "consensus": st.column_config.NumberColumn("Consensus", format="%.1f"),
            "comment": "Why changed",
        },
    )
    st.caption(
        "The consensus starts at the current levels. A change needs a comment; at sign-off it is recorded as a "
        "committee rating. Setting a competency back to its current level drops the change."
    )
    current = dict(zip(standing["competency_id"], standing["level"], strict=True))
    with st.form(f"{KEY}.level_form.{learner_id}"):
        cid = st.selectbox(
            "Competency",
            list(fw.competencies),
            format_func=lambda c: f"{fw.domain_of[c].name} · {fw.competencies[c].name}",
            key=f"{KEY}.level_competency",
        )
        level = st.selectbox(
            "Consensus level",
            fw.rating_levels,
            index=None,
            placeholder="Choose a level",
            format_func=lambda v: f"{v:g} · {fw.level_label(v)}",
            key=f"{KEY}.level_value",
        )
        comment = st.text_area("Why the committee changes it", key=f"{KEY}.level_comment", max_chars=10_000)
        submitted = st.form_submit_button("Set the consensus level", key=f"{KEY}.level_submit")
    if submitted:
        if level is None:
            say("error", "Choose a level: nothing was saved.")
            return
        kept = [c for c in draft.levels if c.competency_id != cid]
        now = current.get(cid)
        if now is None or now != now or float(now) != float(level):
            kept.append(ConsensusLevel(cid, float(level), comment or ""))
        proposed = replace(draft, levels=kept)

        def write() -> str:
            _save(viewer, fw, meeting_id, learner_id, proposed)
            return f"Consensus for {fw.competencies[cid].name}: level {float(level):g} (was {level_text(now)})."

        save(KEY, write, (f"{KEY}.level_value", f"{KEY}.level_comment"))


def _actions(viewer: Viewer, fw: Framework, meeting_id: str, learner_id: str, draft: Draft, owners: dict) -> None:
    st.subheader("Actions")
    if draft.actions:
        st.dataframe(
            pd.DataFrame(
                {
                    "Action": [a.action for a in draft.actions],
                    "Owner": [owners.get(a.owner_id, a.owner_id) for a in draft.actions],
                    "Due": [a.due_on for a in draft.actions],
                }
            ),
            hide_index=True,
            key=f"{KEY}.actions",
        )
        if st.button("Remove the last action", key=f"{KEY}.drop_action"):
            _save(viewer, fw, meeting_id, learner_id, replace(draft, actions=draft.actions[:-1]))
            saved_and_rerun(KEY, "The last action was removed.")
    with st.form(f"{KEY}.action_form.{learner_id}"):
        what = st.text_input("Action", key=f"{KEY}.action_text", max_chars=500)
        c1, c2 = st.columns(2)
        owner = c1.selectbox("Owner", list(owners), format_func=owners.__getitem__, key=f"{KEY}.action_owner")
        due = c2.date_input("Due", key=f"{KEY}.action_due", value=dt.date.today() + dt.timedelta(days=30))
        submitted = st.form_submit_button("Add the action", key=f"{KEY}.action_submit")
    if submitted:
        added = replace(draft, actions=[*draft.actions, Action(what or "", owner, due)])

        def write() -> str:
            _save(viewer, fw, meeting_id, learner_id, added)
            return "The action was added."

        save(KEY, write, (f"{KEY}.action_text",))


def _decision_form(
    viewer: Viewer, fw: Framework, meeting_id: str, learner_id: str, draft: Draft, ids: list[str]
) -> None:
    st.subheader("Decision")
    outcomes = list(fw.outcomes)
    with st.form(f"{KEY}.decision_form.{learner_id}"):
        outcome = st.selectbox(
            "Outcome",
            outcomes,
            index=outcomes.index(draft.outcome) if draft.outcome in outcomes else None,
            placeholder="Choose an outcome",
            format_func=lambda o: outcome_label(fw, o),
            key=f"{KEY}.outcome.{learner_id}",
        )
        rationale = st.text_area(
            "Rationale (required unless on track)",
            value=draft.rationale,
            key=f"{KEY}.rationale.{learner_id}",
            max_chars=10_000,
        )
        c1, c2 = st.columns(2)
        save_now = c1.form_submit_button("Save the decision", type="primary", key=f"{KEY}.save")
        save_next = c2.form_submit_button("Save and go to the next learner", key=f"{KEY}.save_next")
    if save_now or save_next:
        if outcome is not None and outcome != ON_TRACK and not (rationale or "").strip():
            say("error", "Write the rationale: every outcome but “on track” needs one. Nothing was saved.")
            return
        decided = replace(draft, outcome=outcome, rationale=rationale or "")

        def write() -> str:
            _save(viewer, fw, meeting_id, learner_id, decided)
            position = ids.index(learner_id)
            if save_next and position + 1 < len(ids):
                st.session_state[f"{KEY}.next_learner"] = ids[position + 1]
            return f"Saved the draft decision: {outcome_label(fw, outcome) if outcome else 'no outcome yet'}."

        save(KEY, write)


def _sign_off(viewer: Viewer, fw: Framework, meeting_id: str, agenda: pd.DataFrame) -> None:
    st.subheader("Sign-off")
    decided = int(agenda["draft_outcome"].notna().sum())
    st.caption(
        f"{decided} of {len(agenda)} learners have a decision. Signing off makes them final and shows them to "
        "each learner and their advisor; learners without a decision stay undecided in the minutes."
    )
    sure = st.checkbox("I sign these decisions off as the chair of the meeting", key=f"{KEY}.sure")
    if st.button("Sign off the decisions", key=f"{KEY}.sign_off", type="primary", disabled=not sure):

        def write() -> str:
            return f"Signed off: {len(writes.sign_off(viewer, meeting_id))} decisions are final."

        save(KEY, write, (f"{KEY}.sure",))


# ---- after sign-off ----------------------------------------------------------------------------
def _signed(viewer: Viewer, fw: Framework, meeting_id: str) -> None:
    decisions = reads.learner_decisions(viewer, meeting_id=meeting_id)
    st.subheader("Decisions")
    st.dataframe(
        decisions.assign(outcome=decisions["outcome"].map(lambda o: outcome_label(fw, o))),
        hide_index=True,
        key=f"{KEY}.decisions",
        column_config={
            "id": "Decision",
            "learner_id": None,
            "learner_name": "Learner",
            "cohort": "Cohort",
            "meeting_id": None,
            "meeting_title": None,
            "decided_on": st.column_config.DateColumn("Decided"),
            "outcome": "Outcome",
            "rationale": "Rationale",
            "actions": "Actions",
            "signed_by": None,
            "signed_by_name": "Signed by",
            "replaces": "Revises",
            "replaced_by": "Revised by",
            "current": "Current",
        },
    )
    if problem := reads.reports_unavailable():
        st.caption(f"Minutes unavailable: {plain(problem)}")
    else:
        st.download_button(
            "Download the minutes (PDF)",
            data=lambda: reads.meeting_minutes(viewer, meeting_id),
            file_name=f"{meeting_id}-minutes.pdf",
            mime="application/pdf",
            key=f"{KEY}.minutes",
            icon=":material/picture_as_pdf:",
        )
    if viewer.has(Role.committee):
        _revise(viewer, fw, decisions[decisions["current"]])


def _revise(viewer: Viewer, fw: Framework, current: pd.DataFrame) -> None:
    if current.empty:
        return
    st.subheader("Revise a decision")
    st.caption("A revision is a new decision that names the one it replaces; the signed decision stays on record.")
    names = dict(
        zip(
            current["id"],
            current["learner_name"] + " · " + current["outcome"].map(lambda o: outcome_label(fw, o)),
            strict=True,
        )
    )
    outcomes = list(fw.outcomes)
    with st.form(f"{KEY}.revise_form"):
        replaces = st.selectbox("Decision", list(names), format_func=names.__getitem__, key=f"{KEY}.revise_which")
        outcome = st.selectbox(
            "New outcome", outcomes, format_func=lambda o: outcome_label(fw, o), key=f"{KEY}.revise_outcome"
        )
        rationale = st.text_area("Why it changes", key=f"{KEY}.revise_rationale", max_chars=10_000)
        submitted = st.form_submit_button("Record the revision", key=f"{KEY}.revise_submit")
    if submitted:

        def write() -> str:
            writes.revise_decision(viewer, replaces, outcome, rationale or "")
            return f"Recorded the revision: {outcome_label(fw, outcome)}."

        save(KEY, write, (f"{KEY}.revise_rationale",))
