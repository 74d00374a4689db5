"""Shared model configuration and field types."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
HalfLevel = Annotated[float, Field(multiple_of=0.5, ge=0)]


class Strict(BaseModel):
    """A model that refuses unknown fields, so a typo in a file fails loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)
