"""Framework: domains, competencies, level descriptors and term targets, as the YAML defines them."""

import pandas as pd
import streamlit as st

from pages.views.widgets import plain
from tracker import web
from tracker.access import Viewer


def render(viewer: Viewer) -> None:
    fw = web.framework()
    st.title(plain(fw.name))
    st.caption(
        f"Framework {plain(fw.id)}, version {plain(fw.version)} · graduation level {fw.calendar.graduation_level:g}"
    )
    st.dataframe(
        pd.DataFrame([(s.level, s.label, s.description) for s in fw.scale], columns=["Level", "Label", "Meaning"]),
        hide_index=True,
        key="framework.scale",
    )
    for d in fw.domains:
        with st.expander(f"{plain(d.name)} ({len(d.competencies)} competencies)"):
            st.markdown(plain(d.description))
            for c in d.competencies:
                st.markdown(f"**{plain(c.name)}** — {plain(c.description)}")
                st.dataframe(
                    pd.DataFrame(
                        [(lv.level, fw.level_label(lv.level), lv.descriptor) for lv in c.levels],
                        columns=["Level", "Label", "Descriptor"],
                    ),
                    hide_index=True,
                    key=f"framework.{c.id}",
                )
    st.subheader("Expected level by term")
    targets = pd.DataFrame(
        [
            {"Competency": c.name, **{t: fw.expected_level(cid, t) for t in fw.term_ids}}
            for cid, c in fw.competencies.items()
        ]
    )
    st.dataframe(targets, hide_index=True, key="framework.targets")
    st.caption(" · ".join(f"{plain(t.id)}: {plain(t.label)}" for t in fw.calendar.terms))
