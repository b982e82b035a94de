"""What KCP's notifications need from storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cancelflow.cancellations.model import Cancellation
from cancelflow.kcp.notifications import Notice
from cancelflow.notifications.model import Change
from cancelflow.payments.model import Payment


@dataclass(frozen=True)
class Received:
    """A notification as kept: every one taken is stored once, with what it did."""

    shop_id: str
    notice: Notice
    verdict: str
    received_at: datetime
    note: str = ""


class NotificationStore(Protocol):
    def shop_for_site(self, site_cd: str) -> str | None:
        """The shop whose KCP site code this is (a keyed lookup), or None."""
        ...

    def received(self, shop_id: str, notice_id: str) -> bool:
        """Whether this notification was taken before (a resend)."""
        ...

    def get_payment(self, shop_id: str, tno: str) -> Payment | None: ...

    def payment_cancellations(self, shop_id: str, tno: str) -> list[Cancellation]: ...

    def keep(self, record: Received, payment: Payment | None, change: Change) -> bool:
        """Store the notification and its change (effect, external cancel, event) in one
        transaction; False if it was stored before. Conflict if the payment moved meanwhile
        (its balance, status or send lock is no longer what the change was decided from)."""
        ...
