"""Payment use cases: register an approved KCP payment, read it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cancelflow import cursor as cursor_codec
from cancelflow.clock import Clock
from cancelflow.errors import Problem
from cancelflow.gateway.port import Gateway, Outcome
from cancelflow.models import Fulfillment, Payment, PaymentStatus, PayMethod
from cancelflow.store.port import Conflict, Store

EARLIEST_APPROVAL = datetime(2000, 1, 1, tzinfo=UTC)  # before KCP's REST API existed


def register(
    store: Store, gateway: Gateway, clock: Clock, payment: Payment
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
        verify_at_kcp(gateway, payment)
        if store.put_payment(payment):
            return payment, True
        existing = store.get_payment(payment.shop_id, payment.tno)
        if existing is None:  # lost a race with a delete that cannot happen: surface it
            raise Problem("SERVICE_UNAVAILABLE")
    if not existing.same_registration(payment):
        raise Problem("PAYMENT_CONFLICT", f"tno {payment.tno} is registered with other details.")
    return existing, False


def verify_at_kcp(gateway: Gateway, payment: Payment) -> None:
    """KCP's word before ours: the tno is this merchant's, for this amount and method, with
    nothing cancelled yet (a cancel made before registering would make our balance wrong)."""
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
        if kcp != ours
    ]
    if differences:
        listed = ", ".join(f"{d['field']} {d['kcp']} at KCP" for d in differences)
        raise Problem(
            "PAYMENT_MISMATCH",
            f"KCP holds tno {payment.tno} otherwise: {listed}.",
            differences=differences,
        )


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


# --- history -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryQuery:
    """Filters of the payment history. The approval-time range is keyed; the rest filter."""

    since: datetime | None = None
    until: datetime | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    product: str = ""  # case-insensitive substring of the product name
    status: PaymentStatus | None = None
    method: PayMethod | None = None
    limit: int = 20

    def scope(self, shop_id: str) -> str:
        """What a cursor is bound to: the shop and every filter (not the page size)."""
        doc = {
            "shop": shop_id,
            "since": _text(self.since),
            "until": _text(self.until),
            "min": self.min_amount,
            "max": self.max_amount,
            "product": self.product.casefold(),
            "status": self.status.value if self.status else None,
            "method": self.method.value if self.method else None,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class HistoryPage:
    payments: tuple[Payment, ...]
    next_position: dict[str, Any] | None  # where the next page starts; None at the end
    requests: int = 0  # DynamoDB requests this page cost
    read_units: float = 0.0  # and the read capacity they consumed
    items_read: int = 0  # items DynamoDB read (before filters): what read units pay for
    unreadable: int = 0  # stored records that could not be shown (logged, left out)


def _text(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def history(
    store: Store, shop_id: str, query: HistoryQuery, cursor: str | None, key: bytes
) -> tuple[HistoryPage, str | None]:
    """One page of the shop's payments, newest first, and the cursor to the next page."""
    scope = query.scope(shop_id)
    try:
        position = cursor_codec.decode(cursor, scope, key) if cursor else None
    except cursor_codec.BadCursor as error:
        raise Problem("INVALID_CURSOR", str(error)) from error
    try:
        page = store.history_page(shop_id, query, position)
    except Conflict as error:
        raise Problem("INVALID_CURSOR") from error
    following = page.next_position
    return page, cursor_codec.encode(following, scope, key) if following else None


def export(store: Store, shop_id: str, query: HistoryQuery) -> Iterator[Payment]:
    """Every payment the filters match, newest first, read page by page (constant memory)."""
    position: dict[str, Any] | None = None
    while True:
        page = store.history_page(shop_id, replace(query, limit=EXPORT_PAGE), position)
        yield from page.payments
        if page.next_position is None:
            return
        position = page.next_position


EXPORT_PAGE = 500
