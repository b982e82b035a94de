"""What bulk cancels need from storage, and from the workflow engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from cancelflow.batches.model import Batch, BatchItem, BatchStatus


class BatchStore(Protocol):
    def create_batch(
        self,
        batch: Batch,
        items: Sequence[BatchItem],
        idempotency_key: str,
        fingerprint: str,
        expires_at: datetime,
    ) -> None:
        """Write the items, then the batch with its key, so a batch is never seen without all
        its items. Conflict if the key was taken meanwhile."""
        ...

    def batch_for_key(self, shop_id: str, idempotency_key: str) -> tuple[str, str] | None:
        """(fingerprint, batch_id) of the batch created with this key, if any."""
        ...

    def get_batch(self, shop_id: str, batch_id: str) -> Batch | None: ...

    def items(self, shop_id: str, batch_id: str, first: int, last: int) -> Iterator[BatchItem]:
        """The batch's items first..last (positions), in order; read page by page."""
        ...

    def item_page(
        self, shop_id: str, batch_id: str, status: str | None, after: int, limit: int
    ) -> tuple[list[BatchItem], int | None]:
        """Up to `limit` items after position `after` (with this status), and the position the
        next page starts after (None: no more)."""
        ...

    def get_item(self, shop_id: str, batch_id: str, seq: int) -> BatchItem | None: ...

    def record_item(self, batch: Batch, before: BatchItem, after: BatchItem) -> bool:
        """Move an item from `before`'s status to `after`'s, and the batch's counts with it,
        atomically; False if it was no longer in `before`'s status (a re-run lane, a repeated
        event): then nothing is counted twice. An item left in a FOLLOWED status is findable by
        its cancellation from then on (item_for_cancellation)."""
        ...

    def item_for_cancellation(self, shop_id: str, cancellation_id: str) -> tuple[str, int] | None:
        """(batch id, position) of the item this cancellation was recorded for in a FOLLOWED
        status, if any."""
        ...

    def set_status(
        self,
        batch: Batch,
        status: BatchStatus,
        allowed_from: frozenset[BatchStatus],
        at: datetime,
        execution_id: str = "",
    ) -> Batch | None:
        """Move the batch to `status` if it is in one of `allowed_from`; the batch after, or
        None if it was not (read it again to see where it is)."""
        ...

    def take_lease(
        self, shop_id: str, holder: str, at: datetime, still_running: Callable[[str], bool]
    ) -> str | None:
        """Take the shop's batch lease for `holder` (an execution): None when taken (or held
        already), else the execution that holds it and is still running."""
        ...

    def release_lease(self, shop_id: str, holder: str) -> None:
        """Give the lease back if `holder` has it."""
        ...


class BatchStarter(Protocol):
    def start(self, batch: Batch) -> str:
        """Start (or find) the batch's execution, named by the batch id; returns its id."""
        ...
