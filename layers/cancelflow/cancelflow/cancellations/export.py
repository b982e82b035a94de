"""The shop's cancellations as CSV, by the format rules of every export (kernel/export.py):
the same filters as the list (GET /v1/cancellations), newest first, read page by page."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from cancelflow.cancellations.model import Cancellation, CancellationStatus
from cancelflow.cancellations.ports import CancellationQuery, CancellationStore
from cancelflow.kernel import export
from cancelflow.kernel.export import text_cell, time_cell

EXPORT_PAGE = 500

COLUMNS = {
    "ko": [
        "요청시각(KST)",
        "취소번호",
        "거래번호(tno)",
        "상태",
        "요청금액",
        "취소금액",
        "환불금액",
        "사유코드",
        "요청사유",
        "요청자",
        "KCP 코드",
        "KCP 메시지",
        "KCP 취소시각(KST)",
        "처리시각(KST)",
    ],
    "en": [
        "Requested at (KST)",
        "Cancellation",
        "tno",
        "Status",
        "Requested amount",
        "Decided amount",
        "Refunded",
        "Reason codes",
        "Reason given",
        "Requested by",
        "KCP code",
        "KCP message",
        "Cancelled at KCP (KST)",
        "Updated at (KST)",
    ],
}


def cancellations(
    store: CancellationStore, shop_id: str, query: CancellationQuery
) -> Iterator[Cancellation]:
    """Every cancellation the filters match, newest first (constant memory). A status filter
    may give short pages: the export follows them to the end."""
    position: dict[str, Any] | None = None
    while True:
        page = store.cancellation_page(shop_id, replace(query, limit=EXPORT_PAGE), position)
        yield from page.cancellations  # a stored record that cannot be read is left out
        if page.next_position is None:
            return
        position = page.next_position


def _row(c: Cancellation) -> list[str | int]:
    refunded = (c.amount or 0) if c.status is CancellationStatus.SUCCEEDED else 0
    return [
        time_cell(c.created_at),
        c.cancellation_id,
        c.tno,
        c.status.value,
        "" if c.requested_amount is None else c.requested_amount,  # empty: all that was left
        "" if c.amount is None else c.amount,  # empty: never decided (e.g. rejected first)
        refunded,
        " ".join(c.reasons),
        text_cell(c.reason),
        c.requested_by,
        c.res_cd,
        text_cell(c.res_msg),
        time_cell(c.cancelled_at),
        time_cell(c.updated_at),
    ]


def csv_chunks(found: Iterable[Cancellation], lang: str = "ko") -> Iterator[bytes]:
    """The CSV in chunks of a few hundred rows, so memory stays flat however long it is."""
    header = COLUMNS.get(lang, COLUMNS["ko"])
    return export.csv_chunks(header, (_row(c) for c in found))
