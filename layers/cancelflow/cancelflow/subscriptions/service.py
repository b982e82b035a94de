"""Subscriptions (정기결제): the model, its ports, and what the shop's API does with them.

The billing run that charges them is in billing/run.py. The rule that keeps charges single: a
period's attempt is claimed in the ledger *before* KCP is called, under the idempotency key
subscription id + period (+ dunning attempt), and KCP's order id (ordr_idxx) is derived from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from cancelflow.kcp.port import Gateway, Outcome, PayMethod
from cancelflow.kernel import cursor as cursor_codec
from cancelflow.kernel.clock import Clock
from cancelflow.kernel.errors import Conflict, Problem
from cancelflow.kernel.events import Event
from cancelflow.payments.model import Payment
from cancelflow.subscriptions import schedule
from cancelflow.subscriptions.schedule import Cycle


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


# --- ports ---------------------------------------------------------------------------------


class BillingStore(Protocol):
    def create(self, sub: Subscription) -> Subscription | None:
        """Create it; the existing subscription if the id is taken."""
        ...

    def get(self, shop_id: str, subscription_id: str) -> Subscription | None: ...

    def page(
        self,
        shop_id: str,
        status: str | None,
        date_from: date | None,
        date_to: date | None,
        limit: int,
        position: dict[str, Any] | None,
    ) -> tuple[list[Subscription], dict[str, Any] | None]:
        """A page of the shop's subscriptions, newest first, and where the next one starts.

        Conflict for a position outside this shop's list."""
        ...

    def save(
        self, before: Subscription, after: Subscription, events: tuple[Event, ...] = ()
    ) -> Subscription:
        """Write after if before is still current (version), with the events the change makes
        (events_of), atomically; Conflict otherwise."""
        ...

    def take_run_lease(
        self, execution_id: str, at: datetime, still_running: Callable[[str], bool]
    ) -> str | None:
        """Hold the billing run's lease for this execution. None when held; the holder's id
        when another execution holds it and is still running."""
        ...

    def due_page(
        self, billing_date: date, days_back: int, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
        """Due (shop_id, subscription_id) pairs from the sparse due index, by Query only."""
        ...

    def claim(self, sub: Subscription, charge: Charge) -> Charge | None:
        """Journal the attempt before it is sent. None if claimed now (or earlier under the same
        claim_token); the existing charge if another claim holds it; Conflict if the
        subscription changed."""
        ...

    def charges(self, shop_id: str, subscription_id: str) -> list[Charge]: ...

    def link_tno(self, charge: Charge, payment: Payment) -> None:
        """Set a SUCCEEDED charge's tno and create its ledger Payment (each once; a repeat is
        a no-op)."""
        ...

    def record(
        self,
        sub: Subscription,
        charge: Charge,
        payment: Payment | None = None,
        events: tuple[Event, ...] = (),
    ) -> bool:
        """Write a charge's new state with the subscription's (version-checked), register the
        approved payment and write the events (events_of), atomically. False if the charge was
        settled (its events recorded) by someone else; Conflict if the subscription changed."""
        ...

    def journal(self, charge: Charge) -> None:
        """Update an open charge (sends, status, KCP's tno once approved) and nothing else."""
        ...


def events_of(
    before: Subscription, after: Subscription, charge: Charge | None = None
) -> tuple[Event, ...]:
    """What a shop is told about a subscription's change (written in the same transaction): a
    charge that ended (charged or declined), and a subscription that became suspended or
    cancelled. Each cause names its change, so a retried write names the same event."""
    found = []
    if charge is not None and charge.status in (ChargeStatus.SUCCEEDED, ChargeStatus.DECLINED):
        kind = "charged" if charge.status is ChargeStatus.SUCCEEDED else "declined"
        found.append(
            Event(
                type=f"subscription.{kind}",
                shop_id=after.shop_id,
                resource=after.subscription_id,
                occurred_at=charge.updated_at,
                cause=f"{charge.period}#{charge.attempt}",
                data={
                    "period": charge.period,
                    "attempt": charge.attempt,
                    "amount": charge.amount,
                    "order_id": charge.order_id,
                    "tno": charge.tno,
                    "res_cd": charge.res_cd,
                },
            )
        )
    if after.status is not before.status and after.status in (Status.SUSPENDED, Status.CANCELLED):
        found.append(
            Event(
                type=f"subscription.{after.status.value.lower()}",
                shop_id=after.shop_id,
                resource=after.subscription_id,
                occurred_at=after.updated_at,
                cause=f"{after.status.value}#{before.version}",  # suspended again later: anew
                data={"status": after.status.value, "previous_status": before.status.value},
            )
        )
    return tuple(found)


class BatchKeyVault(Protocol):
    def seal(self, shop_id: str, subscription_id: str, batch_key: str) -> str: ...

    def open(self, shop_id: str, subscription_id: str, sealed: str) -> str: ...


# --- API side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSubscription:
    customer_name: str
    customer_email: str
    batch_key: str = field(repr=False)
    amount: int
    product_name: str
    cycle: Cycle
    first_charge_date: date
    anchor_day: int | None = None

    def fingerprint(self) -> str:
        doc = {
            "customer_name": self.customer_name,
            "customer_email": self.customer_email,
            "batch_key": hashlib.sha256(self.batch_key.encode()).hexdigest(),
            "amount": self.amount,
            "product_name": self.product_name,
            "cycle": self.cycle.value,
            "first_charge_date": self.first_charge_date.isoformat(),
            "anchor_day": self.anchor_day,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def create(
    store: BillingStore,
    vault: BatchKeyVault,
    clock: Clock,
    shop_id: str,
    request: NewSubscription,
    idempotency_key: str,
) -> tuple[Subscription, bool]:
    """Create a subscription (idempotent on the key). Returns (subscription, created)."""
    if not idempotency_key:
        raise Problem(
            "IDEMPOTENCY_KEY_REQUIRED",
            "Send an Idempotency-Key header when creating a subscription: a retry with the same "
            "key answers with the same subscription instead of creating a second one.",
        )
    now = clock.now()
    if request.first_charge_date < schedule.today_kst(now):
        raise Problem("VALIDATION_FAILED", "first_charge_date: must be today (KST) or later")
    anchor = request.anchor_day or (
        request.first_charge_date.day
        if request.cycle is Cycle.MONTHLY
        else request.first_charge_date.isoweekday()
    )
    try:
        schedule.check_anchor(request.cycle, anchor)
    except ValueError as error:
        raise Problem("VALIDATION_FAILED", f"anchor_day: {error}") from error
    subscription_id = new_subscription_id(shop_id, idempotency_key)
    fingerprint = request.fingerprint()
    existing = store.get(shop_id, subscription_id)
    if existing is None:
        first = schedule.first_charge_date(request.cycle, anchor, request.first_charge_date)
        sub = Subscription(
            shop_id=shop_id,
            subscription_id=subscription_id,
            status=Status.ACTIVE,
            customer_name=request.customer_name,
            customer_email=request.customer_email,
            product_name=request.product_name,
            amount=request.amount,
            cycle=request.cycle,
            anchor_day=anchor,
            batch_key_ref=vault.seal(shop_id, subscription_id, request.batch_key),
            batch_key_last4=request.batch_key[-4:],
            period_date=first,
            due_on=first,
            created_at=now,
            updated_at=now,
            fingerprint=fingerprint,
        )
        existing = store.create(sub)
        if existing is None:
            return sub, True
    if existing.fingerprint != fingerprint:
        raise Problem("IDEMPOTENCY_KEY_REUSED")
    return existing, False


def get(store: BillingStore, shop_id: str, subscription_id: str) -> Subscription:
    sub = store.get(shop_id, subscription_id)
    if sub is None:
        raise Problem("SUBSCRIPTION_NOT_FOUND")
    return sub


def list_subscriptions(
    store: BillingStore,
    shop_id: str,
    status: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 50,
    cursor: str | None = None,
    *,
    key: bytes,
) -> tuple[list[Subscription], str | None]:
    """One page of the shop's subscriptions, newest first, and the signed cursor to the next."""
    scope = _list_scope(shop_id, status, date_from, date_to)
    position = cursor_codec.resume(cursor, scope, key)
    try:
        found, following = store.page(shop_id, status, date_from, date_to, limit, position)
    except Conflict as error:
        raise Problem("INVALID_CURSOR") from error
    return found, cursor_codec.following(following, scope, key)


def _list_scope(shop_id: str, status: str | None, since: date | None, until: date | None) -> str:
    """What a cursor is bound to: the list, the shop and every filter (not the page size)."""
    doc = {
        "list": "subscriptions",
        "shop": shop_id,
        "status": status,
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until else None,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def charges(store: BillingStore, shop_id: str, subscription_id: str) -> list[Charge]:
    get(store, shop_id, subscription_id)  # 404 for another shop's subscription
    return store.charges(shop_id, subscription_id)


def _change(
    store: BillingStore,
    shop_id: str,
    subscription_id: str,
    change: Callable[[Subscription], Subscription | None],
) -> Subscription:
    """Read, change, write with the version check; a lost race is retried on fresh data."""
    for _ in range(3):
        sub = get(store, shop_id, subscription_id)
        after = change(sub)
        if after is None:  # already in the asked state: idempotent
            return sub
        try:
            return store.save(sub, after, events_of(sub, after))
        except Conflict:
            continue
    raise Problem("SERVICE_UNAVAILABLE", "The subscription is busy; retry.")


def pause(store: BillingStore, clock: Clock, shop_id: str, subscription_id: str) -> Subscription:
    """ACTIVE -> PAUSED: no charges until resumed."""

    def change(sub: Subscription) -> Subscription | None:
        if sub.status is Status.PAUSED:
            return None
        if sub.status is not Status.ACTIVE:
            raise Problem(
                "SUBSCRIPTION_STATE_CONFLICT",
                f"A {sub.status.value} subscription cannot be paused.",
            )
        return replace(sub, status=Status.PAUSED, due_on=None, updated_at=clock.now())

    return _change(store, shop_id, subscription_id, change)


def resume(store: BillingStore, clock: Clock, shop_id: str, subscription_id: str) -> Subscription:
    """PAUSED or SUSPENDED -> ACTIVE. Periods missed meanwhile are not charged afterwards."""

    def change(sub: Subscription) -> Subscription | None:
        if sub.status is Status.ACTIVE:
            return None
        if sub.status is Status.CANCELLED:
            raise Problem(
                "SUBSCRIPTION_STATE_CONFLICT",
                "A cancelled subscription stays cancelled; create a new one.",
            )
        now = clock.now()
        today = schedule.today_kst(now)
        period_date = sub.period_date
        if period_date < today:
            period_date = schedule.first_charge_date(sub.cycle, sub.anchor_day, today)
        attempt = sub.attempt if period_date == sub.period_date else 1
        if sub.status is Status.SUSPENDED:
            attempt = sub.attempt + 1  # a fresh try; the declined order ids stay used
        return replace(
            sub,
            status=Status.ACTIVE,
            period_date=period_date,
            attempt=attempt,
            due_on=max(period_date, today),
            suspended_at=None,
            updated_at=now,
        )

    return _change(store, shop_id, subscription_id, change)


class CancelWhen(StrEnum):
    PERIOD_END = "PERIOD_END"
    IMMEDIATELY = "IMMEDIATELY"


# refund(shop_id, tno, amount, idempotency_key) -> cancellation id (the cancel workflow)
Refund = Callable[[str, str, int, str], str]


def cancel(
    store: BillingStore,
    refund: Refund,
    clock: Clock,
    shop_id: str,
    subscription_id: str,
    when: CancelWhen,
) -> Subscription:
    """Stop charging. PERIOD_END: the paid period runs out. IMMEDIATELY: the unused days of the
    current paid period are refunded pro rata through the cancel workflow."""
    now = clock.now()
    today = schedule.today_kst(now)

    def change(sub: Subscription) -> Subscription | None:
        if sub.status is Status.CANCELLED:
            return None  # repeated: the first request decided (a pending refund is resumed below)
        paid = sub.last_paid
        amount = 0
        if when is CancelWhen.IMMEDIATELY and paid is not None:
            amount = schedule.prorata_refund(paid.amount, paid.start, paid.end, today)
        until = paid.end if paid and when is CancelWhen.PERIOD_END else today
        return replace(
            sub,
            status=Status.CANCELLED,
            due_on=None,
            cancel_when=when.value,
            cancelled_at=now,
            service_until=until,
            refund_amount=amount,
            updated_at=now,
        )

    return _start_refund(store, refund, clock, _change(store, shop_id, subscription_id, change))


def refund_waits_for_tno(sub: Subscription) -> bool:
    """A pro-rata refund is owed but cannot be sent: KCP's tno of the paid period is unknown."""
    paid = sub.last_paid
    return bool(sub.refund_amount > 0 and not sub.refund_cancellation_id and paid and not paid.tno)


def _start_refund(
    store: BillingStore, refund: Refund, clock: Clock, sub: Subscription
) -> Subscription:
    """Send the owed refund through the cancel workflow once its tno is known (idempotent)."""
    paid = sub.last_paid
    if sub.refund_amount <= 0 or sub.refund_cancellation_id or paid is None or not paid.tno:
        return sub  # nothing owed, already started, or waiting for the tno (the view says so)
    key = f"{sub.subscription_id}:refund:{paid.period}"
    cancellation_id = refund(sub.shop_id, paid.tno, sub.refund_amount, key)
    return _change(
        store,
        sub.shop_id,
        sub.subscription_id,
        lambda s: replace(s, refund_cancellation_id=cancellation_id, updated_at=clock.now()),
    )


def link_charge_tno(
    store: BillingStore,
    gateway: Gateway,
    refund: Refund,
    clock: Clock,
    shop_id: str,
    subscription_id: str,
    period: str,
    tno: str,
) -> Subscription:
    """Give a charge KCP confirmed only as a duplicate order its tno (found in KCP's merchant
    admin), after KCP's inquiry confirms that tno is this charge: then it can be refunded, and
    a refund that waited for it is sent. Re-running it finishes what a crash left undone."""
    sub = get(store, shop_id, subscription_id)
    charge = next(
        (
            c
            for c in store.charges(shop_id, subscription_id)
            if c.period == period and c.status is ChargeStatus.SUCCEEDED
        ),
        None,
    )
    if charge is None:
        raise Problem("CHARGE_NOT_FOUND", f"No successful charge of period {period}.")
    if charge.tno and charge.tno != tno:
        raise Problem("PAYMENT_CONFLICT", f"Period {period} was charged as tno {charge.tno}.")
    answer = gateway.inquire(tno, PayMethod.CARD)
    if answer.outcome is not Outcome.SUCCEEDED or answer.amount != charge.amount:
        raise Problem(
            "PAYMENT_MISMATCH",
            f"KCP does not hold tno {tno} as a {charge.amount} KRW card charge "
            f"({answer.res_cd or answer.detail}, amount {answer.amount}).",
        )
    now = clock.now()
    linked = replace(charge, tno=tno, approved_at=charge.approved_at or now, updated_at=now)
    store.link_tno(linked, charge_payment(sub, linked, answer.remaining_balance, now))

    def remember(s: Subscription) -> Subscription | None:
        if s.last_paid is None or s.last_paid.period != period or s.last_paid.tno:
            return None
        return replace(s, last_paid=replace(s.last_paid, tno=tno), updated_at=now)

    return _start_refund(store, refund, clock, _change(store, shop_id, subscription_id, remember))


def charge_payment(
    sub: Subscription, charge: Charge, balance: int | None, now: datetime
) -> Payment:
    """The ledger's Payment of a charge, so the cancel workflow can refund it."""
    return Payment(
        shop_id=sub.shop_id,
        tno=charge.tno,
        order_id=charge.order_id,
        amount=charge.amount,
        method=PayMethod.CARD,
        product_name=sub.product_name,
        buyer_email=sub.customer_email,
        buyer_name=sub.customer_name,
        approved_at=(charge.approved_at or now).replace(microsecond=0),
        registered_at=now,
        balance=charge.amount if balance is None else balance,
    )


def refund_through_cancel_workflow(store: Any, starter: Any, clock: Clock) -> Refund:
    """Refunds go through the cancel workflow (eligibility, over-refund guard, KCP, emails)."""
    from cancelflow.cancellations import service as cancellations

    def refund(shop_id: str, tno: str, amount: int, key: str) -> str:
        request = cancellations.CancelRequest(
            reason_code="OTHER",
            reason="정기결제 해지: 남은 기간 환불 (subscription cancelled: pro-rata refund)",
            amount=amount,
            requested_by="SHOP",  # the shop ends the subscription: no customer windows apply
        )
        found, _ = cancellations.request_cancellation(
            store, starter, clock, shop_id, tno, request, key
        )
        return found.cancellation_id

    return refund
