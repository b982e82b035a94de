"""The Store port in memory, with DynamoStore's conditional writes and errors.

What DynamoStore stores is what this returns: times at the precision the table keeps them
(seconds, microseconds where an order within a second matters), the send lock not written by
put_payment, a settled outcome replacing the whole record while the journal stays. Every
conditional write checks all of its conditions before it writes anything (a transaction), and
reports the same exception DynamoStore derives from the first failing item.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cancelflow.cancellations.model import (
    OPEN,
    TERMINAL,
    Attempt,
    BreakdownLine,
    Cancellation,
    CancellationStatus,
    PaymentEffect,
    Review,
)
from cancelflow.cancellations.ports import (
    CancellationPage,
    CancellationQuery,
    IdempotencyRecord,
    InsufficientBalance,
    PaymentBusy,
    ReviewQuery,
)
from cancelflow.kernel.clock import from_utc_text, to_utc_text
from cancelflow.kernel.errors import Conflict
from cancelflow.kernel.events import Event
from cancelflow.payments.model import Payment
from cancelflow.payments.ports import HistoryPage, HistoryQuery
from cancelflow.shops.model import Shop
from cancelflow.shops.policy import ShopPolicy, default_policy

Key = tuple[str, str]  # (shop_id, tno) or (shop_id, cancellation_id)


def _seconds(moment: datetime | None) -> datetime | None:
    return from_utc_text(to_utc_text(moment)) if moment else None


def _micros(moment: datetime) -> datetime:
    return from_utc_text(to_utc_text(moment, precise=True))


def _stored_payment(p: Payment) -> Payment:
    return replace(
        p,
        approved_at=_seconds(p.approved_at),
        registered_at=_seconds(p.registered_at),
        fulfillment_at=_seconds(p.fulfillment_at),
        delivered_at=_seconds(p.delivered_at),
        items=tuple(dict(i) for i in p.items),
        in_flight="",  # the lock is only ever taken by begin_send
    )


def _stored_cancellation(c: Cancellation) -> Cancellation:
    return replace(
        c,
        created_at=_micros(c.created_at),
        updated_at=_seconds(c.updated_at),
        cancelled_at=_seconds(c.cancelled_at),
        attempts=(),  # the journal is kept apart, as the table keeps it in its own items
    )


def _stored_attempt(a: Attempt) -> Attempt:
    return replace(a, sent_at=_micros(a.sent_at), completed_at=_seconds(a.completed_at))


def _key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class MemoryStore:
    """Implements cancellations.ports.CancellationStore; state is public so tests can look in."""

    shops: dict[str, Shop] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)  # sha256 of key -> shop id
    payments: dict[Key, Payment] = field(default_factory=dict)
    cancellations: dict[Key, Cancellation] = field(default_factory=dict)
    attempts: dict[Key, dict[int, Attempt]] = field(default_factory=dict)
    idempotency: dict[Key, IdempotencyRecord] = field(default_factory=dict)  # (shop, key hash)
    policies: dict[str, ShopPolicy] = field(default_factory=dict)
    policy_history: dict[tuple[str, int], ShopPolicy] = field(default_factory=dict)
    events: dict[Key, Event] = field(default_factory=dict)  # (shop, event id): recorded events

    # --- reading -------------------------------------------------------------------------

    def shop_for_key(self, key_hash: str) -> str | None:
        return self.api_keys.get(key_hash)

    def get_shop(self, shop_id: str) -> Shop | None:
        return self.shops.get(shop_id)

    def get_payment(self, shop_id: str, tno: str) -> Payment | None:
        stored = self.payments.get((shop_id, tno))
        # DynamoStore builds a Payment from the item, so its __post_init__ runs on every read
        # (a negative balance or available reads as "untouched"): do the same.
        return replace(stored) if stored else None

    def get_idempotency(self, shop_id: str, key: str) -> IdempotencyRecord | None:
        record = self.idempotency.get((shop_id, _key_hash(key)))
        return IdempotencyRecord(record.body_hash, record.cancellation_id) if record else None

    def get_cancellation(self, shop_id: str, cancellation_id: str) -> Cancellation | None:
        stored = self.cancellations.get((shop_id, cancellation_id))
        if stored is None:
            return None
        journal = self.attempts.get((shop_id, cancellation_id), {})
        return replace(stored, attempts=tuple(journal[seq] for seq in sorted(journal)))

    def to_sweep(self, failed_since: datetime) -> list[tuple[str, str]]:
        found: dict[tuple[str, str], None] = {}
        for (shop, _), c in sorted(self.cancellations.items(), key=lambda kv: kv[1].created_at):
            failed = c.status is CancellationStatus.FAILED and c.updated_at >= failed_since
            if c.status in OPEN or failed:
                found[(shop, c.tno)] = None
        return list(found)

    def payment_cancellations(self, shop_id: str, tno: str) -> list[Cancellation]:
        """Oldest first (the index orders by creation time, to the microsecond, then id)."""
        mine = [
            c for (shop, _), c in self.cancellations.items() if shop == shop_id and c.tno == tno
        ]
        mine.sort(key=lambda c: (to_utc_text(c.created_at, precise=True), c.cancellation_id))
        found = [self.get_cancellation(shop_id, c.cancellation_id) for c in mine]
        return [c for c in found if c is not None]

    def cancellation_page(
        self, shop_id: str, query: CancellationQuery, position: dict[str, Any] | None
    ) -> CancellationPage:
        """Newest first by (creation time to the microsecond, id); a position is the last row's."""
        if position and position.get("shop_id") != shop_id:
            raise Conflict("position outside this shop's list")
        rows = sorted(
            (
                c
                for (shop, _), c in self.cancellations.items()
                if shop == shop_id
                and (query.since is None or c.created_at >= query.since)
                and (query.until is None or c.created_at < query.until + timedelta(seconds=1))
                and (query.status is None or c.status is query.status)
                and (not query.tno or c.tno == query.tno)
            ),
            key=lambda c: (to_utc_text(c.created_at, precise=True), c.cancellation_id),
            reverse=True,
        )
        if position:
            after = (position["created"], position["id"])
            rows = [
                c
                for c in rows
                if (to_utc_text(c.created_at, precise=True), c.cancellation_id) < after
            ]
        page = tuple(rows[: query.limit])
        following = None
        if len(rows) > query.limit:
            last = page[-1]
            following = {
                "shop_id": shop_id,
                "created": to_utc_text(last.created_at, precise=True),
                "id": last.cancellation_id,
            }
        return CancellationPage(page, following)

    def review_page(self, query: ReviewQuery, position: dict[str, Any] | None) -> CancellationPage:
        """Oldest first by (review opened, id), across shops; a position is the last row's."""

        def order(c: Cancellation) -> tuple[str, str]:
            assert c.review is not None
            return (to_utc_text(c.review.opened_at, precise=True), c.cancellation_id)

        rows = sorted(
            (
                c
                for c in self.cancellations.values()
                if c.status is CancellationStatus.NEEDS_REVIEW
                and c.review is not None
                and (not query.shop_id or c.shop_id == query.shop_id)
                and (query.min_amount is None or (c.amount or 0) >= query.min_amount)
                and (query.opened_before is None or c.review.opened_at <= query.opened_before)
            ),
            key=order,
        )
        if position:
            rows = [c for c in rows if order(c) > (position["opened"], position["id"])]
        page = tuple(rows[: query.limit])
        following = None
        if len(rows) > query.limit:
            last = order(page[-1])
            following = {"opened": last[0], "id": last[1]}
        return CancellationPage(page, following)

    def find_cancellation(self, cancellation_id: str) -> Cancellation | None:
        shop = next((s for (s, cid) in self.cancellations if cid == cancellation_id), None)
        return self.get_cancellation(shop, cancellation_id) if shop else None

    def update_review(self, cancellation: Cancellation, review: Review) -> None:
        key = (cancellation.shop_id, cancellation.cancellation_id)
        stored = self.cancellations.get(key)
        before = cancellation.review
        if (
            stored is None
            or stored.status is not CancellationStatus.NEEDS_REVIEW
            or (stored.review is None) != (before is None)
            or (stored.review and before and stored.review.version != before.version)
        ):
            raise Conflict("the review changed meanwhile")
        self.cancellations[key] = replace(stored, review=review)

    def history_page(
        self, shop_id: str, query: HistoryQuery, position: dict[str, Any] | None
    ) -> HistoryPage:
        """Newest first by (approval time, tno); a position is the last row's sort key."""
        if position and position.get("shop_id") != shop_id:
            raise Conflict("position outside this shop's history")
        rows = sorted(
            (p for (shop, _), p in self.payments.items() if shop == shop_id and _matches(p, query)),
            key=lambda p: (to_utc_text(p.approved_at), p.tno),
            reverse=True,
        )
        if position:
            after = (position["approved_at"], position["tno"])
            rows = [p for p in rows if (to_utc_text(p.approved_at), p.tno) < after]
        page = tuple(rows[: query.limit])
        following = None
        if len(rows) > query.limit:
            last = page[-1]
            following = {
                "shop_id": shop_id,
                "approved_at": to_utc_text(last.approved_at),
                "tno": last.tno,
            }
        return HistoryPage(page, following, requests=1)

    def get_policy(self, shop_id: str) -> ShopPolicy:
        return self.policies.get(shop_id) or default_policy()

    # --- setup ---------------------------------------------------------------------------

    def put_shop(self, shop: Shop, api_keys: list[str]) -> None:
        self.shops[shop.shop_id] = shop
        for secret in api_keys:
            self.api_keys[_key_hash(secret)] = shop.shop_id

    # --- writing -------------------------------------------------------------------------

    def put_payment(self, payment: Payment) -> bool:
        key = (payment.shop_id, payment.tno)
        if key in self.payments:
            return False
        self.payments[key] = _stored_payment(payment)
        return True

    def set_fulfillment(self, payment: Payment, changed: Payment) -> None:
        key = (payment.shop_id, payment.tno)
        stored = self.payments.get(key)
        if stored is None or stored.fulfillment is not payment.fulfillment:
            raise Conflict("fulfillment changed meanwhile")
        self.payments[key] = _with(
            stored,
            fulfillment=changed.fulfillment,
            fulfillment_at=_seconds(changed.fulfillment_at),
            delivered_at=_seconds(changed.delivered_at),
        )

    def put_policy(self, shop_id: str, policy: ShopPolicy, replaces: int, at: datetime) -> None:
        current = self.policies.get(shop_id)
        if current is not None and current.version != replaces:
            raise Conflict("the policy changed meanwhile")
        if (shop_id, policy.version) in self.policy_history:
            raise Conflict("the policy changed meanwhile")
        self.policies[shop_id] = policy
        self.policy_history[(shop_id, policy.version)] = policy

    def create_cancellation(
        self, cancellation: Cancellation, key: str, body_hash: str, expires_at: datetime
    ) -> None:
        shop = cancellation.shop_id
        idem = (shop, _key_hash(key))
        if idem in self.idempotency or (shop, cancellation.cancellation_id) in self.cancellations:
            raise Conflict("idempotency key already used")
        self.idempotency[idem] = IdempotencyRecord(body_hash, cancellation.cancellation_id)
        self.cancellations[(shop, cancellation.cancellation_id)] = _stored_cancellation(
            cancellation
        )

    def reserve(self, cancellation: Cancellation, amount: int, seen: Payment | None = None) -> None:
        if cancellation.policy_version is None:  # DynamoStore's update would be invalid
            raise ValueError("a reserve records the policy version its decision used")
        key = (cancellation.shop_id, cancellation.cancellation_id)
        stored = self.cancellations.get(key)
        payment = self.payments.get((cancellation.shop_id, cancellation.tno))
        # DynamoStore reads the cancellation's reason first: Conflict wins over the balance.
        if stored is None or stored.status is not CancellationStatus.REQUESTED:
            raise Conflict("cancellation is not REQUESTED")
        if payment is None or payment.available < amount:
            raise InsufficientBalance()
        if not payment.removed_items.isdisjoint(cancellation.removed_items):
            raise InsufficientBalance()  # an item is held or removed by another cancel
        if seen is not None and seen.mixed_tax:
            moved = (payment.balance, payment.available, payment.tax_free_held) != (
                seen.balance,
                seen.available,
                seen.tax_free_held,
            )
            if moved:
                raise InsufficientBalance()  # as DynamoStore: decided from another state
        self.cancellations[key] = replace(
            stored,
            status=CancellationStatus.RESERVED,
            amount=amount,
            updated_at=_seconds(cancellation.updated_at),
            breakdown=tuple(BreakdownLine(*line) for line in cancellation.breakdown),
            policy_version=cancellation.policy_version,
            tax_free_amount=cancellation.tax_free_amount,
        )
        removed = payment.removed_items | set(cancellation.removed_items)
        self._put_payment(
            _with(
                payment,
                available=payment.available - amount,
                removed_items=removed,
                tax_free_held=payment.tax_free_held + cancellation.tax_free_amount,
            )
        )

    def begin_send(self, cancellation: Cancellation, attempt: Attempt) -> int:
        shop, cid = cancellation.shop_id, cancellation.cancellation_id
        payment = self.payments.get((shop, cancellation.tno))
        if payment is None:
            raise Conflict("payment vanished")
        stored = self.cancellations.get((shop, cid))
        journal = self.attempts.get((shop, cid), {})
        if (
            stored is None
            or stored.status is not CancellationStatus.RESERVED
            or attempt.seq in journal
        ):
            raise Conflict("cancellation is not RESERVED: it was sent before")
        if payment.in_flight:
            raise PaymentBusy()
        balance = payment.balance
        self.cancellations[(shop, cid)] = replace(
            stored,
            status=CancellationStatus.SENDING,
            balance_before=balance,
            updated_at=_seconds(attempt.sent_at),
        )
        self._put_payment(_with(payment, in_flight=cid))
        self.journal(cancellation, attempt)
        return balance

    def journal(self, cancellation: Cancellation, attempt: Attempt) -> None:
        key = (cancellation.shop_id, cancellation.cancellation_id)
        self.attempts.setdefault(key, {})[attempt.seq] = _stored_attempt(attempt)

    def dispatch(self, cancellation: Cancellation, attempt: Attempt, claim: str) -> bool:
        journal = self.attempts.get((cancellation.shop_id, cancellation.cancellation_id), {})
        stored = journal.get(attempt.seq)
        if stored is None or stored.dispatched != "PENDING":
            return False
        journal[attempt.seq] = replace(stored, dispatched=claim)
        return True

    def mark(self, cancellation: Cancellation, status: CancellationStatus) -> None:
        key = (cancellation.shop_id, cancellation.cancellation_id)
        stored = self.cancellations.get(key)
        if stored is None:  # what the port means (DynamoStore checks attribute_exists)
            raise Conflict("no such cancellation")
        if stored.status in TERMINAL:
            raise Conflict("cancellation is already terminal")
        self.cancellations[key] = replace(
            stored, status=status, updated_at=_seconds(cancellation.updated_at)
        )

    def settle(
        self,
        cancellation: Cancellation,
        outcome: Cancellation,
        effect: PaymentEffect,
        events: tuple[Event, ...] = (),
    ) -> None:
        shop, cid = cancellation.shop_id, cancellation.cancellation_id
        stored = self.cancellations.get((shop, cid))
        if stored is None or stored.status is not cancellation.status:
            raise Conflict("cancellation or payment changed meanwhile")
        if any((e.shop_id, e.event_id) in self.events for e in events):
            raise Conflict("this change's event is already recorded")
        touches_payment = bool(
            effect.balance
            or effect.available
            or effect.status is not None
            or effect.release_lock
            or effect.add_items
            or effect.release_items
            or effect.tax_free_cancelled
            or effect.tax_free_held
        )
        payment = self.payments.get((shop, cancellation.tno))
        if touches_payment:
            if payment is None:
                raise Conflict("cancellation or payment changed meanwhile")
            if effect.expect_balance is not None and payment.balance != effect.expect_balance:
                raise Conflict("cancellation or payment changed meanwhile")
            if effect.release_lock and payment.in_flight != cid:
                raise Conflict("cancellation or payment changed meanwhile")
            if effect.idle and payment.in_flight:
                raise Conflict("cancellation or payment changed meanwhile")
        self.cancellations[(shop, cid)] = _stored_cancellation(outcome)
        self.events |= {(e.shop_id, e.event_id): e for e in events}
        if touches_payment and payment is not None:
            self._put_payment(
                _with(
                    payment,
                    balance=payment.balance + effect.balance,
                    available=payment.available + effect.available,
                    status=effect.status or payment.status,
                    in_flight="" if effect.release_lock else payment.in_flight,
                    removed_items=(payment.removed_items | set(effect.add_items))
                    - set(effect.release_items),
                    tax_free_cancelled=payment.tax_free_cancelled + effect.tax_free_cancelled,
                    tax_free_held=payment.tax_free_held + effect.tax_free_held,
                )
            )

    def _put_payment(self, payment: Payment) -> None:
        self.payments[(payment.shop_id, payment.tno)] = payment

    def raw_payment(self, shop_id: str, tno: str) -> Payment:
        """The payment as written, before a read's Payment.__post_init__ could mend it."""
        return self.payments[(shop_id, tno)]


def _with(payment: Payment, **changes: Any) -> Payment:
    """replace() that keeps the numbers as written (DynamoDB's item does not mend them)."""
    changed = replace(payment, **changes)
    for name in ("balance", "available"):
        object.__setattr__(changed, name, changes.get(name, getattr(payment, name)))
    return changed


def _created_order(c: Cancellation) -> tuple[str, str]:
    return to_utc_text(c.created_at, precise=True), c.cancellation_id


def _matches(p: Payment, q: HistoryQuery) -> bool:
    approved = to_utc_text(p.approved_at)
    return (
        (q.since is None or approved >= to_utc_text(q.since))
        and (q.until is None or approved <= to_utc_text(q.until) + "#~")
        and (q.min_amount is None or p.amount >= q.min_amount)
        and (q.max_amount is None or p.amount <= q.max_amount)
        and (not q.product or q.product.casefold() in p.product_name.casefold())
        and (q.status is None or p.status is q.status)
        and (q.method is None or p.method is q.method)
        and (not q.order_id or p.order_id == q.order_id)
        and (not q.buyer or q.buyer in (p.buyer_email, p.buyer_name))
    )
