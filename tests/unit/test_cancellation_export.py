"""The cancellations' CSV follows every export's rules (kernel/export.py): a BOM, CRLF rows,
KST times, text a person typed never run as a formula, and every page of the list."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cancelflow.cancellations import export
from cancelflow.cancellations.model import Cancellation, CancellationStatus
from cancelflow.cancellations.ports import CancellationQuery
from tests.fakes.store import MemoryStore

AT = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)  # 2026-03-02 00:30 KST


def _cancellation(n: int, **fields: object) -> Cancellation:
    base = Cancellation(
        shop_id="shop-a",
        cancellation_id=f"cnl_{n:04d}",
        tno="20260301000001",
        status=CancellationStatus.SUCCEEDED,
        reason_code="CHANGE_OF_MIND",
        reason="단순 변심",
        created_at=AT + timedelta(seconds=n),
        updated_at=AT + timedelta(seconds=n, minutes=1),
        amount=5000,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def _read(chunks: list[bytes]) -> list[list[str]]:
    text = b"".join(chunks).decode("utf-8")
    assert text.startswith("\ufeff") and text.endswith("\r\n")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_a_failed_cancel_refunds_nothing_and_shows_kcps_code_in_kst() -> None:
    failed = _cancellation(
        1,
        status=CancellationStatus.FAILED,
        requested_amount=5000,
        reasons=("GATEWAY_DECLINED",),
        res_cd="8012",
        res_msg="취소 거부",
    )
    header, row = _read(list(export.csv_chunks([failed])))
    cell = dict(zip(header, row, strict=True))
    assert cell["요청시각(KST)"] == "2026-03-02 00:30:01"
    assert (cell["상태"], cell["요청금액"], cell["환불금액"]) == ("FAILED", "5000", "0")
    assert (cell["KCP 코드"], cell["사유코드"]) == ("8012", "GATEWAY_DECLINED")
    assert cell["KCP 취소시각(KST)"] == ""  # KCP never cancelled it


def test_text_a_person_or_kcp_wrote_never_becomes_a_formula() -> None:
    typed = _cancellation(1, reason="=cmd|' /C calc'!A0", res_msg="+82 오류")
    header, row = _read(list(export.csv_chunks([typed], lang="en")))
    cell = dict(zip(header, row, strict=True))
    assert cell["Reason given"] == "'=cmd|' /C calc'!A0"
    assert cell["KCP message"] == "'+82 오류"


def test_a_long_export_comes_in_chunks_and_follows_every_page_newest_first() -> None:
    store = MemoryStore()
    for n in range(1203):
        c = _cancellation(
            n, status=CancellationStatus.FAILED if n % 3 else CancellationStatus.REJECTED
        )
        store.cancellations[(c.shop_id, c.cancellation_id)] = c
    query = CancellationQuery(status=CancellationStatus.FAILED)

    chunks = list(export.csv_chunks(export.cancellations(store, "shop-a", query)))

    rows = _read(chunks)[1:]
    assert len(chunks) > 1
    assert len(rows) == 802
    assert rows[0][1] == "cnl_1202" and rows[-1][1] == "cnl_0001"
    assert list(export.cancellations(store, "shop-b", query)) == []
