"""Bulk load of trusted, generated programs for the benchmark: DuckDB's CSV reader straight into the tables."""

from pathlib import Path

from tracker.config import settings
from tracker.store import RATING_COLUMNS, Cursor, audit, refresh_term_levels, write

BULK_LOAD = {
    "staff": "INSERT INTO staff SELECT id, name, email, string_split(roles, ';'), now() "
    "FROM read_csv($path, header = true, all_varchar = true)",
    "learners": "INSERT INTO learners SELECT id, name, email, cohort, profession, start_term, status, "
    "nullif(advisor_id, ''), now() FROM read_csv($path, header = true, all_varchar = true)",
    "evidence": "INSERT INTO evidence SELECT id, learner_id, type, title, string_split(competency_ids, ';'), coalesce(url, ''), "
    "coalesce(description, ''), CAST(added_on AS DATE), now() FROM read_csv($path, header = true, all_varchar = true)",
    "ratings": f"INSERT INTO ratings ({RATING_COLUMNS}) SELECT r.id, r.learner_id, r.competency_id, "  # noqa: S608 - constant columns
    "CAST(r.level AS DECIMAL(4,1)), r.rater_id, r.rater_role, CAST(r.rated_on AS DATE), r.term, t.term_index, coalesce(r.comment, ''), "
    "list_filter(string_split(coalesce(r.evidence_ids, ''), ';'), lambda x: x <> ''), r.framework_version, nullif(r.corrects, ''), now() "
    "FROM read_csv($path, header = true, all_varchar = true) r JOIN fw_terms t USING (term) "
    "ORDER BY r.learner_id, r.competency_id, t.term_index, r.rated_on",
}


def bulk_load(cur: Cursor, folder: Path, memory_limit: str = "8GB") -> None:
    """Load a generated program's CSV files without row-by-row validation.

    Only for data this project's generator wrote (the benchmark's large programs); people's files go
    through `importing`, which checks every row. Tens of millions of rows in one transaction need more
    memory than the app keeps (TRACKER_MEMORY_LIMIT): the load takes `memory_limit` while it runs.
    """

    def work(c: Cursor) -> None:
        for kind, sql in BULK_LOAD.items():
            c.execute(sql, {"path": str(folder / f"{kind}.csv")})
        refresh_term_levels(c)
        audit(c, "bulk-load", "import", str(folder.name))

    cur.execute("SET memory_limit = ?", [memory_limit])
    try:
        write(cur, work)
    finally:
        cur.execute("SET memory_limit = ?", [settings().memory_limit])
