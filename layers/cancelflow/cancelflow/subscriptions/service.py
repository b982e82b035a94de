"""What the shop's API does with subscriptions (정기결제); the billing run is in billing.py,
every status change in model.py."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from cancelflow.kcp.port import Gateway, Outcome, PayMethod
from cancelflow.kernel.clock import Clock
from cancelflow.kernel.errors import Conflict, Problem
from cancelflow.payments.model import Payment
from cancelflow.subscriptions import schedule
from cancelflow.subscriptions.model import (
    OPEN_CHARGE,
    CancelWhen,
    Charge,
    ChargeStatus,
    Status,
    Subscription,
    events_of,
    new_subscription_id,
)
from cancelflow.subscriptions.schedule import Cycle

if TYPE_CHECKING:  # the stores are named in annotations only
    from cancelflow.subscriptions.ports import BatchKeyVault, BillingStore

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
    from cancelflow.kernel import cursor as cursor_codec  # only the API lists: not the billing run

    scope = _list_scope(shop_id, status, date_from, date_to)
    return cursor_codec.page_through(
        cursor, scope, key, lambda at: store.page(shop_id, status, date_from, date_to, limit, at)
    )


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


def replace_card(
    store: BillingStore,
    vault: BatchKeyVault,
    clock: Clock,
    shop_id: str,
    subscription_id: str,
    batch_key: str,
) -> Subscription:
    """Replace the customer's card (KCP batch key), sealed like the first; never shown or logged.

    Refused while a charge is in flight: its fate is settled by resending its order id, and that
    resend must go to the card it was first sent with."""
    current = get(store, shop_id, subscription_id)
    if current.status is not Status.CANCELLED and any(
        c.status in OPEN_CHARGE for c in store.charges(shop_id, subscription_id)
    ):
        raise Problem(
            "SUBSCRIPTION_STATE_CONFLICT",
            "A charge of this subscription is in flight; replace the card once it is settled.",
        )
    sealed = vault.seal(shop_id, subscription_id, batch_key)
    now = clock.now()
    return _change(
        store, shop_id, subscription_id, lambda sub: sub.with_card(sealed, batch_key[-4:], now)
    )


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

    return _change(store, shop_id, subscription_id, lambda sub: sub.paused(clock.now()))


def resume(store: BillingStore, clock: Clock, shop_id: str, subscription_id: str) -> Subscription:
    """PAUSED or SUSPENDED -> ACTIVE. Periods missed meanwhile are not charged afterwards."""

    return _change(store, shop_id, subscription_id, lambda sub: sub.resumed(clock.now()))


# refund(shop_id, tno, amount, idempotency_key) -> cancellation id (the cancel workflow)
Refund = Callable[[str, str, int, str], str]


def cancel(
    store: BillingStore,
    refund: Refund,
    clock: Clock,
    shop_id: str,
    subscription_id: str,
    when: CancelWhen,
    notify: Callable[[Subscription], None] | None = None,
) -> Subscription:
    """Stop charging. PERIOD_END: the paid period runs out. IMMEDIATELY: the unused days of the
    current paid period are refunded pro rata through the cancel workflow.

    `notify` (the cancellation emails) is called once, by the request that cancelled it, with
    the refund's cancellation id once started; a refund the cancel workflow refuses still gets
    the notice, and a retried request (already cancelled) sends nothing again."""
    now = clock.now()
    made: list[Subscription] = []

    def change(sub: Subscription) -> Subscription | None:
        after = sub.cancelled(when, now)
        made[:] = [after] if after is not None else []
        return after

    told = cancelled = _change(store, shop_id, subscription_id, change)
    if not made or notify is None:
        return _start_refund(store, refund, clock, cancelled)
    try:
        told = _start_refund(store, refund, clock, cancelled)
        return told
    finally:
        notify(told)


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
