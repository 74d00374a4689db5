"""Self-assessment: a learner rates a competency against its level descriptors, with reflection and evidence."""

import streamlit as st

from data_models import Framework
from pages.views.widgets import (
    level_and_term,
    level_text,
    pick_competency,
    plain,
    save,
    say,
    show_confirmation,
    show_descriptors,
)
from tracker.access.policy import Viewer
from tracker.web import reads, writes


def render(viewer: Viewer) -> None:
    st.title("Self-assessment")
    fw = reads.framework()
    learner_id = viewer.person_id
    cid = pick_competency(fw, "self.competency")
    comp = fw.competencies[cid]
    st.markdown(f"*{plain(comp.description)}*")
    show_descriptors(fw, cid)

    evidence = reads.evidence_items(viewer, learner_id)
    mine = evidence[evidence["counts_for"].map(lambda ids: cid in list(ids))]
    with st.form("self.form"):
        level, term = level_and_term(fw, learner_id, "My level now", None, "self.level", "self.term")
        reflection = st.text_area(
            "Reflection",
            key="self.reflection",
            max_chars=10_000,
            placeholder="What did you do, what happened, what will you do next?",
        )
        linked = st.multiselect(
            "Evidence for this competency",
            mine["id"].tolist(),
            key="self.evidence",
            format_func=dict(zip(evidence["id"], evidence["title"], strict=True)).__getitem__,
        )
        submitted = st.form_submit_button("Save self-assessment", type="primary")
    if submitted and level is None:
        say("error", "Choose the level that fits you now before saving: nothing was saved.")
    elif submitted and level is not None:
        chosen = float(level)

        def write() -> str:
            rating = writes.record_rating(viewer, learner_id, cid, chosen, term, reflection or "", linked)
            return f"Saved your self-assessment of {comp.name}: level {rating.level:g} ({fw.term_name(term)})."

        save("self.rate", write, ("self.level", "self.reflection", "self.evidence"))
    show_confirmation("self.rate")

    st.subheader("Your ratings of this competency next to your advisor's")
    history = reads.rating_history(viewer, learner_id, competency_id=cid)
    live = history[~history["superseded"]]
    if live.empty:
        st.info("No ratings of this competency yet.")
    else:
        by_term = live.pivot_table(
            index=["term_index", "term"], columns="rater_role", values="level", aggfunc="first"
        ).reset_index()
        for col in ("self", "advisor", "committee"):
            if col not in by_term:
                by_term[col] = float("nan")  # blank, not "None"
        st.dataframe(
            by_term[["term", "self", "advisor", "committee"]],
            hide_index=True,
            key="self.history",
            column_config={"term": "Term", "self": "Self", "advisor": "Advisor", "committee": "Committee"},
        )
        latest = live.iloc[0]
        st.caption(f"Latest: {latest.rater_role} level {level_text(latest.level)} on {latest.rated_on:%Y-%m-%d}.")

    _add_evidence(viewer, fw)


def _add_evidence(viewer: Viewer, fw: Framework) -> None:
    with st.expander("Add evidence to your portfolio"):
        with st.form("self.evidence_form"):
            title = st.text_input("Title", key="self.ev_title")
            type_id = st.selectbox(
                "Type",
                fw.evidence_type_ids,
                key="self.ev_type",
                format_func=dict((e.id, e.label) for e in fw.evidence_types).__getitem__,
            )
            comps = st.multiselect(
                "Competencies it shows",
                list(fw.competencies),
                key="self.ev_competencies",
                format_func=lambda c: fw.competencies[c].name,
            )
            url = st.text_input("Link (portfolio, document, publication)", key="self.ev_url")
            description = st.text_area("Description", key="self.ev_description")
            added = st.form_submit_button("Add evidence")
        if added:

            def write() -> str:
                item = writes.record_evidence(
                    viewer,
                    type_id,
                    title or "",
                    comps,
                    url or "",
                    description or "",
                )
                return f"Added evidence: {item.title}."

            save(
                "self.evidence",
                write,
                ("self.ev_title", "self.ev_competencies", "self.ev_url", "self.ev_description"),
            )
        show_confirmation("self.evidence")
