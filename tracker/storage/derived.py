"""The derived level tables (term_levels, current_levels, and the forecast's growth_sums and domain_terms): never
records, recomputed from the ratings by every write that touches them. The one definition of which rating counts (docs/measurement.md)."""

from collections.abc import Sequence

import duckdb

Cursor = duckdb.DuckDBPyConnection


# Every rating read under the accepted framework: its competency and level mapped through the crosswalks of the
# versions since the one it was made under (fw_crosswalk, fw_level_map: tracker/records/revision.py); a split yields a row
# per competency that inherits it; a retired competency's ratings have no row. The rating keeps its own ids.
def mapped_ratings(source: str) -> str:
    """The ratings of `source` (a table or CTE name of ours) with mapped_competency_id and mapped_level."""
    return f"""(
    SELECT r.*, coalesce(m.to_competency_id, r.competency_id) AS mapped_competency_id,
        coalesce(lm.to_level, r.level) AS mapped_level
    FROM {source} r
    LEFT JOIN fw_crosswalk m ON m.from_version = r.framework_version AND m.competency_id = r.competency_id
    LEFT JOIN fw_level_map lm ON lm.from_version = r.framework_version AND lm.level = r.level
    WHERE m.from_version IS NULL OR m.to_competency_id IS NOT NULL)"""  # noqa: S608 - `source` is our constant


MAPPED_RATINGS = mapped_ratings("ratings")

# Goals and evidence name competencies without a framework version: each was checked against the version accepted
# when it was recorded, so that is the version its ids and levels belong to. `older` holds, for every version since
# replaced, the time it was in force (the first from the beginning); with no revision it is empty and costs nothing.
OLDER_VERSIONS = """
    older AS (
        SELECT version, CASE WHEN n = 1 THEN TIMESTAMP '-infinity' ELSE accepted_at END AS since, until FROM (
            SELECT version, accepted_at, row_number() OVER w AS n, lead(accepted_at) OVER w AS until
            FROM framework_versions WHERE accepted_at IS NOT NULL WINDOW w AS (ORDER BY accepted_at, loaded_at))
        WHERE until IS NOT NULL)"""


def evidence_links(source: str) -> str:
    """One row per competency an evidence item of `source` (a table or CTE name of ours; needs `older`) counts for
    under the accepted framework: its ids read through the crosswalk as ratings are (a split counts for every heir,
    a retired competency for none). Columns: learner_id, added_on, competency_id."""
    return f"""(
    SELECT x.learner_id, x.added_on, coalesce(m.to_competency_id, x.competency_id) AS competency_id
    FROM (SELECT e.learner_id, e.added_on, e.recorded_at, c.competency_id
          FROM {source} e, unnest(e.competency_ids) AS c(competency_id)) x
    LEFT JOIN older o ON x.recorded_at >= o.since AND x.recorded_at < o.until
    LEFT JOIN fw_crosswalk m ON m.from_version = o.version AND m.competency_id = x.competency_id
    WHERE m.from_version IS NULL OR m.to_competency_id IS NOT NULL)"""  # noqa: S608 - `source` is our constant


# term_levels is derived, never a record: for each learner, competency, term and kind of rater (self, or
# advisor/committee), the level of the latest rating that no correction supersedes, under the accepted framework
# (its competencies and terms; from_competency_id, from_version and rater_id say which rating it was). A correction names a
# rating of its own learner, so the learners' own rows decide what is superseded. Every write of ratings refreshes
# the rows of the learners it touches, in its own transaction, so reads never recompute it.
TERM_LEVELS = (
    "WITH mine AS (SELECT * FROM ratings WHERE $learners IS NULL OR learner_id IN (SELECT unnest($learners))),"  # noqa: S608
    + """
    keyed AS (  -- the latest rating of a term: by date, then by the order recorded (one integer key: fast)
        SELECT *, (date_diff('day', DATE '2000-01-01', rated_on) << 40) | seq AS k FROM """
    + mapped_ratings("mine")
    + """)
    SELECT r.learner_id, r.mapped_competency_id AS competency_id, t.term_index, r.rater_role = 'self' AS is_self,
        arg_max(r.mapped_level, r.k) AS level, max(r.rated_on) AS rated_on,
        arg_max(r.competency_id, r.k) AS from_competency_id, arg_max(r.framework_version, r.k) AS from_version,
        arg_max(r.rater_id, r.k) AS rater_id
    FROM keyed r JOIN fw_terms t ON t.term = r.term SEMI JOIN fw_competencies fc ON fc.competency_id = r.mapped_competency_id
    WHERE r.id NOT IN (SELECT corrects FROM mine WHERE corrects IS NOT NULL)
    GROUP BY r.learner_id, r.mapped_competency_id, t.term_index, is_self
    ORDER BY r.learner_id, r.mapped_competency_id, t.term_index"""
)


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
            max(rated_on) FILTER (WHERE is_self) AS last_self_on,
            max_by(from_competency_id, term_index) FILTER (WHERE NOT is_self) AS level_from_competency,
            max_by(from_version, term_index) FILTER (WHERE NOT is_self) AS level_from_version
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
        la.level_from_competency, la.level_from_version,
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


# The forecast's sums, derived from term_levels by the same writes, so that the program-wide priors read a row per
# learner and competency (or per learner, term and domain) instead of regrouping every level (docs/measurement.md,
# "The graduation forecast"; bench/README.md has the figures).
#
# growth_sums: for each learner, competency and term with an advisor or committee level, the least-squares sums of
# the levels over terms *up to and including that term* (count, sums of terms, levels, their squares and products)
# and the next term with such a level (NULL when none). The row in force at term k is the one with
# term_index <= k < next_term: so the forecast "as of" a term reads only the levels up to it, by a filter, never a
# later level.
GROWTH_SUMS = (
    "WITH mine AS (SELECT learner_id, competency_id, term_index, CAST(level AS DOUBLE) AS level FROM term_levels"  # noqa: S608
    + """
    WHERE NOT is_self AND ($learners IS NULL OR learner_id IN (SELECT unnest($learners))))
    SELECT learner_id, competency_id, term_index, level,
        count(*) OVER upto AS n, sum(term_index) OVER upto AS st, sum(term_index * term_index) OVER upto AS stt,
        sum(level) OVER upto AS sy, sum(term_index * level) OVER upto AS sty, sum(level * level) OVER upto AS syy,
        lead(term_index) OVER (PARTITION BY learner_id, competency_id ORDER BY term_index) AS next_term
    FROM mine
    WINDOW upto AS (PARTITION BY learner_id, competency_id ORDER BY term_index ROWS UNBOUNDED PRECEDING)
    ORDER BY learner_id, competency_id, term_index"""
)

# domain_terms: per learner, term, domain and rater, how many advisor or committee levels that rater's ratings are
# and their total: what raters' strictness and the units' levels of the learned forecast aggregate.
DOMAIN_TERMS = (
    "SELECT tl.learner_id, tl.term_index, fc.domain_id, tl.rater_id, count(*) AS levels,"  # noqa: S608
    + """ sum(CAST(tl.level AS DOUBLE)) AS total
    FROM term_levels tl JOIN fw_competencies fc USING (competency_id)
    WHERE NOT tl.is_self AND ($learners IS NULL OR tl.learner_id IN (SELECT unnest($learners)))
    GROUP BY ALL ORDER BY ALL"""
)

DERIVED = (
    ("term_levels", TERM_LEVELS),
    ("current_levels", CURRENT_LEVELS),
    ("growth_sums", GROWTH_SUMS),
    ("domain_terms", DOMAIN_TERMS),
)  # in this order: each reads the ones before it


def refresh_term_levels(cur: Cursor, learner_ids: Sequence[str] | None = None) -> None:
    """Recompute the derived levels and sums of these learners (all learners when None); call inside a write."""
    ids = None if learner_ids is None else sorted(set(learner_ids))
    for table, sql in DERIVED:
        cur.execute(
            f"DELETE FROM {table} WHERE $learners IS NULL OR learner_id IN (SELECT unnest($learners))",  # noqa: S608
            {"learners": ids},
        )
        cur.execute(f"INSERT INTO {table} BY NAME " + sql, {"learners": ids})
