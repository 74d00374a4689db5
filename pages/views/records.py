"""Records and audit: a coordinator's exports and the append-only log of every write."""

import datetime as dt
from functools import partial

import streamlit as st

from tracker.access.policy import Viewer
from tracker.web import reads


def render(viewer: Viewer) -> None:
    st.title("Records and audit")
    st.subheader("Export")
    st.caption("Each file is in the format `python -m tracker import` reads back.")
    kinds = ("learners", "staff", "ratings", "evidence", "meetings", "decisions", "goals")
    cols = st.columns(len(kinds))
    for col, kind in zip(cols, kinds, strict=True):
        col.download_button(
            f"{kind.capitalize()} CSV",
            partial(reads.export_records, viewer, kind),
            file_name=f"{kind}.csv",
            mime="text/csv",
            key=f"records.export_{kind}",
        )
    st.subheader("Audit log")
    c1, c2, c3 = st.columns([1, 2, 1])
    person = c1.text_input("Person (id)", key="records.audit_person", placeholder="e.g. L001 or A002").strip()
    chosen = c2.multiselect("Actions", reads.audit_actions(viewer), key="records.audit_actions")
    dates = c3.date_input("Between", value=[], key="records.audit_dates", format="YYYY-MM-DD")
    since, until = [*dates, None, None][:2] if isinstance(dates, tuple | list) else (dates, dates)
    log = reads.audit_log(
        viewer,
        person=person or None,
        actions=chosen or None,
        since=since if isinstance(since, dt.date) else None,
        until=until if isinstance(until, dt.date) else None,
    )
    matching = log.attrs.get("matching", len(log))
    st.caption(
        f"{matching:,} entries match"
        + (
            f"; the newest {len(log):,} are shown: narrow the filters to see older ones."
            if matching > len(log)
            else "."
        )
    )
    st.dataframe(
        log,
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
        "Download these entries as CSV",
        reads.download_csv(log),
        file_name="audit-log.csv",
        mime="text/csv",
        key="records.audit_download",
    )
