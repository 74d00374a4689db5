"""Pure chart builders: DataFrame -> alt.Chart. No Streamlit, no SQL.

Colours: Okabe–Ito for series (distinct for colour-blind viewers), strokes and shapes that also
tell series apart in grey print, viridis for ordered levels, blue–orange for above/below expected.
"""

import copy
import functools
import json
import math
import textwrap

import altair as alt
import pandas as pd

SERIES = {"Advisor / committee": "#0072B2", "Self": "#E69F00", "Expected": "#000000"}
DASH = {"Advisor / committee": [1, 0], "Self": [6, 3], "Expected": [2, 2]}
FORECAST = "#009E73"
BAND_Z = 1.2816  # the forecast band is the central 80%


def wrap_label(name: str, width: int, lines: int) -> list[str]:
    """A long name as at most `lines` lines of about `width` characters, broken between words (a word a quarter
    longer than a line is cut with an ellipsis), the last line ending in an ellipsis when the name goes on."""
    longest = width + width // 4
    wrapped = [
        line if len(line) <= longest else line[: longest - 1] + "…"
        for line in textwrap.wrap(" ".join(str(name).split()), width, break_long_words=False)
    ] or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1].rstrip() + "…"
    return wrapped


def _wrapped_axis_labels(names: list[str], width: int, lines: int) -> str:
    """A Vega label expression that shows each of `names` wrapped (the field keeps the whole name, so two names
    alike in their first lines stay apart, and the tooltip says the whole name)."""
    table = {name: wrap_label(name, width, lines) for name in names}
    return f"{json.dumps(table)}[datum.label] || datum.label"


# One legend for colour and dash (the same field and title merge them): each series drawn as a short stroke in its
# colour and dash, as on the chart; a symbol of the line's point with a dashed outline reads as a smudge.
SERIES_LEGEND = alt.Legend(orient="bottom", symbolType="stroke", symbolSize=400, symbolStrokeWidth=2.5)


def _series_scales() -> tuple[alt.Scale, alt.Scale]:
    names = list(SERIES)
    return alt.Scale(domain=names, range=list(SERIES.values())), alt.Scale(domain=names, range=list(DASH.values()))


def _level_axis(lo: float, hi: float, title: str = "Milestone level") -> alt.Y:
    return alt.Y(
        "value:Q",
        title=title,
        scale=alt.Scale(domain=[lo, hi]),
        axis=alt.Axis(values=list(range(int(lo), int(hi) + 1))),
    )


def domain_standing_chart(domains: pd.DataFrame, lo: int, hi: int) -> alt.LayerChart:
    """Bars: each domain's current level; a black tick: the level expected at this term."""
    data = domains.assign(
        level_text=domains["level"].map(lambda v: "not rated" if pd.isna(v) else f"{v:.2f}"),
        expected_text=domains["expected"].map("{:.2f}".format),
    )
    order = data["domain_name"].tolist()
    y = alt.Y(
        "domain_name:N",
        title=None,
        sort=order,
        axis=alt.Axis(labelLimit=200, labelOverlap=False, labelExpr=_wrapped_axis_labels(order, 30, 2)),
    )
    tooltip = [
        alt.Tooltip("domain_name:N", title="Domain"),
        alt.Tooltip("level_text:N", title="Current level"),
        alt.Tooltip("expected_text:N", title="Expected now"),
        alt.Tooltip("behind:Q", title="Competencies behind"),
    ]
    bars = (
        alt.Chart(data)
        .mark_bar(color=SERIES["Advisor / committee"], height=18)
        .encode(
            x=alt.X(
                "level:Q", title="Milestone level (mean of the domain's competencies)", scale=alt.Scale(domain=[lo, hi])
            ),
            x2=alt.datum(lo),
            y=y,
            tooltip=tooltip,
        )
    )
    ticks = (
        alt.Chart(data)
        .mark_tick(color=SERIES["Expected"], thickness=3, size=28)
        .encode(x="expected:Q", y=y, tooltip=tooltip)
    )
    return (bars + ticks).properties(
        title=alt.Title("Current level by domain", subtitle="tick: the level expected at this term", anchor="start"),
        height=alt.Step(34),
        autosize=alt.AutoSizeParams(type="fit-x", contains="padding"),
    )


def radar_points(domains: pd.DataFrame, column: str, lo: int) -> pd.DataFrame:
    """Corners of a closed polygon: one spoke per domain, the distance along it the value of `column`."""
    n = len(domains)
    angles = [2 * math.pi * i / n for i in range(n)]
    values = domains[column].fillna(lo).tolist()
    rows = [
        {"order": i, "domain_name": name, "value": v, "x": v * math.sin(a), "y": v * math.cos(a)}
        for i, (name, v, a) in enumerate(zip(domains["domain_name"], values, angles, strict=True))
    ]
    return pd.DataFrame([*rows, {**rows[0], "order": n}]) if rows else pd.DataFrame(rows)


RADAR_SIZE = (440, 360)  # width, height in pixels: the room of the progress page's right-hand column
RADAR_LABEL = (14, 3, 106, 45)  # a label: characters a line, lines, and the room it takes across and up or down
RADAR_LINE = 13  # pixels a line of a label takes


def radar_label_room(hi: int) -> tuple[float, float, float]:
    """Pixels per level, and the x and y reach of the radar's scales (in levels), so that labels of RADAR_LABEL's
    size set just outside the outer ring stay inside the frame."""
    width, height = RADAR_SIZE
    _, _, across, up = RADAR_LABEL
    ring = hi + 0.35  # where the labels start
    scale = min(width / 2 - across, height / 2 - up) / ring
    return scale, width / 2 / scale, height / 2 / scale


def domain_radar_chart(domains: pd.DataFrame, lo: int, hi: int) -> alt.LayerChart:
    """A radar of the domains: current level (solid, blue) against the level expected now (dashed)."""
    n = len(domains)
    _, reach_x, reach_y = radar_label_room(hi)
    x = alt.X("x:Q", scale=alt.Scale(domain=[-reach_x, reach_x]), axis=None)
    y = alt.Y("y:Q", scale=alt.Scale(domain=[-reach_y, reach_y]), axis=None)
    rings = pd.concat(
        [radar_points(domains.assign(ring=float(level)), "ring", lo).assign(level=level) for level in range(lo, hi + 1)]
    )
    grid = (
        alt.Chart(rings).mark_line(color="#bbbbbb", strokeWidth=0.8).encode(x=x, y=y, detail="level:N", order="order:Q")
    )
    # labels just outside the outer ring, each wrapped to a few short lines and set away from the centre: those on
    # the right start at their spoke, those on the left end at it, those at the top sit above it and those at the
    # bottom below, so no name runs over the rings or out of the frame (the tooltip of a point names it whole)
    chars, lines, across, _ = RADAR_LABEL

    def side(a: float) -> str:
        return "left" if math.sin(a) > 0.3 else "right" if math.sin(a) < -0.3 else "center"

    def block(a: float) -> float:
        """Where the label's block starts, in lines above its point: above it at the top, below it at the
        bottom, centred on it at the sides. Every label hangs from the top of its first line (baseline "top"):
        Vega versions differ in where other baselines put the lines after the first."""
        return 1.0 if math.cos(a) > 0.7 else 0.0 if math.cos(a) < -0.7 else 0.5

    labels = pd.DataFrame(
        [
            {
                "x": (hi + 0.35) * math.sin(a),
                "y": (hi + 0.35) * math.cos(a),
                "label": "\n".join(wrapped),
                "align": side(a),
                "dy": round(-block(a) * len(wrapped) * RADAR_LINE),
            }
            for i, name in enumerate(domains["domain_name"])
            for a in [2 * math.pi * i / n]
            for wrapped in [wrap_label(name, chars, lines)]
        ],
        columns=["x", "y", "label", "align", "dy"],
    )
    text = alt.layer(
        *[
            alt.Chart(group)
            .mark_text(
                fontSize=11,
                lineHeight=RADAR_LINE,
                lineBreak="\n",
                color="#333333",
                align="left" if align == "left" else "right" if align == "right" else "center",
                baseline="top",
                dy=float(str(dy)),
                limit=across,
            )
            .encode(x=x, y=y, text="label:N")
            for (align, dy), group in labels.groupby(["align", "dy"], sort=True)
        ]
    )
    colour, dash = _series_scales()
    shape = (
        alt.Chart(_radar_series(domains, lo))
        .mark_line(point=True, strokeWidth=2.5)
        .encode(
            x=x,
            y=y,
            order="order:Q",
            color=alt.Color("series:N", title=None, scale=colour, legend=SERIES_LEGEND),
            strokeDash=alt.StrokeDash("series:N", scale=dash, legend=SERIES_LEGEND),
            tooltip=[
                alt.Tooltip("domain_name:N", title="Domain"),
                alt.Tooltip("series:N", title="Line"),
                alt.Tooltip("value:Q", title="Level", format=".2f"),
            ],
        )
    )
    return (grid + text + shape).properties(
        title="Domains at a glance (rings: levels)", width=RADAR_SIZE[0], height=RADAR_SIZE[1], view={"stroke": None}
    )


def _radar_series(domains: pd.DataFrame, lo: int) -> pd.DataFrame:
    return pd.concat(
        [
            radar_points(domains, "level", lo).assign(series="Advisor / committee"),
            radar_points(domains, "self_level", lo).assign(series="Self"),
            radar_points(domains, "expected", lo).assign(series="Expected"),
        ]
    )


def domain_radar_spec(domains: pd.DataFrame, lo: int, hi: int) -> dict:
    """domain_radar_chart's Vega-Lite spec (vega_lite), as the progress page draws it. Its rings and labels depend
    on the framework's domains alone, so they are built once (building the radar was about 40% of the processor
    time of a progress page drawn for the first time); each learner's lines take the place of the template's."""
    spec = copy.deepcopy(_radar_template(tuple(domains["domain_name"]), lo, hi))
    lines = spec["layer"][-1]  # the learner's lines: the last layer, its encoding the same for every learner
    ((name, rows),) = alt.Chart(_radar_series(domains, lo)).mark_line().to_dict(validate=False)["datasets"].items()
    del spec["datasets"][lines["data"]["name"]]
    spec["datasets"][name] = rows
    lines["data"] = {"name": name}
    return spec


@functools.lru_cache(maxsize=8)
def _radar_template(names: tuple[str, ...], lo: int, hi: int) -> dict:
    unrated = pd.DataFrame({"domain_name": list(names)}).assign(level=math.nan, self_level=math.nan, expected=math.nan)
    return vega_lite(domain_radar_chart(unrated, lo, hi))


def trajectory_chart(
    traj: pd.DataFrame,
    lo: int,
    hi: int,
    title: str,
    outlook: pd.DataFrame | None = None,
    goals: pd.DataFrame | None = None,
) -> alt.LayerChart:
    """Advisor and self lines over terms against the expected level and the 'behind' zone below it.

    `traj` has term_index, term, term_label, expected, level, self_level (already averaged if a domain);
    `outlook` (from `outlook_frame`) adds the forecast to graduation with its 80% band; `goals` (from `goal_marks`)
    adds each goal of a learning plan: a diamond at the level aimed for by its term, with its status in words.
    """
    long = traj.melt(
        id_vars=["term_index", "term", "term_label"],
        value_vars=["level", "self_level", "expected"],
        var_name="series",
        value_name="value",
    ).dropna(subset=["value"])
    long["series"] = long["series"].map({"level": "Advisor / committee", "self_level": "Self", "expected": "Expected"})
    colour, dash = _series_scales()
    x = alt.X(
        "term:N",
        title="Program term",
        sort=traj.sort_values("term_index")["term"].unique().tolist(),
        axis=alt.Axis(labelAngle=0),
    )
    band = (
        alt.Chart(traj)
        .mark_area(color="#999999", opacity=0.18)
        .encode(
            x=x,
            y=alt.Y("band_low:Q", scale=alt.Scale(domain=[lo, hi])),
            y2="expected:Q",
            tooltip=[alt.Tooltip("term_label:N", title="Term"), alt.Tooltip("expected:Q", title="Expected")],
        )
        .transform_calculate(band_low=f"max(datum.expected - 1, {lo})")
    )
    tooltip = [
        alt.Tooltip("term_label:N", title="Term"),
        alt.Tooltip("series:N", title="Rating"),
        alt.Tooltip("value:Q", title="Level", format=".2f"),
    ]
    # the dash tells the series apart in grey print; the legend shows each series as its stroke (a point's shape
    # with a dashed outline would read as a smudge)
    lines = (
        alt.Chart(long)
        .mark_line(point=True, strokeWidth=2.5)
        .encode(
            x=x,
            y=_level_axis(lo, hi),
            color=alt.Color("series:N", title=None, scale=colour, legend=SERIES_LEGEND),
            strokeDash=alt.StrokeDash("series:N", scale=dash, legend=SERIES_LEGEND),
            tooltip=tooltip,
        )
    )
    chart = band + lines
    if outlook is not None and not outlook.empty:
        chart = chart + _outlook_layers(outlook, x, lo, hi)
    notes = "grey: a level below expected"
    if goals is not None and not goals.empty:
        chart = chart + _goal_layers(goals, x, lo, hi)
        notes += "; ◆ a goal of the learning plan"
    heading = alt.Title(wrap_label(f"{title}: level by term", 70, 2), subtitle=notes, anchor="start")
    return chart.properties(title=heading, height=300)


def outlook_frame(last_term: str, last_level: float, final_term: str, forecast: float, sd: float) -> pd.DataFrame:
    """Two points: the last assessed level and the graduation forecast, with the 80% band around the forecast."""
    half = BAND_Z * sd
    return pd.DataFrame(
        {
            "term": [last_term, final_term],
            "value": [last_level, forecast],
            "low": [last_level, forecast - half],
            "high": [last_level, forecast + half],
            "label": ["Last assessed", "Forecast at graduation"],
        }
    )


GOAL_STATUS = {"met": "#009E73", "overdue": "#D55E00", "open": "#FFFFFF"}  # Okabe–Ito; open: hollow


def goal_marks(goals: pd.DataFrame) -> pd.DataFrame:
    """The points of goals (rows of plan_queries.learner_goals) on a trajectory: term, level aimed for, status."""
    return pd.DataFrame(
        {
            "term": goals["by_term"],
            "target_level": goals["target_level"],
            "status": goals["status"],
            "label": [f"goal {t:g}: {s}" for t, s in zip(goals["target_level"], goals["status"], strict=True)],
            "competency_name": goals["competency_name"],
            "status_words": goals["status_words"],
        }
    )


def _goal_layers(goals: pd.DataFrame, x: alt.X, lo: int, hi: int) -> alt.LayerChart:
    base = alt.Chart(goals).encode(x=x, y=alt.Y("target_level:Q", scale=alt.Scale(domain=[lo, hi])))
    points = base.mark_point(shape="diamond", size=220, filled=True, stroke="#000000", strokeWidth=1.2).encode(
        fill=alt.Fill(
            "status:N",
            title="Goal",
            scale=alt.Scale(domain=list(GOAL_STATUS), range=list(GOAL_STATUS.values())),
            legend=alt.Legend(orient="bottom"),
        ),
        tooltip=[
            alt.Tooltip("competency_name:N", title="Goal"),
            alt.Tooltip("target_level:Q", title="Level aimed for", format="g"),
            alt.Tooltip("status_words:N", title="Status"),
        ],
    )
    words = base.mark_text(align="left", dx=9, dy=-11, fontSize=11).encode(text="label:N")
    return points + words


def _outlook_layers(outlook: pd.DataFrame, x: alt.X, lo: int, hi: int) -> alt.LayerChart:
    tooltip = [
        alt.Tooltip("label:N", title=" "),
        alt.Tooltip("term:N", title="Term"),
        alt.Tooltip("value:Q", title="Level", format=".2f"),
        alt.Tooltip("low:Q", title="80% band from", format=".2f"),
        alt.Tooltip("high:Q", title="to", format=".2f"),
    ]
    base = alt.Chart(outlook).encode(x=x)
    band = base.mark_area(color=FORECAST, opacity=0.15).encode(
        y=alt.Y("low:Q", scale=alt.Scale(domain=[lo, hi], clamp=True)), y2="high:Q", tooltip=tooltip
    )
    line = base.mark_line(
        color=FORECAST, strokeDash=[5, 4], strokeWidth=2, point=alt.OverlayMarkDef(color=FORECAST, size=60)
    ).encode(y="value:Q", tooltip=tooltip)
    return band + line


def calibration_chart(by_term: pd.DataFrame, within: float) -> alt.LayerChart:
    """Mean self − advisor gap per term; the shaded band is where self and advisor agree within `within`."""
    order = by_term.sort_values("term_index")["term"].unique().tolist()
    x = alt.X("term:N", title="Program term", sort=order, axis=alt.Axis(labelAngle=0))
    agree = (
        alt.Chart(pd.DataFrame({"low": [-within], "high": [within]}))
        .mark_rect(color="#999999", opacity=0.15)
        .encode(y=alt.Y("low:Q"), y2="high:Q")
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="black", strokeDash=[2, 2]).encode(y="y:Q")
    line = (
        alt.Chart(by_term)
        .mark_line(point=True, color=SERIES["Self"], strokeWidth=2.5)
        .encode(
            x=x,
            y=alt.Y("gap:Q", title="Self − advisor (levels)"),
            tooltip=[
                alt.Tooltip("term:N", title="Term"),
                alt.Tooltip("gap:Q", title="Mean gap", format="+.2f"),
                alt.Tooltip("competencies:Q", title="Competencies rated by both"),
            ],
        )
    )
    return (agree + zero + line).properties(
        title=alt.Title(
            "Self-rating minus advisor rating, by term", subtitle="grey: within half a level", anchor="start"
        ),
        height=220,
        # fit the width only, padding included: fitting the height as well draws the title above the frame
        autosize=alt.AutoSizeParams(type="fit-x", contains="padding"),
    )


def level_distribution_chart(counts: pd.DataFrame, lo: int, hi: int) -> alt.Chart:
    """Stacked bars: how many learners hold each level, per competency (queries.level_distribution, in the
    framework's order)."""
    order = counts.drop_duplicates("competency_id")["competency_name"].tolist()
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            y=alt.Y("competency_name:N", title=None, sort=order, axis=alt.Axis(labelLimit=320, labelOverlap=False)),
            x=alt.X("learners:Q", title="Learners", stack="zero", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color(
                "level:O",
                title="Level",
                scale=alt.Scale(scheme="viridis", domain=[x / 2 for x in range(2 * lo, 2 * hi + 1)]),
            ),
            order=alt.Order("level:Q"),
            tooltip=[
                alt.Tooltip("domain_name:N", title="Domain"),
                alt.Tooltip("competency_name:N", title="Competency"),
                alt.Tooltip("level:Q", title="Level"),
                alt.Tooltip("learners:Q", title="Learners"),
            ],
        )
        .properties(title="Distribution of current levels per competency", height=alt.Step(22))
    )


def gap_heatmap(standing: pd.DataFrame) -> alt.Chart:
    """Learners by competency, coloured by level minus expected (blue above, orange below)."""
    data = standing.dropna(subset=["level"]).assign(learner=lambda f: f["learner_name"] + " (" + f["learner_id"] + ")")
    order = standing.drop_duplicates("competency_id")["competency_name"].tolist()
    return (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X(
                "competency_name:N",
                title=None,
                sort=order,
                axis=alt.Axis(labelAngle=-50, labelLimit=220, labelOverlap=False),
            ),
            y=alt.Y(
                "learner:N",
                title=None,
                axis=alt.Axis(labelLimit=320, labelOverlap=False),
                sort=alt.EncodingSortField("vs_expected", op="mean", order="ascending"),
            ),
            color=alt.Color(
                "vs_expected:Q",
                title="Level − expected",
                scale=alt.Scale(scheme="blueorange", reverse=True, domainMid=0, domain=[-2, 2], clamp=True),
            ),
            tooltip=[
                alt.Tooltip("learner:N", title="Learner"),
                alt.Tooltip("competency_name:N", title="Competency"),
                alt.Tooltip("level:Q", title="Level"),
                alt.Tooltip("expected:Q", title="Expected"),
                alt.Tooltip("vs_expected:Q", title="Level − expected", format="+.1f"),
                alt.Tooltip("current_term:N", title="Term"),
            ],
        )
        .properties(
            title="Level minus expected, learner by competency (furthest behind first)",
            height=alt.Step(18),
            width=alt.Step(24),
        )
    )


def cohort_trajectory_chart(traj: pd.DataFrame, lo: int, hi: int) -> alt.FacetChart:
    """Per domain: the median learner's level by term, the middle half shaded, expected dashed."""
    order = traj["domain_name"].unique().tolist()
    base = alt.Chart(traj).encode(
        x=alt.X(
            "term:N",
            title="Program term",
            sort=sorted(traj["term"].unique(), key=lambda t: traj.loc[traj["term"] == t, "term_index"].iloc[0]),
        )
    )
    spread = base.mark_area(opacity=0.25, color=SERIES["Advisor / committee"]).encode(
        y=alt.Y("q25:Q", title="Milestone level", scale=alt.Scale(domain=[lo, hi])), y2="q75:Q"
    )
    median = base.mark_line(point=True, color=SERIES["Advisor / committee"]).encode(
        y="median:Q",
        tooltip=[
            alt.Tooltip("domain_name:N", title="Domain"),
            alt.Tooltip("term:N", title="Term"),
            alt.Tooltip("median:Q", title="Median", format=".2f"),
            alt.Tooltip("q25:Q", title="25th percentile", format=".2f"),
            alt.Tooltip("q75:Q", title="75th percentile", format=".2f"),
            alt.Tooltip("learners:Q", title="Learners"),
        ],
    )
    expected = base.mark_line(strokeDash=[4, 3], color=SERIES["Expected"]).encode(y="expected:Q")
    return (
        alt.layer(spread, median, expected, data=traj)
        .properties(width=190, height=180)
        .facet(
            facet=alt.Facet("domain_name:N", title=None, sort=order),
            columns=3,
        )
        .properties(title="Cohort trajectory by domain: median, middle half (shaded), expected (dashed)")
    )


def forecast_calibration_chart(bins: pd.DataFrame) -> alt.LayerChart:
    """The backtest's calibration: per tenth of stated chance, the share that reached the level (points sized by
    learners) against the stated chance; on the diagonal, a chance of 80% came true 80% of the time."""
    diagonal = alt.Chart(pd.DataFrame({"stated": [0.0, 1.0], "observed": [0.0, 1.0]})).mark_line(
        color="#000000", strokeDash=[2, 2]
    )
    axis = alt.Axis(format="%")
    points = (
        alt.Chart(bins)
        .mark_circle(color=FORECAST, opacity=0.9)
        .encode(
            x=alt.X("stated:Q", title="Stated chance of reaching the level", scale=alt.Scale(domain=[0, 1]), axis=axis),
            y=alt.Y("observed:Q", title="Share that reached it", scale=alt.Scale(domain=[0, 1]), axis=axis),
            size=alt.Size("learners:Q", title="Learners"),
            tooltip=[
                alt.Tooltip("stated:Q", title="Stated", format=".0%"),
                alt.Tooltip("observed:Q", title="Reached", format=".0%"),
                alt.Tooltip("learners:Q", title="Learners"),
            ],
        )
    )
    return alt.LayerChart(layer=[diagonal, points], height=320, title="Stated chance against what happened")


def vega_lite(chart: alt.TopLevelMixin | dict) -> dict:
    """A chart as the Vega-Lite spec a page draws, its data inline: built once, so a page can keep it and draw it
    again without Altair's work. Not checked against the schema here: the check took a quarter of a progress page's
    processor time, for specs the golden tests check (tests/test_charts.py). Altair's default theme gives a view
    without a set size 300 pixels; a page sizes it to its column instead (as Streamlit does with an Altair chart), so
    that is left out. A spec already made (domain_radar_spec) is returned as it is."""
    if isinstance(chart, dict):
        return chart
    spec = chart.to_dict(validate=False)
    view = spec.get("config", {}).get("view", {})
    theme = alt.theme.get()
    for size, pixels in (theme() if theme else {}).get("config", {}).get("view", {}).items():
        if view.get(size) == pixels:
            del view[size]
    if "view" in spec.get("config", {}) and not view:
        del spec["config"]["view"]
    if "config" in spec and not spec["config"]:
        del spec["config"]
    return spec
