"""An in-memory BatchStore, as DynamoBatches behaves: an item moves once from each status, with
the batch's counts; an OPEN or FAILED one is found by its cancellation; a lease per shop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from cancelflow.batches.model import FOLLOWED, Batch, BatchItem, BatchStatus
from cancelflow.kernel.errors import Conflict


@dataclass
class MemoryBatches:
    batches: dict[tuple[str, str], Batch] = field(default_factory=dict)
    rows: dict[tuple[str, str], dict[int, BatchItem]] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    leases: dict[str, str] = field(default_factory=dict)
    followed: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    reads: int = 0  # batch and item reads: what "reads follow items" counts

    def create_batch(
        self,
        batch: Batch,
        items: Sequence[BatchItem],
        idempotency_key: str,
        fingerprint: str,
        expires_at: datetime,
    ) -> None:
        if (batch.shop_id, idempotency_key) in self.keys:
            raise Conflict("key taken")
        self.rows[(batch.shop_id, batch.batch_id)] = {i.seq: i for i in items}
        self.batches[(batch.shop_id, batch.batch_id)] = batch
        self.keys[(batch.shop_id, idempotency_key)] = (fingerprint, batch.batch_id)

    def batch_for_key(self, shop_id: str, idempotency_key: str) -> tuple[str, str] | None:
        return self.keys.get((shop_id, idempotency_key))

    def get_batch(self, shop_id: str, batch_id: str) -> Batch | None:
        self.reads += 1
        return self.batches.get((shop_id, batch_id))

    def items(self, shop_id: str, batch_id: str, first: int, last: int) -> Iterator[BatchItem]:
        for seq, item in sorted(self.rows.get((shop_id, batch_id), {}).items()):
            if first <= seq <= last:
                self.reads += 1
                yield item

    def item_page(
        self, shop_id: str, batch_id: str, status: str | None, after: int, limit: int
    ) -> tuple[list[BatchItem], int | None]:
        found = [
            i
            for seq, i in sorted(self.rows.get((shop_id, batch_id), {}).items())
            if seq > after and (status is None or i.status.value == status)
        ]
        page = found[:limit]
        return page, (page[-1].seq if len(found) > limit else None)

    def get_item(self, shop_id: str, batch_id: str, seq: int) -> BatchItem | None:
        self.reads += 1
        return self.rows.get((shop_id, batch_id), {}).get(seq)

    def record_item(self, batch: Batch, before: BatchItem, after: BatchItem) -> bool:
        rows = self.rows[(batch.shop_id, batch.batch_id)]
        if rows[after.seq].status is not before.status:
            return False
        rows[after.seq] = after
        if after.status in FOLLOWED and after.cancellation_id:
            self.followed[(batch.shop_id, after.cancellation_id)] = (batch.batch_id, after.seq)
        stored = self.batches[(batch.shop_id, batch.batch_id)]
        counts = dict(stored.counts)
        counts[before.status.value] = counts.get(before.status.value, 0) - 1
        counts[after.status.value] = counts.get(after.status.value, 0) + 1
        self.batches[(batch.shop_id, batch.batch_id)] = replace(stored, counts=counts)
        return True

    def item_for_cancellation(self, shop_id: str, cancellation_id: str) -> tuple[str, int] | None:
        self.reads += 1
        return self.followed.get((shop_id, cancellation_id))

    def set_status(
        self,
        batch: Batch,
        status: BatchStatus,
        allowed_from: frozenset[BatchStatus],
        at: datetime,
        execution_id: str = "",
    ) -> Batch | None:
        stored = self.batches[(batch.shop_id, batch.batch_id)]
        if stored.status not in allowed_from:
            return None
        after = replace(
            stored, status=status, updated_at=at, execution_id=execution_id or stored.execution_id
        )
        self.batches[(batch.shop_id, batch.batch_id)] = after
        return after

    def take_lease(
        self, shop_id: str, holder: str, at: datetime, still_running: Callable[[str], bool]
    ) -> str | None:
        current = self.leases.get(shop_id)
        if current and current != holder and still_running(current):
            return current
        self.leases[shop_id] = holder
        return None

    def release_lease(self, shop_id: str, holder: str) -> None:
        if self.leases.get(shop_id) == holder:
            del self.leases[shop_id]


@dataclass
class RecordingBatchStarter:
    started: list[str] = field(default_factory=list)

    def start(self, batch: Batch) -> str:
        if batch.batch_id not in self.started:
            self.started.append(batch.batch_id)
        return f"exec:{batch.batch_id}"
