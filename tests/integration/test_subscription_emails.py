"""What a subscriber and the shop read about a subscription: the receipt, a decline with the next
try, the suspension and the cancellation, each its own email with the shop's own copy; text and
HTML parts, the status in words, amounts in 원, times in KST and the ids support looks up.
Through the API and the real billing machine, read from the local stack's mail drop."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from cancelflow.kernel.clock import KST
from local.stack import LocalStack

from .billing_support import batch_key, bill, call, subscribe
from .conftest import ShopClient

SHOP_EMAIL = "shop@demo-shop.example"


def _mails(stack: LocalStack, subscription_id: str) -> list[dict[str, str]]:
    """Each email about the subscription: recipient, subject, text part and HTML part."""
    found = []
    for path in sorted(Path(stack.mail.folder).glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        if subscription_id not in text:
            continue
        head, _, body = text.partition("\n\n")
        fields = dict(line.split(": ", 1) for line in head.splitlines())
        html = path.with_suffix(".html")
        found.append(
            {
                "to": fields["To"],
                "subject": fields["Subject"],
                "text": body,
                "html": html.read_text(encoding="utf-8") if html.exists() else "",
            }
        )
    return found


def _to(mails: list[dict[str, str]], who: str, words: str) -> list[dict[str, str]]:
    return [m for m in mails if m["to"] == who and words in m["subject"]]


def test_a_charge_sends_the_customer_a_receipt_and_the_shop_its_own_copy(
    stack: LocalStack, shop: ShopClient
) -> None:
    sub = subscribe(shop, batch_key(stack.env["SANDBOX_URL"]), "2042-03-05").body
    sid = sub["subscription_id"]
    assert bill(stack, "2042-03-05")["charged"] == 1
    (charge,) = call(shop, "GET", f"/v1/subscriptions/{sid}/charges").body["items"]

    mails = _mails(stack, sid)

    assert sorted(m["to"] for m in mails) == sorted([sub["customer_email"], SHOP_EMAIL])
    (receipt,) = _to(mails, sub["customer_email"], "정기결제 영수증")
    assert receipt["subject"] == f"[데모상점] 정기결제 영수증 ({charge['period']})"
    text = receipt["text"]
    for line in (
        "처리 결과: 결제 완료",
        "상품: 월간 원두 구독",
        "결제 기간: 2042년 3월 5일 ~ 2042년 4월 4일",
        "결제 금액: 9,900원",
        "다음 결제일: 2042년 4월 5일",
        f"주문번호: {charge['order_id']}",
        f"구독 번호: {sid}",
        f"KCP tno: {charge['tno']}",
    ):
        assert line in text, line
    approved = datetime.fromisoformat(charge["approved_at"]).astimezone(KST)
    assert f"승인 시각: {approved.year}년 {approved.month}월 {approved.day}일 " in text
    assert "(한국 시간)" in text
    # The HTML part says the same, as a table a mail client shows.
    assert "<th" in receipt["html"] and ">결제 완료</td>" in receipt["html"]
    assert ">9,900원</td>" in receipt["html"]
    (copy,) = _to(mails, SHOP_EMAIL, "고객 정기결제 승인")
    assert copy["subject"] == f"[데모상점] 고객 정기결제 승인: 김고객 ({sid}, {charge['period']})"
    assert f"고객: 김고객 <{sub['customer_email']}>" in copy["text"]
    assert f"KCP tno: {charge['tno']}" in copy["text"]
    assert copy["text"] != receipt["text"]


def test_declines_tell_the_next_try_then_the_suspension_with_kcps_code_for_the_shop(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    sub = subscribe(shop, batch_key(url, decline="INSUFFICIENT_BALANCE"), "2042-06-10").body
    sid = sub["subscription_id"]
    for day in ("2042-06-10", "2042-06-11", "2042-06-13", "2042-06-17"):
        bill(stack, day)

    mails = _mails(stack, sid)
    declines = _to(mails, sub["customer_email"], "승인이 거절")
    copies = _to(mails, SHOP_EMAIL, "승인 실패")
    (stopped,) = _to(mails, sub["customer_email"], "중지")
    (stopped_copy,) = _to(mails, SHOP_EMAIL, "중지")

    assert len(declines) == len(copies) == 3
    first = declines[0]["text"]
    for line in (
        "처리 결과: 결제 거절 (다시 시도 예정)",
        "승인 요청 금액: 9,900원",
        "시도 회차: 1회차",
        f"주문번호: {sid}-2042-06-1",
        "2042년 6월 11일에 다시 결제를 시도합니다",
        "거절 시각: ",
    ):
        assert line in first, line
    assert "SB05" not in first  # KCP's code is for the shop, the customer reads words
    assert "시도 회차: 3회차" in declines[2]["text"] and "2042년 6월 17일" in declines[2]["text"]
    copy = copies[0]
    assert copy["subject"] == f"[데모상점] 고객 정기결제 승인 실패: 김고객 ({sid}, 1회차)"
    assert "KCP: SB05" in copy["text"] and "조치: " in copy["text"]
    assert "다음 시도일: 2042년 6월 11일" in copy["text"]
    assert "처리 결과: 정기결제 중지" in stopped["text"]
    assert "여러 차례 결제가 거절되어" in stopped["text"]
    assert "시도 회차: 4회차" in stopped["text"]
    assert "KCP: SB05" in stopped_copy["text"] and "SB05" not in stopped["text"]


def _cancel(shop: ShopClient, sid: str, when: str) -> dict[str, Any]:
    answer = call(shop, "POST", f"/v1/subscriptions/{sid}/cancel", {"when": when})
    assert answer.status == 200, answer.body
    return dict(answer.body)


def test_cancelling_immediately_tells_the_refund_and_how_it_was_reached_once(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    today = datetime.now(KST).date()
    sub = subscribe(shop, batch_key(url), today.isoformat(), amount=30000).body
    sid = sub["subscription_id"]
    assert bill(stack, today.isoformat())["charged"] == 1

    cancelled = _cancel(shop, sid, "IMMEDIATELY")
    _cancel(shop, sid, "IMMEDIATELY")  # a retried request: no second notice

    refund = cancelled["cancellation"]
    paid = cancelled["last_paid"]
    mails = _mails(stack, sid)
    (notice,) = _to(mails, sub["customer_email"], "해지")
    (copy,) = _to(mails, SHOP_EMAIL, "해지")
    assert notice["subject"] == "[데모상점] 정기결제가 해지되었습니다"
    text = notice["text"]
    start, end = date.fromisoformat(paid["period_start"]), date.fromisoformat(paid["period_end"])
    for line in (
        "처리 결과: 정기결제 해지",
        "해지 방식: 즉시 해지 (남은 기간 환불)",
        f"이용 가능 기간: {today.year}년 {today.month}월 {today.day}일까지",
        f"마지막 결제 금액: 30,000원 ({start.year}년 {start.month}월 {start.day}일 ~ ",
        f"사용 기간: {start.year}년 {start.month}월 {start.day}일 ~ ",
        f"환불 금액 (남은 기간 일할 계산): {refund['refund_amount']:,}원",
        f"환불 취소 번호: {refund['refund_cancellation_id']}",
        f"구독 번호: {sid}",
        f"KCP tno: {paid['tno']}",
        "더 이상 결제되지 않습니다.",
        "처리 결과는 별도 메일로 안내드립니다.",
        "(한국 시간)",
    ):
        assert line in text, line
    assert end > today
    assert ">정기결제 해지</td>" in notice["html"]
    assert copy["subject"] == f"[데모상점] 고객 정기결제 해지: 김고객 ({sid})"
    assert f"고객: 김고객 <{sub['customer_email']}>" in copy["text"]
    # The refund itself is a cancel of the charge's payment: its own outcome emails follow.
    outcome = shop.outcome(refund["refund_cancellation_id"])
    assert outcome["status"] == "SUCCEEDED"


def test_cancelling_at_the_period_end_serves_to_the_last_paid_day_and_refunds_nothing(
    stack: LocalStack, shop: ShopClient
) -> None:
    sub = subscribe(shop, batch_key(stack.env["SANDBOX_URL"]), "2042-09-01").body
    sid = sub["subscription_id"]
    assert bill(stack, "2042-09-01")["charged"] == 1

    _cancel(shop, sid, "PERIOD_END")

    (notice,) = _to(_mails(stack, sid), sub["customer_email"], "해지")
    assert "해지 방식: 이용 기간이 끝날 때 해지" in notice["text"]
    assert "이용 가능 기간: 2042년 9월 30일까지" in notice["text"]
    assert "환불 금액: 0원" in notice["text"]
