"""Widgets several pages share: the learner picker, empty states, plain-text rendering."""

import re
import runpy
from pathlib import Path

import streamlit as st

from data_models import Role
from tracker import web
from tracker.access import Viewer, require_learner

PAGES: dict[str, st.Page] = {}  # filled by dashboard.py for the signed-in viewer
PAGE_PATHS = ("home", "progress", "self-assessment", "cohort", "import", "records", "framework")
LEARNER_KEY = "progress.learner_id"


def plain(text: object) -> str:
    """Escape Markdown so names and comments show as typed, never as formatting or links."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$&])", r"\\\1", str(text))


def pick_learner(viewer: Viewer, label: str = "Learner") -> str | None:
    """The learner this page is about: the viewer if a learner, else one of those they may see."""
    wanted = st.query_params.get("learner") or st.session_state.get(LEARNER_KEY)
    if wanted is not None:
        require_learner(web.cursor(), viewer, wanted)  # refuses, and logs, anything out of scope
    if viewer.has(Role.learner):
        return viewer.person_id
    learners = web.visible_learners(viewer)
    if learners.empty:
        st.info(
            "No learners to show yet. A coordinator imports learners and assigns advisors on the Records page "
            "or with `python -m tracker import learners FILE.csv`."
        )
        return None
    ids = learners["id"].tolist()
    names = dict(
        zip(learners["id"], learners["name"] + " · " + learners["cohort"] + " · " + learners["id"], strict=True)
    )
    if LEARNER_KEY not in st.session_state or st.session_state[LEARNER_KEY] not in ids:
        st.session_state[LEARNER_KEY] = wanted or ids[0]
    return st.selectbox(label, ids, format_func=names.__getitem__, key=LEARNER_KEY)


def saved_and_rerun(key: str, message: str) -> None:
    """After a write: clear cached figures, rerun so they show at once, and confirm on the next run."""
    web.saved()
    st.session_state[f"{key}.confirmation"] = message
    st.rerun()


def show_confirmation(key: str) -> None:
    if message := st.session_state.pop(f"{key}.confirmation", None):
        st.success(message)


def open_learner(learner_id: str) -> None:
    st.session_state[LEARNER_KEY] = learner_id
    st.switch_page(PAGES["progress"])


def level_text(value: object) -> str:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return "—" if f != f else f"{f:g}"


def run_entry_script() -> None:
    """Streamlit may run a file in pages/ directly (its legacy pages folder); go through sign-in instead."""
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "dashboard.py"), run_name="__main__")


if __name__ == "__main__":
    run_entry_script()
