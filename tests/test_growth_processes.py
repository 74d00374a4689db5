"""The forecast held to growth processes with known truth (tests/growth_processes.py), at term 3 of 6.

Targets (docs/measurement.md): a calibration error of at most 0.05, and flags that find within 5 points of the
share the oracle finds when it raises as many false alarms. Where the forecast is known to fall short, the test
says so with a strict xfail, so that the day it is met the mark must go.
"""

import pytest

from tests import growth_processes as gp

SHORT = {
    # the rated level carries the advisor's strictness, in the course so far and at graduation; the truth is the
    # learner's own level, and the forecast does not yet estimate raters' strictness
    "harsher and softer advisors": "raters' strictness is not estimated",
    "slowing, with all of the above": "raters' strictness is not estimated",
    # the oracle sees true levels in the missed terms too, so its headroom is more than any forecast can reach
    "missed terms": "the oracle sees the levels of missed terms",
    "leave": "6 points short; the oracle sees the level in a term of leave",
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
