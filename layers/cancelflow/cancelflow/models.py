"""The domain's nouns: shops, payments, cancellations and the gateway attempts journal.

Plain dataclasses (no pydantic here): the workflow Lambdas import this, and cold starts matter.
Money is int KRW; times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from cancelflow.gateway.port import PayMethod, RefundAccount

__all__ = [
    "TERMINAL",
    "Attempt",
    "Cancellation",
    "CancellationStatus",
    "Fulfillment",
    "PayMethod",
    "Payment",
    "PaymentStatus",
    "RefundAccount",
    "Shop",
]


class PaymentStatus(StrEnum):
    PAID = "PAID"
    PARTIALLY_CANCELLED = "PARTIALLY_CANCELLED"
    CANCELLED = "CANCELLED"


class Fulfillment(StrEnum):
    PROCESSING = "PROCESSING"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RETURN_REQUESTED = "RETURN_REQUESTED"
    RETURNED = "RETURNED"


class CancellationStatus(StrEnum):
    REQUESTED = "REQUESTED"  # accepted by the API, workflow started
    RESERVED = "RESERVED"  # eligible; the amount is held against the payment's balance
    SENDING = "SENDING"  # journaled and sent to KCP; fate known only after the answer
    RECONCILING = "RECONCILING"  # the answer was unknown; asking KCP what happened
    SUCCEEDED = "SUCCEEDED"
    REJECTED = "REJECTED"  # not eligible; nothing was sent
    FAILED = "FAILED"  # KCP refused, or nothing was applied; the hold is released
    NEEDS_REVIEW = "NEEDS_REVIEW"  # money may have moved; an operator decides


TERMINAL = frozenset(
    {
        CancellationStatus.SUCCEEDED,
        CancellationStatus.REJECTED,
        CancellationStatus.FAILED,
        CancellationStatus.NEEDS_REVIEW,
    }
)


@dataclass(frozen=True)
class Shop:
    shop_id: str
    name: str
    email: str
    kcp_secret_id: str = ""  # Secrets Manager id of the shop's KCP credentials


@dataclass(frozen=True)
class Payment:
    """An approved KCP payment as the shop registered it, with our view of its balance.

    balance: what KCP still holds (lowered only when KCP confirms a cancel).
    available: balance minus amounts held by cancels in progress (the over-refund guard).
    """

    shop_id: str
    tno: str
    order_id: str
    amount: int
    method: PayMethod
    product_name: str
    buyer_email: str
    approved_at: datetime
    registered_at: datetime
    buyer_name: str = ""
    tax_free_amount: int = 0
    escrow: bool = False
    items: tuple[dict, ...] = ()
    balance: int = -1
    available: int = -1
    status: PaymentStatus = PaymentStatus.PAID
    fulfillment: Fulfillment = Fulfillment.PROCESSING
    fulfillment_at: datetime | None = None  # when the fulfillment last changed
    delivered_at: datetime | None = None  # kept through a return: the withdrawal window's start

    def __post_init__(self) -> None:
        if self.balance < 0:
            object.__setattr__(self, "balance", self.amount)
        if self.available < 0:
            object.__setattr__(self, "available", self.balance)

    @property
    def cancelled_amount(self) -> int:
        return self.amount - self.balance

    def same_registration(self, other: Payment) -> bool:
        """True when a repeated registration carries the same facts (idempotent on tno)."""
        facts: tuple[str, ...] = ("tno", "order_id", "amount", "method", "product_name")
        facts += ("buyer_email",)
        facts += ("approved_at", "buyer_name", "tax_free_amount", "escrow", "items")
        return all(getattr(self, f) == getattr(other, f) for f in facts)


@dataclass(frozen=True)
class Attempt:
    """One call to KCP, journaled before it is sent and completed after."""

    seq: int
    kind: str  # CANCEL or INQUIRY
    sent_at: datetime
    outcome: str = ""  # an Outcome, or "" while the answer is pending
    res_cd: str = ""
    res_msg: str = ""
    detail: str = ""
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Cancellation:
    shop_id: str
    cancellation_id: str
    tno: str
    status: CancellationStatus
    reason_code: str
    reason: str
    created_at: datetime
    updated_at: datetime
    requested_amount: int | None = None  # None: cancel everything that is left
    requested_by: str = "CUSTOMER"  # or SHOP (e.g. out of stock): skips customer windows
    removed_items: tuple[int, ...] = ()  # positions in payment.items (an order change)
    amount: int | None = None  # decided refund, held against the payment
    breakdown: tuple[tuple[str, int], ...] = ()  # how the refund was reached (sums to amount)
    policy_version: int | None = None  # the shop policy the decision used
    refund_account: RefundAccount | None = None
    execution_id: str = ""
    reasons: tuple[str, ...] = ()  # stable reason codes of a rejection or failure
    res_cd: str = ""
    res_msg: str = ""
    cancelled_at: datetime | None = None  # KCP's canc_time
    partial_seq: str = ""
    balance_before: int | None = None  # KCP balance when sent, for reconciliation
    attempts: tuple[Attempt, ...] = field(default=())

    def with_status(self, status: CancellationStatus, **changes: Any) -> Cancellation:
        return replace(self, status=status, **changes)
