"""The documented definition of standing, computed in plain pandas from the raw tables, for tests to compare with."""

import pandas as pd

from data_models import Framework


def classify(level: float | None, expected: float) -> str:
    """docs/measurement.md: behind is a whole level or more below expected; below is less than that."""
    if level is None:
        return "not rated"
    if level <= expected - 1:
        return "behind"
    return "below" if level < expected else "on track"


def reference_standing(cur, framework: Framework) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    ratings = cur.execute("SELECT * FROM ratings").df()
    learners = cur.execute("SELECT id AS learner_id, status, advisor_id FROM learners").df()
    superseded = set(ratings["corrects"].dropna())
    live = ratings[~ratings["id"].isin(superseded)]
    assessed = live[live["rater_role"] != "self"].sort_values(["term_index", "rated_on", "seq"])
    latest = assessed.groupby(["learner_id", "competency_id"]).tail(1).set_index(["learner_id", "competency_id"])
    current = assessed.groupby("learner_id")["term_index"].max()
    rows = []
    for learner in learners.itertuples():
        term = framework.term_ids[int(current.get(learner.learner_id, 1)) - 1]
        for cid in framework.competencies:
            expected = framework.expected_level(cid, term)
            key = (learner.learner_id, cid)
            level = float(latest.loc[key, "level"]) if key in latest.index else None
            standing = learner.status if learner.status != "active" else classify(level, expected)
            rows.append((learner.learner_id, learner.advisor_id, cid, term, level, expected, standing))
    return pd.DataFrame(
        rows, columns=["learner_id", "advisor_id", "competency_id", "current_term", "level", "expected", "standing"]
    )
