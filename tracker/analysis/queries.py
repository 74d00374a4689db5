"""Pure reads: (cursor, viewer, filters) -> DataFrame. Every read is scoped to the viewer.

The one definition of standing (docs/measurement.md): which rating counts and how corrections supersede is
`derived.TERM_LEVELS`, the latest levels `derived.CURRENT_LEVELS` (both kept current on every write; `_LEVELS_AS_OF`
computes the same for a past term); what "expected" and "behind" mean is `_STANDING_CTE`. Every page and
export reads these; the cohort pages ask for their summaries in SQL and fetch rows only for the learners they show.
"""

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from data_models import Framework, Role
from tracker.access.policy import VISIBLE_LEARNER, Viewer, require_learner, require_role, scope_params
from tracker.analysis import forecast
from tracker.analysis.forecast import Priors
from tracker.core.text import is_safe_link
from tracker.storage.database import Cursor
from tracker.storage.derived import MAPPED_RATINGS, OLDER_VERSIONS, evidence_links, latest_levels_ctes, levels_select

BEHIND_BY = 1.0  # a competency is behind when its level is at least this far below the expected level
OLD_EVIDENCE_DAYS = 365  # evidence is old when added this long before the learner's latest rating
# The viewer's learners, then their term levels (derived.TERM_LEVELS) up to the term asked for.
_VISIBLE = f"""
visible AS (
    SELECT l.* FROM learners l
    WHERE {VISIBLE_LEARNER}
      AND ($learner IS NULL OR l.id = $learner)
      AND ($cohort IS NULL OR l.cohort = $cohort)
      AND ($advisor IS NULL OR l.advisor_id = $advisor)
      AND ($among IS NULL OR list_contains($among, l.id)))"""  # noqa: S608 - the access rule is our constant
_PER_TERM = """,
per_term AS (
    SELECT tl.learner_id, tl.competency_id, tl.term_index, tl.is_self, tl.level, tl.rated_on,
        tl.from_competency_id, tl.from_version, tl.rater_id
    FROM term_levels tl SEMI JOIN visible v ON v.id = tl.learner_id
    WHERE tl.term_index <= coalesce($as_of, 32767) AND ($learner IS NULL OR tl.learner_id = $learner))
"""
_EFFECTIVE = _VISIBLE + _PER_TERM
# Levels as of a past term: computed from the term levels up to it, the same definition as current_levels.
_LEVELS_AS_OF = _PER_TERM + "," + latest_levels_ctes("per_term") + ",\nlevels AS (" + levels_select("visible l") + ")"
# Levels now: read from derived.CURRENT_LEVELS, which every write keeps current (a row per learner and competency).
_LEVELS_NOW = """,
levels AS (
    SELECT cl.* FROM current_levels cl SEMI JOIN visible v ON v.id = cl.learner_id
    WHERE $learner IS NULL OR cl.learner_id = $learner
    UNION ALL BY NAME  -- a learner written without a refresh (none of our writes) still stands, unrated
    SELECT v.id AS learner_id, fc.competency_id FROM visible v CROSS JOIN fw_competencies fc
    WHERE NOT EXISTS (
        SELECT 1 FROM current_levels cl WHERE cl.learner_id = v.id AND ($learner IS NULL OR cl.learner_id = $learner)))"""
# One row per visible learner and competency (of the domain asked for): level, expected, standing. The summaries
# of the cohort pages aggregate this CTE in SQL, so they never fetch a row per learner and competency.
_STANDING_CTE = """,
standing AS (
    SELECT v.id AS learner_id, v.name AS learner_name, v.cohort, v.status, v.advisor_id,
        fc.domain_id, fc.domain_name, fc.competency_id, fc.competency_name,
        fc.domain_position, fc.position,
        la.assessed_term AS current_term_index, ft.term AS current_term,
        CAST(la.level AS DOUBLE) AS level, CAST(la.self_level AS DOUBLE) AS self_level,
        CAST(la.self_level - la.level AS DOUBLE) AS self_gap,
        CAST(x.expected AS DOUBLE) AS expected,
        CAST(la.level - x.expected AS DOUBLE) AS vs_expected,
        CAST(la.level - la.previous_level AS DOUBLE) AS trend,
        la.last_rated_on, la.last_self_on, la.last_on,
        -- a level made under an earlier version reads through its crosswalk: "from 2026.1: Course design"
        CASE WHEN la.level_from_version <> fc_now.version
             THEN 'from ' || la.level_from_version || ': ' || coalesce(h.competency_name, la.level_from_competency)
        END AS carried_from,
        CASE WHEN v.status <> 'active' THEN v.status
             WHEN la.level IS NULL THEN 'not rated'
             WHEN la.level <= x.expected - $behind_by THEN 'behind'
             WHEN la.level < x.expected THEN 'below'
             ELSE 'on track' END AS standing
    FROM levels la
    JOIN visible v ON v.id = la.learner_id
    JOIN fw_competencies fc ON fc.competency_id = la.competency_id
    LEFT JOIN fw_terms ft ON ft.term_index = coalesce(la.assessed_term, 1)
    LEFT JOIN fw_expected x ON x.competency_id = la.competency_id AND x.term_index = coalesce(la.assessed_term, 1)
    LEFT JOIN fw_history h ON h.version = la.level_from_version AND h.competency_id = la.level_from_competency
    CROSS JOIN (SELECT max_by(version, accepted_at) AS version FROM framework_versions) fc_now
    WHERE $domain IS NULL OR fc.domain_id = $domain)"""
# The full rows, with evidence coverage (what the learner page, the CSV and the reports show).
_STANDING_ROWS = (
    ""","""  # noqa: S608 - our constants
    + OLDER_VERSIONS
    + """,
mine_evidence AS (
    SELECT e.* FROM evidence e SEMI JOIN visible v ON v.id = e.learner_id WHERE $learner IS NULL OR e.learner_id = $learner),
evidence_count AS (
    SELECT learner_id, competency_id, count(*) AS evidence_count, max(added_on) AS last_evidence_on
    FROM """
    + evidence_links("mine_evidence")
    + """
    GROUP BY ALL)
SELECT s.* EXCLUDE (last_on), coalesce(ec.evidence_count, 0) AS evidence_count, ec.last_evidence_on,
    CASE WHEN ec.evidence_count IS NULL THEN 'none'
         WHEN ec.last_evidence_on < s.last_on - INTERVAL (CAST($evidence_days AS INTEGER)) DAY THEN 'old'
         ELSE 'current' END AS evidence_coverage
FROM standing s
LEFT JOIN evidence_count ec ON ec.learner_id = s.learner_id AND ec.competency_id = s.competency_id
ORDER BY s.learner_id, s.domain_position, s.position
"""
)


def _standing_sql(as_of: int | None, final: str) -> str:
    """The standing CTE now (from current_levels) or as of a past term, followed by `final` (our constant SQL)."""
    levels = _LEVELS_NOW if as_of is None else _LEVELS_AS_OF
    return "WITH " + _VISIBLE + levels + _STANDING_CTE + final


def _params(
    viewer: Viewer,
    learner: str | None = None,
    cohort: str | None = None,
    as_of: int | None = None,
    domain: str | None = None,
    advisor: str | None = None,
) -> dict:
    """Bound parameters of every scoped read: the viewer's scope, and the filters asked for."""
    return scope_params(viewer) | {
        "learner": learner,
        "cohort": cohort,
        "as_of": as_of,
        "domain": domain,
        "advisor": advisor,
        "among": None,
        "behind_by": BEHIND_BY,
        "evidence_days": OLD_EVIDENCE_DAYS,
    }


def _run(cur: Cursor, sql: str, params: dict) -> pd.DataFrame:
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    return cur.execute(sql, used).df()


# ---- the learners a viewer may see -------------------------------------------------------------
def visible_learners(cur: Cursor, viewer: Viewer, cohort: str | None = None) -> pd.DataFrame:
    params = _params(viewer, cohort=cohort)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _EFFECTIVE
        + """
        SELECT v.id, v.name, v.cohort, v.profession, v.status, v.advisor_id, s.name AS advisor_name
        FROM visible v LEFT JOIN staff s ON s.id = v.advisor_id ORDER BY v.name, v.id"""
    )
    return _run(cur, sql, params)


def cohorts(cur: Cursor, viewer: Viewer) -> list[str]:
    return sorted(visible_learners(cur, viewer)["cohort"].unique().tolist())


# ---- standing ----------------------------------------------------------------------------------
def competency_standing(
    cur: Cursor,
    viewer: Viewer,
    learner_id: str | None = None,
    cohort: str | None = None,
    as_of: int | None = None,
    domain: str | None = None,
) -> pd.DataFrame:
    """One row per visible learner and competency: level, self level, gap, expected, trend, evidence."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    return _run(cur, _standing_sql(as_of, _STANDING_ROWS), _params(viewer, learner_id, cohort, as_of, domain))


def domain_standing(standing: pd.DataFrame) -> pd.DataFrame:
    """A domain's level is the mean of its rated competencies' levels; likewise its expected level."""
    rated = standing.assign(rated=standing["level"].notna())
    grouped = rated.groupby(["learner_id", "domain_id", "domain_name", "domain_position"], as_index=False, sort=False)
    out = grouped.agg(
        level=("level", "mean"),
        self_level=("self_level", "mean"),
        expected=("expected", "mean"),
        competencies=("competency_id", "count"),
        rated=("rated", "sum"),
        behind=("standing", lambda s: int((s == "behind").sum())),
    )
    out["vs_expected"] = out["level"] - out["expected"]
    return out.sort_values(["learner_id", "domain_position"], ignore_index=True)


def level_distribution(
    cur: Cursor, viewer: Viewer, cohort: str | None = None, as_of: int | None = None, domain: str | None = None
) -> pd.DataFrame:
    """Per competency and level: how many visible learners hold that level (advisor/committee ratings)."""
    final = """
    SELECT domain_id, domain_name, competency_id, competency_name, level, count(*) AS learners
    FROM standing WHERE level IS NOT NULL
    GROUP BY ALL ORDER BY any_value(domain_position), any_value(position), level"""
    return _run(cur, _standing_sql(as_of, final), _params(viewer, cohort=cohort, as_of=as_of, domain=domain))


def selection_totals(
    cur: Cursor, viewer: Viewer, cohort: str | None = None, as_of: int | None = None, domain: str | None = None
) -> dict:
    """The headline figures of a selection: learners, how many are behind and on leave, rated competencies,
    and the median of level − expected over them."""
    final = """
    SELECT (SELECT count(*) FROM visible) AS learners,
        count(DISTINCT learner_id) FILTER (WHERE standing = 'behind') AS behind,
        (SELECT count(*) FROM visible WHERE status = 'leave') AS on_leave,
        count(level) AS rated,
        CAST(median(vs_expected) AS DOUBLE) AS median_vs_expected
    FROM standing"""
    sql, params = _standing_sql(as_of, final), _params(viewer, cohort=cohort, as_of=as_of, domain=domain)
    result = cur.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    names = [d[0] for d in result.description]
    return dict(zip(names, result.fetchone() or (), strict=True))


_BEHIND_COLUMNS = ["learner_id", "learner_name", "cohort", "current_term", "behind", "worst_gap", "why", "why_first"]
WHY_FIRST = 3  # why_first: the reasons of the competencies furthest behind, for a line that must stay short


def learners_behind(
    cur: Cursor,
    viewer: Viewer,
    cohort: str | None = None,
    as_of: int | None = None,
    domain: str | None = None,
    advisor: str | None = None,
) -> pd.DataFrame:
    """Active learners with at least one competency behind, with the reason in words (worst first); why_first
    holds the WHY_FIRST furthest behind of them."""
    final = """,
    behind AS (
        SELECT *, competency_name || ' (' || domain_name || '): level ' || regexp_replace(printf('%.1f', level), '\\.0$', '')
            || ', expected ' || regexp_replace(printf('%.1f', expected), '\\.0$', '') AS words
        FROM standing WHERE standing = 'behind')
    SELECT learner_id, learner_name, cohort, current_term, count(*) AS behind, min(vs_expected) AS worst_gap,
        string_agg(words, '; ' ORDER BY vs_expected, domain_position, position) AS why,
        array_to_string(list(words ORDER BY vs_expected, domain_position, position)[1:$first], '; ') AS why_first
    FROM behind GROUP BY ALL ORDER BY worst_gap, behind DESC, learner_id"""
    params = _params(viewer, cohort=cohort, as_of=as_of, domain=domain, advisor=advisor) | {"first": WHY_FIRST}
    out = _run(cur, _standing_sql(as_of, final), params)
    return out[_BEHIND_COLUMNS] if not out.empty else pd.DataFrame(columns=_BEHIND_COLUMNS)


ADVISEE_WORK_COLUMNS = [
    "learner_id",
    "learner_name",
    "cohort",
    "current_term",
    "to_rate",
    "to_review",
    "latest_self_on",
    "behind",
    "why",
    "why_first",
]


def advisee_work(cur: Cursor, viewer: Viewer, advisor: str) -> pd.DataFrame:
    """The advisor's active advisees who need them, one row each, most to do first: `to_rate` is a term they
    self-assessed in with no advisor rating yet, `to_review` how many self-ratings are newer than the latest
    rating of that competency, `behind` how many competencies are a whole level or more below the expected
    level (with `why` in words, `why_first` the WHY_FIRST furthest behind)."""
    learners = visible_learners(cur, viewer)
    mine = learners[(learners["advisor_id"] == advisor) & (learners["status"] == "active")]
    ids = set(mine["id"])
    unrated = without_advisor_rating(cur, viewer).set_index("learner_id")["term"]
    queue = review_queue(cur, viewer).set_index("learner_id")
    behind = learners_behind(cur, viewer, advisor=advisor).set_index("learner_id")
    needing = ids & (set(unrated.index) | set(queue.index) | set(behind.index))
    out = pd.DataFrame({"learner_id": sorted(needing)}, dtype=object)
    if out.empty:
        return pd.DataFrame(columns=ADVISEE_WORK_COLUMNS)
    names = mine.set_index("id")
    out["learner_name"] = out["learner_id"].map(names["name"])
    out["cohort"] = out["learner_id"].map(names["cohort"])
    final = (
        " SELECT learner_id, max_by(current_term, current_term_index) AS current_term FROM standing GROUP BY learner_id"
    )
    terms = _run(cur, _standing_sql(None, final), _params(viewer, advisor=advisor)).set_index("learner_id")
    out["current_term"] = out["learner_id"].map(terms["current_term"])
    out["to_rate"] = out["learner_id"].map(unrated)
    out["to_review"] = out["learner_id"].map(queue["to_review"]).fillna(0).astype(int)
    out["latest_self_on"] = out["learner_id"].map(queue["latest_self_on"])
    out["behind"] = out["learner_id"].map(behind["behind"]).fillna(0).astype(int)
    out["why"] = out["learner_id"].map(behind["why"])
    out["why_first"] = out["learner_id"].map(behind["why_first"])
    order = out.assign(rate=out["to_rate"].notna(), gap=out["learner_id"].map(behind["worst_gap"]).fillna(0))
    order = order.sort_values(["rate", "gap", "to_review", "learner_name"], ascending=[False, True, False, True])
    return order[ADVISEE_WORK_COLUMNS].reset_index(drop=True)


def cohort_overview(cur: Cursor, viewer: Viewer) -> pd.DataFrame:
    """Per visible cohort: learners, the furthest term assessed, how many are behind and how many on leave."""
    final = """,
    per_learner AS (
        SELECT learner_id, cohort, any_value(status) AS status, any_value(current_term_index) AS term_index,
            bool_or(standing = 'behind') AS behind
        FROM standing GROUP BY ALL)
    SELECT p.cohort, count(*) AS learners, any_value(ft.term ORDER BY ft.term_index DESC) AS term,
        count(*) FILTER (WHERE p.behind) AS behind, count(*) FILTER (WHERE p.status = 'leave') AS on_leave
    FROM per_learner p JOIN fw_terms ft ON ft.term_index = p.term_index
    GROUP BY p.cohort ORDER BY p.cohort"""
    return _run(cur, _standing_sql(None, final), _params(viewer))


def furthest_behind(
    cur: Cursor,
    viewer: Viewer,
    cohort: str | None = None,
    as_of: int | None = None,
    domain: str | None = None,
    limit: int = 40,
) -> pd.DataFrame:
    """The rated standing rows of the `limit` learners furthest below the expected levels on average (the
    heatmap's rows: a screen holds a few dozen learners, not a program)."""
    params = _params(viewer, cohort=cohort, as_of=as_of, domain=domain) | {"limit": limit}
    pick = """
    SELECT list(learner_id ORDER BY gap, learner_id)[1:$limit] FROM (
        SELECT learner_id, avg(vs_expected) AS gap FROM standing WHERE level IS NOT NULL GROUP BY learner_id)"""
    sql = _standing_sql(as_of, pick)
    among = cur.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).fetchone()
    rows = " SELECT * FROM standing WHERE level IS NOT NULL ORDER BY learner_id, domain_position, position"
    return _run(cur, _standing_sql(as_of, rows), params | {"among": (among and among[0]) or []})


# ---- over time ---------------------------------------------------------------------------------
def trajectory(cur: Cursor, viewer: Viewer, learner_id: str) -> pd.DataFrame:
    """Per term and competency: the advisor/committee level and the self level of that term, and the expected level."""
    require_learner(cur, viewer, learner_id)
    sql = """
        SELECT fc.domain_id, fc.domain_name, fc.domain_position, fc.competency_id, fc.competency_name, fc.position,
            x.term, x.term_index, ft.label AS term_label,
            CAST(x.expected AS DOUBLE) AS expected,
            CAST(a.level AS DOUBLE) AS level,
            CAST(s.level AS DOUBLE) AS self_level
        FROM fw_expected x JOIN fw_competencies fc USING (competency_id) JOIN fw_terms ft ON ft.term = x.term
        LEFT JOIN term_levels a
            ON a.learner_id = $learner AND NOT a.is_self AND a.competency_id = x.competency_id AND a.term_index = x.term_index
        LEFT JOIN term_levels s
            ON s.learner_id = $learner AND s.is_self AND s.competency_id = x.competency_id AND s.term_index = x.term_index
        ORDER BY fc.domain_position, fc.position, x.term_index"""
    return cur.execute(sql, {"learner": learner_id}).df()


def cohort_trajectory(cur: Cursor, viewer: Viewer, cohort: str | None = None) -> pd.DataFrame:
    """Per term and domain: median and quartiles of learners' domain levels (advisor/committee), and expected."""
    params = _params(viewer, cohort=cohort)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _EFFECTIVE
        + """,
        learner_domain AS (
            SELECT p.learner_id, fc.domain_id, p.term_index, avg(p.level) AS level
            FROM per_term p JOIN fw_competencies fc USING (competency_id)
            WHERE NOT p.is_self GROUP BY ALL),
        spread AS (
            SELECT domain_id, term_index, count(*) AS learners,
                CAST(quantile_cont(level, 0.25) AS DOUBLE) AS q25, CAST(median(level) AS DOUBLE) AS median,
                CAST(quantile_cont(level, 0.75) AS DOUBLE) AS q75
            FROM learner_domain GROUP BY ALL),
        domains AS (
            SELECT domain_id, any_value(domain_name) AS domain_name, any_value(domain_position) AS domain_position
            FROM fw_competencies GROUP BY domain_id),
        expected AS (
            SELECT fc.domain_id, x.term_index, CAST(avg(x.expected) AS DOUBLE) AS expected
            FROM fw_expected x JOIN fw_competencies fc USING (competency_id) GROUP BY ALL)
        SELECT s.domain_id, d.domain_name, s.term_index, ft.term, s.learners, s.q25, s.median, s.q75, e.expected
        FROM spread s JOIN domains d USING (domain_id) JOIN expected e USING (domain_id, term_index)
        JOIN fw_terms ft ON ft.term_index = s.term_index
        ORDER BY d.domain_position, s.term_index"""
    )
    return _run(cur, sql, params)


# ---- records -----------------------------------------------------------------------------------
def rating_history(cur: Cursor, viewer: Viewer, learner_id: str, competency_id: str | None = None) -> pd.DataFrame:
    """Every rating of a learner, newest first, under the name its competency had in the version it was made
    under, with rater name, whether a correction superseded it and whether its competency is retired. Asked for
    one competency: its own ratings and those it inherits through the crosswalk."""
    require_learner(cur, viewer, learner_id)
    sql = (
        "WITH mine AS (SELECT * FROM ratings WHERE learner_id = $learner)"  # noqa: S608 - constant SQL fragments
        + """
        SELECT r.id, r.rated_on, r.term, coalesce(ft.term_index, r.term_index) AS term_index,
            coalesce(h.domain_name, fc.domain_name) AS domain_name, r.competency_id,
            coalesce(h.competency_name, fc.competency_name, r.competency_id) AS competency_name,
            CAST(r.level AS DOUBLE) AS level, r.rater_role,
            CASE WHEN r.rater_role = 'self' THEN (SELECT name FROM learners WHERE id = $learner) ELSE s.name END
                AS rater_name,
            r.comment, r.evidence_ids, r.corrects,
            coalesce(r.id IN (SELECT corrects FROM mine WHERE corrects IS NOT NULL), false) AS superseded,
            r.framework_version, coalesce(h.retired, fc.competency_id IS NULL) AS retired
        FROM mine r LEFT JOIN fw_history h ON h.version = r.framework_version AND h.competency_id = r.competency_id
        LEFT JOIN fw_competencies fc ON fc.competency_id = r.competency_id
        LEFT JOIN fw_terms ft ON ft.term = r.term LEFT JOIN staff s ON s.id = r.rater_id
        WHERE $competency IS NULL OR r.competency_id = $competency
            OR r.id IN (SELECT id FROM """
        + MAPPED_RATINGS
        + """ WHERE learner_id = $learner AND mapped_competency_id = $competency)
        ORDER BY r.rated_on DESC, r.seq DESC"""
    )
    return cur.execute(sql, {"learner": learner_id, "competency": competency_id}).df()


# A learner's evidence items, each with the competencies it counts for under the accepted framework (`counts_for`,
# read through the crosswalk: derived.evidence_links) and their names, a retired competency's name marked.
_EVIDENCE_ITEMS = (
    "WITH"  # noqa: S608 - our constants
    + OLDER_VERSIONS
    + """,
    mine AS (SELECT * FROM evidence WHERE learner_id = $learner),
    named AS (
        SELECT x.id, x.competency_id AS named_id, x.position, m.from_version IS NOT NULL AS walked,
            m.to_competency_id, h.competency_name AS old_name
        FROM (SELECT e.id, e.recorded_at, c.competency_id, c.position
              FROM mine e, unnest(e.competency_ids) WITH ORDINALITY AS c(competency_id, position)) x
        LEFT JOIN older o ON x.recorded_at >= o.since AND x.recorded_at < o.until
        LEFT JOIN fw_crosswalk m ON m.from_version = o.version AND m.competency_id = x.competency_id
        LEFT JOIN fw_history h ON h.version = o.version AND h.competency_id = x.competency_id),
    placed AS (
        SELECT id,
            list(DISTINCT coalesce(to_competency_id, named_id)) FILTER (WHERE NOT walked OR to_competency_id IS NOT NULL)
                AS counts_for,
            list(named_id ORDER BY position) FILTER (WHERE walked AND to_competency_id IS NULL) AS retired_ids,
            list(old_name ORDER BY position) FILTER (WHERE walked AND to_competency_id IS NULL) AS retired_names
        FROM named GROUP BY id)
    SELECT e.id, e.added_on, e.type, e.title, e.competency_ids, coalesce(p.counts_for, []) AS counts_for,
        coalesce(p.retired_names, []) AS retired_names, e.url, e.description
    FROM mine e LEFT JOIN placed p ON p.id = e.id
    ORDER BY e.added_on DESC, e.recorded_at DESC, e.id DESC"""
)


def evidence_items(cur: Cursor, viewer: Viewer, learner_id: str) -> pd.DataFrame:
    """The learner's evidence, newest first: as recorded (`competency_ids`), the competencies each counts for under
    the accepted framework (`counts_for`), and the names of those it named that the framework retired since."""
    require_learner(cur, viewer, learner_id)
    items = cur.execute(_EVIDENCE_ITEMS, {"learner": learner_id}).df()
    # only web and mail addresses are links; anything else stored before that rule stays plain text
    return items.assign(link=items["url"].where(items["url"].map(is_safe_link)))


def evidence_competency_names(items: pd.DataFrame, fw: Framework) -> list[str]:
    """Of `evidence_items`, each item's competencies in words under the accepted framework: the names of those it
    counts for, then those it named that were retired since, marked."""
    return [
        ", ".join([fw.competencies[c].name for c in now if c in fw.competencies] + [f"{n} (retired)" for n in old])
        for now, old in zip(items["counts_for"], items["retired_names"], strict=True)
    ]


def review_queue(cur: Cursor, viewer: Viewer) -> pd.DataFrame:
    """Self-assessments newer than the latest advisor or committee rating of that competency."""
    params = _params(viewer)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _EFFECTIVE
        + """,
        last AS (
            SELECT learner_id, competency_id,
                max(rated_on) FILTER (WHERE is_self) AS self_on,
                max(rated_on) FILTER (WHERE NOT is_self) AS assessed_on
            FROM per_term GROUP BY ALL)
        SELECT v.id AS learner_id, v.name AS learner_name, v.cohort, count(*) AS to_review, max(last.self_on) AS latest_self_on
        FROM last JOIN visible v ON v.id = last.learner_id
        WHERE last.self_on > coalesce(last.assessed_on, DATE '1900-01-01') AND v.status = 'active'
        GROUP BY ALL ORDER BY latest_self_on DESC, v.name"""
    )
    return _run(cur, sql, params)


AUDIT_ROWS = 5000  # rows of the audit log shown at once; the page says when a filter holds more


def audit_log(
    cur: Cursor,
    viewer: Viewer,
    person: str | None = None,
    actions: list[str] | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = AUDIT_ROWS,
) -> pd.DataFrame:
    """The newest audit rows that match the filters (a person as actor or target, actions, dates inclusive),
    at most `limit`; `attrs["matching"]` holds how many match in all."""
    require_role(cur, viewer, Role.coordinator)
    params = {
        "person": person or None,
        "actions": actions or None,
        "since": since,
        "until": until,
        "limit": limit,
    }
    where = """($person IS NULL OR lower(actor) = lower($person) OR lower(target) = lower($person))
        AND ($actions IS NULL OR list_contains($actions, action))
        AND ($since IS NULL OR occurred_at >= $since)
        AND ($until IS NULL OR occurred_at < CAST($until AS DATE) + INTERVAL 1 DAY)"""
    rows = cur.execute(
        "SELECT seq, occurred_at, actor, action, target, CAST(detail AS VARCHAR) AS detail FROM audit_log "  # noqa: S608
        f"WHERE {where} ORDER BY seq DESC LIMIT $limit",
        params,
    ).df()
    matching = cur.execute(
        f"SELECT count(*) FROM audit_log WHERE {where}",  # noqa: S608 - constant condition, bound values
        {k: v for k, v in params.items() if k != "limit"},
    ).fetchone()
    rows.attrs["matching"] = int(matching[0]) if matching else len(rows)
    return rows


def audit_actions(cur: Cursor, viewer: Viewer) -> list[str]:
    require_role(cur, viewer, Role.coordinator)
    return [r[0] for r in cur.execute("SELECT DISTINCT action FROM audit_log ORDER BY 1").fetchall()]


def trajectory_of(traj: pd.DataFrame, domain_id: str | None = None, competency_id: str | None = None) -> pd.DataFrame:
    """One line of a learner's trajectory: a competency's own, or a domain's (means of its competencies)."""
    part = traj[traj["competency_id"] == competency_id] if competency_id else traj[traj["domain_id"] == domain_id]
    return part.groupby(["term_index", "term", "term_label"], as_index=False)[
        ["expected", "level", "self_level"]
    ].mean()


# ---- growth and the graduation forecast (the model: docs/measurement.md, tracker/analysis/forecast.py) -------------
# Per learner and competency: the least-squares summary of the assessed levels over terms, up to the term asked
# for. derived.GROWTH_SUMS keeps the sums up to each rated term; the row in force at a term is a filter away.
_IN_FORCE = "term_index <= coalesce($as_of, 32767) AND (next_term IS NULL OR next_term > coalesce($as_of, 32767))"
_VISIBLE_SUMS = (
    """,
sums AS (
    SELECT gs.* FROM growth_sums gs SEMI JOIN visible v ON v.id = gs.learner_id
    WHERE ($learner IS NULL OR gs.learner_id = $learner) AND """  # noqa: S608 - constant SQL
    + _IN_FORCE
    + ")"
)
_GROWTH_FIT = """,
fit AS (
    SELECT learner_id, competency_id, n, st / n AS t_mean, sy / n AS y_mean, stt - st * st / n AS sxx,
        sty - st * sy / n AS sxy,
        CASE WHEN n > 2 THEN greatest(syy - sy * sy / n - (sty - st * sy / n) ^ 2 / nullif(stt - st * st / n, 0), 0)
        END AS ss_res,
        term_index AS last_term_index, level AS last_level
    FROM sums)"""
# The program's priors by the method of moments: mu (mean slope per competency), the rating noise (pooled
# residual variance of fits with three or more terms), tau2 (variance of learners' pace beyond its noise) and
# kappa2 (variance of a competency's slope around mu + pace beyond its noise). forecast.priors_from_moments
# applies the floors.
_PRIOR_MOMENTS = """,
slopes AS (SELECT competency_id, sxy / sxx AS slope FROM fit WHERE sxx > 0),
mu AS (SELECT competency_id, avg(slope) AS mu FROM slopes GROUP BY competency_id),
noise AS (
    SELECT sum(ss_res) FILTER (WHERE n > 2) AS ss, sum(n - 2) FILTER (WHERE n > 2) AS dof,
        CASE WHEN coalesce(dof, 0) >= 30 THEN ss / dof ELSE $default_noise END AS noise
    FROM fit),
per_learner AS (  -- one pass per learner: the pace's sums, and the sums of each slope's gap to mu
    SELECT sum(f.sxy - coalesce(mu.mu, 0) * f.sxx) AS dev, sum(f.sxx) AS sxx,
        count(*) FILTER (WHERE f.sxx > 0) AS k, sum(f.sxy / f.sxx - mu.mu) FILTER (WHERE f.sxx > 0) AS r1,
        sum((f.sxy / f.sxx - mu.mu) ^ 2) FILTER (WHERE f.sxx > 0) AS r2, sum(1 / f.sxx) FILTER (WHERE f.sxx > 0) AS inv
    FROM fit f LEFT JOIN mu USING (competency_id) GROUP BY f.learner_id),
pace AS (SELECT dev / sxx AS u, * FROM per_learner WHERE sxx > 0),
-- a slope's residual is (slope - mu) - u: its count, sum and sum of squares from each learner's sums
residual AS (
    SELECT sum(k) AS n, sum(coalesce(r1, 0) - k * u) AS s1, sum(coalesce(r2, 0) - 2 * u * coalesce(r1, 0) + k * u * u) AS s2,
        sum(coalesce(inv, 0)) AS inv
    FROM pace)
SELECT (SELECT list(competency_id ORDER BY competency_id) FROM mu) AS mu_ids,
    (SELECT list(mu ORDER BY competency_id) FROM mu) AS mu_values,
    noise.noise,
    (SELECT count(*) FROM pace) AS learners,
    (SELECT var_samp(u) FROM pace) AS pace_var,
    (SELECT avg(noise.noise / sxx) FROM pace) AS pace_noise,
    residual.n AS slopes,
    CASE WHEN residual.n > 1 THEN (residual.s2 - residual.s1 ^ 2 / residual.n) / (residual.n - 1) END AS slope_var,
    noise.noise * residual.inv / nullif(residual.n, 0) AS slope_noise
FROM noise, residual"""
# Per learner and competency: growth shrunk toward the program's growth plus the learner's pace (empirical
# Bayes, closed form), the level forecast at the final term and its standard deviation, widened by SHAPE_SD a
# term for the bend a straight line cannot know.
_FORECAST = """,
priors AS (SELECT unnest($mu_ids) AS competency_id, unnest($mu_values) AS mu),
paced AS (
    SELECT f.*, coalesce(pr.mu, 0) AS mu,
        sum(f.sxy - coalesce(pr.mu, 0) * f.sxx) OVER learner AS dev, sum(f.sxx) OVER learner AS sxx_all
    FROM fit f LEFT JOIN priors pr USING (competency_id) WINDOW learner AS (PARTITION BY f.learner_id)),
pace_posterior AS (  -- the learner's pace: their pooled deviation from the program's growth, shrunk toward 0
    SELECT *, 1 / (1 / $tau2 + sxx_all / $noise) AS var_u FROM paced),
competency_prior AS (
    SELECT *, mu + var_u * dev / $noise AS prior_mean, $kappa2 + var_u AS prior_var FROM pace_posterior),
growth AS (  -- the competency's own slope, shrunk toward its prior
    SELECT *, 1 / (1 / prior_var + sxx / $noise) AS var_growth,
        (prior_mean / prior_var + sxy / $noise) / (1 / prior_var + sxx / $noise) AS growth,
        $final_term - t_mean AS ahead
    FROM competency_prior),
forecast AS (
    SELECT learner_id, competency_id, n, t_mean, y_mean, sxx, sxy, ss_res, last_term_index, last_level, growth,
        least(greatest(y_mean + growth * ahead, $min_level), $max_level) AS forecast,
        sqrt($noise / n + ahead ^ 2 * var_growth + ($shape_sd * ($final_term - last_term_index)) ^ 2) AS sd
    FROM growth)"""


def _forecast_params(priors: Priors, framework: Framework) -> dict:
    ids = sorted(priors.mu)
    return {
        "mu_ids": ids,
        "mu_values": [priors.mu[c] for c in ids],
        "noise": priors.noise,
        "tau2": priors.tau2,
        "kappa2": priors.kappa2,
        "shape_sd": forecast.SHAPE_SD,
        "final_term": len(framework.term_ids),
        "min_level": framework.min_level,
        "max_level": framework.max_level,
    }


def growth_fit(
    cur: Cursor, viewer: Viewer, learner_id: str | None = None, cohort: str | None = None, as_of: int | None = None
) -> pd.DataFrame:
    """Per visible learner and competency: the least-squares summary of their assessed levels over terms."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _VISIBLE
        + _VISIBLE_SUMS
        + _GROWTH_FIT
        + " SELECT * FROM fit ORDER BY learner_id, competency_id"
    )
    return _run(cur, sql, _params(viewer, learner_id, cohort, as_of))


# Every learner's sums up to the term asked for: the program's priors read them all (every learner is visible to
# the program scope), so they need not be joined to the learners.
_PROGRAM_SUMS = "\nsums AS (SELECT * FROM growth_sums WHERE " + _IN_FORCE + ")"  # noqa: S608 - constant SQL


def learned_history(cur: Cursor, framework: Framework, as_of: int | None = None) -> forecast.History | None:
    """What the graduated cohorts say (their whole courses), learned, their levels net of their raters'
    strictness as the program's ratings up to `as_of` show it (`rater_offsets`)."""
    offsets = rater_offsets(cur, as_of)
    history = forecast.learn_history(program_history(cur, framework, offsets), framework)
    return None if history is None else replace(history, offsets=offsets)


def program_priors(cur: Cursor, as_of: int | None = None, framework: Framework | None = None) -> Priors:
    """The forecast's priors, drawn from every learner of the program (their ratings up to `as_of`), and with a
    framework, what the graduated cohorts' whole courses say (`program_history`). No caller shows individual
    rows, so it needs no viewer: only averages, spreads and fits leave the query."""
    sql = "WITH " + _PROGRAM_SUMS + _GROWTH_FIT + _PRIOR_MOMENTS
    result = cur.execute(sql, {"as_of": as_of, "default_noise": forecast.DEFAULT_NOISE})
    names = [d[0] for d in result.description]
    priors = forecast.priors_from_moments(dict(zip(names, result.fetchone() or (), strict=True)))
    return priors if framework is None else replace(priors, history=learned_history(cur, framework, as_of))


def growth_forecast(
    cur: Cursor,
    viewer: Viewer,
    priors: Priors,
    framework: Framework,
    learner_id: str | None = None,
    cohort: str | None = None,
    as_of: int | None = None,
) -> pd.DataFrame:
    """Per visible learner and competency: the fit, the growth, the forecast at graduation, its spread, and the
    chance of reaching the graduation level."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    params = _params(viewer, learner_id, cohort, as_of) | _forecast_params(priors, framework)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _VISIBLE
        + _VISIBLE_SUMS
        + _GROWTH_FIT
        + _FORECAST
        + " SELECT * FROM forecast ORDER BY learner_id, competency_id"
    )
    return forecast.with_chance(_run(cur, sql, params), framework)


_RISK = """,
active AS (SELECT f.* FROM forecast f JOIN visible v ON v.id = f.learner_id WHERE v.status = 'active'),
per_learner AS (
    SELECT learner_id, avg(forecast) AS forecast, avg(sd) AS sd, max(last_term_index) AS term_index
    FROM active GROUP BY learner_id),
per_domain AS (
    SELECT a.learner_id, fc.domain_name, any_value(fc.domain_position) AS domain_position,
        avg(a.last_level) AS level, max(a.last_term_index) AS term_index, avg(a.forecast) AS forecast, avg(a.sd) AS sd
    FROM active a JOIN fw_competencies fc USING (competency_id) GROUP BY a.learner_id, fc.domain_id, fc.domain_name),
weakest AS (  -- the three domains least likely to reach the target, in words
    SELECT learner_id, string_agg(
        domain_name || ': level ' || printf('%.1f', level) || ' at term ' || term_index || ', forecast '
            || printf('%.1f', forecast) || ' ± ' || printf('%.1f', sd) || ' at graduation; target ' || $target_text,
        '; ' ORDER BY z, domain_position) AS why
    FROM (SELECT *, (forecast - $reach_from) / sd AS z,
              row_number() OVER (PARTITION BY learner_id ORDER BY (forecast - $reach_from) / sd, domain_position) AS k
          FROM per_domain)
    WHERE k <= 3 GROUP BY learner_id)
SELECT p.learner_id, v.name AS learner_name, v.cohort, ft.term AS current_term, p.forecast, p.sd, w.why
FROM per_learner p JOIN visible v ON v.id = p.learner_id
LEFT JOIN fw_terms ft ON ft.term_index = p.term_index LEFT JOIN weakest w USING (learner_id)
ORDER BY (p.forecast - $reach_from) / p.sd, p.learner_id"""
_RISK_COLUMNS = ["learner_id", "learner_name", "cohort", "current_term", "p_reach", "forecast", "sd", "at_risk", "why"]


def graduation_risk(
    cur: Cursor,
    viewer: Viewer,
    priors: Priors,
    framework: Framework,
    cohort: str | None = None,
    as_of: int | None = None,
) -> pd.DataFrame:
    """Active visible learners, least likely to reach the graduation level first: the forecast of their mean level
    at graduation and its spread, the chance of reaching the level, at risk or not, and the weakest domains in
    words. Learned from the graduated cohorts when the program has them (`program_history`); else a straight
    line per competency, its spread widened for the unknown bend of growth."""
    if priors.history is not None:
        return _risk_from_history(cur, viewer, priors.history, framework, cohort, as_of)
    target = framework.calendar.graduation_level
    params = _params(viewer, cohort=cohort, as_of=as_of) | _forecast_params(priors, framework)
    params |= {"reach_from": target - forecast.HALF, "target_text": f"{target:g}"}
    sql = "WITH " + _VISIBLE + _VISIBLE_SUMS + _GROWTH_FIT + _FORECAST + _RISK
    risk = forecast.with_chance(_run(cur, sql, params), framework)
    risk["at_risk"] = risk["p_reach"] < forecast.RISK_BELOW
    return risk[_RISK_COLUMNS]


# ---- raters' strictness (docs/measurement.md, "Raters' strictness") ------------------------------------------
# Per rater: over the learners they rated (each learner once), how far the learner's levels by them lie on average
# from the mean level of the learner's cohort in the same term; the learners' graduated courses whole, everyone
# else's ratings up to the term asked for, a cohort left out when the backtest asks. Read from the levels' totals per
# learner, term, domain and rater (derived.DOMAIN_TERMS), summed per learner, term and rater.
_RATER_DEVIATIONS = """
WITH rated AS (
    SELECT tl.learner_id, tl.rater_id, tl.term_index, any_value(l.cohort) AS cohort,
        sum(tl.total) AS total, sum(tl.levels) AS n
    FROM domain_terms tl JOIN learners l ON l.id = tl.learner_id
    WHERE tl.rater_id IS NOT NULL
      AND (tl.term_index <= coalesce($as_of, 32767) OR l.status = 'graduated')
      AND ($without IS NULL OR l.cohort <> $without)
    GROUP BY tl.learner_id, tl.rater_id, tl.term_index),
centres AS (SELECT cohort, term_index, sum(total) / sum(n) AS centre FROM rated GROUP BY ALL),
pairs AS (
    SELECT r.rater_id, r.learner_id, sum(r.total - r.n * c.centre) / sum(r.n) AS d
    FROM rated r JOIN centres c USING (cohort, term_index) GROUP BY ALL)
SELECT rater_id, count(*) AS learners, avg(d) AS mean, coalesce(var_samp(d) * (count(*) - 1), 0) AS ss
FROM pairs GROUP BY rater_id ORDER BY rater_id"""


def rater_offsets(cur: Cursor, as_of: int | None = None, without: str | None = None) -> dict[str, float]:
    """Each rater's strictness: how much higher (softer) or lower (harsher) than the average rater they rate the
    same learners, estimated from the ratings up to `as_of` (graduated courses whole), without the cohort
    `without`. Only per-rater figures leave it; no viewer sees a learner's row."""
    frame = cur.execute(_RATER_DEVIATIONS, {"as_of": as_of, "without": without}).df()
    return forecast.rater_offsets(frame)


# ---- the shape learned from graduated cohorts ----------------------------------------------------------------
# Per learner, term and unit (the learner's mean over every competency rated in the term, unit '', or a
# domain's mean, unit = the domain's id): the mean assessed level net of its raters' strictness (level), and as
# rated (rated_level).
# Read from derived.DOMAIN_TERMS (per learner, term, domain and rater: the levels' count and total), in the CTE
# domain_levels that each caller scopes.
_UNIT_TERMS = """,
offsets AS (SELECT unnest($rater_ids) AS rater_id, unnest($rater_offsets) AS rater_offset),
unit_terms AS (
    SELECT d.learner_id, d.term_index, CASE WHEN grouping(d.domain_id) = 1 THEN '' ELSE d.domain_id END AS unit,
        sum(d.total - d.levels * coalesce(o.rater_offset, 0)) / sum(d.levels) AS level,
        sum(d.total) / sum(d.levels) AS rated_level
    FROM domain_levels d LEFT JOIN offsets o ON o.rater_id = d.rater_id
    GROUP BY GROUPING SETS ((d.learner_id, d.term_index), (d.learner_id, d.term_index, d.domain_id)))"""
# The graduated learners (status graduated, rated in the final term): for every term k before the final one in
# which the unit was rated, the unit's level at k, its growth per term up to k (least squares; NULL when rated in one
# term only) and how many terms up to k it was rated in, beside the unit's level in the final term. A learner being
# forecast is taken at their latest rated term, so the fit of term k learns only from units rated in term k: a
# level left from an earlier term would tell the fit of a course one or more terms staler than any it forecasts.
_HISTORY = (
    """WITH graduates AS (SELECT l.id AS learner_id, l.cohort FROM learners l WHERE l.status = 'graduated'),
domain_levels AS (SELECT d.* FROM domain_terms d SEMI JOIN graduates g ON g.learner_id = d.learner_id)"""  # noqa: S608 - constant SQL
    + _UNIT_TERMS
    + """,
ks AS (SELECT unnest(range(1, $final_term)) AS k),
features AS (
    SELECT u.learner_id, u.unit, ks.k, arg_max(u.level, u.term_index) AS level,
        CASE WHEN count(*) > 1 THEN regr_slope(u.level, u.term_index) END AS slope, count(*) AS rated_terms
    FROM unit_terms u JOIN ks ON u.term_index <= ks.k GROUP BY ALL
    HAVING max(u.term_index) = ks.k)
SELECT g.cohort, f.learner_id, f.unit, f.k, f.level, f.slope, f.rated_terms, o.level AS final
FROM features f JOIN graduates g USING (learner_id)
JOIN unit_terms o ON o.learner_id = f.learner_id AND o.unit = f.unit AND o.term_index = $final_term
ORDER BY f.k, f.unit, f.learner_id"""
)
_VISIBLE_DOMAINS = """,
domain_levels AS (
    SELECT d.* FROM domain_terms d SEMI JOIN visible v ON v.id = d.learner_id
    WHERE d.term_index <= coalesce($as_of, 32767) AND ($learner IS NULL OR d.learner_id = $learner))"""
# The active visible learners' units: the level at their latest term (up to the term asked for) and the growth.
_UNIT_FEATURES = """,
features AS (
    SELECT learner_id, unit, arg_max(level, term_index) AS level, arg_max(rated_level, term_index) AS rated_level,
        max(term_index) AS term_index, CASE WHEN count(*) > 1 THEN regr_slope(level, term_index) END AS slope,
        count(*) AS rated_terms
    FROM unit_terms GROUP BY ALL),
domains AS (SELECT domain_id, any_value(domain_name) AS domain_name, any_value(domain_position) AS domain_position
    FROM fw_competencies GROUP BY domain_id)
SELECT f.*, v.name AS learner_name, v.cohort, d.domain_name, d.domain_position
FROM features f JOIN visible v ON v.id = f.learner_id LEFT JOIN domains d ON d.domain_id = f.unit
WHERE v.status = 'active'"""


def _offset_params(offsets: dict[str, float]) -> dict:
    ids = sorted(offsets) or [""]  # an empty list would bind without a type
    return {"rater_ids": ids, "rater_offsets": [offsets.get(r, 0.0) for r in ids]}


def program_history(cur: Cursor, framework: Framework, offsets: dict[str, float] | None = None) -> pd.DataFrame:
    """The graduated learners' features per unit and term, with their final level, net of their raters'
    `offsets` (the history the forecast learns from). Only averages and fits leave the query's callers: no
    viewer sees these rows."""
    return cur.execute(_HISTORY, {"final_term": len(framework.term_ids)} | _offset_params(offsets or {})).df()


def unit_features(
    cur: Cursor,
    viewer: Viewer,
    cohort: str | None = None,
    as_of: int | None = None,
    learner_id: str | None = None,
    offsets: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Per active visible learner and unit (their mean level, '', and each domain): the level at the latest
    term up to `as_of` net of its raters' `offsets` and as rated, that term, and the growth per term so far."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    sql = "WITH " + _VISIBLE + _VISIBLE_DOMAINS + _UNIT_TERMS + _UNIT_FEATURES
    return _run(cur, sql, _params(viewer, learner_id, cohort, as_of) | _offset_params(offsets or {}))


@dataclass(frozen=True)
class Backtest:
    """How the forecast would have done on the program's graduated cohorts, each left out in turn."""

    said: pd.DataFrame  # per cohort, term and learner: the stated chance and whether they reached the level
    by_cohort: pd.DataFrame  # per cohort and term: found, false alarms, calibration error
    by_term: pd.DataFrame  # per term, over every cohort
    calibration: pd.DataFrame  # per tenth of stated chance (of the term asked for, or every term)
    cohorts: list[str]  # the graduated cohorts


def backtest(cur: Cursor, viewer: Viewer, framework: Framework, term: int | None = None) -> Backtest:
    """The forecast's backtest over the program's graduated cohorts (leave one cohort out), for committee
    members and coordinators: per cohort and term what it said and what happened."""
    require_role(cur, viewer, Role.committee, Role.coordinator)
    graduated = "SELECT DISTINCT cohort FROM learners WHERE status = 'graduated' ORDER BY cohort"
    # each cohort left out is forecast with its raters' strictness estimated without any of its own ratings
    cohorts = [str(row[0]) for row in cur.execute(graduated).fetchall()]
    without = {c: program_history(cur, framework, rater_offsets(cur, without=c)) for c in cohorts}
    cohorts = [c for c in cohorts if (without[c]["cohort"] == c).any()]  # those with learners rated at the end
    said = forecast.backtest(without, framework)
    if term is not None:
        said = said[said["term"] == term]
    return Backtest(
        said,
        forecast.backtest_summary(said, ["term", "cohort"]),
        forecast.backtest_summary(said, ["term"]),
        forecast.calibration_bins(said),
        cohorts,
    )


def learned_outlook(cur: Cursor, viewer: Viewer, priors: Priors, framework: Framework, learner_id: str) -> pd.DataFrame:
    """One active learner's learned forecast per unit (their mean level, '', and each domain): empty when the
    program has no usable history or the learner is not active."""
    if priors.history is None:
        require_learner(cur, viewer, learner_id)
        return pd.DataFrame()
    units = unit_features(cur, viewer, learner_id=learner_id, offsets=priors.history.offsets)
    return forecast.forecast_units(units, priors.history, framework)


def _risk_from_history(
    cur: Cursor,
    viewer: Viewer,
    history: forecast.History,
    framework: Framework,
    cohort: str | None,
    as_of: int | None,
) -> pd.DataFrame:
    units = forecast.forecast_units(
        unit_features(cur, viewer, cohort, as_of, offsets=history.offsets), history, framework
    )
    if units.empty:
        return pd.DataFrame(columns=_RISK_COLUMNS)
    risk = units[units["unit"] == forecast.LEARNER].copy()
    risk["current_term"] = risk["term_index"].map(lambda t: framework.term_ids[int(t) - 1])
    risk["why"] = risk["learner_id"].map(forecast.weakest_domains(units, framework))
    risk["at_risk"] = risk["p_reach"] < forecast.RISK_BELOW
    return risk.sort_values(["p_reach", "learner_id"], ignore_index=True)[_RISK_COLUMNS]


# ---- calibration: self-ratings against advisor and committee ratings -----------------------------
def calibration(cur: Cursor, viewer: Viewer, learner_id: str | None = None, cohort: str | None = None) -> pd.DataFrame:
    """Per visible learner and term: the mean of (self level − advisor level) over the competencies rated by both."""
    if learner_id is not None:
        require_learner(cur, viewer, learner_id)
    params = _params(viewer, learner_id, cohort)
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _EFFECTIVE
        + """,
        paired AS (  -- a term level has one row per kind of rater: the two kinds side by side, where both exist
            SELECT learner_id, term_index, competency_id,
                CAST(max(level) FILTER (WHERE is_self) - max(level) FILTER (WHERE NOT is_self) AS DOUBLE) AS gap
            FROM per_term GROUP BY ALL HAVING gap IS NOT NULL)
        SELECT p.learner_id, v.name AS learner_name, v.cohort, p.term_index, ft.term,
            avg(p.gap) AS gap, count(*) AS competencies
        FROM paired p JOIN visible v ON v.id = p.learner_id JOIN fw_terms ft ON ft.term_index = p.term_index
        GROUP BY ALL ORDER BY p.learner_id, p.term_index"""
    )
    return _run(cur, sql, params)


CALIBRATED_WITHIN = 0.5  # a mean self − advisor gap within half a level either way counts as calibrated


def calibration_summary(by_term: pd.DataFrame) -> pd.DataFrame:
    """Per learner: the gap in their first and latest paired term, its change, and a label in words."""
    if by_term.empty:
        return pd.DataFrame(
            columns=["learner_id", "learner_name", "cohort", "first_gap", "latest_gap", "change", "rating", "trend"]
        )
    g = (
        by_term.sort_values("term_index")
        .groupby(["learner_id", "learner_name", "cohort"], as_index=False)
        .agg(first_gap=("gap", "first"), latest_gap=("gap", "last"), terms=("term_index", "count"))
    )
    g["change"] = g["latest_gap"] - g["first_gap"]
    g["rating"] = g["latest_gap"].map(
        lambda x: "over-rates" if x > CALIBRATED_WITHIN else "under-rates" if x < -CALIBRATED_WITHIN else "calibrated"
    )
    closing = (g["latest_gap"].abs() < g["first_gap"].abs() - 0.1) & (g["terms"] > 1)
    widening = (g["latest_gap"].abs() > g["first_gap"].abs() + 0.1) & (g["terms"] > 1)
    g["trend"] = np.select([closing, widening], ["closing", "widening"], "steady")
    return g.sort_values("latest_gap", key=abs, ascending=False, ignore_index=True)


# ---- the committee's review cycle (writes: tracker/review/review_actions.py) -------------------------------------------
def without_advisor_rating(cur: Cursor, viewer: Viewer, cohort: str | None = None) -> pd.DataFrame:
    """Active visible learners who self-assessed in a term with no advisor or committee rating of them yet."""
    sql = (
        "WITH "  # noqa: S608 - constant SQL fragments; every value is a bound parameter
        + _VISIBLE
        + """
        SELECT v.id AS learner_id, v.name AS learner_name, ft.term
        FROM (SELECT learner_id, max(self_term) AS self_term, max(level_term) AS level_term
              FROM current_levels GROUP BY learner_id) cl
        JOIN visible v ON v.id = cl.learner_id JOIN fw_terms ft ON ft.term_index = cl.self_term
        WHERE v.status = 'active' AND cl.self_term > coalesce(cl.level_term, 0)
        ORDER BY v.name, v.id"""
    )
    return _run(cur, sql, _params(viewer, cohort=cohort))
