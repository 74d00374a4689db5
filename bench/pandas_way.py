"""The same answers computed the obvious way in pandas, from the ratings already in memory."""

import pandas as pd

from data_models import Framework


def expected_table(framework: Framework) -> pd.DataFrame:
    rows = [
        (c, framework.term_index(t), framework.expected_level(c, t))
        for c in framework.competencies
        for t in framework.term_ids
    ]
    return pd.DataFrame(rows, columns=["competency_id", "term_index", "expected"])


def latest_levels(ratings: pd.DataFrame, learners: pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """Per learner and competency: latest advisor/committee level, the learner's current term, expected, standing."""
    live = ratings[~ratings["id"].isin(set(ratings["corrects"].dropna()))]
    assessed = live[live["rater_role"] != "self"]
    assessed = assessed[assessed["learner_id"].isin(learners["id"])]
    latest = assessed.sort_values(["term_index", "rated_on", "seq"]).groupby(["learner_id", "competency_id"]).tail(1)
    current = assessed.groupby("learner_id")["term_index"].max().rename("current_term_index")
    out = latest[["learner_id", "competency_id", "level"]].join(current, on="learner_id")
    out = out.merge(
        expected_table(framework),
        left_on=["competency_id", "current_term_index"],
        right_on=["competency_id", "term_index"],
        how="left",
    )
    status = learners.set_index("id")["status"]
    out["status"] = out["learner_id"].map(status)
    out["behind"] = (out["status"] == "active") & (out["level"] <= out["expected"] - 1)
    return out


def learners_behind(levels: pd.DataFrame) -> set[str]:
    return set(levels.loc[levels["behind"], "learner_id"])


def trajectory_by_term(ratings: pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """Per domain and term: median and quartiles of learners' domain levels."""
    live = ratings[~ratings["id"].isin(set(ratings["corrects"].dropna()))]
    assessed = live[live["rater_role"] != "self"]
    per_term = assessed.sort_values(["rated_on", "seq"]).groupby(["learner_id", "competency_id", "term_index"]).tail(1)
    per_term = per_term.assign(
        domain_id=per_term["competency_id"].map({c: framework.domain_of[c].id for c in framework.competencies})
    )
    learner_domain = per_term.groupby(["learner_id", "domain_id", "term_index"])["level"].mean().reset_index()
    g = learner_domain.groupby(["domain_id", "term_index"])["level"]
    return pd.DataFrame({"median": g.median(), "q25": g.quantile(0.25), "q75": g.quantile(0.75)}).reset_index()


def cohort_summary(ratings: pd.DataFrame, cohort_learners: pd.DataFrame, framework: Framework) -> dict:
    """The cohort page's figures: counts per competency and level, who is behind, the trajectory by term."""
    levels = latest_levels(ratings, cohort_learners, framework)
    counts = levels.groupby(["competency_id", "level"]).size().rename("learners")
    trajectory = trajectory_by_term(ratings[ratings["learner_id"].isin(cohort_learners["id"])], framework)
    return {"counts": counts, "behind": learners_behind(levels), "trajectory": trajectory}
