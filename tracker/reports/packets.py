"""PDF packets built from the queries and charts: one learner's report for a committee or advising meeting.

Charts are rendered offline (vl-convert) to PNG; text uses a Unicode font (DejaVu Sans, with a CJK font as
fallback) so names and comments in any script print as written.
"""

import datetime as dt
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import pandas as pd
import vl_convert as vlc
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from data_models import Framework
from tracker.access.policy import Viewer
from tracker.analysis import coverage, forecast, queries
from tracker.core.errors import TrackerError
from tracker.plans import plan_queries
from tracker.reports import charts
from tracker.review import review_queries
from tracker.storage.database import Cursor

FONT_DIRS = [Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"), Path("/usr/local/share/fonts")]
REGULAR = ["dejavu/DejaVuSans.ttf", "DejaVuSans.ttf"]
BOLD = ["dejavu/DejaVuSans-Bold.ttf", "DejaVuSans-Bold.ttf"]
CJK = ["wqy/wqy-microhei.ttc", "wqy-microhei.ttc", "wqy/wqy-zenhei.ttc"]


@dataclass(frozen=True)
class Fonts:
    regular: Path
    bold: Path
    cjk: Path | None


def find_fonts() -> Fonts:
    """The Unicode fonts to embed; TRACKER_REPORT_FONT names a regular TTF to use instead of DejaVu Sans."""

    def first(names: list[str]) -> Path | None:
        return next((d / n for d in FONT_DIRS for n in names if (d / n).exists()), None)

    custom = os.environ.get("TRACKER_REPORT_FONT")
    regular = Path(custom) if custom else first(REGULAR)
    if regular is None or not regular.exists():
        raise TrackerError(
            "No Unicode font for PDF reports: install DejaVu Sans (Debian: apt-get install fonts-dejavu-core) "
            "or set TRACKER_REPORT_FONT to a .ttf file."
        )
    return Fonts(regular, first(BOLD) or regular, first(CJK))


class _Report(FPDF):
    def __init__(self, title: str, fonts: Fonts):
        super().__init__(format="A4")
        self.report_title = title
        self.add_font("Body", "", str(fonts.regular))
        self.add_font("Body", "B", str(fonts.bold))
        if fonts.cjk:
            self.add_font("CJK", "", str(fonts.cjk))
            self.set_fallback_fonts(["CJK"])
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Body", "", 8)
        self.cell(0, 6, f"{self.report_title} · page {self.page_no()}", align="C")

    def heading(self, text: str, size: int = 13) -> None:
        self.ln(2)
        self.set_font("Body", "B", size)
        self.multi_cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("Body", "", 9)

    def paragraph(self, text: str, size: int = 9) -> None:
        self.set_font("Body", "", size)
        self.multi_cell(0, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def grid(self, frame: pd.DataFrame, widths: tuple[int, ...]) -> None:
        self.set_font("Body", "", 8)
        with self.table(col_widths=widths, text_align="LEFT", line_height=4.5, first_row_as_headings=True) as table:
            table.row([str(c) for c in frame.columns])
            for values in frame.itertuples(index=False):
                table.row(["—" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values])

    def chart(self, chart: alt.TopLevelMixin, width_mm: float) -> None:
        # not checked against the schema again: the chart builders' specs are (tests/test_charts.py), and the check
        # was a fifth of a cohort report's time
        png = vlc.vegalite_to_png(json.dumps(chart.to_dict(validate=False)), scale=2)
        self.image(io.BytesIO(png), w=width_mm)


def _fmt(value: object, pattern: str = "{:.1f}") -> str:
    return "—" if value is None or (isinstance(value, float) and value != value) else pattern.format(value)


def learner_report(cur: Cursor, viewer: Viewer, fw: Framework, learner_id: str, priors: forecast.Priors) -> bytes:
    """One learner's packet: standing, competencies, trajectories, forecast, self vs advisor, coverage against the
    assessment plan, decisions, the learning plan's goals, comments, evidence."""
    standing = queries.competency_standing(cur, viewer, learner_id=learner_id)
    domains = queries.domain_standing(standing)
    per_competency = queries.growth_forecast(cur, viewer, priors, fw, learner_id=learner_id)
    table = forecast.with_forecast(standing, per_competency)
    traj = queries.trajectory(cur, viewer, learner_id)
    history = queries.rating_history(cur, viewer, learner_id)
    evidence = queries.evidence_items(cur, viewer, learner_id)
    calibration = queries.calibration(cur, viewer, learner_id=learner_id)
    first = standing.iloc[0]
    target = fw.calendar.graduation_level

    pdf = _Report(f"{first.learner_name} · {fw.name}", find_fonts())
    pdf.add_page()
    pdf.heading(f"Learner report: {first.learner_name}", 16)
    pdf.paragraph(
        f"{first.learner_id} · cohort {first.cohort} · status {first.status} · assessed up to "
        f"{fw.term_label(first.current_term)} ({first.current_term}) · framework {fw.id} {fw.version} · "
        f"prepared {dt.date.today():%Y-%m-%d} by {viewer.name}"
    )
    pdf.heading("Standing per domain")
    dom = domains.merge(
        forecast.domain_forecast(per_competency, fw)[["domain_id", "forecast", "p_reach"]], on="domain_id", how="left"
    )
    pdf.grid(
        pd.DataFrame(
            {
                "Domain": dom["domain_name"],
                "Level": dom["level"].map(_fmt),
                "Expected now": dom["expected"].map(_fmt),
                "Level − expected": dom["vs_expected"].map(lambda v: _fmt(v, "{:+.1f}")),
                "Forecast at graduation": dom["forecast"].map(_fmt),
                f"Chance of reaching {target:g}": dom["p_reach"].map(lambda v: _fmt(v, "{:.0%}")),
            }
        ),
        (60, 18, 22, 24, 28, 28),
    )
    pdf.ln(2)
    domain_chart = charts.domain_standing_chart(domains, fw.min_level, fw.max_level)
    pdf.chart(domain_chart.properties(width=480), 160)  # wide enough for two-line names beside the bars

    pdf.heading("Competencies")
    pdf.grid(
        pd.DataFrame(
            {
                "Competency": table["competency_name"],
                "Advisor": table["level"].map(_fmt),
                "Self": table["self_level"].map(_fmt),
                "Self − advisor": table["self_gap"].map(lambda v: _fmt(v, "{:+.1f}")),
                "Expected": table["expected"].map(_fmt),
                "Standing": table["standing"],
                "Forecast": table["forecast"].map(_fmt),
                "Evidence": table["evidence_count"],
            }
        ),
        (58, 16, 14, 18, 18, 20, 18, 18),
    )
    carried = table[table["carried_from"].notna()]
    if not carried.empty:
        pdf.paragraph(
            "Carried over from an earlier framework version: "
            + "; ".join(f"{r.competency_name} ({r.carried_from})" for r in carried.itertuples()),
            8,
        )

    pdf.add_page()
    pdf.heading("Trajectories by domain (forecast to graduation dashed, with its 80% band)")
    for d in fw.domains:
        line = queries.trajectory_of(traj, domain_id=d.id)
        outlook = forecast.line_outlook(per_competency, fw, domain_id=d.id)
        band = (
            None
            if outlook is None
            else charts.outlook_frame(
                outlook["last_term"], outlook["last_level"], outlook["final_term"], outlook["forecast"], outlook["sd"]
            )
        )
        pdf.chart(
            charts.trajectory_chart(line, fw.min_level, fw.max_level, d.name, band).properties(width=420, height=150),
            165,
        )

    pdf.heading("Self-assessment against advisor ratings")
    if calibration.empty:
        pdf.paragraph("No term has both a self-rating and an advisor rating of the same competency yet.")
    else:
        summary = queries.calibration_summary(calibration).iloc[0]
        pdf.paragraph(
            f"Latest term: self-ratings {summary.latest_gap:+.1f} levels from the advisor's on average "
            f"({summary.rating}); since the first term the gap is {summary.trend}."
        )
        pdf.chart(
            charts.calibration_chart(calibration, queries.CALIBRATED_WITHIN).properties(width=420, height=130), 165
        )

    if fw.has_assessment_plan:
        _plan_coverage(pdf, coverage.plan_coverage(cur, viewer, fw, learner_id))
    _decision_history(pdf, fw, review_queries.learner_decisions(cur, viewer, learner_id=learner_id))
    _learning_plan(pdf, plan_queries.learner_goals(cur, viewer, fw, learner_id=learner_id))

    pdf.add_page()
    pdf.heading("Narrative comments, newest first")
    noted = history[history["comment"] != ""].head(60)
    if noted.empty:
        pdf.paragraph("No narrative comments yet.")
    for r in noted.itertuples():
        pdf.set_font("Body", "B", 8)
        pdf.multi_cell(
            0,
            4.5,
            f"{r.rated_on:%Y-%m-%d} · {r.term} · {r.rater_name} ({r.rater_role}) · {r.competency_name} · "
            f"level {_fmt(r.level, '{:g}')}"
            + (" · superseded" if r.superseded else "")
            + (f" · retired (framework {r.framework_version})" if r.retired else ""),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.paragraph(str(r.comment), 9)
        pdf.ln(1)
    pdf.heading("Evidence")
    if evidence.empty:
        pdf.paragraph("No evidence attached yet.")
    else:
        pdf.grid(
            pd.DataFrame(
                {
                    "Added": evidence["added_on"].map(lambda d: f"{d:%Y-%m-%d}"),
                    "Type": evidence["type"],
                    "Title": evidence["title"],
                    "Competencies": queries.evidence_competency_names(evidence, fw),
                }
            ),
            (22, 35, 65, 58),
        )
    return bytes(pdf.output())


def _outcome(fw: Framework, outcome: str) -> str:
    found = fw.outcomes.get(outcome)
    return found.label if found else outcome


def _decision_history(pdf: "_Report", fw: Framework, decisions: pd.DataFrame) -> None:
    pdf.heading("Committee decisions, newest first")
    if decisions.empty:
        pdf.paragraph("No committee decision yet.")
        return
    _decision_entries(pdf, fw, decisions)


def _decision_entries(pdf: "_Report", fw: Framework, decisions: pd.DataFrame) -> None:
    for d in decisions.to_dict("records"):
        pdf.set_font("Body", "B", 8)
        pdf.multi_cell(
            0,
            4.5,
            f"{d['decided_on']:%Y-%m-%d} · {_outcome(fw, d['outcome'])} · signed by "
            f"{d['signed_by_name'] or d['signed_by']}"
            + (f" · revises {d['replaces']}" if isinstance(d["replaces"], str) else "")
            + (f" · revised by {d['replaced_by']}" if isinstance(d["replaced_by"], str) else ""),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        if d["rationale"]:
            pdf.paragraph(str(d["rationale"]), 9)
        if d["actions"]:
            pdf.paragraph(f"Actions: {d['actions']}", 8)
        pdf.ln(1)


def _table_section(
    pdf: "_Report", title: str, empty: str, rows: pd.DataFrame, table: Callable[[], pd.DataFrame], widths: tuple
) -> None:
    """A heading, then the table `table` makes of `rows`, or the sentence `empty` when there are none."""
    pdf.heading(title)
    if rows.empty:
        pdf.paragraph(empty)
        return
    pdf.grid(table(), widths)


def _plan_coverage(pdf: "_Report", rows: pd.DataFrame) -> None:
    """The learner's ratings, raters and evidence this term against what the program's assessment plan asks."""
    _table_section(
        pdf,
        "Against the assessment plan, this term",
        "The assessment plan asks nothing of this learner's competencies this term.",
        rows,
        lambda: pd.DataFrame(
            {
                "Competency": rows["competency_name"],
                "The plan asks": rows["plan"],
                "So far": rows["coverage"],
                "Standing": rows["thin_note"],
            }
        ),
        (48, 42, 62, 28),
    )


def _learning_plan(pdf: "_Report", goals: pd.DataFrame) -> None:
    """The current version of each goal of the learner's plans: aimed for, status in words, actions, agreement."""
    pdf.heading("Learning plan goals")
    if goals.empty:
        pdf.paragraph("No learning plan goal yet.")
        return
    for g in goals.to_dict("records"):
        pdf.set_font("Body", "B", 8)
        pdf.multi_cell(
            0,
            4.5,
            f"{g['competency_name']} · level {g['target_level']:g} by {g['by_term']} · version {g['version']} · "
            f"{g['agreement']}"
            + (f" · plan opened by decision {g['decision_id']}" if isinstance(g["decision_id"], str) else "")
            + ("" if g["plan_open"] else f" · plan closed by decision {g['plan_closed_by']}"),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.paragraph(str(g["status_words"]), 9)
        pdf.paragraph(f"Actions: {g['actions']}", 8)
        if g["evidence"]:
            pdf.paragraph(f"Evidence planned: {g['evidence']}", 8)
        pdf.ln(1)


def meeting_minutes(cur: Cursor, viewer: Viewer, fw: Framework, meeting_id: str) -> bytes:
    """The minutes of a review meeting: who sat, the agenda with the reasons, each signed decision with its rationale
    and actions, and the consensus levels the committee changed. Drafts never appear: minutes are of what was signed."""
    found = review_queries.review_meetings(cur, viewer, meeting_id)
    if found.empty:
        raise TrackerError(f"No review meeting {meeting_id!r}.")
    m = found.iloc[0]
    names = dict(review_queries.staff_names(cur, viewer).itertuples(index=False, name=None))
    agenda = review_queries.meeting_agenda(cur, viewer, meeting_id)
    decisions = review_queries.learner_decisions(cur, viewer, meeting_id=meeting_id)
    consensus = review_queries.meeting_consensus(cur, viewer, meeting_id)

    pdf = _Report(f"Minutes · {m.title} · {fw.name}", find_fonts())
    pdf.add_page()
    pdf.heading(f"Minutes: {m.title}", 16)
    pdf.paragraph(
        f"{m.held_on:%Y-%m-%d} · review period {m.period}"
        + (f" · cohort {m.cohort}" if m.cohort else "")
        + f" · chair {m.chair_name} · members {', '.join(names.get(p, p) for p in m.members if p != m.chair_id) or 'none'}"
    )
    pdf.paragraph(
        f"Signed off by the chair on {m.signed_at:%Y-%m-%d}."
        if m.signed
        else "Not signed off yet: no decision is final."
    )
    pdf.heading("Agenda")
    pdf.grid(
        pd.DataFrame(
            {
                "#": agenda["position"],
                "Learner": agenda["learner_name"],
                "Why listed": agenda["reasons"],
                "Decision": agenda["outcome"].map(lambda o: _outcome(fw, o) if isinstance(o, str) else "undecided"),
            }
        ),
        (8, 40, 100, 32),
    )
    pdf.heading("Decisions")
    if decisions.empty:
        pdf.paragraph("No signed decision.")
    for learner_id, rows in decisions.groupby("learner_id", sort=False):
        pdf.set_font("Body", "B", 10)
        pdf.multi_cell(0, 5, f"{rows['learner_name'].iloc[0]} ({learner_id})", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        _decision_entries(pdf, fw, rows)
        pdf.ln(1)
    pdf.heading("Consensus levels changed")
    if consensus.empty:
        pdf.paragraph("The committee kept every current level.")
    else:
        pdf.grid(
            pd.DataFrame(
                {
                    "Learner": consensus["learner_name"],
                    "Competency": consensus["competency_name"],
                    "Level": consensus["level"].map(_fmt),
                    "Term": consensus["term"],
                    "Why": consensus["comment"],
                }
            ),
            (35, 45, 14, 12, 74),
        )
    return bytes(pdf.output())


def program_viewer() -> Viewer:
    """The command line acts for the program's coordinator: whoever runs it holds the database file."""
    from data_models import Role

    return Viewer("cli", "the command line", frozenset({Role.coordinator}))


def merge_pdfs(pdfs: list[bytes]) -> bytes:
    """Several reports as one file, for a committee meeting."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for pdf in pdfs:
        writer.append(io.BytesIO(pdf))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


HEATMAP_LEARNERS = 60  # the cohort report draws the heatmap for a cohort up to this size


def cohort_report(
    cur: Cursor, viewer: Viewer, fw: Framework, cohort: str | None, as_of: int | None, priors: forecast.Priors
) -> bytes:
    """The cohort summary as the committee sees it: figures, distributions, the gap heatmap, who is behind and why,
    who may not reach the graduation level, calibration, and trajectories by domain."""
    totals = queries.selection_totals(cur, viewer, cohort=cohort, as_of=as_of)
    behind = queries.learners_behind(cur, viewer, cohort=cohort, as_of=as_of)
    risk = queries.graduation_risk(cur, viewer, priors, fw, cohort=cohort, as_of=as_of)
    calibration = queries.calibration_summary(queries.calibration(cur, viewer, cohort=cohort))
    traj = queries.cohort_trajectory(cur, viewer, cohort=cohort)
    scope = f"cohort {cohort}" if cohort else "all cohorts"
    term = f"as of {fw.term_ids[as_of - 1]}" if as_of else "latest ratings"

    pdf = _Report(f"Cohort summary · {scope} · {fw.name}", find_fonts())
    pdf.add_page()
    pdf.heading(f"Cohort summary: {scope}, {term}", 16)
    pdf.paragraph(f"Framework {fw.id} {fw.version} · prepared {dt.date.today():%Y-%m-%d} by {viewer.name}")
    pdf.grid(
        pd.DataFrame(
            {
                "Learners": [totals["learners"]],
                "Behind the expected trajectory": [totals["behind"]],
                "At risk at graduation": [int(risk["at_risk"].sum())],
                "On leave": [totals["on_leave"]],
                "Median level − expected": [_fmt(totals["median_vs_expected"], "{:+.1f}")],
            }
        ),
        (25, 45, 40, 25, 45),
    )
    if totals["rated"]:
        pdf.ln(2)
        counts = queries.level_distribution(cur, viewer, cohort=cohort, as_of=as_of)
        pdf.chart(charts.level_distribution_chart(counts, fw.min_level, fw.max_level).properties(width=330), 175)
        if totals["learners"] <= HEATMAP_LEARNERS:
            pdf.add_page()
            grid = queries.furthest_behind(cur, viewer, cohort=cohort, as_of=as_of, limit=HEATMAP_LEARNERS)
            pdf.chart(charts.gap_heatmap(grid), 180)
    pdf.heading("Behind the expected trajectory")
    if behind.empty:
        pdf.paragraph("No learner is a whole level or more below the expected level.")
    else:
        pdf.grid(
            pd.DataFrame(
                {
                    "Learner": behind["learner_name"],
                    "Cohort": behind["cohort"],
                    "Term": behind["current_term"],
                    "Behind": behind["behind"],
                    "Why": behind["why"],
                }
            ),
            (35, 18, 12, 15, 100),
        )
    pdf.heading(f"Forecast: who may not reach level {fw.calendar.graduation_level:g} by graduation")
    at_risk = risk[risk["at_risk"]]
    if at_risk.empty:
        pdf.paragraph("Every active learner has at least an even chance of reaching the graduation level.")
    else:
        pdf.grid(
            pd.DataFrame(
                {
                    "Learner": at_risk["learner_name"],
                    "Chance": at_risk["p_reach"].map(lambda v: _fmt(v, "{:.0%}")),
                    "Forecast": at_risk["forecast"].map(_fmt),
                    "Weakest domains": at_risk["why"],
                }
            ),
            (35, 15, 18, 112),
        )
    pdf.heading("Self-assessment calibration")
    off = calibration[calibration["rating"] != "calibrated"]
    pdf.paragraph(
        f"{(calibration['rating'] == 'over-rates').sum()} over-rate and {(calibration['rating'] == 'under-rates').sum()} "
        f"under-rate themselves by more than half a level; the gap is closing for {(calibration['trend'] == 'closing').sum()}."
    )
    if not off.empty:
        pdf.grid(
            pd.DataFrame(
                {
                    "Learner": off["learner_name"],
                    "First gap": off["first_gap"].map(lambda v: _fmt(v, "{:+.1f}")),
                    "Latest gap": off["latest_gap"].map(lambda v: _fmt(v, "{:+.1f}")),
                    "Self-rating": off["rating"],
                    "Gap": off["trend"],
                }
            ),
            (50, 30, 30, 35, 35),
        )
    pdf.heading("Committee decisions")
    decisions = review_queries.learner_decisions(cur, viewer, cohort=cohort)
    current = decisions[decisions["current"]].drop_duplicates("learner_id")
    if current.empty:
        pdf.paragraph("No committee decision yet.")
    else:
        counts = review_queries.decision_counts(cur, viewer, cohort=cohort)
        pdf.paragraph(
            "Current decisions: "
            + "; ".join(f"{_outcome(fw, o)} {n}" for o, n in zip(counts["outcome"], counts["learners"], strict=True))
        )
        pdf.grid(
            pd.DataFrame(
                {
                    "Learner": current["learner_name"],
                    "Decided": current["decided_on"].map(lambda d: f"{d:%Y-%m-%d}"),
                    "Outcome": current["outcome"].map(lambda o: _outcome(fw, o)),
                    "Rationale": current["rationale"],
                }
            ),
            (35, 20, 40, 85),
        )
    if fw.has_assessment_plan:
        _cohort_coverage(pdf, coverage.cohort_coverage(cur, viewer, fw, cohort=cohort))
    _cohort_goals(pdf, plan_queries.learner_goals(cur, viewer, fw, cohort=cohort))
    if not traj.empty:
        pdf.add_page()
        pdf.heading("Trajectories by domain")
        pdf.chart(charts.cohort_trajectory_chart(traj, fw.min_level, fw.max_level), 180)
    return bytes(pdf.output())


def _cohort_coverage(pdf: "_Report", rows: pd.DataFrame) -> None:
    """Per competency the assessment plan asks something of: how many active learners meet it this term."""
    _table_section(
        pdf,
        "Against the assessment plan, this term (active learners)",
        "No active learner is assessed against the plan this term.",
        rows,
        lambda: pd.DataFrame(
            {
                "Competency": rows["competency_name"],
                "The plan asks": rows["plan"],
                "Ratings met": rows["ratings"].replace("", "—"),  # "—": the plan asks nothing of it
                "Raters met": rows["raters_share"].replace("", "—"),
                "Evidence met": rows["evidence_share"].replace("", "—"),
                "Evidence overdue": rows["evidence_overdue"],
                "Standing on fewer ratings": rows["thin"],
            }
        ),
        (40, 40, 18, 18, 20, 20, 24),
    )


def _cohort_goals(pdf: "_Report", goals: pd.DataFrame) -> None:
    """The learning plans' goals of the selection: counts by status, and every goal of an open plan overdue or not
    agreed."""
    pdf.heading("Learning plan goals")
    if goals.empty:
        pdf.paragraph("No learning plan goal yet.")
        return
    closed = int((~goals["plan_open"]).sum())
    goals = goals[goals["plan_open"]]
    counts = goals["status"].value_counts()
    waiting = int(goals["agreed_by"].isna().sum())
    pdf.paragraph(
        f"{len(goals)} goals of open plans, of {goals['learner_id'].nunique()} learners: {counts.get('met', 0)} met, "
        f"{counts.get('overdue', 0)} overdue, {counts.get('open', 0)} open; {waiting} not agreed by the advisor"
        + (f"; {closed} more in plans a later decision closed." if closed else ".")
    )
    listed = goals[(goals["status"] == "overdue") | goals["agreed_by"].isna()]
    if not listed.empty:
        pdf.grid(
            pd.DataFrame(
                {
                    "Learner": listed["learner_name"],
                    "Competency": listed["competency_name"],
                    "Goal": listed["status_words"],
                    "Agreement": listed["agreement"],
                }
            ),
            (32, 40, 70, 38),
        )
