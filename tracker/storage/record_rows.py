"""Record rows as the tables hold them: learners, staff, evidence and ratings written inside a caller's write."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

import duckdb
import numpy as np
import pandas as pd

from data_models import Evidence, Framework, Learner, Rating, Staff
from data_models.base import LIST_SEPARATOR
from tracker.core.errors import TrackerError
from tracker.storage.database import Cursor, audit, now, write
from tracker.storage.derived import refresh_term_levels

# The columns of a ratings file, in order: the model's own fields (data_models.Rating is the one schema).
RATING_FIELDS = list(Rating.model_fields)


def ratings_columns(ratings: Sequence[Rating]) -> pd.DataFrame:
    """Validated ratings as columns, enums as their values."""
    frame = pd.DataFrame([r.__dict__ for r in ratings], columns=RATING_FIELDS)
    frame["rater_role"] = frame["rater_role"].map(str)
    return frame


def ratings_frame(ratings: Sequence[Rating] | pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """Rows ready for the ratings table (from models, or from validated columns): with each term's position in
    the calendar and the time recorded; levels as floats, dates as dates and evidence lists as `;`-joined text
    (ids never hold `;`), so DuckDB reads whole columns instead of Python objects."""
    frame = ratings[RATING_FIELDS].copy() if isinstance(ratings, pd.DataFrame) else ratings_columns(ratings)
    frame["term_index"] = frame["term"].map({t: framework.term_index(t) for t in framework.term_ids})
    frame["level"] = frame["level"].astype(float)
    codes, dates = pd.factorize(frame["rated_on"])
    frame["rated_on"] = np.array(list(dates), dtype="datetime64[D]")[codes] if len(frame) else []
    codes, lists = pd.factorize(frame["evidence_ids"].map(LIST_SEPARATOR.join))
    frame["evidence_ids"] = lists.to_numpy(dtype=object)[codes] if len(frame) else []
    frame["recorded_at"] = now()
    return frame


def insert_records(cur: Cursor, kind: str, records: Sequence[Learner | Staff | Evidence]) -> None:
    """Insert validated learners, staff or evidence (inside the caller's transaction)."""
    table = {"learners": "learners", "staff": "staff", "evidence": "evidence"}[kind]
    frame = pd.DataFrame([r.__dict__ for r in records])
    for column in ("status", "email"):
        if column in frame:
            frame[column] = frame[column].map(str)
    if "roles" in frame:
        frame["roles"] = frame["roles"].map(lambda roles: [str(r) for r in roles])
    frame["recorded_at"] = now()
    with registered(cur, "incoming_records", frame):
        cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_records")  # noqa: S608 - fixed table names
    if kind == "learners":  # a new learner stands "not rated" in every competency
        refresh_term_levels(cur, [r.id for r in records])


# The stored columns of a rating: the model's fields, with the term's position after the term, and when recorded.
_AFTER_TERM = RATING_FIELDS.index("term") + 1
RATING_COLUMNS = ", ".join([*RATING_FIELDS[:_AFTER_TERM], "term_index", *RATING_FIELDS[_AFTER_TERM:], "recorded_at"])


@contextmanager
def registered(cur: Cursor, name: str, frame: pd.DataFrame) -> Iterator[None]:
    """Expose a DataFrame to SQL as `name` for the duration of the block."""
    cur.complete()  # finish any result still open on this cursor, as DuckDB requires before registering
    cur.register(name, frame)
    try:
        yield
    finally:
        with suppress(duckdb.Error):  # in an aborted transaction; the next register replaces it
            cur.unregister(name)


def insert_ratings_frame(cur: Cursor, frame: pd.DataFrame) -> None:
    """Insert prepared rating rows (ratings_frame), sorted so one learner's ratings sit together on disk."""
    with registered(cur, "incoming_ratings", frame):
        cur.execute(
            f"INSERT INTO ratings ({RATING_COLUMNS}) SELECT * REPLACE ("  # noqa: S608 - constant columns
            "CASE WHEN evidence_ids = '' THEN []::VARCHAR[] ELSE string_split(evidence_ids, ';') END AS evidence_ids) "
            f"FROM (SELECT {RATING_COLUMNS} FROM incoming_ratings) ORDER BY learner_id, competency_id, term_index, rated_on"
        )


def insert_checked_ratings(cur: Cursor, table: str, framework: Framework) -> None:
    """Insert the validated ratings of a table shaped like tracker.rules.CHECK_COLUMNS (inside the caller's
    transaction), sorted so one learner's ratings sit together on disk."""
    cur.execute(
        f"INSERT INTO ratings ({RATING_COLUMNS}) SELECT id, learner_id, competency_id, CAST(level AS DECIMAL(4,1)), "  # noqa: S608
        "rater_id, rater_role, rated_on, term, CAST(list_position($terms, term) AS SMALLINT), comment, "
        "CASE WHEN evidence_ids = '' THEN []::VARCHAR[] ELSE string_split(evidence_ids, ';') END, framework_version, "
        f"corrects, $now FROM {table} ORDER BY learner_id, competency_id, list_position($terms, term), rated_on, line",
        {"terms": framework.term_ids, "now": now()},
    )


def add_ratings(
    cur: Cursor, ratings: Sequence[Rating], framework: Framework, actor: str, action: str = "rating"
) -> None:
    """Append ratings (a correction is a rating whose `corrects` names the one it supersedes)."""
    frame = ratings_frame(ratings, framework)

    def work(c: Cursor) -> None:
        insert_ratings_frame(c, frame)
        refresh_term_levels(c, [r.learner_id for r in ratings])
        for r in ratings:
            audit(
                c,
                actor,
                "correction" if r.corrects else action,
                r.learner_id,
                {
                    "rating_id": r.id,
                    "competency_id": r.competency_id,
                    "level": r.level,
                    "rater_role": r.rater_role.value,
                    "term": r.term,
                    "corrects": r.corrects,
                },
            )

    write(cur, work)


def add_evidence(cur: Cursor, items: Sequence[Evidence], actor: str) -> None:
    stamp = now()
    rows = [
        (e.id, e.learner_id, e.type, e.title, list(e.competency_ids), e.url, e.description, e.added_on, stamp)
        for e in items
    ]

    def work(c: Cursor) -> None:
        c.executemany(
            "INSERT INTO evidence (id, learner_id, type, title, competency_ids, url, description, added_on, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        for e in items:
            audit(c, actor, "evidence", e.learner_id, {"evidence_id": e.id, "title": e.title})

    write(cur, work)


def learner_rows(learners: Sequence[Learner]) -> list[tuple]:
    stamp = now()
    return [
        (x.id, x.name, str(x.email), x.cohort, x.profession, x.start_term, x.status.value, x.advisor_id, stamp)
        for x in learners
    ]


def staff_rows(staff: Sequence[Staff]) -> list[tuple]:
    stamp = now()
    return [(s.id, s.name, str(s.email), [r.value for r in s.roles], stamp) for s in staff]


def set_learner_status(cur: Cursor, learner_id: str, status: str, actor: str) -> None:
    def work(c: Cursor) -> None:
        old = c.execute("SELECT status FROM learners WHERE id = ?", [learner_id]).fetchone()
        if old is None:
            raise TrackerError(f"No learner with id {learner_id!r}.")
        c.execute("UPDATE learners SET status = ? WHERE id = ?", [status, learner_id])
        audit(c, actor, "learner status", learner_id, {"from": old[0], "to": status})

    write(cur, work)
