"""Bulk load of trusted, generated programs for the benchmark: DuckDB's CSV reader straight into the tables."""

from pathlib import Path

from data_models import Framework
from tracker.core.config import settings
from tracker.records.importing import import_file
from tracker.storage.database import Cursor, audit, write
from tracker.storage.derived import refresh_term_levels
from tracker.storage.framework_tables import accepted
from tracker.storage.record_rows import RATING_COLUMNS

BULK_LOAD = {
    "staff": "INSERT INTO staff SELECT id, name, email, string_split(roles, ';'), now() "
    "FROM read_csv($path, header = true, all_varchar = true)",
    "learners": "INSERT INTO learners SELECT id, name, email, cohort, profession, start_term, status, "
    "nullif(advisor_id, ''), now() FROM read_csv($path, header = true, all_varchar = true)",
    "evidence": "INSERT INTO evidence (id, learner_id, type, title, competency_ids, url, description, added_on, "
    "recorded_at) SELECT id, learner_id, type, title, string_split(competency_ids, ';'), coalesce(url, ''), "
    "coalesce(description, ''), CAST(added_on AS DATE), now() FROM read_csv($path, header = true, all_varchar = true)",
    "ratings": f"INSERT INTO ratings ({RATING_COLUMNS}) SELECT r.id, r.learner_id, r.competency_id, "  # noqa: S608 - constant columns
    "CAST(r.level AS DECIMAL(4,1)), r.rater_id, r.rater_role, CAST(r.rated_on AS DATE), r.term, t.term_index, coalesce(r.comment, ''), "
    "list_filter(string_split(coalesce(r.evidence_ids, ''), ';'), lambda x: x <> ''), r.framework_version, nullif(r.corrects, ''), now() "
    "FROM read_csv($path, header = true, all_varchar = true) r JOIN fw_terms t USING (term) "
    "ORDER BY r.learner_id, r.competency_id, t.term_index, r.rated_on",
}

REVIEW_KINDS = ("meetings", "decisions")

# The goals of learning plans (optional: a program written before they existed has none), with their plans,
# agreements and comments ("date | author | text" per line).
_GOALS = "read_csv($path, header = true, all_varchar = true)"
GOALS_LOAD = [
    f"INSERT INTO learning_plans SELECT plan_id, any_value(learner_id), nullif(any_value(decision_id), ''), "  # noqa: S608
    f"min(CAST(written_on AS DATE)), any_value(learner_id), now() FROM {_GOALS} GROUP BY plan_id",
    "INSERT INTO goals (id, version, plan_id, learner_id, competency_id, target_level, by_term, actions, evidence, "  # noqa: S608
    "written_by, written_on, recorded_at) SELECT id, CAST(version AS SMALLINT), plan_id, learner_id, competency_id, "
    "CAST(target_level AS DECIMAL(4,1)), by_term, actions, coalesce(evidence, ''), written_by, "
    f"CAST(written_on AS DATE), now() FROM {_GOALS}",
    "INSERT INTO goal_agreements SELECT id, CAST(version AS SMALLINT), agreed_by, CAST(agreed_on AS DATE), now() "  # noqa: S608
    f"FROM {_GOALS} WHERE coalesce(agreed_by, '') <> ''",
    "INSERT INTO goal_comments (goal_id, version, author_id, written_on, comment, recorded_at) "  # noqa: S608
    "SELECT id, version, trim(c.parts.author), CAST(trim(c.parts.day) AS DATE), trim(c.parts.text), now() FROM ("
    "SELECT id, CAST(version AS SMALLINT) AS version, regexp_extract(line, '^(.*?) [|] (.*?) [|] (.*)$', "
    f"['day', 'author', 'text']) AS parts FROM {_GOALS}, unnest(string_split(coalesce(comments, ''), chr(10))) "
    "AS u(line) WHERE trim(line) <> '') c",
]


def bulk_load(cur: Cursor, folder: Path, memory_limit: str = "8GB", framework: Framework | None = None) -> None:
    """Load a generated program's CSV files without row-by-row validation.

    Only for data this project's generator wrote (the benchmark's large programs); people's files go
    through `importing`, which checks every row. Tens of millions of rows in one transaction need more
    memory than the app keeps (TRACKER_MEMORY_LIMIT): the load takes `memory_limit` while it runs.
    """

    def work(c: Cursor) -> None:
        for kind, sql in BULK_LOAD.items():
            c.execute(sql, {"path": str(folder / f"{kind}.csv")})
        if (folder / "goals.csv").exists():
            for sql in GOALS_LOAD:
                c.execute(sql, {"path": str(folder / "goals.csv")})
        refresh_term_levels(c)
        audit(c, "bulk-load", "import", str(folder.name))

    cur.execute("SET memory_limit = ?", [memory_limit])
    try:
        write(cur, work)
    finally:
        cur.execute("SET memory_limit = ?", [settings().memory_limit])
    # the committee's review: a meeting per cohort and review, a decision per learner reviewed (a few thousand rows
    # at 100,000 learners), through the importer, which checks them and opens the plans decisions require
    framework = framework or accepted(cur)
    for kind in REVIEW_KINDS:
        path = folder / f"{kind}.csv"
        if path.exists() and framework is not None:
            import_file(cur, kind, path, framework, "bulk-load")
