"""A payment: an approved KCP payment as the shop registered it, and our view of its balance.

Plain dataclasses (no pydantic here): the workflow Lambdas import this, and cold starts matter.
Money is int KRW; times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cancelflow.kcp.port import PayMethod


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
    in_flight: str = ""  # the cancellation holding the send lock (its fate at KCP not yet known)
    # Positions in `items` given back by a cancel that holds them or succeeded: the guard that
    # keeps an item from being removed twice (taken with the amount, given back on failure).
    removed_items: frozenset[int] = frozenset()

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
