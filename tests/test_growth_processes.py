"""The forecast held to growth processes with known truth (tests/growth_processes.py), at term 3 of 6.

Targets (docs/measurement.md): a calibration error of at most 0.05, and flags that find within 5 points of the
share the oracle finds when it raises as many false alarms. Where the forecast is known to fall short, the test
says so with a strict xfail, so that the day it is met the mark must go.
"""

import pytest

from tests import growth_processes as gp

SHORT = {
    # a soft advisor's ratings of strong learners run into the top of the scale (and a harsh one's of weak learners
    # into its bottom): clipped ratings hide part of the learner's level once the rater's strictness is removed.
    # Both are short by less than the figure moves from draw to draw (docs/measurement.md, "Why two stay short").
    "harsher and softer advisors": "a twentieth of a point short: clipped ratings at the ends of the scale",
    "leave": "a quarter of a point short of the oracle's share found at the same false alarms",
}


@pytest.mark.parametrize(
    "process",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=SHORT[p.name])) if p.name in SHORT else p
        for p in gp.PROCESSES
    ],
    ids=lambda p: p.name,
)
def test_forecast_at_term_3_is_calibrated_and_finds_what_the_oracle_finds(process, framework, tmp_path):
    got = gp.evaluate(process, framework, tmp_path)
    assert got["truly_miss"] >= 100, got  # enough true misses for the shares to mean something
    assert got["calibration_error"] <= 0.05, got
    assert got["found"] >= got["oracle_found_at_same_false_alarms"] - 0.05, got


def test_the_yardstick_tells_a_good_forecast_from_a_bad_one():
    """The figures themselves: perfect chances score no calibration error and find every miss; a constant
    chance finds none at no false alarms, and its calibration error is its gap to the base rate."""
    import numpy as np

    reached = np.array([True] * 70 + [False] * 30)
    perfect = reached.astype(float)
    assert gp.calibration_error(perfect, reached) == 0
    assert gp.flag_figures(perfect, reached) == {"found": 1.0, "false_alarms": 0.0}
    assert gp.found_at_false_alarms(perfect, reached, 0.0) == 1.0
    constant = np.full(100, 0.9)
    assert gp.calibration_error(constant, reached) == pytest.approx(0.2)
    assert gp.flag_figures(constant, reached) == {"found": 0.0, "false_alarms": 0.0}
