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
from tracker import store
from tracker.store import Cursor

CHECKED = "rating_check"  # the table (or registered frame) of new ratings the rules read

CHECK_COLUMNS = (
    "line",
    "id",
    "learner_id",
    "competency_id",
    "level",
    "rater_id",
    "rater_role",
    "rated_on",
    "term",
    "comment",
    "evidence_ids",
    "framework_version",
    "corrects",
)


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
WITH f AS (SELECT * FROM rating_check),
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
    SELECT line, 1 AS rule, 'id' AS field,
        format('''{}'' appears again (first at row {})', id, min(line) OVER (PARTITION BY id)) AS message,
        false AS denied
    FROM f QUALIFY line > min(line) OVER (PARTITION BY id)
    UNION ALL
    SELECT line, 2, 'id', format('rating ''{}'' already exists; a correction is a new rating with `corrects` set', id),
        false
    FROM f SEMI JOIN ratings r ON r.id = f.id
    UNION ALL
    SELECT line, 3, 'learner_id', format('no learner ''{}''', learner_id), false
    FROM f ANTI JOIN learners l ON l.id = f.learner_id
    UNION ALL
    SELECT line, 4, 'competency_id', format('no competency ''{}'' in framework {}', competency_id, $framework), false
    FROM f WHERE NOT list_contains($competencies, competency_id)
    UNION ALL
    SELECT line, 5, 'term', format('''{}'' is not a term of the calendar ({})', term, array_to_string($terms, ', ')),
        false
    FROM f WHERE NOT list_contains($terms, term)
    UNION ALL
    SELECT line, 6, 'level', format('{} leaves the scale {}–{}', level, $lo, $hi), false
    FROM f WHERE level NOT BETWEEN $lo AND $hi
    UNION ALL
    SELECT line, 7, 'rated_on', format('{} is in the future (today is {})', rated_on, $today), false
    FROM f WHERE rated_on > $today
    UNION ALL
    SELECT f.line, 8, 'rated_on', format('{} is outside term {} ({} to {})', f.rated_on, f.term, d.starts, d.ends), false
    FROM f JOIN (SELECT unnest($terms) AS term, unnest($starts) AS starts, unnest($ends) AS ends) d USING (term)
    WHERE f.rated_on NOT BETWEEN d.starts AND d.ends
    UNION ALL
    SELECT line, 9, 'framework_version',
        format('''{}'' is not a loaded version of {} ({})', framework_version, $framework_id,
            array_to_string($versions, ', ')),
        false
    FROM f WHERE NOT list_contains($versions, framework_version)
    UNION ALL
    SELECT line, 10, 'rater_id', format('no staff member ''{}'' with the {} role', rater_id, rater_role), true
    FROM f WHERE rater_role <> 'self'
        AND NOT EXISTS (SELECT 1 FROM holders h WHERE h.rater_id = f.rater_id AND h.role = f.rater_role)
    UNION ALL
    SELECT f.line, 11, 'rater_id',
        format('''{}'' is not the advisor of record of learner ''{}'' ({}); only their advisor rates as advisor',
            f.rater_id, f.learner_id,
            CASE WHEN l.advisor_id IS NULL THEN 'who has none' ELSE format('their advisor is ''{}''', l.advisor_id) END),
        true
    FROM f JOIN learners l ON l.id = f.learner_id
    WHERE f.rater_role = 'advisor' AND l.advisor_id IS DISTINCT FROM f.rater_id
        AND EXISTS (SELECT 1 FROM holders h WHERE h.rater_id = f.rater_id AND h.role = 'advisor')
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
    with store.registered(cur, CHECKED, check_frame(ratings)):
        return rating_problems(cur, fw, today)
