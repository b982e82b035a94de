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
        "과세취소금액",
        "과세잔액",
        "면세취소금액",
        "면세잔액",
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
        "Taxable cancelled",
        "Taxable balance",
        "Tax-free cancelled",
        "Tax-free balance",
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
        # Mixed taxation: both parts of the cancelled amount and of the balance (appended, so
        # a sheet reading the columns above by position keeps working).
        p.taxable_cancelled_amount,
        p.taxable_balance,
        p.tax_free_cancelled_amount,
        p.tax_free_balance,
    ]


def csv_chunks(payments: Iterable[Payment], lang: str = "ko") -> Iterator[bytes]:
    """The CSV in chunks of a few hundred rows, so memory stays flat however long it is."""
    header = COLUMNS.get(lang, COLUMNS["ko"])
    return export.csv_chunks(header, (_row(p) for p in payments))
