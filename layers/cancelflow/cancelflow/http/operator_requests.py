"""What the operator API accepts (pydantic; only the operator API function imports it)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class DecisionIn(BaseModel):
    """An operator's decision on a review: what KCP did, and why the operator knows it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # `decision` is the name issue 13's contract gives it; `outcome` what the console sends.
    outcome: Literal["APPLIED", "NOT_APPLIED"] = Field(
        validation_alias=AliasChoices("decision", "outcome"),
        description="APPLIED: KCP took the cancel (the refund is made); NOT_APPLIED: it did not "
        "(the hold is released, the shop may ask again). Sent as `decision` (or `outcome`).",
    )
    note: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2000,
            description="What was checked and where (e.g. KCP's merchant admin); required",
        ),
    ]


class ShopIn(BaseModel):
    """A shop to onboard. Its KCP credentials go into Secrets Manager under KcpSecretPrefix +
    shop_id (README, Deploy) unless `kcp_secret_id` names another secret."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    shop_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
    kcp_secret_id: Annotated[str | None, Field(min_length=1, max_length=512)] = None
