"""The rules every new rating must meet against the stored records, whoever writes it: the app's forms, the
import page and the command line call `rating_problems`, so there is one rule set and no second copy.

A rating's own fields (types, control characters, a self-rating by the learner) are the model's
(data_models.ratings); these are the rules that need the other records: who may rate whom, who may correct
what, one live correction per rating, the date against today and the term, and ids that must exist. They run
as one SQL statement over a table of new ratings, so a file of millions of rows is checked at once.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from data_models import Framework
from data_models.base import LIST_SEPARATOR
from tracker.storage import record_rows
from tracker.storage.database import Cursor
from tracker.storage.record_rows import RATING_FIELDS

CHECKED = "rating_check"  # the table (or registered frame) of new ratings the rules read

CHECK_COLUMNS = ("line", *RATING_FIELDS)  # the file's row number, then the model's fields


@dataclass(frozen=True)
class Problem:
    """One broken rule: the row (line of the file; 1 for a form), the field at fault and why. `denied` marks a
    rule about who may do what (a permission), as opposed to a wrong value."""

    line: int
    field: str
    message: str
    denied: bool = False


# Each rule is a SELECT of (line, rule, field, message, denied) over `f` (the new ratings) and the stored records.
# `q(x)` quotes a value the way Python's repr quotes a plain id: 'L001'.
RULES_SQL = """
WITH f AS NOT MATERIALIZED (SELECT * FROM rating_check),
holders AS (SELECT id AS rater_id, unnest(roles) AS role FROM staff),
stored_target AS (
    SELECT r.id, r.learner_id, r.competency_id, r.rater_id, r.rater_role FROM ratings r SEMI JOIN f ON r.id = f.corrects),
file_target AS (
    SELECT id, learner_id, competency_id, rater_id, rater_role FROM f
    WHERE id IN (SELECT corrects FROM f) AND id NOT IN (SELECT id FROM stored_target)
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY line) = 1),
target AS (SELECT * FROM stored_target UNION ALL SELECT * FROM file_target),
corrected AS (
    SELECT corrects AS target_id, min(id) AS by_id FROM ratings
    WHERE corrects IN (SELECT corrects FROM f) GROUP BY corrects),
c AS (
    SELECT f.line, f.id, f.rater_id, f.rater_role, f.comment, f.corrects,
        t.id AS t_id, t.learner_id AS t_learner, t.competency_id AS t_competency, t.rater_id AS t_rater,
        t.rater_role AS t_role, f.learner_id, f.competency_id,
        min(f.line) OVER (PARTITION BY f.corrects) AS first_line,
        EXISTS (SELECT 1 FROM holders h WHERE h.rater_id = f.rater_id AND h.role IN ('committee', 'coordinator'))
            AS may_amend
    FROM f LEFT JOIN target t ON t.id = f.corrects WHERE f.corrects IS NOT NULL),
problems AS (
    SELECT f.line, 1 AS rule, 'id' AS field,
        format('''{}'' appears again (first at row {})', f.id, d.first_line) AS message, false AS denied
    FROM f JOIN (SELECT id, min(line) AS first_line FROM f GROUP BY id HAVING count(*) > 1) d USING (id)
    WHERE f.line > d.first_line
    UNION ALL
    SELECT line, 2, 'id', format('rating ''{}'' already exists; a correction is a new rating with `corrects` set', id),
        false
    FROM f SEMI JOIN ratings r ON r.id = f.id
    UNION ALL
    SELECT line, x.rule, x.field, x.message, x.denied FROM (
        SELECT f.line, unnest(list_filter([
            CASE WHEN l.id IS NULL THEN
                {'rule': 3, 'field': 'learner_id', 'message': format('no learner ''{}''', f.learner_id), 'denied': false}
            END,
            CASE WHEN NOT list_contains($competencies, f.competency_id) THEN
                {'rule': 4, 'field': 'competency_id',
                 'message': format('no competency ''{}'' in framework {}', f.competency_id, $framework), 'denied': false}
            END,
            CASE WHEN d.term IS NULL THEN
                {'rule': 5, 'field': 'term',
                 'message': format('''{}'' is not a term of the calendar ({})', f.term, array_to_string($terms, ', ')),
                 'denied': false}
            END,
            CASE WHEN f.level NOT BETWEEN $lo AND $hi THEN
                {'rule': 6, 'field': 'level', 'message': format('{} leaves the scale {}–{}', f.level, $lo, $hi),
                 'denied': false}
            END,
            CASE WHEN f.rated_on > $today THEN
                {'rule': 7, 'field': 'rated_on',
                 'message': format('{} is in the future (today is {})', f.rated_on, $today), 'denied': false}
            END,
            CASE WHEN f.rated_on NOT BETWEEN d.starts AND d.ends THEN
                {'rule': 8, 'field': 'rated_on',
                 'message': format('{} is outside term {} ({} to {})', f.rated_on, f.term, d.starts, d.ends),
                 'denied': false}
            END,
            CASE WHEN NOT list_contains($versions, f.framework_version) THEN
                {'rule': 9, 'field': 'framework_version',
                 'message': format('''{}'' is not a loaded version of {} ({})', f.framework_version, $framework_id,
                    array_to_string($versions, ', ')),
                 'denied': false}
            END,
            CASE WHEN f.rater_role <> 'self' AND h.rater_id IS NULL THEN
                {'rule': 10, 'field': 'rater_id',
                 'message': format('no staff member ''{}'' with the {} role', f.rater_id, f.rater_role), 'denied': true}
            END,
            CASE WHEN f.rater_role = 'advisor' AND h.rater_id IS NOT NULL AND l.id IS NOT NULL
                AND l.advisor_id IS DISTINCT FROM f.rater_id THEN
                {'rule': 11, 'field': 'rater_id',
                 'message': format(
                    '''{}'' is not the advisor of record of learner ''{}'' ({}); only their advisor rates as advisor',
                    f.rater_id, f.learner_id,
                    CASE WHEN l.advisor_id IS NULL THEN 'who has none'
                        ELSE format('their advisor is ''{}''', l.advisor_id) END),
                 'denied': true}
            END
        ], lambda p: p IS NOT NULL)) AS x
        FROM f
        LEFT JOIN learners l ON l.id = f.learner_id
        LEFT JOIN (SELECT unnest($terms) AS term, unnest($starts) AS starts, unnest($ends) AS ends) d
            ON d.term = f.term
        LEFT JOIN holders h ON h.rater_id = f.rater_id AND h.role = f.rater_role
    )
    UNION ALL
    SELECT e.line, 12, 'evidence_ids', format('no evidence ''{}'' of learner ''{}''', e.evidence_id, e.learner_id),
        EXISTS (SELECT 1 FROM evidence x WHERE x.id = e.evidence_id)
    FROM (SELECT line, learner_id, unnest(string_split(evidence_ids, ';')) AS evidence_id FROM f WHERE evidence_ids <> '') e
    WHERE NOT EXISTS (SELECT 1 FROM evidence x WHERE x.id = e.evidence_id AND x.learner_id = e.learner_id)
    UNION ALL
    SELECT line, 13, 'corrects', format('no rating ''{}'' to correct', corrects), false FROM c WHERE t_id IS NULL
    UNION ALL
    SELECT line, 14, 'corrects', format('rating ''{}'' is for another learner or competency', corrects), false
    FROM c WHERE t_id IS NOT NULL AND (t_learner, t_competency) <> (learner_id, competency_id)
    UNION ALL
    SELECT line, 15, 'corrects',
        CASE WHEN rater_role = 'self'
            THEN format('a self-rating cannot correct the {} rating ''{}''', t_role, corrects)
            ELSE format('rating ''{}'' is a self-rating; only the learner corrects it', corrects) END,
        true
    FROM c WHERE t_id IS NOT NULL AND (rater_role = 'self') <> (t_role = 'self')
    UNION ALL
    SELECT line, 16, CASE WHEN may_amend THEN 'comment' ELSE 'rater_id' END,
        CASE WHEN may_amend
            THEN format('a correction of another rater''s rating (''{}'' by ''{}'') needs the reason in the comment',
                corrects, t_rater)
            ELSE format('only the rater of ''{}'' (''{}''), a committee member or a coordinator may correct it',
                corrects, t_rater) END,
        NOT may_amend
    FROM c WHERE t_id IS NOT NULL AND (rater_role = 'self') = (t_role = 'self') AND rater_id <> t_rater
        AND NOT (may_amend AND trim(comment) <> '')
    UNION ALL
    SELECT c.line, 17, 'corrects',
        format('rating ''{}'' was already corrected by ''{}''; correct that rating instead', c.corrects, k.by_id), false
    FROM c JOIN corrected k ON k.target_id = c.corrects
    UNION ALL
    SELECT line, 18, 'corrects',
        format('rating ''{}'' is corrected again (first at row {}); one correction per rating', corrects, first_line),
        false
    FROM c WHERE line > first_line
)
SELECT line, field, message, denied FROM problems ORDER BY line, rule, message
"""


def check_frame(ratings: pd.DataFrame) -> pd.DataFrame:
    """Validated rating columns (indexed by row number) as the table the rules read: dates as dates, evidence
    lists as `;`-joined text."""
    frame = ratings.reset_index()
    out = pd.DataFrame(
        {
            "line": frame[frame.columns[0]].astype("int64"),
            **{n: frame[n] for n in CHECK_COLUMNS[1:] if n not in ("level", "rated_on", "evidence_ids")},
            "level": frame["level"].astype(float),
            "rated_on": pd.to_datetime(frame["rated_on"]).dt.date if len(frame) else pd.Series([], dtype=object),
            "evidence_ids": frame["evidence_ids"].map(LIST_SEPARATOR.join),
        }
    )
    return out[list(CHECK_COLUMNS)]


def rating_problems(cur: Cursor, fw: Framework, today: dt.date | None = None) -> list[Problem]:
    """Every rule the new ratings in the table `rating_check` break (see CHECK_COLUMNS), in row order."""
    versions = sorted(
        r[0] for r in cur.execute("SELECT version FROM framework_versions WHERE framework_id = ?", [fw.id]).fetchall()
    )
    dates = [fw.term_dates(t) for t in fw.term_ids]
    params: dict[str, Any] = {
        "framework": f"{fw.id} {fw.version}",
        "framework_id": fw.id,
        "competencies": list(fw.competencies),
        "terms": fw.term_ids,
        "starts": [s for s, _ in dates],
        "ends": [e for _, e in dates],
        "lo": fw.min_level,
        "hi": fw.max_level,
        "today": today or dt.date.today(),
        "versions": versions,
    }
    rows = cur.execute(RULES_SQL, params).fetchall()
    return [Problem(int(line), field, message, bool(denied)) for line, field, message, denied in rows]


def frame_problems(cur: Cursor, ratings: pd.DataFrame, fw: Framework, today: dt.date | None = None) -> list[Problem]:
    """The rules over a frame of validated ratings (indexed by row number)."""
    with record_rows.registered(cur, CHECKED, check_frame(ratings)):
        return rating_problems(cur, fw, today)
