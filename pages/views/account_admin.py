"""Accounts: a coordinator sees every person's account state and invites, resets, unlocks, disables, enables."""

import pandas as pd
import streamlit as st

from pages.views.widgets import say, show_confirmation
from tracker.access.policy import Viewer
from tracker.web import reads, session, writes

LINKS_KEY = "accounts.handed_out"
ROLES = ["learner", "advisor", "committee", "coordinator"]


def render(viewer: Viewer) -> None:
    st.title("Accounts")
    st.caption(
        "Invite people to set their own password with a one-time link, or send a new link to someone who lost "
        "theirs. "
        + ("Links go out by e-mail." if session.mail_configured() else "E-mail is not set up: hand the links out.")
    )
    show_confirmation("accounts")
    _links_to_hand_out()
    c1, c2, c3 = st.columns(3)
    cohort = c1.selectbox("Cohort", [None, *reads.account_cohorts(viewer)], format_func=_or_all, key="accounts.cohort")
    role = c2.selectbox("Role", [None, *ROLES], format_func=_or_all, key="accounts.role")
    state = c3.selectbox("State", [None, *reads.ACCOUNT_STATES], format_func=_or_all, key="accounts.state")
    people = reads.account_overview(viewer, cohort, role, state)
    counts = people["state"].value_counts()
    st.caption(f"{len(people):,} shown: " + ", ".join(f"{counts[s]} {s}" for s in reads.ACCOUNT_STATES if s in counts))
    st.dataframe(
        people,
        hide_index=True,
        key="accounts.table",
        column_config={
            "person_id": "Id",
            "name": "Name",
            "roles": "Roles",
            "cohort": "Cohort",
            "email": "E-mail",
            "username": "User name",
            "state": "Account",
            "link_expires": st.column_config.DatetimeColumn("Link valid until (UTC)"),
            "last_sign_in": st.column_config.DatetimeColumn("Last sign-in (UTC)"),
        },
    )
    without = people.loc[people["state"] == "none", "person_id"].tolist()
    if st.button(
        f"Invite everyone shown without an account ({len(without)})",
        key="accounts.invite_all",
        disabled=not without,
        type="primary",
    ):
        _send_links(viewer, without)
    st.subheader("Selected people")
    _act_on_selection(viewer, people)


def _or_all(value: str | None) -> str:
    return "All" if value is None else value


def _act_on_selection(viewer: Viewer, people: pd.DataFrame) -> None:
    labels = dict(
        zip(people["person_id"], people["name"] + " · " + people["person_id"] + " · " + people["state"], strict=True)
    )
    chosen = st.multiselect("People", list(labels), format_func=labels.__getitem__, key="accounts.chosen")
    rows = people[people["person_id"].isin(chosen)]
    usernames = rows["username"].dropna().tolist()
    b1, b2, b3, b4 = st.columns(4)
    if b1.button("Send an invitation or reset link", key="accounts.send", disabled=not chosen):
        _send_links(viewer, sorted(set(chosen)))
    for column, label, key, act in (
        (b2, "Unlock (forget failed sign-ins)", "accounts.unlock", "unlock"),
        (b3, "Disable", "accounts.disable", "disable"),
        (b4, "Enable", "accounts.enable", "enable"),
    ):
        if column.button(label, key=key, disabled=not usernames):
            for username in usernames:
                if act == "unlock":
                    writes.unlock(viewer, username)
                else:
                    writes.change_disabled(viewer, username, act == "disable")
            _done(f"{act.capitalize()}d {len(usernames)} account(s): {', '.join(usernames)}.")


def _send_links(viewer: Viewer, person_ids: list[str]) -> None:
    issued = writes.send_links(viewer, person_ids)
    mailed = sum(i.mailed for i in issued)
    table = reads.links_table(issued)
    st.session_state[LINKS_KEY] = table
    below = " (below)" if len(table) else ""
    _done(f"{len(issued)} link(s) made: {mailed} sent by e-mail, {len(table)} to hand out{below}.")


def _done(message: str) -> None:
    st.session_state["accounts.confirmation"] = message
    st.rerun()


def _links_to_hand_out() -> None:
    """The links of the last action that were not mailed: shown once, to hand out; stored only hashed."""
    table = st.session_state.get(LINKS_KEY)
    if table is None or table.empty:
        return
    st.subheader("Links to hand out")
    st.caption(
        "Each link works once, until the time shown. Give each person their own link by a private channel; "
        "this list is not kept: download it now if you need it later."
    )
    for note in sorted(set(table["note"]) - {"", "e-mail is not set up"}):
        say("warning", note)
    st.dataframe(table, hide_index=True, key="accounts.links_table")
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download the links (CSV)",
        reads.download_csv(table),
        file_name="account-links.csv",
        mime="text/csv",
        key="accounts.links_download",
    )
    if c2.button("Forget this list", key="accounts.links_forget"):
        st.session_state.pop(LINKS_KEY, None)
        st.rerun()
