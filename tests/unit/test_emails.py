"""What a customer and a shop read: words not enums, Korea's clock, the fee that was deducted,
a shop copy of its own, and an HTML part nobody can inject markup into."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from cancelflow.cancellations.emails import outcome_emails
from cancelflow.cancellations.model import BreakdownLine, CancellationStatus
from cancelflow.kernel.email import Letter, day_text, moment_text
from cancelflow.shops.model import Shop
from tests.fakes.examples import NOW, a_cancellation, a_payment

SHOP = Shop("shop_a", "머그상점", "owner@mug.example")
# 20,000원 asked back, 3,000원 return shipping deducted: 17,000원 refunded.
REFUND = replace(
    a_cancellation(amount=20000),
    status=CancellationStatus.SUCCEEDED,
    amount=17000,
    reason="사이즈가 맞지 않아요",
    breakdown=(BreakdownLine("REQUESTED", 20000), BreakdownLine("RETURN_SHIPPING_FEE", -3000)),
)


def test_a_refund_with_a_return_fee_says_what_was_deducted_in_words_and_won() -> None:
    customer, _ = outcome_emails(SHOP, a_payment(amount=30000), REFUND, "ko")
    assert "요청 금액: 20,000원" in customer.body
    assert "반품 배송비: -3,000원" in customer.body
    assert "취소 금액: 17,000원" in customer.body
    assert "처리 결과: 취소 완료" in customer.body and "SUCCEEDED" not in customer.body
    assert "요청 사유: 사이즈가 맞지 않아요" in customer.body
    assert "처리 시각: 2026년 11월 23일 18:00 (한국 시간)" in customer.body


def test_the_shops_copy_has_its_own_subject_naming_the_order_and_kcps_code() -> None:
    payment = a_payment(amount=30000)
    customer, to_shop = outcome_emails(SHOP, payment, replace(REFUND, res_cd="0000"), "ko")
    assert customer.subject == "[머그상점] 결제 취소가 완료되었습니다"
    assert to_shop.subject == f"[머그상점] 고객 결제 취소 결과: 취소 완료 (주문 {payment.order_id})"
    assert "KCP: 0000" in to_shop.body and "KCP" not in customer.body


def test_every_email_has_an_html_part_that_escapes_what_people_typed() -> None:
    payment = replace(a_payment(), product_name='<script>alert("x")</script> 컵')
    for email in outcome_emails(SHOP, payment, REFUND, "en"):
        assert email.html.startswith("<!doctype html>")
        assert "<script>" not in email.html and "&lt;script&gt;" in email.html
        assert "Return shipping fee" in email.html and "KRW 17,000" in email.html


def test_english_times_and_days_read_as_words_on_koreas_clock() -> None:
    assert moment_text(NOW, "en") == "23 Nov 2026, 18:00 KST"
    assert day_text(date(2026, 12, 1), "ko") == "2026년 12월 1일"
    assert day_text(date(2026, 12, 1), "en") == "1 Dec 2026"


def test_a_letter_reads_the_same_as_text_and_as_html() -> None:
    letter = Letter("제목", ("안내",), (("금액", "1,000원"),), ("끝",), "문의")
    assert letter.text() == "제목\n\n안내\n\n금액: 1,000원\n\n끝\n\n문의\n"
    html = letter.html()
    assert all(part in html for part in ("제목", "안내", "금액", "1,000원", "끝", "문의"))
