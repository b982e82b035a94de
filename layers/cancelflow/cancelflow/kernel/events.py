"""Events: what a shop is told happened, recorded in the same write as the change that causes it.

An event's id is derived from the change (e.g. the cancellation and the status it reached), so a
retried step that writes the same change again records the same event, never a second one; the
store writes the event item in the change's own transaction (no event without its change, no
change without its event). Delivery (webhooks) reads them from the table's stream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    type: str  # e.g. cancellation.succeeded, payment.cancelled_externally, subscription.charged
    shop_id: str
    resource: str  # what it is about: a cancellation id, a tno, a subscription id (order key)
    occurred_at: datetime
    cause: str  # what made it, unique per event of this resource (e.g. the status reached)
    data: dict[str, Any] = field(default_factory=dict)  # facts the delivery needs to render it

    @property
    def event_id(self) -> str:
        """Stable: the same change always names the same event."""
        digest = hashlib.sha256(f"{self.shop_id}|{self.resource}|{self.type}|{self.cause}".encode())
        return "evt_" + digest.hexdigest()[:24]
