"""Payment use cases: register an approved KCP payment, read it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from cancelflow.clock import Clock
from cancelflow.errors import Problem
from cancelflow.models import Fulfillment, Payment
from cancelflow.store.port import Conflict, Store


def register(store: Store, clock: Clock, payment: Payment) -> tuple[Payment, bool]:
    """Idempotent on tno: the same facts again return the stored payment; other facts, 409."""
    if store.put_payment(payment):
        return payment, True
    existing = store.get_payment(payment.shop_id, payment.tno)
    if existing is None:  # lost a race with a delete that cannot happen: surface it
        raise Problem("SERVICE_UNAVAILABLE")
    if not existing.same_registration(payment):
        raise Problem("PAYMENT_CONFLICT", f"tno {payment.tno} is registered with other details.")
    return existing, False


def get(store: Store, shop_id: str, tno: str) -> Payment:
    payment = store.get_payment(shop_id, tno)
    if payment is None:
        raise Problem("PAYMENT_NOT_FOUND", f"No payment {tno} for this shop.")
    return payment


# Where a payment's goods can go next. A return can be withdrawn (back to DELIVERED), and a
# customer may refuse a parcel at the door (SHIPPED -> RETURN_REQUESTED).
NEXT_FULFILLMENT: dict[Fulfillment, frozenset[Fulfillment]] = {
    Fulfillment.PROCESSING: frozenset({Fulfillment.SHIPPED}),
    Fulfillment.SHIPPED: frozenset({Fulfillment.DELIVERED, Fulfillment.RETURN_REQUESTED}),
    Fulfillment.DELIVERED: frozenset({Fulfillment.RETURN_REQUESTED}),
    Fulfillment.RETURN_REQUESTED: frozenset({Fulfillment.RETURNED, Fulfillment.DELIVERED}),
    Fulfillment.RETURNED: frozenset(),
}
CLOCK_SKEW = timedelta(minutes=5)  # a shop's clock may run a little ahead of ours


def update_fulfillment(
    store: Store, clock: Clock, shop_id: str, tno: str, status: Fulfillment, at: datetime | None
) -> Payment:
    """Move the goods to `status` at `at` (default now); the current status again is a no-op."""
    now = clock.now()
    at = at or now
    payment = get(store, shop_id, tno)
    if at > now + CLOCK_SKEW or at < payment.approved_at:
        raise Problem("VALIDATION_FAILED", "at must lie between the approval and now.")
    if status is payment.fulfillment:
        return payment
    if status not in NEXT_FULFILLMENT[payment.fulfillment]:
        raise Problem(
            "FULFILLMENT_TRANSITION_INVALID",
            f"{payment.fulfillment.value} cannot become {status.value}.",
            allowed=sorted(s.value for s in NEXT_FULFILLMENT[payment.fulfillment]),
        )
    delivered_at = at if status is Fulfillment.DELIVERED else payment.delivered_at
    changed = replace(payment, fulfillment=status, fulfillment_at=at, delivered_at=delivered_at)
    try:
        store.set_fulfillment(payment, changed)
    except Conflict as error:
        raise Problem("SERVICE_UNAVAILABLE", "The fulfillment changed meanwhile; retry.") from error
    return changed
