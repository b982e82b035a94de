"""Payment use cases: register an approved KCP payment, read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cancelflow.kcp.port import Gateway, InquiryAnswer, Outcome
from cancelflow.kernel import cursor as cursor_codec
from cancelflow.kernel.clock import Clock
from cancelflow.kernel.errors import Conflict, Problem
from cancelflow.payments.model import Fulfillment, Payment, PaymentStatus
from cancelflow.payments.ports import HistoryPage, HistoryQuery, PaymentStore

EARLIEST_APPROVAL = datetime(2000, 1, 1, tzinfo=UTC)  # before KCP's REST API existed


def register(
    store: PaymentStore, gateway: Gateway, clock: Clock, payment: Payment
) -> tuple[Payment, bool]:
    """Record a payment KCP confirms. Idempotent on tno: the same facts again return the stored
    payment; other facts, 409. A payment KCP does not hold as described is 422, not recorded."""
    if not EARLIEST_APPROVAL <= payment.approved_at <= clock.now() + CLOCK_SKEW:
        raise Problem(
            "VALIDATION_FAILED",
            "approved_at: must lie between 2000-01-01 and now.",
            errors=[{"field": "approved_at", "message": "not a plausible approval time"}],
        )
    existing = store.get_payment(payment.shop_id, payment.tno)
    if existing is None:
        if verify_at_kcp(gateway, payment).awaiting_deposit:
            # Nothing paid yet: nothing to refund until KCP's deposit notification (TX00).
            payment = replace(
                payment, status=PaymentStatus.AWAITING_DEPOSIT, balance=0, available=0
            )
        if store.put_payment(payment):
            return payment, True
        existing = store.get_payment(payment.shop_id, payment.tno)
        if existing is None:  # lost a race with a delete that cannot happen: surface it
            raise Problem("SERVICE_UNAVAILABLE")
    if not existing.same_registration(payment):
        raise Problem("PAYMENT_CONFLICT", f"tno {payment.tno} is registered with other details.")
    return existing, False


def verify_at_kcp(gateway: Gateway, payment: Payment) -> InquiryAnswer:
    """KCP's word before ours: the tno is this merchant's, for this amount and method, with
    nothing cancelled yet (a cancel made before registering would make our balance wrong).
    A virtual account not paid into yet has no balance to compare."""
    answer = gateway.inquire(payment.tno, payment.method)
    if answer.outcome is Outcome.DECLINED:  # unknown to this merchant, or not paid this way
        raise Problem(
            "PAYMENT_MISMATCH",
            f"KCP does not hold tno {payment.tno} paid by {payment.method.value} for your "
            f"merchant: {answer.res_cd} {answer.res_msg}".strip(),
            differences=[{"field": "tno/method", "kcp": answer.res_cd, "registered": payment.tno}],
        )
    if answer.outcome is not Outcome.SUCCEEDED:
        raise Problem("SERVICE_UNAVAILABLE", "KCP could not confirm the payment; retry.")
    differences = [
        {"field": name, "kcp": kcp, "registered": ours}
        for name, kcp, ours in (
            ("amount", answer.amount, payment.amount),
            ("balance", answer.remaining_balance, payment.amount),
        )
        if kcp != ours and not (name == "balance" and answer.awaiting_deposit)
    ]
    if differences:
        listed = ", ".join(f"{d['field']} {d['kcp']} at KCP" for d in differences)
        raise Problem(
            "PAYMENT_MISMATCH",
            f"KCP holds tno {payment.tno} otherwise: {listed}.",
            differences=differences,
        )
    return answer


def get(store: PaymentStore, shop_id: str, tno: str) -> Payment:
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
    store: PaymentStore,
    clock: Clock,
    shop_id: str,
    tno: str,
    status: Fulfillment,
    at: datetime | None,
) -> Payment:
    """Move the goods to `status` at `at` (default now); the current status again is a no-op."""
    now = clock.now()
    at = at or now
    payment = get(store, shop_id, tno)
    if at > now + CLOCK_SKEW or at < payment.approved_at:
        raise Problem("VALIDATION_FAILED", "at must lie between the approval and now.")
    if status is payment.fulfillment:
        return payment
    if payment.status is PaymentStatus.CANCELLED:
        raise Problem("FULFILLMENT_TRANSITION_INVALID", "The payment is fully cancelled.")
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


def history(
    store: PaymentStore, shop_id: str, query: HistoryQuery, cursor: str | None, key: bytes
) -> tuple[HistoryPage, str | None]:
    """One page of the shop's payments, newest first, and the cursor to the next page."""

    def read(position: dict[str, Any] | None) -> tuple[HistoryPage, dict[str, Any] | None]:
        page = store.history_page(shop_id, query, position)
        return page, page.next_position

    return cursor_codec.page_through(cursor, query.scope(shop_id), key, read)


def export(store: PaymentStore, shop_id: str, query: HistoryQuery) -> Iterator[Payment]:
    """Every payment the filters match, newest first, read page by page (constant memory)."""
    position: dict[str, Any] | None = None
    while True:
        page = store.history_page(shop_id, replace(query, limit=EXPORT_PAGE), position)
        yield from page.payments
        if page.next_position is None:
            return
        position = page.next_position


EXPORT_PAGE = 500
