"""What cancellations need from storage (the DynamoDB adapter implements it; tests' fakes too),
and the list query it answers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from cancelflow.cancellations.model import (
    Attempt,
    Cancellation,
    CancellationStatus,
    PaymentEffect,
    Review,
)
from cancelflow.kernel.events import Event
from cancelflow.payments.model import Payment
from cancelflow.payments.ports import PaymentStore
from cancelflow.shops.ports import ShopStore


@dataclass(frozen=True)
class CancellationQuery:
    """Filters of a shop's cancellation list, newest first. The creation-time range is keyed
    (and, with a tno, the payment); the status filters what the range reads."""

    since: datetime | None = None
    until: datetime | None = None
    status: CancellationStatus | None = None
    tno: str = ""
    limit: int = 20

    def scope(self, shop_id: str) -> str:
        """What a cursor is bound to: the list, the shop and every filter (not the page size)."""
        doc = {
            "list": "cancellations",
            "shop": shop_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "status": self.status.value if self.status else None,
            "tno": self.tno,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CancellationPage:
    cancellations: tuple[Cancellation, ...]  # without their journal (read one by id for it)
    next_position: dict[str, Any] | None  # where the next page starts; None at the end
    unreadable: int = 0  # stored records that could not be shown (logged, left out)


@dataclass(frozen=True)
class ReviewQuery:
    """Filters of the review queue across shops, oldest first."""

    shop_id: str = ""
    min_age: timedelta | None = None  # only reviews open at least this long (as of `as_of`)
    min_amount: int | None = None
    limit: int = 20
    as_of: datetime | None = None

    @property
    def opened_before(self) -> datetime | None:
        return self.as_of - self.min_age if self.as_of and self.min_age else None

    def scope(self) -> str:
        """What a cursor is bound to: the queue and every filter (not the page size)."""
        doc = {
            "list": "reviews",
            "shop": self.shop_id,
            "min_age": self.min_age.total_seconds() if self.min_age else None,
            "min_amount": self.min_amount,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


class ReviewWaits(Protocol):
    """The executions waiting on reviews (Step Functions' task tokens; a fake in tests)."""

    def succeed(self, token: str, output: Mapping[str, Any]) -> bool:
        """Hand the waiting execution its result; False if no execution waits on the token."""
        ...

    def heartbeat(self, token: str) -> bool:
        """Tell the waiting execution the review is still open; False if none waits on it."""
        ...

    def redrive(self, execution_id: str) -> bool:
        """Resume an execution that stopped (its wait timed out); False if it cannot be."""
        ...


class PaymentBusy(Exception):
    """Another cancel of the same payment is at KCP right now; try again shortly."""


class InsufficientBalance(Exception):
    """The payment's available balance no longer covers the amount (a concurrent cancel won)."""


class IdempotencyRecord:
    def __init__(self, body_hash: str, cancellation_id: str) -> None:
        self.body_hash = body_hash
        self.cancellation_id = cancellation_id


class CancellationStore(PaymentStore, ShopStore, Protocol):
    """Everything a cancel touches: its payment, its shop, and itself."""

    def payment_cancellations(self, shop_id: str, tno: str) -> list[Cancellation]: ...

    def cancellation_page(
        self, shop_id: str, query: CancellationQuery, position: dict[str, Any] | None
    ) -> CancellationPage:
        """A page of the shop's cancellations, newest first, by Query with bounded reads.

        Conflict for a position outside this shop's list."""
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

    def reserve(self, cancellation: Cancellation, amount: int, seen: Payment | None = None) -> None:
        """REQUESTED -> RESERVED, lowering the payment's available balance by amount (and
        holding the cancellation's tax_free_amount of its tax-free part).

        InsufficientBalance if it no longer covers it, or, for a mixed-tax payment `seen` (the
        payment the decision was made from), if its balances moved since; Conflict if not
        REQUESTED any more.
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

    def find_cancellation(self, cancellation_id: str) -> Cancellation | None:
        """A cancellation by its id alone, whatever its shop (operators only)."""
        ...

    def review_page(self, query: ReviewQuery, position: dict[str, Any] | None) -> CancellationPage:
        """A page of open reviews across shops (NEEDS_REVIEW), oldest first."""
        ...

    def update_review(self, cancellation: Cancellation, review: Review) -> None:
        """Write the review of a NEEDS_REVIEW cancellation; Conflict if it is no longer one or
        its review changed since it was read (`cancellation.review.version`)."""
        ...

    def settle(
        self,
        cancellation: Cancellation,
        outcome: Cancellation,
        effect: PaymentEffect,
        events: tuple[Event, ...] = (),
    ) -> None:
        """Write the outcome, its effect on the payment and the events it makes (all decided by
        the domain: effect_of, events_of), atomically: no event without its change.

        Conflict if the stored cancellation is no longer in `cancellation.status`, or the payment
        no longer matches what the effect was decided from (lock, balance).
        """
        ...
