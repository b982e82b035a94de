"""What payments need from storage, and the history query it answers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cancelflow.kcp.port import PayMethod
from cancelflow.payments.model import Payment, PaymentStatus


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
    order_id: str = ""  # exact
    buyer: str = ""  # the buyer's email or name, exact

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
            "order_id": self.order_id,
            "buyer": self.buyer,
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


class PaymentStore(Protocol):
    def put_payment(self, payment: Payment) -> bool:
        """Create it; False if the tno is already registered for the shop."""
        ...

    def get_payment(self, shop_id: str, tno: str) -> Payment | None: ...

    def history_page(
        self, shop_id: str, query: HistoryQuery, position: dict[str, Any] | None
    ) -> HistoryPage:
        """A page of the shop's payments, newest first, with a bounded number of reads."""
        ...

    def set_fulfillment(self, payment: Payment, changed: Payment) -> None:
        """Conflict if the stored fulfillment is no longer payment.fulfillment."""
        ...
