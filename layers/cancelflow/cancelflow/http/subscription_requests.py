"""What the subscriptions API accepts (pydantic; only the API function imports it)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cancelflow.subscriptions.model import CancelWhen
from cancelflow.subscriptions.schedule import Cycle
from cancelflow.subscriptions.service import NewSubscription

Krw = Annotated[int, Field(strict=True, gt=0, le=100_000_000, description="KRW, integer")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


BatchKey = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_\-]{8,64}$",
        description="KCP batch key (bt_batch_key); stored sealed, shown as its last 4",
        repr=False,
    ),
]


class BatchKeyIn(Strict):
    """The customer's new card: a batch key from KCP's card registration window."""

    batch_key: BatchKey


class SubscriptionIn(Strict):
    """A subscription to charge with the customer's KCP batch key."""

    customer_name: Annotated[str, Field(min_length=1, max_length=60)]
    customer_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
    batch_key: BatchKey
    amount: Krw
    product_name: Annotated[str, Field(min_length=1, max_length=100)]
    cycle: Cycle
    anchor_day: Annotated[int | None, Field(strict=True, ge=1, le=31)] = Field(
        default=None, description="MONTHLY: day of month (1-31); WEEKLY: ISO weekday (1=Mon)"
    )
    first_charge_date: date

    @model_validator(mode="after")
    def _weekly_anchor_is_a_weekday(self) -> SubscriptionIn:
        if self.cycle is Cycle.WEEKLY and self.anchor_day is not None and self.anchor_day > 7:
            raise ValueError("anchor_day for WEEKLY is an ISO weekday, 1-7")
        return self

    def to_domain(self) -> NewSubscription:
        return NewSubscription(
            customer_name=self.customer_name,
            customer_email=self.customer_email,
            batch_key=self.batch_key,
            amount=self.amount,
            product_name=self.product_name,
            cycle=self.cycle,
            first_charge_date=self.first_charge_date,
            anchor_day=self.anchor_day,
        )


class CancelSubscriptionIn(Strict):
    when: CancelWhen = CancelWhen.PERIOD_END
