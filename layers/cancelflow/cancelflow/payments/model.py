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
    # A virtual account issued but not paid into yet: nothing to refund (balance 0) until
    # KCP's deposit notification (TX00) makes it PAID.
    AWAITING_DEPOSIT = "AWAITING_DEPOSIT"
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
    # Cancelled outside cancelflow (KCP's merchant admin), as KCP's notifications reported it.
    externally_cancelled: int = 0
    # The tax-free part (mixed taxation) of what was cancelled, and of what open cancels hold.
    # Counters, not balances, so a record kept before they existed reads as 0 (all taxable)
    # and a virtual account's deposit needs no change to them.
    tax_free_cancelled: int = 0
    tax_free_held: int = 0

    def __post_init__(self) -> None:
        if self.balance < 0:
            object.__setattr__(self, "balance", self.amount)
        if self.available < 0:
            object.__setattr__(self, "available", self.balance)

    @property
    def cancelled_amount(self) -> int:
        if self.status is PaymentStatus.AWAITING_DEPOSIT:
            return 0  # nothing was paid yet, so nothing was cancelled
        return self.amount - self.balance

    @property
    def mixed_tax(self) -> bool:
        """A mixed-taxation (복합과세) payment: KCP wants each partial cancel split (TG03)."""
        return self.tax_free_amount > 0

    @property
    def tax_free_balance(self) -> int:
        """The tax-free part of `balance`. A cancel KCP reported without its parts (one made
        in KCP's merchant admin) is taken as taxable first, as KCP's sandbox does."""
        if self.status is PaymentStatus.AWAITING_DEPOSIT:
            return 0
        return max(0, min(self.tax_free_amount - self.tax_free_cancelled, self.balance))

    @property
    def taxable_balance(self) -> int:
        return self.balance - self.tax_free_balance

    @property
    def tax_free_available(self) -> int:
        """The tax-free part of `available`: the tax-free balance less what open cancels hold."""
        return max(0, min(self.tax_free_balance - self.tax_free_held, self.available))

    @property
    def taxable_available(self) -> int:
        return self.available - self.tax_free_available

    @property
    def tax_free_cancelled_amount(self) -> int:
        if self.status is PaymentStatus.AWAITING_DEPOSIT:
            return 0
        return self.tax_free_amount - self.tax_free_balance

    @property
    def taxable_cancelled_amount(self) -> int:
        return self.cancelled_amount - self.tax_free_cancelled_amount

    def same_registration(self, other: Payment) -> bool:
        """True when a repeated registration carries the same facts (idempotent on tno)."""
        facts: tuple[str, ...] = ("tno", "order_id", "amount", "method", "product_name")
        facts += ("buyer_email",)
        facts += ("approved_at", "buyer_name", "tax_free_amount", "escrow", "items")
        return all(getattr(self, f) == getattr(other, f) for f in facts)
