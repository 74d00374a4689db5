"""Writes a signed-in viewer makes from the app, each checked against what the viewer may do."""

import datetime as dt
import uuid
from collections.abc import Sequence

import pandas as pd
from pydantic import ValidationError

from data_models import Evidence, Framework, RaterRole, Rating, Role
from tracker.access.policy import Viewer, deny, rater_role_for, require_learner, require_role, shown_id
from tracker.core.errors import PermissionDenied, TrackerError
from tracker.records import importing, rules
from tracker.storage import record_rows
from tracker.storage.database import Cursor


def _form_error(exc: ValidationError) -> TrackerError:
    """What was wrong with the form, field by field, in words."""
    return TrackerError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)))


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def current_term(cur: Cursor, fw: Framework, learner_id: str) -> str:
    """The latest term in which the learner has any rating; the first term if none."""
    row = cur.execute(  # placed by the calendar in force (a revision may have added a term before it)
        "SELECT max(t.term_index) FROM ratings r JOIN fw_terms t USING (term) WHERE r.learner_id = ?", [learner_id]
    ).fetchone()
    index = row[0] if row and row[0] else 1
    return fw.term_ids[min(index, len(fw.term_ids)) - 1]


def record_rating(
    cur: Cursor,
    fw: Framework,
    viewer: Viewer,
    learner_id: str,
    competency_id: str,
    level: float,
    term: str,
    comment: str,
    evidence_ids: Sequence[str] = (),
    corrects: str | None = None,
    today: dt.date | None = None,
) -> Rating:
    """Save one rating in the role the viewer holds toward this learner (self, advisor or committee)."""
    role = rater_role_for(cur, viewer, learner_id)
    try:
        rating = Rating(
            id=_new_id("R"),
            learner_id=learner_id,
            competency_id=competency_id,
            level=level,
            rater_id=viewer.person_id,
            rater_role=role,
            rated_on=today or dt.date.today(),
            term=term,
            comment=comment,
            evidence_ids=list(evidence_ids),
            framework_version=fw.version,
            corrects=corrects,
        )
    except ValidationError as exc:
        raise _form_error(exc) from None
    problems = rules.frame_problems(
        cur, record_rows.ratings_columns([rating]).set_axis(pd.Index([1], name="line")), fw, today
    )
    if any(p.denied for p in problems):
        deny(cur, viewer, f"rating learner {learner_id} in {competency_id}")
        raise PermissionDenied("; ".join(f"{p.field}: {p.message}" for p in problems))
    if problems:
        raise TrackerError("; ".join(f"{p.field}: {p.message}" for p in problems))
    record_rows.add_ratings(
        cur, [rating], fw, actor=viewer.person_id, action="self-assessment" if role is RaterRole.self else "rating"
    )
    return rating


def record_evidence(
    cur: Cursor,
    fw: Framework,
    viewer: Viewer,
    learner_id: str,
    type_id: str,
    title: str,
    competency_ids: Sequence[str],
    url: str = "",
    description: str = "",
    today: dt.date | None = None,
) -> Evidence:
    """A learner adds evidence to their own portfolio."""
    require_learner(cur, viewer, learner_id)
    if viewer.person_id != learner_id:
        raise deny(
            cur,
            viewer,
            f"adding evidence for learner {shown_id(learner_id)}",
            message="Only the learner adds evidence to their portfolio.",
        )
    if type_id not in fw.evidence_type_ids:
        raise TrackerError(f"{type_id!r} is not an evidence type of the framework.")
    unknown = [c for c in competency_ids if c not in fw.competencies]
    if unknown:
        raise TrackerError(f"No competency {', '.join(unknown)} in the framework.")
    try:
        item = Evidence(
            id=_new_id("E"),
            learner_id=learner_id,
            type=type_id,
            title=title,
            competency_ids=list(competency_ids),
            url=url,
            description=description,
            added_on=today or dt.date.today(),
        )
    except ValidationError as exc:
        raise _form_error(exc) from None
    record_rows.add_evidence(cur, [item], actor=viewer.person_id)
    return item


def import_records(
    cur: Cursor,
    fw: Framework,
    viewer: Viewer,
    kind: str,
    text: str,
    source: str,
    dry_run: bool,
    progress: importing.Progress | None = None,
) -> importing.ImportResult:
    """A coordinator imports a file of records from the app: the same checks as the command line."""
    require_role(cur, viewer, Role.coordinator)
    return importing.import_text(cur, kind, text, source, fw, viewer.person_id, progress, dry_run=dry_run)
