"""A support desk saves the shop's cancellations as a spreadsheet: the list's filters, newest
first, as the payment export writes CSV (BOM, KST, text cells never formulas). Through the API
and the real state machine."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cancelflow.kernel.clock import KST

from .conftest import Sandbox, ShopClient, http


def _rows(client: ShopClient, query: str, lang: str = "") -> list[list[str]]:
    headers = client.auth | ({"Accept-Language": lang} if lang else {})
    answer = http("GET", f"{client.url}/v1/cancellations/export?{query}", headers=headers)
    assert answer.status == 200, answer.body  # the 303 followed to the file
    text = answer.body if isinstance(answer.body, str) else str(answer.body)
    assert text.startswith("\ufeff")  # the BOM that makes Excel read UTF-8
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


@pytest.fixture
def story(shop: ShopClient, sandbox: Sandbox) -> dict[str, Any]:
    """One payment: a cancel KCP refused (8012), then a partial cancel whose reason text looks
    like a formula."""
    payment = sandbox.approve(amount=30000, product_name="린넨 셔츠")
    assert shop.register(payment).status == 201
    tno = payment["tno"]
    sandbox.fault(tno, "res_cd", value="8012")
    refused = shop.cancel(tno, {"reason_code": "OTHER", "amount": 5000}).body["cancellation_id"]
    refused_outcome = shop.outcome(refused)
    body = {"reason_code": "DEFECTIVE", "reason": '=HYPERLINK("x") 불량', "amount": 7000}
    partial = shop.cancel(tno, body).body["cancellation_id"]
    partial_outcome = shop.outcome(partial)
    assert (refused_outcome["status"], partial_outcome["status"]) == ("FAILED", "SUCCEEDED")
    return {"tno": tno, "failed": refused_outcome, "succeeded": partial_outcome}


def test_a_payments_cancellations_export_newest_first_with_amounts_and_kcps_code(
    shop: ShopClient, story: dict
) -> None:
    rows = _rows(shop, f"tno={story['tno']}")

    header, *found = rows
    assert header[:4] == ["요청시각(KST)", "취소번호", "거래번호(tno)", "상태"]
    column = {name: n for n, name in enumerate(header)}
    assert [r[column["취소번호"]] for r in found] == [
        story["succeeded"]["cancellation_id"],
        story["failed"]["cancellation_id"],
    ]
    succeeded, failed = found
    assert (succeeded[column["상태"]], succeeded[column["환불금액"]]) == ("SUCCEEDED", "7000")
    assert (failed[column["상태"]], failed[column["환불금액"]]) == ("FAILED", "0")
    assert failed[column["요청금액"]] == "5000"
    assert failed[column["KCP 코드"]] == "8012"
    assert failed[column["사유코드"]] == "GATEWAY_DECLINED"
    # Times in KST, as the API shows them (+09:00) but to the second.
    created = datetime.fromisoformat(story["failed"]["created_at"]).astimezone(KST)
    assert failed[column["요청시각(KST)"]] == created.strftime("%Y-%m-%d %H:%M:%S")


def test_a_reason_that_looks_like_a_formula_is_exported_as_text(
    shop: ShopClient, story: dict
) -> None:
    header, succeeded, _ = _rows(shop, f"tno={story['tno']}")
    assert succeeded[header.index("요청사유")] == '\'=HYPERLINK("x") 불량'


def test_the_status_and_day_filters_are_the_lists_and_english_headers_on_request(
    shop: ShopClient, shop_b: ShopClient, story: dict
) -> None:
    today = datetime.now(UTC).astimezone(KST).date()

    header, *failed = _rows(shop, f"status=FAILED&from={today}&to={today}", lang="en")
    tomorrow = _rows(shop, f"from={today + timedelta(days=1)}")
    other_shop = _rows(shop_b, f"tno={story['tno']}")

    assert header[:4] == ["Requested at (KST)", "Cancellation", "tno", "Status"]
    assert story["failed"]["cancellation_id"] in [r[1] for r in failed]
    assert {r[3] for r in failed} == {"FAILED"}
    assert len(tomorrow) == 1 and len(other_shop) == 1  # the header only


def test_an_export_with_from_after_to_or_an_unknown_filter_is_refused(shop: ShopClient) -> None:
    backwards = http(
        "GET",
        f"{shop.url}/v1/cancellations/export?from=2025-03-12&to=2025-03-10",
        headers=shop.auth,
    )
    misspelt = http("GET", f"{shop.url}/v1/cancellations/export?stauts=FAILED", headers=shop.auth)
    assert (backwards.status, backwards.code) == (400, "VALIDATION_FAILED")
    assert (misspelt.status, misspelt.code) == (400, "VALIDATION_FAILED")
