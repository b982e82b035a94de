"""Payment use cases: register an approved KCP payment, read it."""

from __future__ import annotations

from cancelflow.clock import Clock
from cancelflow.errors import Problem
from cancelflow.models import Payment
from cancelflow.store.port import Store


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
