"""A cancellation batch and its items, as the shop sees them.

A batch is a list of payments to cancel (a recall, an event called off). Each item becomes an
ordinary cancellation, named by the batch and the item's position (so a retried batch or a re-run
lane finds the same one), judged, sent, recorded, mailed and announced exactly as one the shop
asked for alone. What the batch adds is pacing: its lanes call KCP only on their turns of the
merchant's TPS budget (subscriptions/pacing.py), and one batch of a shop runs at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from cancelflow.cancellations.model import CancellationStatus

MAX_ITEMS = 10_000
BATCH_TTL = timedelta(days=90)  # the batch and its items; each cancellation is kept as always


class BatchStatus(StrEnum):
    QUEUED = "QUEUED"  # accepted; waits while another batch of the shop runs
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"  # cancel asked: items not yet started are skipped
    COMPLETED = "COMPLETED"  # every item was started (some may still be OPEN)
    CANCELLED = "CANCELLED"  # stopped: the items not started were skipped


ACTIVE = frozenset({BatchStatus.QUEUED, BatchStatus.RUNNING})
ENDED = frozenset({BatchStatus.COMPLETED, BatchStatus.CANCELLED})


class ItemStatus(StrEnum):
    PENDING = "PENDING"  # not started yet
    SUCCEEDED = "SUCCEEDED"  # refunded: KCP confirmed the cancel
    REJECTED = "REJECTED"  # not eligible (nothing was sent), with the reasons
    FAILED = "FAILED"  # KCP declined it or could not be reached (nothing moved)
    OPEN = "OPEN"  # sent, KCP's answer unknown: its own workflow settles it (never resent)
    SKIPPED = "SKIPPED"  # the batch was cancelled before this item started


COUNTED = tuple(ItemStatus)  # every status has a count on the batch
# Outcomes the item's cancellation may still change after the lane recorded them: KCP's late
# answer to an OPEN one, the sweep correcting a FAILED one. The item follows its cancellation.
FOLLOWED = frozenset({ItemStatus.OPEN, ItemStatus.FAILED})


def item_status_of(cancellation: CancellationStatus) -> ItemStatus:
    """What an item shows for its cancellation's status: its outcome once it has one; OPEN
    while its own workflow (or an operator's review) has still to settle it."""
    return _OUTCOMES.get(cancellation, ItemStatus.OPEN)


_OUTCOMES = {
    CancellationStatus.SUCCEEDED: ItemStatus.SUCCEEDED,
    CancellationStatus.REJECTED: ItemStatus.REJECTED,
    CancellationStatus.FAILED: ItemStatus.FAILED,
}


@dataclass(frozen=True)
class ItemRequest:
    """One line of the request: a payment, how much of it (None: all that is left), and why."""

    tno: str
    reason_code: str
    reason: str = ""
    amount: int | None = None


@dataclass(frozen=True)
class BatchItem:
    seq: int  # 1-based position in the request: the item's name within its batch
    request: ItemRequest
    status: ItemStatus = ItemStatus.PENDING
    cancellation_id: str = ""  # once its cancellation exists
    reasons: tuple[str, ...] = ()  # why it did not succeed (stable codes)
    detail: str = ""  # in words, for a person
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Batch:
    shop_id: str
    batch_id: str
    status: BatchStatus
    total: int
    tps: float  # the KCP calls per second this batch may make (at most the stack's allowance)
    created_at: datetime
    updated_at: datetime
    counts: Mapping[str, int] = field(default_factory=dict)  # by ItemStatus
    execution_id: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def expires_at(self) -> datetime:
        return self.created_at + BATCH_TTL

    def count(self, status: ItemStatus) -> int:
        return int(self.counts.get(status.value, 0))

    @property
    def started(self) -> int:
        """Items past PENDING: what progress counts."""
        return self.total - self.count(ItemStatus.PENDING)


def idempotency_key(batch_id: str, seq: int) -> str:
    """The Idempotency-Key of an item's cancellation: one cancellation per item, however often
    the batch is retried or its lane re-run."""
    return f"batch:{batch_id}:{seq}"
