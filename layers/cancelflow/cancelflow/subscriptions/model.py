"""A subscription (정기결제) and its charges: the model and every change of its status.

The rule that keeps charges single: a period's attempt is claimed in the ledger *before* KCP is
called, under the idempotency key subscription id + period (+ dunning attempt), and KCP's order
id (ordr_idxx) is derived from it (order_id_for).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from cancelflow.kernel.errors import Problem
from cancelflow.subscriptions import schedule
from cancelflow.subscriptions.schedule import Cycle


class CancelWhen(StrEnum):
    PERIOD_END = "PERIOD_END"
    IMMEDIATELY = "IMMEDIATELY"


class Status(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    SUSPENDED = "SUSPENDED"  # the dunning schedule ran out; resume after the card is fixed
    CANCELLED = "CANCELLED"  # final


class ChargeStatus(StrEnum):
    PENDING = "PENDING"  # claimed and about to be (or being) sent
    UNKNOWN = "UNKNOWN"  # sent, fate unknown: reconciled by resending the same ordr_idxx
    NOT_SENT = "NOT_SENT"  # nothing reached KCP (yet)
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"


OPEN_CHARGE = frozenset({ChargeStatus.PENDING, ChargeStatus.UNKNOWN, ChargeStatus.NOT_SENT})


@dataclass(frozen=True)
class PaidPeriod:
    period: str
    tno: str  # "" when KCP confirmed the charge only as a duplicate order (see charge())
    amount: int
    start: date
    end: date  # the next period's date
    paid_at: datetime


@dataclass(frozen=True)
class Subscription:
    shop_id: str
    subscription_id: str
    status: Status
    customer_name: str
    customer_email: str
    product_name: str
    amount: int
    cycle: Cycle
    anchor_day: int
    batch_key_ref: str = field(repr=False)  # sealed by the vault; never shown or logged
    batch_key_last4: str
    period_date: date  # scheduled date of the next unpaid period
    created_at: datetime
    updated_at: datetime
    attempt: int = 1  # the next attempt at this period (dunning counts up)
    due_on: date | None = None  # when the next attempt runs; only while ACTIVE
    version: int = 0  # optimistic lock: every write checks it
    fingerprint: str = ""  # of the create request, for Idempotency-Key replays
    last_paid: PaidPeriod | None = None
    cancel_when: str = ""
    cancelled_at: datetime | None = None
    service_until: date | None = None
    refund_amount: int = 0
    refund_cancellation_id: str = ""
    suspended_at: datetime | None = None

    @property
    def period(self) -> str:
        return schedule.period_id(self.cycle, self.period_date)

    @property
    def next_period_date(self) -> date:
        return schedule.next_charge_date(self.cycle, self.anchor_day, self.period_date)

    def order_id(self) -> str:
        return order_id_for(self.subscription_id, self.period, self.attempt)

    def pending_charge(self, billing_date: date, at: datetime, claim_token: str) -> Charge:
        """The period's next attempt, as it is claimed before KCP is called."""
        return Charge(
            shop_id=self.shop_id,
            subscription_id=self.subscription_id,
            period=self.period,
            attempt=self.attempt,
            order_id=self.order_id(),
            amount=self.amount,
            status=ChargeStatus.PENDING,
            billing_date=billing_date,
            created_at=at,
            updated_at=at,
            claim_token=claim_token,
        )

    # --- transitions: every change of a subscription's status, the API's and billing's ---

    def paused(self, at: datetime) -> Subscription | None:
        """ACTIVE -> PAUSED: no charges until resumed. None: already paused."""
        if self.status is Status.PAUSED:
            return None
        if self.status is not Status.ACTIVE:
            raise Problem(
                "SUBSCRIPTION_STATE_CONFLICT",
                f"A {self.status.value} subscription cannot be paused.",
            )
        return replace(self, status=Status.PAUSED, due_on=None, updated_at=at)

    def resumed(self, at: datetime) -> Subscription | None:
        """PAUSED or SUSPENDED -> ACTIVE. Periods missed meanwhile are not charged afterwards."""
        if self.status is Status.ACTIVE:
            return None
        if self.status is Status.CANCELLED:
            raise Problem(
                "SUBSCRIPTION_STATE_CONFLICT",
                "A cancelled subscription stays cancelled; create a new one.",
            )
        today = schedule.today_kst(at)
        period_date = self.period_date
        if period_date < today:
            period_date = schedule.first_charge_date(self.cycle, self.anchor_day, today)
        attempt = self.attempt if period_date == self.period_date else 1
        if self.status is Status.SUSPENDED:
            attempt = self.attempt + 1  # a fresh try; the declined order ids stay used
        return replace(
            self,
            status=Status.ACTIVE,
            period_date=period_date,
            attempt=attempt,
            due_on=max(period_date, today),
            suspended_at=None,
            updated_at=at,
        )

    def cancelled(self, when: CancelWhen, at: datetime) -> Subscription | None:
        """-> CANCELLED (final). PERIOD_END: the paid period runs out. IMMEDIATELY: service
        stops today and the paid period's unused days are owed back (schedule.prorata_refund).
        None: already cancelled (the first request decided)."""
        if self.status is Status.CANCELLED:
            return None
        paid, today = self.last_paid, schedule.today_kst(at)
        amount = 0
        if when is CancelWhen.IMMEDIATELY and paid is not None:
            amount = schedule.prorata_refund(paid.amount, paid.start, paid.end, today)
        until = paid.end if paid and when is CancelWhen.PERIOD_END else today
        return replace(
            self,
            status=Status.CANCELLED,
            due_on=None,
            cancel_when=when.value,
            cancelled_at=at,
            service_until=until,
            refund_amount=amount,
            updated_at=at,
        )

    def with_card(self, sealed_key: str, last4: str, at: datetime) -> Subscription:
        """A new card (batch key) for the next attempts; a SUSPENDED plan stays suspended until
        resumed, then charges the new card."""
        if self.status is Status.CANCELLED:
            raise Problem(
                "SUBSCRIPTION_STATE_CONFLICT",
                "A cancelled subscription's card cannot be replaced; create a new subscription.",
            )
        return replace(self, batch_key_ref=sealed_key, batch_key_last4=last4, updated_at=at)

    def charged(self, paid: PaidPeriod) -> Subscription:
        """The period is paid: on to the next one (a repeat, or a later period, is a no-op)."""
        if self.period != paid.period:
            return self
        end = paid.end
        return replace(self, period_date=end, attempt=1, due_on=end, last_paid=paid)

    def declined(
        self, period: str, attempt: int, retry_on: date | None, at: datetime
    ) -> Subscription:
        """The attempt was declined: dun again on retry_on, or SUSPENDED when the dunning
        schedule ran out (None). Another attempt's outcome changes nothing."""
        if self.period != period or self.attempt != attempt:
            return self
        if retry_on is None:
            return replace(self, status=Status.SUSPENDED, attempt=attempt + 1, suspended_at=at)
        return replace(self, attempt=attempt + 1, due_on=retry_on)

    def retried_on(self, day: date) -> Subscription:
        """The attempt's fate is unknown: try it again on day, resending its same order id."""
        return replace(self, due_on=day)

    def recorded(self, at: datetime) -> Subscription:
        """As a charge outcome writes it: only an ACTIVE subscription has a next attempt."""
        due_on = self.due_on if self.status is Status.ACTIVE else None
        return replace(self, due_on=due_on, updated_at=at)


@dataclass(frozen=True)
class Charge:
    shop_id: str
    subscription_id: str
    period: str
    attempt: int
    order_id: str
    amount: int
    status: ChargeStatus
    billing_date: date
    created_at: datetime
    updated_at: datetime
    sends: int = 0
    tno: str = ""
    approved_at: datetime | None = None
    res_cd: str = ""
    res_msg: str = ""
    detail: str = ""
    confirmed_by: str = ""  # KCP_ANSWER, or DUPLICATE_ORDER when a resend found it charged
    claim_token: str = ""  # who claimed it: an SDK retry of the claim knows its own write


def order_id_for(subscription_id: str, period: str, attempt: int) -> str:
    """KCP's ordr_idxx, derived from the idempotency key: unique per (subscription, period,
    attempt), at most 40 characters (sub_ + 20 hex + -2026-W49 + -N)."""
    order_id = f"{subscription_id}-{period}-{attempt}"
    if len(order_id) > 40:
        raise ValueError("ordr_idxx longer than 40 characters")
    return order_id


def new_subscription_id(shop_id: str, idempotency_key: str) -> str:
    # Derived from the key, so a replayed create can only ever find the same subscription.
    digest = hashlib.sha256(f"{shop_id}\n{idempotency_key}".encode()).hexdigest()
    return "sub_" + digest[:20]
