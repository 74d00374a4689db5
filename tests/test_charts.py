"""Chart builders: pure functions whose specs carry titles, axis titles, tooltips and colour-blind-safe scales."""

import json

import pandas as pd
import pytest

from tests.conftest import viewer
from tracker.analysis import queries
from tracker.reports import charts

pytestmark = pytest.mark.one_mode  # chart specs: the sample database is only their input


def spec(chart) -> dict:
    out = chart.to_dict()
    out.pop("$schema", None)
    return out


def layers(s: dict) -> list[dict]:
    return s.get("layer") or s.get("spec", {}).get("layer") or [s]


def all_encodings(s: dict) -> list[dict]:
    return [layer.get("encoding", {}) for layer in layers(s)]


def test_domain_chart_marks_the_expected_level(cur, framework):
    standing = queries.competency_standing(cur, viewer(cur, "C001"), learner_id="L001")
    domains = queries.domain_standing(standing)
    s = spec(charts.domain_standing_chart(domains, 1, 5))
    assert s["title"]["text"] == "Current level by domain"
    marks = [layer["mark"]["type"] for layer in layers(s)]
    assert marks == ["bar", "tick"]
    assert all("tooltip" in enc for enc in all_encodings(s))
    data = next(iter(s["datasets"].values()))
    assert [round(d["level"], 6) for d in data] == [round(v, 6) for v in domains["level"]]


def test_radar_closes_each_polygon_and_uses_the_framework_domains(cur, framework):
    domains = queries.domain_standing(queries.competency_standing(cur, viewer(cur, "C001"), learner_id="L001"))
    points = charts.radar_points(domains, "level", 1)
    assert len(points) == len(framework.domains) + 1
    assert points.iloc[0][["x", "y"]].tolist() == points.iloc[-1][["x", "y"]].tolist()
    s = spec(charts.domain_radar_chart(domains, 1, 5))
    labels = [d["label"] for ds in s["datasets"].values() for d in ds if "label" in d]
    assert sorted(label.replace("\n", " ") for label in labels) == sorted(d.name for d in framework.domains)


def test_the_progress_page_s_radar_is_the_radar_of_each_learner(cur, framework):
    """The page draws the radar from a template of its rings and labels (domain_radar_spec): the same spec as the
    radar built whole, for learners with and without ratings, self-assessments and a changed level."""
    committee = viewer(cur, "C001")
    # a third of the learners (every cohort, every status, with and without ratings): each radar is built whole too
    learners = [r[0] for r in cur.execute("SELECT id FROM learners ORDER BY id").fetchall()][::3]
    standing = queries.competency_standing(cur, committee)  # every learner's rows, read at once
    shapes = set()
    for learner in learners:
        domains = queries.domain_standing(standing[standing["learner_id"] == learner].reset_index(drop=True))
        whole = charts.vega_lite(charts.domain_radar_chart(domains, framework.min_level, framework.max_level))
        assert charts.domain_radar_spec(domains, framework.min_level, framework.max_level) == whole, learner
        shapes.add(json.dumps(whole["datasets"][whole["layer"][-1]["data"]["name"]]))
    assert len(shapes) > len(learners) // 2  # the learners' lines differ


def test_long_names_wrap_to_a_few_short_lines():
    """A radar label, an axis label or a title of any length keeps to its lines, broken between words."""
    long = "Universal pillars for all health professions educators across every clinical setting " * 4
    lines = charts.wrap_label(long, 16, 3)
    assert len(lines) == 3 and all(len(line) <= 20 for line in lines)
    assert lines[0] == "Universal" and lines[-1].endswith("…")
    assert charts.wrap_label("Teaching", 16, 3) == ["Teaching"]
    assert charts.wrap_label("Interdisciplinary collaboration", 16, 3) == ["Interdisciplinary", "collaboration"]
    assert charts.wrap_label("x" * 40, 16, 3) == ["x" * 19 + "…"]
    domains = pd.DataFrame(
        {"domain_name": [long, "Teaching", "Research and scholarship"], "level": [2.0, 3.0, None]}
        | {"self_level": [2.5, 3.0, 1.0], "expected": [3.0, 3.0, 3.0], "behind": [1, 0, 0]}
    )
    s = spec(charts.domain_radar_chart(domains, 1, 5))
    labels = [d["label"] for ds in s["datasets"].values() for d in ds if "label" in d]
    assert all(len(label.split("\n")) <= 3 and max(map(len, label.split("\n"))) <= 20 for label in labels)
    bars = spec(charts.domain_standing_chart(domains, 1, 5))
    assert "Teaching" in layers(bars)[0]["encoding"]["y"]["axis"]["labelExpr"]


def test_radar_labels_of_any_length_stay_inside_the_frame():
    """Every label, placed where the spec puts it (the top of its first line at y + dy), fits the chart's frame even
    at its widest (the mark's limit), and the legend draws each series as its stroke."""
    long = "Universal pillars for all health professions educators across every clinical setting " * 6
    names = [
        long[:500],
        "Teaching",
        long[:60],
        "Research and scholarship",
        long[:120],
        "Interdisciplinary collaboration",
    ]
    for n in (3, 5, 6, 8):
        domains = pd.DataFrame(
            {"domain_name": names[:n] + [f"Domain {i}" for i in range(n - len(names))], "level": 3.0}
            | {"self_level": 3.5, "expected": 3.0, "behind": 0}
        )
        s = spec(charts.domain_radar_chart(domains, 1, 5))
        width, height = charts.RADAR_SIZE
        scale, reach_x, _ = charts.radar_label_room(5)
        assert (s["width"], s["height"]) == (width, height)
        placed = 0
        flat = [leaf for layer in s["layer"] for leaf in layer.get("layer", [layer])]
        for layer in flat:
            mark = layer["mark"]
            if not isinstance(mark, dict) or mark.get("type") != "text":
                continue
            assert layer["encoding"]["x"]["scale"]["domain"] == [-reach_x, reach_x]
            assert mark["baseline"] == "top" and mark["limit"] <= charts.RADAR_LABEL[2]
            for d in s["datasets"][layer["data"]["name"]]:
                lines = d["label"].split("\n")
                px, py = width / 2 + d["x"] * scale, height / 2 - d["y"] * scale + mark["dy"]
                across = mark["limit"]
                left = {"left": px, "right": px - across, "center": px - across / 2}[mark["align"]]
                assert left >= 0 and left + across <= width, (n, d["label"])
                assert py >= 0 and py + len(lines) * charts.RADAR_LINE <= height, (n, d["label"])
                placed += 1
        assert placed == n
        shape = next(layer for layer in flat if "color" in layer.get("encoding", {}))
        assert shape["encoding"]["color"]["legend"]["symbolType"] == "stroke"
        assert shape["encoding"]["strokeDash"]["legend"] == shape["encoding"]["color"]["legend"]  # one legend


def test_trajectory_series_differ_by_colour_and_dash(cur):
    traj = queries.trajectory_of(queries.trajectory(cur, viewer(cur, "C001"), "L001"), domain_id="teaching")
    s = spec(charts.trajectory_chart(traj, 1, 5, "Teaching"))
    line = layers(s)[1]["encoding"]
    assert line["color"]["scale"]["range"] == ["#0072B2", "#E69F00", "#000000"]
    assert line["strokeDash"]["scale"]["range"][1] == [6, 3]
    assert line["color"]["legend"]["symbolType"] == "stroke" and "shape" not in line  # strokes, not smudges
    assert line["y"]["title"] == "Milestone level" and line["x"]["title"] == "Program term"


def test_heatmap_is_diverging_around_zero(cur):
    standing = queries.competency_standing(cur, viewer(cur, "C001"))
    s = spec(charts.gap_heatmap(standing))
    colour = s["encoding"]["color"]
    assert colour["scale"]["scheme"] == "blueorange" and colour["scale"]["domainMid"] == 0
    assert colour["title"] == "Level − expected"


def test_distribution_counts_learners_per_level(cur):
    committee = viewer(cur, "C001")
    standing = queries.competency_standing(cur, committee)
    s = spec(charts.level_distribution_chart(queries.level_distribution(cur, committee), 1, 5))
    data = pd.DataFrame(next(iter(s["datasets"].values())))
    want = standing.dropna(subset=["level"]).groupby(["competency_name", "level"]).size()
    got = data.set_index(["competency_name", "level"])["learners"].sort_index()
    assert got.equals(want.sort_index().rename("learners"))
    assert s["encoding"]["y"]["sort"] == standing.drop_duplicates("competency_id")["competency_name"].tolist()


def test_cohort_trajectory_facets_by_domain(cur, framework):
    traj = queries.cohort_trajectory(cur, viewer(cur, "C001"))
    s = spec(charts.cohort_trajectory_chart(traj, 1, 5))
    assert s["facet"]["field"] == "domain_name"
    assert s["facet"]["sort"] == [d.name for d in framework.domains]


def test_a_kept_spec_is_the_spec_streamlit_draws_of_the_chart(cur, framework):
    """Pages draw charts from their kept Vega-Lite spec (charts.vega_lite, reads.chart): the same view, marks,
    scales and rows as Streamlit's own conversion of the Altair chart, without the default theme's fixed size."""
    import pyarrow as pa
    from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec as streamlit_spec

    standing = queries.competency_standing(cur, viewer(cur, "C001"), learner_id="L001")
    domains = queries.domain_standing(standing)
    traj = queries.cohort_trajectory(cur, viewer(cur, "C001"))
    for chart in (
        charts.domain_radar_chart(domains, 1, 5),
        charts.domain_standing_chart(domains, 1, 5),
        charts.cohort_trajectory_chart(traj, 1, 5),
    ):
        kept, drawn = charts.vega_lite(chart), streamlit_spec(chart)
        assert "continuousWidth" not in str(kept.get("config", {}))
        names = {}  # the two name their datasets differently: compare them in order of appearance

        def rows(spec: dict, as_rows, names=names) -> list:
            found = []
            for name, data in spec["datasets"].items():
                names.setdefault(id(spec), []).append(name)
                found.append(as_rows(data))
            return found

        kept_rows = rows(kept, lambda d: pd.DataFrame(d))
        drawn_rows = rows(drawn, lambda b: pa.ipc.open_stream(b).read_pandas())
        for a, b in zip(kept_rows, drawn_rows, strict=True):
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
        text = json.dumps({k: v for k, v in kept.items() if k != "datasets"}, sort_keys=True)
        other = json.dumps({k: v for k, v in drawn.items() if k != "datasets"}, sort_keys=True)
        for a, b in zip(names[id(kept)], names[id(drawn)], strict=True):
            text = text.replace(a, b)
        assert text == other
