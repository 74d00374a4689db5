"""Widgets several pages share: the learner picker, empty states, plain-text rendering."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import streamlit as st

from data_models import Framework, Role
from tracker.access.policy import Viewer
from tracker.core.errors import TrackerError
from tracker.core.text import markdown_escaped
from tracker.web import reads, session

PICKER_LIMIT = 500  # a picker lists at most this many learners; beyond, a search box narrows the list first
LEARNER_KEY = "progress.learner_id"


def pages() -> dict[str, st.Page]:
    """This session's pages by address, filled by the navigation for the signed-in viewer (a session's own: the
    pages of one viewer are never another session's)."""
    return st.session_state.setdefault("nav.pages", {})


def plain(text: object) -> str:
    """Escape Markdown so names and comments show as typed, never as formatting or links."""
    return markdown_escaped(text)


def say(kind: Literal["error", "warning", "info", "success"], text: object) -> None:
    """Every message whose words may hold text from a person, a file or an address: shown as text."""
    icons = {"error": ":material/block:", "warning": ":material/warning:", "info": None, "success": None}
    getattr(st, kind)(markdown_escaped(text), icon=icons[kind])


def pick_learner(viewer: Viewer, label: str = "Learner") -> str | None:
    """The learner this page is about: the viewer if a learner, else one of those they may see."""
    wanted = st.query_params.get("learner") or st.session_state.get(LEARNER_KEY)
    if wanted is not None:
        reads.require_learner(viewer, wanted)  # refuses, and logs, anything out of scope
    if viewer.has(Role.learner):
        return viewer.person_id
    learners = reads.visible_learners(viewer)
    if learners.empty:
        st.info(
            "No learners to show yet. A coordinator imports learners and assigns advisors on the Import records page "
            "or with `python -m tracker import learners FILE.csv`."
        )
        return None
    if viewer.has(Role.advisor):  # an advisor who also sees the program starts with their own advisees
        own = learners["advisor_id"] == viewer.person_id
        learners = pd.concat([learners[own], learners[~own]])
    current = wanted if wanted in set(learners["id"]) else None
    return choose_learner(learners, LEARNER_KEY, label, current)


def choose_learner(learners: pd.DataFrame, key: str, label: str = "Learner", current: str | None = None) -> str | None:
    """A picker of learners (rows of visible_learners). A program of hundreds lists them all; a larger one
    (a consortium) first asks for part of a name, id or cohort, and lists the first matches."""
    shown = learners
    if len(learners) > PICKER_LIMIT:
        text = st.text_input(
            f"Find a learner among {len(learners):,}", key=f"{key}.find", placeholder="Part of a name, id or cohort"
        )
        needle = text.strip().casefold()
        haystack = (learners["name"] + " " + learners["id"] + " " + learners["cohort"]).str.casefold()
        found = learners[haystack.str.contains(needle, regex=False)] if needle else learners.head(0)
        shown = found.head(PICKER_LIMIT)
        if current is not None and current not in set(shown["id"]):
            shown = pd.concat([learners[learners["id"] == current], shown])
        if shown.empty:
            st.info(
                "Type part of a learner's name, id or cohort to list them." if not needle else "No learner matches."
            )
            return None
        if len(found) > PICKER_LIMIT:
            st.caption(f"The first {PICKER_LIMIT} of {len(found):,} matches; type more to narrow them.")
    ids = shown["id"].tolist()
    names = dict(zip(shown["id"], shown["name"] + " · " + shown["cohort"] + " · " + shown["id"], strict=True))
    if key not in st.session_state or st.session_state[key] not in ids:
        st.session_state[key] = current if current in ids else ids[0]
    return st.selectbox(label, ids, format_func=names.__getitem__, key=key)


def pick_competency(fw: Framework, key: str) -> str:
    """A competency of the framework, named with its domain."""
    return st.selectbox(
        "Competency",
        list(fw.competencies),
        key=key,
        format_func=lambda c: f"{fw.domain_of[c].name} · {fw.competencies[c].name}",
    )


def term_names(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """`frame` with the term ids in `columns` named as every page names a term: "Year 2 · Term 2 (T5)"."""
    fw = reads.framework()
    known = set(fw.term_ids)
    return frame.assign(**{c: frame[c].map(lambda t: fw.term_name(t) if t in known else t) for c in columns})


def show_descriptors(fw: Framework, competency_id: str) -> None:
    for lv in fw.competencies[competency_id].levels:
        st.markdown(f"**{lv.level} · {plain(fw.level_label(lv.level))}** — {plain(lv.descriptor)}")


def level_and_term(
    fw: Framework, learner_id: str, label: str, start: float | None, level_key: str, term_key: str
) -> tuple[float | None, str]:
    """The level and term fields of a rating form: levels named by the scale, starting at `start` (the current
    level) or empty, never at a guess; the term defaults to the learner's current term."""
    levels = fw.rating_levels
    level = st.selectbox(
        label,
        levels,
        index=levels.index(start) if start in levels else None,
        placeholder="Choose a level",
        key=level_key,
        format_func=lambda v: f"{v:g} · {fw.level_label(v)}",
    )
    term_default = reads.current_term(learner_id)
    term = st.selectbox(
        "Term",
        fw.term_ids,
        index=fw.term_ids.index(term_default),
        key=term_key,
        format_func=fw.term_name,
    )
    return level, term


def saved_and_rerun(key: str, message: str, fields: tuple[str, ...] = ()) -> None:
    """After a write (tracker/web/writes.py, which has the figures it changed drawn again): the form's `fields`
    (widget keys; a form that failed keeps what was typed) empty, and the page reruns so the figures show at once,
    with the confirmation."""
    for field in fields:
        st.session_state.pop(field, None)
    st.session_state[f"{key}.confirmation"] = message
    st.rerun()


def save(key: str, write: Callable[[], str], fields: tuple[str, ...] = ()) -> None:
    """A form's save: `write` stores (through tracker/web/writes.py) and returns the confirmation; a refusal is
    shown beside the form, which keeps what was typed (the page goes on)."""
    try:
        message = write()
    except TrackerError as exc:
        say("error", exc)
        return
    saved_and_rerun(key, message, fields)


def show_confirmation(key: str) -> None:
    if message := st.session_state.pop(f"{key}.confirmation", None):
        say("success", message)


def open_learner(learner_id: str, page: str = "progress") -> None:
    st.session_state[LEARNER_KEY] = learner_id
    st.switch_page(pages()[page])


def learner_table(frame: pd.DataFrame, key: str, columns: dict, page: str = "progress", what: str = "progress") -> None:
    """A table of learners (a `learner_id` column beside the `columns` shown); selecting a row opens that learner
    on `page`."""
    shown = frame[list(columns)]
    event = st.dataframe(
        term_names(shown, "current_term") if "current_term" in columns else shown,
        hide_index=True,
        key=key,
        column_config=columns,
        on_select="rerun",
        selection_mode="single-row",
    )
    rows = event.selection.rows if event else []
    if rows and page in pages():
        open_learner(frame.iloc[rows[0]]["learner_id"], page)
    st.caption(f"Select a row to open the learner's {what}.")


def chart(builder: Callable[..., Any], *args: Any, key: str, where: Any = st, **kwargs: Any) -> None:
    """Draw a chart of tracker/reports/charts.py (`builder` with its arguments) from its kept spec (reads.chart), in `where`
    (a column or container; the page by default)."""
    where.vega_lite_chart(spec=reads.chart(builder, *args, **kwargs), key=key)


def level_text(value: object) -> str:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return "—" if f != f else f"{f:g}"


CARDS_PER_PAGE = 6


def learner_cards(frame: pd.DataFrame, key: str, lines: Callable[[dict], list[str]]) -> None:
    """Learners (rows with learner_id, learner_name, cohort, maybe current_term) as cards, each with what it is
    about in wrapped lines (Markdown, already escaped) and a button that opens the learner's progress; a page of
    CARDS_PER_PAGE at a time, so a long list never pushes the rest of the page down."""
    fw = reads.framework()
    pages = max(1, -(-len(frame) // CARDS_PER_PAGE))
    page = min(int(st.session_state.get(f"{key}.page", 1) or 1), pages)
    shown = frame.iloc[(page - 1) * CARDS_PER_PAGE : page * CARDS_PER_PAGE]
    for row in shown.to_dict("records"):
        with st.container(border=True, key=f"{key}.card.{row['learner_id']}"):
            text, action = st.columns([6, 1], vertical_alignment="center")
            term = row.get("current_term")
            where = (
                f" · assessed up to {plain(fw.term_name(term))}"
                if isinstance(term, str) and term in fw.term_ids
                else ""
            )
            items = "".join(f"\n- {line}" for line in lines(row))
            text.markdown(f"**{plain(row['learner_name'])}** · {plain(row['cohort'])}{where}\n{items}")
            if action.button("Open", key=f"{key}.open.{row['learner_id']}", icon=":material/open_in_new:"):
                open_learner(row["learner_id"])
    if pages > 1:
        left, right = st.columns([1, 5], vertical_alignment="center")
        left.number_input("Page", min_value=1, max_value=pages, step=1, key=f"{key}.page")
        right.caption(f"{len(shown)} of {len(frame)} shown, page {page} of {pages}.")


PASSWORD_RULES = (
    f"At least {session.PASSWORD_MIN_LENGTH} characters; a few unrelated words make a good one. Common passwords and ones "
    "built from your name, user name or e-mail are refused."
)


@dataclass(frozen=True)
class NewPassword:
    typed: str
    repeated: str

    def confirmed(self) -> str | None:
        """The new password when both fields agree; else says so (nothing is changed) and gives None."""
        if self.typed != self.repeated:
            say("error", "The two new passwords differ; nothing was changed.")
            return None
        return self.typed


def new_password(key: str, rules_also: str = "") -> NewPassword:
    """Inside a form: the rules of a good password, then the new password twice (`key`.new, `key`.repeat); marked
    as a new password, so a browser may offer to generate and keep one."""
    st.caption(f"{PASSWORD_RULES} {rules_also}".strip())
    typed = st.text_input("New password", type="password", key=f"{key}.new", autocomplete="new-password")
    repeated = st.text_input(
        "Repeat the new password", type="password", key=f"{key}.repeat", autocomplete="new-password"
    )
    return NewPassword(typed or "", repeated or "")
