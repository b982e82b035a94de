"""What the batches API shows (http/responses.py's Batch models), times in KST, codes explained."""

from __future__ import annotations

from collections.abc import Sequence

from cancelflow.batches.model import Batch, BatchItem, ItemStatus
from cancelflow.http import responses as out
from cancelflow.kernel.clock import to_kst_text
from cancelflow.kernel.errors import CATALOGUE
from cancelflow.kernel.reasons import REASONS, explain


def _kst(moment: object) -> str | None:
    return to_kst_text(moment) if moment else None  # type: ignore[arg-type]


def _why(item: BatchItem) -> str | None:
    if item.detail:
        return item.detail
    if not item.reasons:
        return None
    code = item.reasons[0]
    if code in REASONS:
        return str(explain(code, "en")["message"])
    return CATALOGUE.get(code, (0, code))[1]


def item_view(item: BatchItem) -> out.BatchItem:
    return out.BatchItem(
        seq=item.seq,
        tno=item.request.tno,
        amount=item.request.amount,
        reason_code=item.request.reason_code,
        status=item.status.value,
        cancellation_id=item.cancellation_id or None,
        reasons=list(item.reasons),
        detail=_why(item),
        updated_at=_kst(item.updated_at),
    )


def batch_view(batch: Batch, not_succeeded: Sequence[BatchItem] = ()) -> out.Batch:
    return out.Batch(
        id=batch.batch_id,
        status=batch.status.value,
        total=batch.total,
        started=batch.started,
        progress=round(batch.started / batch.total, 4) if batch.total else 1.0,
        counts={s.value: batch.count(s) for s in ItemStatus},
        tps=batch.tps,
        not_succeeded=[item_view(i) for i in not_succeeded],
        created_at=_kst(batch.created_at),
        started_at=_kst(batch.started_at),
        finished_at=_kst(batch.finished_at),
    )
