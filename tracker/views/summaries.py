"""The small shapings pages show beside their figures: a learner's standing per domain, the reasons a learner is
listed for discussion one by one, a cohort's calibration in words, and the thresholds their captions quote."""

from tracker.analysis import forecast, queries
from tracker.review import agendas

WHY_FIRST = queries.WHY_FIRST  # reasons shown of the competencies furthest behind; the rest are counted
SHAPE_SD = forecast.SHAPE_SD  # without history: how far growth per term may bend from a straight line (sd)
RISK_BELOW = forecast.RISK_BELOW  # at risk: less than this chance of reaching the graduation level
domain_standing = queries.domain_standing
calibration_summary = queries.calibration_summary
reason_list = agendas.reason_list
