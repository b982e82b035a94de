"""Payment history as CSV a spreadsheet opens with Korean intact (the format rules of every
export: kernel/export.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cancelflow.kernel import export
from cancelflow.kernel.export import text_cell, time_cell
from cancelflow.payments.model import Payment

COLUMNS = {
    "ko": [
        "승인시각(KST)",
        "거래번호(tno)",
        "주문번호",
        "상품명",
        "결제수단",
        "결제금액",
        "면세금액",
        "취소금액",
        "잔액",
        "상태",
        "배송상태",
        "구매자",
    ],
    "en": [
        "Approved at (KST)",
        "tno",
        "Order",
        "Product",
        "Method",
        "Amount",
        "Tax-free",
        "Cancelled",
        "Balance",
        "Status",
        "Fulfillment",
        "Buyer",
    ],
}


def _row(p: Payment) -> list[str | int]:
    return [
        time_cell(p.approved_at),
        p.tno,
        text_cell(p.order_id),
        text_cell(p.product_name),
        p.method.value,
        p.amount,
        p.tax_free_amount,
        p.cancelled_amount,
        p.balance,
        p.status.value,
        p.fulfillment.value,
        text_cell(p.buyer_name),
    ]


def csv_chunks(payments: Iterable[Payment], lang: str = "ko") -> Iterator[bytes]:
    """The CSV in chunks of a few hundred rows, so memory stays flat however long it is."""
    header = COLUMNS.get(lang, COLUMNS["ko"])
    return export.csv_chunks(header, (_row(p) for p in payments))
