"""Payment history as CSV a spreadsheet opens with Korean intact (UTF-8 with a BOM)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Protocol

from cancelflow.kernel.clock import KST
from cancelflow.payments.model import Payment

BOM = "\ufeff"
ROWS_PER_CHUNK = 500

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


class Exporter(Protocol):
    def upload(self, shop_id: str, name: str, chunks: Iterable[bytes]) -> str:
        """Store the chunks as one file of the shop's; returns a short-lived link to it."""
        ...


def _cell(text: str) -> str:
    # A cell starting like a formula would run in Excel (CSV injection): make it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(p: Payment) -> list[str | int]:
    return [
        p.approved_at.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S"),
        p.tno,
        _cell(p.order_id),
        _cell(p.product_name),
        p.method.value,
        p.amount,
        p.tax_free_amount,
        p.cancelled_amount,
        p.balance,
        p.status.value,
        p.fulfillment.value,
        _cell(p.buyer_name),
        # Mixed taxation: both parts of the cancelled amount and of the balance (appended, so
        # a sheet reading the columns above by position keeps working).
        p.taxable_cancelled_amount,
        p.taxable_balance,
        p.tax_free_cancelled_amount,
        p.tax_free_balance,
    ]


def csv_chunks(payments: Iterable[Payment], lang: str = "ko") -> Iterator[bytes]:
    """The CSV in chunks of a few hundred rows, so memory stays flat however long it is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(COLUMNS.get(lang, COLUMNS["ko"]))
    for rows, payment in enumerate(payments, start=1):
        writer.writerow(_row(payment))
        if rows % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
