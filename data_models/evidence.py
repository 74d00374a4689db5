"""Evidence a learner attaches to competencies: an evaluation, an artifact, a manuscript."""

import datetime as dt

from pydantic import Field

from data_models.base import Id, LongText, Strict, Text


class Evidence(Strict):
    id: Id
    learner_id: Id
    type: Id
    title: Text
    competency_ids: list[Id] = Field(min_length=1)
    url: LongText = ""
    description: LongText = ""
    added_on: dt.date
