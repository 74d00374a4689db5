"""Records and audit: a coordinator's exports and the append-only log of every write."""

import streamlit as st

from data_models import Role
from tracker import queries, web
from tracker.access import Viewer, require_role


def render(viewer: Viewer) -> None:
    require_role(web.cursor(), viewer, Role.coordinator)
    st.title("Records and audit")
    st.subheader("Export")
    st.caption("Each file is in the format `python -m tracker import` reads back.")
    cols = st.columns(4)
    for col, kind in zip(cols, ("learners", "staff", "ratings", "evidence"), strict=True):
        col.download_button(
            f"{kind.capitalize()} CSV",
            queries.export_records(web.cursor(), viewer, kind).encode("utf-8"),
            file_name=f"{kind}.csv",
            mime="text/csv",
            key=f"records.export_{kind}",
        )
    st.subheader("Audit log")
    log = queries.audit_log(web.cursor(), viewer)
    actions = sorted(log["action"].unique())
    chosen = st.multiselect("Actions", actions, key="records.audit_actions")
    shown = log[log["action"].isin(chosen)] if chosen else log
    st.dataframe(
        shown,
        hide_index=True,
        key="records.audit",
        column_config={
            "seq": "No.",
            "occurred_at": st.column_config.DatetimeColumn("When (UTC)"),
            "actor": "Who",
            "action": "What",
            "target": "On",
            "detail": "Detail",
        },
    )
    st.download_button(
        "Download the audit log as CSV",
        web.download_csv(shown),
        file_name="audit-log.csv",
        mime="text/csv",
        key="records.audit_download",
    )


if __name__ == "__main__":  # run directly as a legacy page: go through the entry script and its sign-in
    from pages._widgets import run_entry_script

    run_entry_script()
