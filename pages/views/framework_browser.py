"""Framework: domains, competencies, level descriptors and term targets, as the YAML defines them."""

import itertools

import pandas as pd
import streamlit as st

from data_models import Role
from pages.views.widgets import plain
from tracker.access.policy import Viewer
from tracker.web import reads


def render(viewer: Viewer) -> None:
    fw = reads.framework()
    st.title(plain(fw.name))
    st.caption(
        f"Framework {plain(fw.id)}, version {plain(fw.version)} · graduation level {fw.calendar.graduation_level:g}"
    )
    if viewer.has(Role.coordinator):
        _pending(fw.version)
    st.table(
        pd.DataFrame(
            [(f"{s.level:g}", plain(s.label), plain(s.description)) for s in fw.scale],
            columns=["Level", "Label", "Meaning"],
        ),
        hide_index=True,
    )
    for d in fw.domains:
        # a domain's descriptors are drawn when it is opened, and as plain tables: the browser draws a folded
        # element all the same, and an interactive table for each competency made the page settle late
        domain = st.expander(
            f"{plain(d.name)} ({len(d.competencies)} competencies)", key=f"framework.domain.{d.id}", on_change="rerun"
        )
        with domain:
            if domain.open:
                st.markdown(plain(d.description))
                for c in d.competencies:
                    st.markdown(f"**{plain(c.name)}** — {plain(c.description)}")
                    st.table(
                        pd.DataFrame(
                            [
                                (f"{lv.level:g}", plain(fw.level_label(lv.level)), plain(lv.descriptor))
                                for lv in c.levels
                            ],
                            columns=["Level", "Label", "Descriptor"],
                        ),
                        hide_index=True,
                    )
    st.subheader("Expected level by term")
    targets = pd.DataFrame(
        [
            {"Competency": plain(c.name), **{plain(t): f"{fw.expected_level(cid, t):g}" for t in fw.term_ids}}
            for cid, c in fw.competencies.items()
        ]
    )
    st.table(targets, hide_index=True)  # every row at once, and static: the browser draws it at once
    st.caption(" · ".join(f"{plain(t.id)}: {plain(t.label)}" for t in fw.calendar.terms))
    _versions()


def _pending(accepted: str) -> None:
    """For coordinators: a framework file that differs from the accepted version, what it changes, how to accept it."""
    waiting = reads.framework_pending()
    if waiting is None:
        return
    path = str(waiting.path)
    st.warning(
        f"The framework file {plain(path)} differs from the accepted version {plain(accepted)}. Nothing has "
        "changed: every page and command uses the accepted version until a coordinator accepts the new one.",
        icon=":material/pending:",
    )
    if waiting.problem:
        st.error("It cannot be accepted as it is:")
        st.text(waiting.problem)
    if waiting.revision is not None:
        changes = waiting.revision.frame()
        st.dataframe(
            changes,
            hide_index=True,
            key="framework.pending",
            column_config={
                "kind": "What",
                "change": "Change",
                "item": "Id",
                "detail": "Detail",
                "ratings": st.column_config.NumberColumn("Ratings touched"),
                "learners": st.column_config.NumberColumn("Learners touched"),
            },
        )
        if waiting.revision.homeless:
            with st.expander(f"{len(waiting.revision.homeless)} ratings would be left without a home"):
                st.text("\n".join(waiting.revision.homeless[:500]))
    st.markdown("Check it, then accept it on the server (stop the app first):")
    st.code(f"python -m tracker framework diff {path}\npython -m tracker framework upgrade {path}", language="sh")


def _versions() -> None:
    versions = reads.framework_versions()
    st.subheader("Versions")
    st.table(
        pd.DataFrame(
            [
                (
                    plain(v.framework.version),
                    plain(v.framework.name),
                    f"{v.accepted_at:%Y-%m-%d %H:%M}",
                    plain(v.accepted_by),
                )
                for v in reversed(versions)
            ],
            columns=["Version", "Name", "Accepted", "By"],
        ),
        hide_index=True,
    )
    for previous, current in itertools.pairwise(versions):
        with st.expander(
            f"Version {plain(current.framework.version)}: what changed since {plain(previous.framework.version)}"
        ):
            st.caption(
                "Ratings made under the earlier version keep their names in each learner's history; standings read "
                "them through this crosswalk."
            )
            st.dataframe(
                reads.crosswalk(previous.framework, current.framework),
                hide_index=True,
                key=f"framework.crosswalk.{current.framework.version}",
            )
