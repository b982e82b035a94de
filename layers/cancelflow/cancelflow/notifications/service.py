"""Take one notification from KCP: find its shop and payment, apply what it reports, once.

KCP sends a notification again until it is answered with result 0000, so the answer says
whether it was taken: every notification taken is stored (once, by its id) in the same
transaction as its change, so a resend finds it and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cancelflow.kcp.notifications import RETRY, TAKEN, Notice
from cancelflow.kernel.clock import Clock
from cancelflow.kernel.errors import Conflict
from cancelflow.notifications.model import Change, Verdict, judge
from cancelflow.notifications.ports import NotificationStore, Received

log = logging.getLogger(__name__)

WRITE_TRIES = 3  # the payment moved under us (a cancel settled): decide again from fresh facts


@dataclass(frozen=True)
class Answer:
    """What to tell KCP: `result` (0000 taken; anything else: send it again) and why."""

    result: str
    outcome: str  # a Verdict, REPEAT, or UNKNOWN_SITE
    shop_id: str = ""

    @property
    def taken(self) -> bool:
        return self.result == TAKEN


def receive(store: NotificationStore, clock: Clock, notice: Notice) -> Answer:
    """Apply a notification once. Unknown site codes are refused (KCP keeps sending, so one
    for a shop not yet set up is not lost); a resend is answered as taken, changing nothing."""
    shop_id = store.shop_for_site(notice.site_cd)
    if shop_id is None:
        log.warning("KCP notification for an unknown site_cd", extra=_facts(notice))
        return Answer(RETRY, "UNKNOWN_SITE")
    for _ in range(WRITE_TRIES):
        if store.received(shop_id, notice.notice_id):
            return Answer(TAKEN, "REPEAT", shop_id)
        payment = store.get_payment(shop_id, notice.tno)
        ours = store.payment_cancellations(shop_id, notice.tno) if payment else []
        now = clock.now()
        change = judge(notice, payment, ours, now)
        if change.verdict is Verdict.BUSY:
            log.info("KCP notification deferred", extra=_facts(notice, change))
            return Answer(RETRY, change.verdict.value, shop_id)
        record = Received(shop_id, notice, change.verdict.value, now, change.note)
        try:
            if not store.keep(record, payment, change):
                return Answer(TAKEN, "REPEAT", shop_id)
        except Conflict:
            continue  # decided from facts that moved: read them again
        _log(notice, change)
        return Answer(TAKEN, change.verdict.value, shop_id)
    log.warning("KCP notification not applied: the payment kept moving", extra=_facts(notice))
    return Answer(RETRY, "BUSY", shop_id)


def _log(notice: Notice, change: Change) -> None:
    quiet = (Verdict.DEPOSITED, Verdict.CANCELLED_EXTERNALLY, Verdict.ALREADY_REFLECTED)
    level = logging.INFO if change.verdict in quiet else logging.WARNING
    log.log(level, "KCP notification %s", change.verdict.value, extra=_facts(notice, change))


def _facts(notice: Notice, change: Change | None = None) -> dict[str, object]:
    facts: dict[str, object] = {
        "site_cd": notice.site_cd,
        "tno": notice.tno,
        "tx_cd": notice.tx_cd,
        "notice_id": notice.notice_id,
        "form": notice.masked(),
    }
    if change is not None:
        facts |= {"verdict": change.verdict.value, "note": change.note}
    return facts
