"""What the cancellation batches API accepts (pydantic; only its function imports it)."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from cancelflow.batches.model import MAX_ITEMS, ItemRequest
from cancelflow.http.requests import Krw, ReasonCode, Strict, Tno


class BatchItemIn(Strict):
    """One payment of the batch: without amount, everything that is left of it is cancelled."""

    tno: Tno
    amount: Krw | None = None
    reason_code: ReasonCode
    reason: Annotated[str, Field(max_length=200)] = ""

    def to_domain(self) -> ItemRequest:
        return ItemRequest(
            tno=self.tno, reason_code=self.reason_code.value, reason=self.reason, amount=self.amount
        )


class BatchIn(Strict):
    """Payments of the shop to cancel at once (a recall, an event called off): each becomes an
    ordinary cancellation (requested by the shop), sent to KCP within the TPS budget."""

    model_config = ConfigDict(  # merged with Strict's
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"tno": "20261203123456", "reason_code": "DEFECTIVE", "reason": "리콜"},
                        {"tno": "20261203123457", "amount": 5000, "reason_code": "DEFECTIVE"},
                    ]
                }
            ]
        },
    )

    items: list[BatchItemIn] = Field(min_length=1, max_length=MAX_ITEMS)
    tps: Annotated[float, Field(ge=1, le=1000)] | None = Field(
        default=None,
        description="KCP calls per second for this batch: at most the stack's allowance "
        "(BatchKcpTps), which is also the default",
    )
