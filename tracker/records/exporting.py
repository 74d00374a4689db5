"""Records as files: every kind exported as CSV that `import` reads back unchanged, no cell a spreadsheet would run."""

import csv
import io

from data_models import Role
from tracker.access.policy import Viewer, require_role
from tracker.core.errors import TrackerError
from tracker.core.text import csv_cell
from tracker.records import plan_records, review_records
from tracker.storage.database import Cursor

# ---- export ------------------------------------------------------------------------------------
EXPORT_SQL = (
    {
        "learners": "SELECT id, name, email, cohort, profession, start_term, status, coalesce(advisor_id, '') AS advisor_id FROM learners ORDER BY id",
        "staff": "SELECT id, name, email, array_to_string(roles, ';') AS roles FROM staff ORDER BY id",
        "ratings": (
            "SELECT id, learner_id, competency_id, CAST(level AS VARCHAR) AS level, rater_id, rater_role, "
            "strftime(rated_on, '%Y-%m-%d') AS rated_on, term, comment, array_to_string(evidence_ids, ';') AS evidence_ids, "
            "framework_version, coalesce(corrects, '') AS corrects FROM ratings ORDER BY seq"
        ),
        "evidence": (
            "SELECT id, learner_id, type, title, array_to_string(competency_ids, ';') AS competency_ids, url, description, "
            "strftime(added_on, '%Y-%m-%d') AS added_on FROM evidence ORDER BY recorded_at, id"
        ),
    }
    | review_records.EXPORT_SQL
    | plan_records.EXPORT_SQL
)


def export_csv(cur: Cursor, kind_name: str) -> str:
    """The records of one kind as CSV text that `import` reads back unchanged."""
    if kind_name not in EXPORT_SQL:
        raise TrackerError(f"Cannot export {kind_name!r}; choose one of {', '.join(EXPORT_SQL)}.")
    result = cur.execute(EXPORT_SQL[kind_name])
    columns = [d[0] for d in result.description]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_cell(v) for v in row] for row in result.fetchall())  # no cell a spreadsheet would run
    return buf.getvalue()


def export_records(cur: Cursor, viewer: Viewer, kind: str) -> str:
    """A coordinator's CSV export of one record kind, in the format `import` reads back."""
    from tracker.records.exporting import export_csv

    require_role(cur, viewer, Role.coordinator)
    return export_csv(cur, kind)
