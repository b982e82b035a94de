"""A cancellation: its statuses, the journal of KCP attempts, and the one money rule.

Plain dataclasses (no pydantic here): the workflow Lambdas import this, and cold starts matter.
Money is int KRW; times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from cancelflow.kcp.port import RefundAccount
from cancelflow.kernel.events import Event
from cancelflow.payments.model import PaymentStatus


class CancellationStatus(StrEnum):
    REQUESTED = "REQUESTED"  # accepted by the API, workflow started
    RESERVED = "RESERVED"  # eligible; the amount is held against the payment's balance
    SENDING = "SENDING"  # journaled and sent to KCP; fate known only after the answer
    RECONCILING = "RECONCILING"  # the answer was unknown; asking KCP what happened
    SUCCEEDED = "SUCCEEDED"
    REJECTED = "REJECTED"  # not eligible (or cancelled outside cancelflow first): nothing moved
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
class Decision:
    """An operator's decision on a review: what KCP did (APPLIED or NOT_APPLIED), why, by whom.

    `evidence` is what the operator was shown when deciding (plain JSON: KCP's answer to a fresh
    inquiry, both sides' balances), kept so the decision can be checked later."""

    outcome: str  # APPLIED or NOT_APPLIED
    note: str
    by: str  # the operator's principal (an IAM ARN)
    at: datetime
    evidence: dict[str, Any] = field(default_factory=dict)


# What a decision says KCP did, as the status the cancellation settles with.
DECIDED_STATUS = {"APPLIED": CancellationStatus.SUCCEEDED, "NOT_APPLIED": CancellationStatus.FAILED}


@dataclass(frozen=True)
class Review:
    """A cancel whose fate only an operator (or the sweep's proof) can settle.

    `token` is the waiting execution's task token (cleared once used); `version` makes each
    change of the review conditional on the one it was read from."""

    opened_at: datetime
    token: str = ""
    version: int = 0
    decisions: tuple[Decision, ...] = ()

    @property
    def decided(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None


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
    review: Review | None = None  # opened when it ended NEEDS_REVIEW; kept once it is decided
    # Mixed taxation: the tax-free part the request named (None: split by the rule in
    # eligibility.split_tax_free), and the tax-free part of the decided amount.
    requested_tax_free_amount: int | None = None
    tax_free_amount: int = 0
    batch_id: str = ""  # the cancellation batch it is an item of ("": asked for alone)

    @property
    def taxable_amount(self) -> int:
        return (self.amount or 0) - self.tax_free_amount

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
    tax_free_cancelled: int = 0  # delta of the payment's tax-free part cancelled
    tax_free_held: int = 0  # delta of the payment's tax-free part held by open cancels


def effect_of(cancellation: Cancellation, to: CancellationStatus, balance: int) -> PaymentEffect:
    """The one money rule: the held amount leaves the balance on success, is given back on a
    definitive failure, and stays held while KCP's answer is unknown.

    `balance` is the payment's balance the change is decided from (KCP's, before this cancel).
    The tax-free part (mixed taxation) moves the same way, beside it.
    """
    amount, free = cancellation.amount or 0, cancellation.tax_free_amount
    held = cancellation.status in HOLDING
    locked = cancellation.status in SENT
    if to is CancellationStatus.SUCCEEDED:
        after = balance - amount
        status = PaymentStatus.CANCELLED if after <= 0 else PaymentStatus.PARTIALLY_CANCELLED
        if held:  # its items were taken with the hold
            return PaymentEffect(
                -amount, 0, locked, status, balance, tax_free_cancelled=free, tax_free_held=-free
            )
        # A correction (e.g. FAILED, but KCP had applied it): the amount leaves both balances,
        # and its items, given back when it failed, are removed again.
        items = cancellation.removed_items
        return PaymentEffect(
            -amount,
            -amount,
            False,
            status,
            balance,
            idle=True,
            add_items=items,
            tax_free_cancelled=free,
        )
    if to in HOLDING:
        return PaymentEffect()  # still open: keep the hold, the items and the lock
    if held:  # refused or never applied: give the amount and the items back
        return PaymentEffect(
            0, amount, locked, release_items=cancellation.removed_items, tax_free_held=-free
        )
    return PaymentEffect()


def events_of(cancellation: Cancellation, outcome: Cancellation) -> tuple[Event, ...]:
    """What a shop is told when a cancellation moves to `outcome` (written in the same
    transaction as the change): its terminal status reached, or a correction of what it had
    been told (the sweep or a review), never both. A move between open states tells nothing.

    The cause names the change, so a retried settle of the same change names the same event.
    """
    to = outcome.status
    if to not in TERMINAL or to is cancellation.status:
        return ()
    data = {"status": to.value, "previous_status": cancellation.status.value}
    if outcome.corrected_from:
        kind, cause = "cancellation.corrected", f"{outcome.corrected_from}>{to.value}"
        data["corrected_from"] = outcome.corrected_from
    else:
        kind, cause = f"cancellation.{to.value.lower()}", to.value
    event = Event(
        type=kind,
        shop_id=outcome.shop_id,
        resource=outcome.cancellation_id,
        occurred_at=outcome.updated_at,
        cause=cause,
        data=data | {"tno": outcome.tno} | _batch_of(outcome),
    )
    return (event,)


def _batch_of(cancellation: Cancellation) -> dict[str, str]:
    """An item of a batch says so in its events: the batch follows the outcomes it did not
    reach itself (the stream's filter lets only these through)."""
    return {"batch_id": cancellation.batch_id} if cancellation.batch_id else {}
