"""Import records: a coordinator uploads learners, staff, evidence or ratings (CSV or Excel), previews, commits."""

import streamlit as st

from pages.views.widgets import say
from tracker.access.policy import Viewer
from tracker.core.errors import ImportProblems
from tracker.web import reads, writes


def render(viewer: Viewer) -> None:
    st.title("Import records")
    st.caption(
        "A file lands whole or not at all: every row is checked first, and any problem is listed with its row, "
        "field and reason. Import staff first, then learners, evidence and ratings. Nothing is overwritten: a "
        "correction is a new rating row whose `corrects` names the rating it replaces."
    )
    kind = st.selectbox("Kind of records", reads.import_kinds(), key="import.kind")
    st.download_button(
        f"Template for {kind} (CSV)",
        reads.import_template(kind),
        file_name=f"{kind}-template.csv",
        mime="text/csv",
        key="import.template",
    )
    upload = st.file_uploader("CSV (UTF-8) or Excel (.xlsx) file", type=["csv", "xlsx"], key="import.file")
    if upload is None:
        st.info("Choose a file to preview and check it. Lists inside a cell are separated by `;`.")
        return
    try:
        text = reads.uploaded_text(upload.name, upload.getvalue())
        st.subheader("Preview")
        st.dataframe(reads.import_preview(text), hide_index=True, key="import.preview")
        checked = writes.import_records(viewer, kind, text, upload.name, dry_run=True)
    except ImportProblems as exc:
        say(
            "error",
            f"{len(exc.problems)} problem(s) in {upload.name}; nothing was imported. Fix them and upload again.",
        )
        st.dataframe({"problem": exc.problems}, hide_index=True, key="import.problems")
        return
    note = f" ({checked.unchanged} already present and identical)" if checked.unchanged else ""
    say("success", f"{upload.name} is ready: {checked.added} new {kind}{note}.")
    if st.button(f"Import {checked.added} {kind}", type="primary", key="import.commit", disabled=checked.added == 0):
        bar = st.progress(0.0, text="Checking every row")

        def show_progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Checked {done} of {total} rows")

        result = writes.import_records(
            viewer,
            kind,
            text,
            upload.name,
            dry_run=False,
            progress=show_progress,
        )
        bar.progress(1.0, text="Done")
        say("success", f"Imported {result.added} {kind} from {upload.name}.")
