"""Subscription use cases: manage (API) and charge once per period (the billing run).

The rule that keeps charges single: a period's attempt is claimed in the ledger *before* KCP is
called, under the idempotency key subscription id + period (+ dunning attempt), and KCP's order id
(ordr_idxx) is derived from that key. A claimed attempt whose fate is unknown is only ever resent
with the same ordr_idxx, which KCP refuses as a duplicate (8338) if the first one went through:
never a new charge with a new order id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from cancelflow.billing import emails, schedule
from cancelflow.billing.schedule import Cycle
from cancelflow.clock import Clock
from cancelflow.errors import Problem
from cancelflow.gateway.port import ChargeAnswer, ChargeOrder, Gateway, Outcome
from cancelflow.models import Payment, PayMethod, Shop
from cancelflow.notify import Mailer

logger = logging.getLogger(__name__)

# KCP's "duplicate order number": on a charge it means this ordr_idxx was already approved.
DUPLICATE_ORDER_CODES = frozenset({"8338", "8739"})
NOT_SENT_TRIES = 3  # a charge that never left is safe to try again at once
IN_FLIGHT = timedelta(minutes=2)  # longer than any KCP call (read timeout) plus its recording


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


class Conflict(Exception):
    """A conditional write lost: the subscription changed since it was read."""


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
        cursor: str | None,
    ) -> tuple[list[Subscription], str | None]:
        """A page of the shop's subscriptions, newest first; ValueError for a bad cursor."""
        ...

    def save(self, before: Subscription, after: Subscription) -> Subscription:
        """Write after if before is still current (version); Conflict otherwise."""
        ...

    def due_page(
        self, billing_date: date, days_back: int, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
        """Due (shop_id, subscription_id) pairs from the sparse due index, by Query only."""
        ...

    def claim(self, sub: Subscription, charge: Charge) -> Charge | None:
        """Journal the attempt before it is sent. None if claimed now; the existing charge if
        this attempt was claimed before; Conflict if the subscription changed."""
        ...

    def charges(self, shop_id: str, subscription_id: str) -> list[Charge]: ...

    def record(self, sub: Subscription, charge: Charge, payment: Payment | None = None) -> bool:
        """Write a charge's new state with the subscription's (version-checked), and register the
        approved payment, atomically. False if the charge was settled by someone else;
        Conflict if the subscription changed."""
        ...

    def journal(self, charge: Charge) -> None:
        """Update an open charge (sends, status UNKNOWN/NOT_SENT) without touching the rest."""
        ...


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
        raise Problem("IDEMPOTENCY_KEY_REQUIRED")
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
) -> tuple[list[Subscription], str | None]:
    try:
        return store.page(shop_id, status, date_from, date_to, limit, cursor)
    except ValueError as error:
        raise Problem("VALIDATION_FAILED", "cursor: not a cursor this API gave out") from error


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
            return store.save(sub, after)
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

    sub = _change(store, shop_id, subscription_id, change)
    paid = sub.last_paid
    if sub.refund_amount > 0 and not sub.refund_cancellation_id and paid is not None:
        if not paid.tno:
            # Charged, but KCP confirmed it only as a duplicate order: the shop refunds by hand.
            raise Problem(
                "SUBSCRIPTION_REFUND_MANUAL",
                f"Cancelled, but period {paid.period}'s transaction number is not known yet: "
                f"refund {sub.refund_amount} KRW in KCP's merchant admin.",
            )
        key = f"{sub.subscription_id}:refund:{paid.period}"
        cancellation_id = refund(shop_id, paid.tno, sub.refund_amount, key)
        sub = _change(
            store,
            shop_id,
            subscription_id,
            lambda s: replace(s, refund_cancellation_id=cancellation_id, updated_at=clock.now()),
        )
    return sub


# --- the billing run -----------------------------------------------------------------------


SUMMARY_KEYS = ("charged", "declined", "suspended", "skipped", "unknown", "failed")


@dataclass(frozen=True)
class RunSettings:
    max_concurrency: int
    tps: float  # KCP transactions per second the merchant is allowed
    retry_days: tuple[int, ...]
    reconcile_wait_seconds: int
    reconcile_max_tries: int
    page_size: int
    days_back: int  # also charge what was due this many days before (a missed run)

    @property
    def pace_seconds(self) -> float:
        """Each Map slot spaces its KCP calls this far apart: concurrency / pace <= TPS."""
        return self.max_concurrency / self.tps


def begin_run(clock: Clock, run_input: dict[str, Any], defaults: RunSettings) -> dict[str, Any]:
    """The run's billing date (default: today in KST), settings and an empty summary."""
    text = run_input.get("billing_date")
    try:
        billing_date = date.fromisoformat(text) if text else schedule.today_kst(clock.now())
    except (TypeError, ValueError) as error:
        raise ValueError("billing_date must be YYYY-MM-DD") from error
    overrides = run_input.get("config") or {}
    settings = replace(
        defaults,
        **{k: overrides[k] for k in ("max_concurrency", "tps", "page_size") if k in overrides},
    )
    if settings.max_concurrency < 1 or settings.tps <= 0:
        raise ValueError("max_concurrency must be >= 1 and tps > 0")
    config = {
        "max_concurrency": settings.max_concurrency,
        "tps": settings.tps,
        "pace_seconds": settings.pace_seconds,
        "retry_days": list(settings.retry_days),
        "reconcile_wait_seconds": settings.reconcile_wait_seconds,
        "reconcile_max_tries": settings.reconcile_max_tries,
        "page_size": settings.page_size,
        "days_back": settings.days_back,
    }
    summary = {"billing_date": billing_date.isoformat()} | dict.fromkeys(SUMMARY_KEYS, 0)
    return {
        "billing_date": billing_date.isoformat(),
        "config": config,
        "summary": summary,
        "cursor": None,
    }


def find_due(
    store: BillingStore,
    billing_date: date,
    config: dict[str, Any],
    cursor: dict[str, Any] | None,
) -> dict[str, Any]:
    """One page of due subscriptions (Query on the sparse due index; cost follows the due)."""
    items, next_cursor = store.due_page(
        billing_date, int(config["days_back"]), cursor, int(config["page_size"])
    )
    return {"items": items, "cursor": next_cursor, "more": next_cursor is not None}


def tally(summary: dict[str, Any], results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add a page's item results to the run's summary."""
    out = dict(summary)
    for result in results:
        key = str(result.get("result", "failed")).lower()
        out[key if key in SUMMARY_KEYS else "failed"] += 1
    return out


@dataclass(frozen=True)
class ChargeDeps:
    store: BillingStore
    vault: BatchKeyVault
    gateway: Gateway
    mailer: Mailer
    clock: Clock
    shop: Shop
    language: str = "ko"  # of the emails (the shop's policy)


def charge(
    deps: ChargeDeps,
    shop_id: str,
    subscription_id: str,
    billing_date: date,
    config: dict[str, Any],
    tries: int = 0,
) -> dict[str, Any]:
    """Charge one due subscription once for its period, or reconcile an earlier attempt.

    Returns {result: CHARGED|DECLINED|SUSPENDED|SKIPPED|UNKNOWN, next: DONE|RECONCILE, sends}.
    Paced: returns no sooner than pace_seconds per KCP call after its first call (TPS budget).
    """
    first_send: list[float] = []
    result = _charge(deps, shop_id, subscription_id, billing_date, config, tries, first_send)
    if first_send:
        hold_slot(first_send[0], int(result.get("sends", 0)), float(config["pace_seconds"]))
    return result


def _charge(
    deps: ChargeDeps,
    shop_id: str,
    subscription_id: str,
    billing_date: date,
    config: dict[str, Any],
    tries: int,
    first_send: list[float],
) -> dict[str, Any]:
    store, clock = deps.store, deps.clock
    base = {"subscription_id": subscription_id, "shop_id": shop_id, "tries": tries}
    sub = store.get(shop_id, subscription_id)
    if sub is None or sub.status is not Status.ACTIVE or sub.due_on is None:
        return base | {"result": "SKIPPED", "next": "DONE", "why": "not active", "sends": 0}
    if sub.due_on > billing_date:
        return base | {"result": "SKIPPED", "next": "DONE", "why": "not due", "sends": 0}
    now = clock.now()
    fresh = Charge(
        shop_id=shop_id,
        subscription_id=subscription_id,
        period=sub.period,
        attempt=sub.attempt,
        order_id=sub.order_id(),
        amount=sub.amount,
        status=ChargeStatus.PENDING,
        billing_date=billing_date,
        created_at=now,
        updated_at=now,
    )
    try:
        existing = store.claim(sub, fresh)
    except Conflict:
        return base | {"result": "SKIPPED", "next": "DONE", "why": "changed", "sends": 0}
    item = existing or fresh
    if item.status not in OPEN_CHARGE:
        return base | {"result": "SKIPPED", "next": "DONE", "why": "settled", "sends": 0}
    if item.status is ChargeStatus.PENDING and existing and now - item.updated_at < IN_FLIGHT:
        # Another run claimed it moments ago and may be waiting for KCP right now: let it
        # finish. A claim left behind by a crash is resent by a later run (days_back).
        return base | {"result": "SKIPPED", "next": "DONE", "why": "in flight", "sends": 0}
    base |= {"period": item.period, "order_id": item.order_id}
    batch_key = deps.vault.open(shop_id, subscription_id, sub.batch_key_ref)
    order = ChargeOrder(
        batch_key=batch_key,
        order_id=item.order_id,
        amount=item.amount,
        product_name=sub.product_name,
        buyer_name=sub.customer_name,
        buyer_email=sub.customer_email,
    )
    sends = 0
    first_send.append(time.monotonic())
    for _ in range(NOT_SENT_TRIES):
        answer = _send(deps.gateway, order)
        sends += 1
        item = replace(item, sends=item.sends + 1, updated_at=clock.now())
        if answer.outcome is not Outcome.NOT_SENT:
            break
    base["sends"] = sends
    if answer.outcome is Outcome.SUCCEEDED or (
        answer.outcome is Outcome.DECLINED and answer.res_cd in DUPLICATE_ORDER_CODES
    ):
        return base | _charged(deps, sub, item, answer)
    if answer.outcome is Outcome.DECLINED:
        retry_days = tuple(int(d) for d in config["retry_days"])
        return base | _declined(deps, sub, item, answer, retry_days)
    # UNKNOWN (or never sent): the same ordr_idxx is resent later, never a new one.
    status = ChargeStatus.NOT_SENT if answer.outcome is Outcome.NOT_SENT else ChargeStatus.UNKNOWN
    if item.status is ChargeStatus.UNKNOWN:
        status = ChargeStatus.UNKNOWN  # once it may have reached KCP, it stays "may have"
    item = replace(item, status=status, detail=answer.detail, res_cd=answer.res_cd)
    store.journal(item)
    if tries + 1 < int(config["reconcile_max_tries"]):
        return base | {"result": "UNKNOWN", "next": "RECONCILE", "tries": tries + 1}
    # Still unknown: look again in tomorrow's run (the same ordr_idxx; safe to resend).
    _settle(deps, sub, item, lambda s: replace(s, due_on=billing_date + timedelta(days=1)))
    logger.warning("charge still unknown", extra={"subscription_id": subscription_id})
    return base | {"result": "UNKNOWN", "next": "DONE"}


def _send(gateway: Gateway, order: ChargeOrder) -> ChargeAnswer:
    try:
        return gateway.charge(order)
    except ValueError as invalid:  # refused by the client's own checks: nothing left
        return ChargeAnswer(Outcome.NOT_SENT, detail=f"invalid: {invalid}")
    except Exception as error:  # after the claim, anything unexpected may have reached KCP
        return ChargeAnswer(Outcome.UNKNOWN, detail=type(error).__name__)


def _settle(
    deps: ChargeDeps,
    sub: Subscription,
    charge_after: Charge,
    change: Callable[[Subscription], Subscription],
    payment: Payment | None = None,
) -> bool:
    """Record a charge outcome with its effect on the subscription. A money record is never
    dropped: a subscription changed meanwhile (paused, say) is re-read and changed again."""
    for _ in range(5):
        after = change(sub)
        if after.status is not Status.ACTIVE:
            after = replace(after, due_on=None)
        try:
            return deps.store.record(
                replace(after, updated_at=deps.clock.now()), charge_after, payment
            )
        except Conflict:
            fresh = deps.store.get(sub.shop_id, sub.subscription_id)
            if fresh is None:
                raise
            sub = fresh
    raise RuntimeError("could not record the charge outcome")  # the step is retried


def _charged(
    deps: ChargeDeps, sub: Subscription, item: Charge, answer: ChargeAnswer
) -> dict[str, Any]:
    now = deps.clock.now()
    duplicate = answer.outcome is Outcome.DECLINED
    done = replace(
        item,
        status=ChargeStatus.SUCCEEDED,
        tno=answer.tno,
        approved_at=answer.approved_at or now,
        res_cd=answer.res_cd,
        res_msg=answer.res_msg,
        detail=answer.detail,
        confirmed_by="DUPLICATE_ORDER" if duplicate else "KCP_ANSWER",
        updated_at=now,
    )
    start, end = sub.period_date, sub.next_period_date
    paid = PaidPeriod(done.period, done.tno, done.amount, start, end, now)

    def advance(s: Subscription) -> Subscription:
        if s.period != done.period:
            return s  # already advanced
        return replace(s, period_date=end, attempt=1, due_on=end, last_paid=paid)

    payment = None
    if done.tno:  # the ledger's Payment, so the cancel workflow can refund it
        payment = Payment(
            shop_id=sub.shop_id,
            tno=done.tno,
            order_id=done.order_id,
            amount=done.amount,
            method=PayMethod.CARD,
            product_name=sub.product_name,
            buyer_email=sub.customer_email,
            buyer_name=sub.customer_name,
            approved_at=(done.approved_at or now).replace(microsecond=0),
            registered_at=now,
        )
    if _settle(deps, sub, done, advance, payment):
        _mail(deps, sub, done, None)
    return {"result": "CHARGED", "next": "DONE", "tno": done.tno, "by": done.confirmed_by}


def _declined(
    deps: ChargeDeps,
    sub: Subscription,
    item: Charge,
    answer: ChargeAnswer,
    retry_days: tuple[int, ...],
) -> dict[str, Any]:
    now = deps.clock.now()
    done = replace(
        item,
        status=ChargeStatus.DECLINED,
        res_cd=answer.res_cd,
        res_msg=answer.res_msg,
        detail=answer.detail,
        updated_at=now,
    )
    retry_on = schedule.dunning_date(
        sub.period_date, item.attempt, retry_days, sub.next_period_date
    )

    def dun(s: Subscription) -> Subscription:
        if s.period != done.period or s.attempt != done.attempt:
            return s
        if retry_on is None:
            return replace(s, status=Status.SUSPENDED, attempt=s.attempt + 1, suspended_at=now)
        return replace(s, attempt=s.attempt + 1, due_on=retry_on)

    if _settle(deps, sub, done, dun):
        _mail(deps, sub, done, retry_on)
    result = "SUSPENDED" if retry_on is None else "DECLINED"
    return {"result": result, "next": "DONE", "res_cd": done.res_cd}


def _mail(deps: ChargeDeps, sub: Subscription, item: Charge, retry_on: date | None) -> None:
    """Receipts and dunning mail never change the money outcome: a failure is logged."""
    try:
        for email in emails.for_charge(deps.shop, deps.language, sub, item, retry_on):
            deps.mailer.send(email)
    except Exception:
        logger.exception("billing email failed", extra={"subscription_id": sub.subscription_id})


def hold_slot(sent_at: float, sends: int, pace_seconds: float) -> None:
    """Keep this Map slot busy until pace_seconds per KCP call have passed since the first call:
    with MaxConcurrency slots, KCP never sees more than MaxConcurrency / pace calls a second."""
    remaining = sent_at + pace_seconds * sends - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def refund_through_cancel_workflow(store: Any, starter: Any, clock: Clock) -> Refund:
    """Refunds go through the cancel workflow (eligibility, over-refund guard, KCP, emails)."""
    from cancelflow import cancellations

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
