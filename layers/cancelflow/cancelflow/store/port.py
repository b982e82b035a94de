"""What the domain needs from storage. The DynamoDB adapter implements it; tests may too."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from cancelflow.models import (
    Attempt,
    Cancellation,
    CancellationStatus,
    Payment,
    PaymentEffect,
    Shop,
)
from cancelflow.policy import ShopPolicy

if TYPE_CHECKING:  # payments and cancellations import this module
    from cancelflow.cancellations import CancellationPage, CancellationQuery
    from cancelflow.payments import HistoryPage, HistoryQuery


class Conflict(Exception):
    """A conditional write lost: the item is not in the state the caller expected."""


class PaymentBusy(Exception):
    """Another cancel of the same payment is at KCP right now; try again shortly."""


class InsufficientBalance(Exception):
    """The payment's available balance no longer covers the amount (a concurrent cancel won)."""


class IdempotencyRecord:
    def __init__(self, body_hash: str, cancellation_id: str) -> None:
        self.body_hash = body_hash
        self.cancellation_id = cancellation_id


class Store(Protocol):
    def shop_for_key(self, key_hash: str) -> str | None: ...

    def get_shop(self, shop_id: str) -> Shop | None: ...

    def put_payment(self, payment: Payment) -> bool:
        """Create it; False if the tno is already registered for the shop."""
        ...

    def get_payment(self, shop_id: str, tno: str) -> Payment | None: ...

    def history_page(
        self, shop_id: str, query: HistoryQuery, position: dict[str, Any] | None
    ) -> HistoryPage:
        """A page of the shop's payments, newest first, with a bounded number of reads."""
        ...

    def payment_cancellations(self, shop_id: str, tno: str) -> list[Cancellation]: ...

    def cancellation_page(
        self, shop_id: str, query: CancellationQuery, position: dict[str, Any] | None
    ) -> CancellationPage:
        """A page of the shop's cancellations, newest first, by Query with bounded reads.

        Conflict for a position outside this shop's list."""
        ...

    def set_fulfillment(self, payment: Payment, changed: Payment) -> None:
        """Conflict if the stored fulfillment is no longer payment.fulfillment."""
        ...

    def get_policy(self, shop_id: str) -> ShopPolicy:
        """The shop's current policy, or the default (the law's minimum)."""
        ...

    def put_policy(self, shop_id: str, policy: ShopPolicy, replaces: int, at: datetime) -> None:
        """Conflict if the current version is no longer `replaces`."""
        ...

    def to_sweep(self, failed_since: datetime) -> list[tuple[str, str]]:
        """(shop, tno) of every payment with an open cancel, or a cancel FAILED since then."""
        ...

    def get_idempotency(self, shop_id: str, key: str) -> IdempotencyRecord | None: ...

    def create_cancellation(
        self, cancellation: Cancellation, key: str, body_hash: str, expires_at: datetime
    ) -> None:
        """Create it with its idempotency record, atomically; Conflict if the key exists."""
        ...

    def get_cancellation(self, shop_id: str, cancellation_id: str) -> Cancellation | None: ...

    def reserve(self, cancellation: Cancellation, amount: int) -> None:
        """REQUESTED -> RESERVED, lowering the payment's available balance by amount.

        InsufficientBalance if it no longer covers it; Conflict if not REQUESTED any more.
        """
        ...

    def begin_send(self, cancellation: Cancellation, attempt: Attempt) -> int:
        """RESERVED -> SENDING: take the payment's send lock and journal the attempt.

        Returns KCP's balance before this cancel. PaymentBusy if another cancel holds the
        lock; Conflict if the cancellation is not RESERVED (a resent step: never send twice).
        """
        ...

    def dispatch(self, cancellation: Cancellation, attempt: Attempt, claim: str) -> bool:
        """Claim a PENDING attempt (SENT or VOID) if nobody has; False if someone had."""
        ...

    def journal(self, cancellation: Cancellation, attempt: Attempt) -> None:
        """Write an attempt (new, or its completion)."""
        ...

    def mark(self, cancellation: Cancellation, status: CancellationStatus) -> None:
        """A non-terminal status change with no money effect (e.g. RECONCILING)."""
        ...

    def settle(
        self, cancellation: Cancellation, outcome: Cancellation, effect: PaymentEffect
    ) -> None:
        """Write the outcome and its effect on the payment (decided by the domain), atomically.

        Conflict if the stored cancellation is no longer in `cancellation.status`, or the payment
        no longer matches what the effect was decided from (lock, balance).
        """
        ...
