"""What the operator API accepts (pydantic; only the operator API function imports it)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class DecisionIn(BaseModel):
    """An operator's decision on a review: what KCP did, and why the operator knows it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: Literal["APPLIED", "NOT_APPLIED"] = Field(
        description="APPLIED: KCP took the cancel (the refund is made); NOT_APPLIED: it did not "
        "(the hold is released, the shop may ask again)"
    )
    note: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2000,
            description="What was checked and where (e.g. KCP's merchant admin); required",
        ),
    ]
