"""The derived level tables (term_levels, current_levels): never records, recomputed from the ratings by every
write that touches them. The one definition of which rating counts (docs/measurement.md)."""

from collections.abc import Sequence

import duckdb

Cursor = duckdb.DuckDBPyConnection

# term_levels is derived, never a record: for each learner, competency, term and kind of rater (self, or
# advisor/committee), the level of the latest rating that no correction supersedes. Every write of ratings
# refreshes the rows of the learners it touches, in its own transaction, so reads never recompute it.
TERM_LEVELS = """
    SELECT learner_id, competency_id, term_index, rater_role = 'self' AS is_self,
        -- the latest rating of the term: by date, then by the order recorded (one integer key: fast)
        arg_max(level, (date_diff('day', DATE '2000-01-01', rated_on) << 40) | seq) AS level, max(rated_on) AS rated_on
    FROM ratings
    WHERE id NOT IN (SELECT corrects FROM ratings WHERE corrects IS NOT NULL)
      AND ($learners IS NULL OR learner_id IN (SELECT unnest($learners)))
    GROUP BY ALL ORDER BY learner_id, competency_id, term_index"""


def latest_levels_ctes(source: str) -> str:
    """The `latest` and `previous` CTEs over term levels in `source` (a CTE name of ours): per learner and
    competency, the latest advisor/committee level with its term and date, the level of the term before it,
    and the latest self level. The one definition, for now (current_levels) and for a past term (queries)."""
    return f"""
    latest AS (
        SELECT learner_id, competency_id,
            max_by(level, term_index) FILTER (WHERE NOT is_self) AS level,
            max(term_index) FILTER (WHERE NOT is_self) AS level_term,
            max(rated_on) FILTER (WHERE NOT is_self) AS last_rated_on,
            max_by(level, term_index) FILTER (WHERE is_self) AS self_level,
            max(term_index) FILTER (WHERE is_self) AS self_term,
            max(rated_on) FILTER (WHERE is_self) AS last_self_on
        FROM {source} GROUP BY ALL),
    previous AS (
        SELECT p.learner_id, p.competency_id, max_by(p.level, p.term_index) AS previous_level
        FROM {source} p JOIN latest l USING (learner_id, competency_id)
        WHERE NOT p.is_self AND p.term_index < l.level_term GROUP BY ALL)"""  # noqa: S608 - `source` is our constant


def levels_select(learners: str) -> str:
    """One row per learner of `learners` (a FROM item aliased l) and competency of the framework: the latest
    levels (from the CTEs `latest` and `previous`), the learner's assessed term (the latest term with an
    advisor or committee rating) and the date of their latest rating of any kind."""
    return f"""
    SELECT l.id AS learner_id, fc.competency_id, la.level, la.level_term, la.last_rated_on,
        la.self_level, la.self_term, la.last_self_on, p.previous_level,
        max(la.level_term) OVER learner AS assessed_term,
        max(greatest(coalesce(la.last_rated_on, la.last_self_on), coalesce(la.last_self_on, la.last_rated_on))) OVER learner
            AS last_on
    FROM {learners} CROSS JOIN fw_competencies fc
    LEFT JOIN latest la ON la.learner_id = l.id AND la.competency_id = fc.competency_id
    LEFT JOIN previous p ON p.learner_id = l.id AND p.competency_id = fc.competency_id
    WINDOW learner AS (PARTITION BY l.id)"""  # noqa: S608 - `learners` is our constant


# current_levels is derived from term_levels, kept current by the same writes (and for new learners and a
# changed framework): a row for every learner and competency.
CURRENT_LEVELS = (
    "WITH t AS (SELECT * FROM term_levels WHERE $learners IS NULL OR learner_id IN (SELECT unnest($learners))),"  # noqa: S608
    + latest_levels_ctes("t")
    + levels_select("(SELECT * FROM learners WHERE $learners IS NULL OR id IN (SELECT unnest($learners))) l")
    + "\n    ORDER BY l.id, fc.competency_id"
)


def refresh_term_levels(cur: Cursor, learner_ids: Sequence[str] | None = None) -> None:
    """Recompute the derived levels of these learners (all learners when None); call inside a write."""
    ids = None if learner_ids is None else sorted(set(learner_ids))
    for table, sql in (("term_levels", TERM_LEVELS), ("current_levels", CURRENT_LEVELS)):
        cur.execute(
            f"DELETE FROM {table} WHERE $learners IS NULL OR learner_id IN (SELECT unnest($learners))",  # noqa: S608
            {"learners": ids},
        )
        cur.execute(f"INSERT INTO {table} " + sql, {"learners": ids})
