"""Small domain pieces a shop sees: problem bodies, request fingerprints, outcome emails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cancelflow.cancellations.emails import outcome_emails
from cancelflow.cancellations.model import Cancellation, CancellationStatus
from cancelflow.cancellations.service import CancelRequest
from cancelflow.kcp.port import PayMethod, RefundAccount
from cancelflow.kernel.email import mask_email
from cancelflow.kernel.errors import CATALOGUE, Problem
from cancelflow.payments.model import Payment
from cancelflow.shops.model import Shop

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_a_problem_body_carries_its_stable_code_and_http_status() -> None:
    body = Problem("PAYMENT_NOT_FOUND", "No payment 1 for this shop.").body("/v1/x")
    assert body["code"] == "PAYMENT_NOT_FOUND"
    assert body["status"] == 404
    assert body["instance"] == "/v1/x"
    assert body["type"].endswith("/payment-not-found")


def test_every_catalogued_problem_is_a_4xx_or_5xx_with_a_title() -> None:
    for code, (status, title) in CATALOGUE.items():
        assert 400 <= status < 600 and title, code


def test_an_uncatalogued_problem_code_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        Problem("NO_SUCH_CODE")


def test_the_same_request_has_the_same_fingerprint_and_any_change_alters_it() -> None:
    base = CancelRequest("CHANGE_OF_MIND", "단순 변심", 5000)
    assert base.fingerprint("1") == CancelRequest("CHANGE_OF_MIND", "단순 변심", 5000).fingerprint(
        "1"
    )
    assert base.fingerprint("1") != base.fingerprint("2")
    assert base.fingerprint("1") != CancelRequest("CHANGE_OF_MIND", "단순 변심", 5001).fingerprint(
        "1"
    )
    with_account = CancelRequest(
        "OTHER", amount=5000, refund_account=RefundAccount("BK04", "1234567", "김")
    )
    other_account = CancelRequest(
        "OTHER", amount=5000, refund_account=RefundAccount("BK04", "1234568", "김")
    )
    assert with_account.fingerprint("1") != other_account.fingerprint("1")


def _settled(status: CancellationStatus, reasons: tuple[str, ...] = ()) -> Cancellation:
    return Cancellation(
        shop_id="s",
        cancellation_id="cnl_1",
        tno="20261123000001",
        status=status,
        reason_code="CHANGE_OF_MIND",
        reason="",
        created_at=NOW,
        updated_at=NOW,
        amount=12300,
        reasons=reasons,
    )


PAYMENT = Payment(
    shop_id="s",
    tno="20261123000001",
    order_id="ORD-1",
    amount=12300,
    method=PayMethod.CARD,
    product_name="머그컵",
    buyer_email="lee@example.com",
    approved_at=NOW,
    registered_at=NOW,
)


def test_a_korean_shop_emails_the_customer_and_itself_in_korean_with_the_amount_in_won() -> None:
    shop = Shop("s", "머그상점", "owner@mug.example")
    customer, owner = outcome_emails(shop, PAYMENT, _settled(CancellationStatus.SUCCEEDED), "ko")
    assert (customer.to, owner.to) == ("lee@example.com", "owner@mug.example")
    assert customer.subject == "[머그상점] 결제 취소가 완료되었습니다"
    assert "12,300원" in customer.body
    assert "처리 시각: 2026년 11월 23일 18:00 (한국 시간)" in customer.body  # Korea's clock
    assert "tno: 20261123000001" in owner.body and "tno" not in customer.body


def test_an_english_shop_gets_english_emails_and_a_rejection_explains_why() -> None:
    shop = Shop("s", "Mug Shop", "owner@mug.example")
    customer, _ = outcome_emails(
        shop, PAYMENT, _settled(CancellationStatus.REJECTED, ("ALREADY_CANCELLED",)), "en"
    )
    assert customer.subject == "[Mug Shop] Your cancellation request was declined"
    assert "Amount cancelled: KRW 0" in customer.body
    assert "The payment is already fully cancelled." in customer.body


def test_emails_are_masked_for_display() -> None:
    assert mask_email("kimchi@example.com") == "ki***@example.com"
