"""Evidence a learner attaches to competencies: an evaluation, an artifact, a manuscript."""

import datetime as dt

from pydantic import Field

from data_models.base import CellList, Id, Link, LongText, Strict, Text


class Evidence(Strict):
    id: Id
    learner_id: Id
    type: Id
    title: Text
    competency_ids: CellList(Id) = Field(min_length=1)  # type: ignore[valid-type]
    url: Link = ""
    description: LongText = ""
    added_on: dt.date
