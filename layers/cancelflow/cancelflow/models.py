"""The domain's nouns: shops, payments, cancellations and the gateway attempts journal.

Plain dataclasses (no pydantic here): the workflow Lambdas import this, and cold starts matter.
Money is int KRW; times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from cancelflow.gateway.port import PayMethod, RefundAccount

__all__ = [
    "HOLDING",
    "OPEN",
    "SENT",
    "TERMINAL",
    "Attempt",
    "BreakdownLine",
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
    NEEDS_REVIEW = "NEEDS_REVIEW"  # KCP's answer is not known: still open, hold and lock kept


# The workflow's ends. NEEDS_REVIEW ends an execution but not the cancel: it stays open, its
# amount held, until the sweep or an operator sees a definitive signal (OPEN below).
TERMINAL = frozenset(
    {
        CancellationStatus.SUCCEEDED,
        CancellationStatus.REJECTED,
        CancellationStatus.FAILED,
        CancellationStatus.NEEDS_REVIEW,
    }
)


# The amount is held against the payment's available balance.
HOLDING = frozenset(
    {
        CancellationStatus.RESERVED,
        CancellationStatus.SENDING,
        CancellationStatus.RECONCILING,
        CancellationStatus.NEEDS_REVIEW,
    }
)
# The cancel may have reached KCP: it holds the payment's send lock until its fate is known.
SENT = frozenset(
    {
        CancellationStatus.SENDING,
        CancellationStatus.RECONCILING,
        CancellationStatus.NEEDS_REVIEW,
    }
)
# Not settled: the outcome is not known yet (the shop sees it as pending).
OPEN = frozenset(CancellationStatus) - {
    CancellationStatus.SUCCEEDED,
    CancellationStatus.REJECTED,
    CancellationStatus.FAILED,
}


class BreakdownLine(NamedTuple):
    """One line of how a refund was reached: a label code (reasons.BREAKDOWN) and KRW.

    An ITEM line names the payment's item it gives back: its position, name and quantity.
    """

    code: str
    amount: int
    item: int | None = None
    name: str = ""
    quantity: int = 0


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
    dispatched: str = ""  # PENDING, then SENT (one run sends it) or VOID (never); see send


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
    breakdown: tuple[BreakdownLine, ...] = ()  # how the refund was reached (sums to amount)
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
    confirmed_by: str = ""  # how a SUCCEEDED was known: ANSWER, INQUIRY or SWEEP
    corrected_from: str = ""  # the status a sweep corrected (the customer was told it first)

    def with_status(self, status: CancellationStatus, **changes: Any) -> Cancellation:
        return replace(self, status=status, **changes)


@dataclass(frozen=True)
class PaymentEffect:
    """What a cancellation's change of status does to its payment; the store only executes it.

    balance/available are deltas. `release_lock` frees the send lock (the store checks it is
    this cancellation's); `status` is the payment's status after; `expect_balance`, when set,
    makes the write conditional on the balance the decision was made from.
    """

    balance: int = 0
    available: int = 0
    release_lock: bool = False
    status: PaymentStatus | None = None
    expect_balance: int | None = None
    idle: bool = False  # only while no cancel holds the send lock (its balance_before stays true)
    add_items: tuple[int, ...] = ()  # item positions that become removed
    release_items: tuple[int, ...] = ()  # item positions given back (removable again)


def effect_of(cancellation: Cancellation, to: CancellationStatus, balance: int) -> PaymentEffect:
    """The one money rule: the held amount leaves the balance on success, is given back on a
    definitive failure, and stays held while KCP's answer is unknown.

    `balance` is the payment's balance the change is decided from (KCP's, before this cancel).
    """
    amount = cancellation.amount or 0
    held = cancellation.status in HOLDING
    locked = cancellation.status in SENT
    if to is CancellationStatus.SUCCEEDED:
        after = balance - amount
        status = PaymentStatus.CANCELLED if after <= 0 else PaymentStatus.PARTIALLY_CANCELLED
        if held:  # its items were taken with the hold
            return PaymentEffect(-amount, 0, locked, status, balance)
        # A correction (e.g. FAILED, but KCP had applied it): the amount leaves both balances,
        # and its items, given back when it failed, are removed again.
        items = cancellation.removed_items
        return PaymentEffect(-amount, -amount, False, status, balance, idle=True, add_items=items)
    if to in HOLDING:
        return PaymentEffect()  # still open: keep the hold, the items and the lock
    if held:  # refused or never applied: give the amount and the items back
        return PaymentEffect(0, amount, locked, release_items=cancellation.removed_items)
    return PaymentEffect()
