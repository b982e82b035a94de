"""Billing emails in the shop's other language, and what a buyer typed never becomes markup."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cancelflow.shops.model import Shop
from cancelflow.subscriptions import emails
from cancelflow.subscriptions.model import (
    CancelWhen,
    Charge,
    ChargeStatus,
    PaidPeriod,
    Status,
    Subscription,
)
from cancelflow.subscriptions.schedule import Cycle

SHOP = Shop("shop-a", "Linen & Co", "ops@linen.example")
AT = datetime(2026, 12, 3, 0, 0, 2, tzinfo=UTC)  # 09:00 KST


def _sub(**fields: object) -> Subscription:
    base = Subscription(
        shop_id="shop-a",
        subscription_id="sub_1",
        status=Status.ACTIVE,
        customer_name="Kim <b>",
        customer_email="sky@example.com",
        product_name="<script>alert(1)</script> beans",
        amount=9900,
        cycle=Cycle.MONTHLY,
        anchor_day=3,
        batch_key_ref="sealed",
        batch_key_last4="a1b2",
        period_date=date(2026, 12, 3),
        created_at=AT,
        updated_at=AT,
    )
    return base.__class__(**{**base.__dict__, **fields})  # type: ignore[arg-type]


def _charge(status: ChargeStatus, **fields: object) -> Charge:
    base = Charge(
        shop_id="shop-a",
        subscription_id="sub_1",
        period="2026-12",
        attempt=1,
        order_id="sub_1-2026-12-1",
        amount=9900,
        status=status,
        billing_date=date(2026, 12, 3),
        created_at=AT,
        updated_at=AT,
    )
    return base.__class__(**{**base.__dict__, **fields})  # type: ignore[arg-type]


def test_an_english_receipt_shows_won_kst_and_the_ids_and_the_shop_gets_its_own() -> None:
    charged = _charge(ChargeStatus.SUCCEEDED, tno="20261203000001", approved_at=AT)
    receipt, copy = emails.for_charge(SHOP, "en", _sub(), charged, None)
    assert receipt.subject == "[Linen & Co] Your subscription receipt (2026-12)"
    for line in (
        "Status: Paid",
        "Amount: KRW 9,900",
        "Period: 3 Dec 2026 to 2 Jan 2027",
        "Approved at: 3 Dec 2026, 09:00 KST",
        "Order: sub_1-2026-12-1",
        "KCP tno: 20261203000001",
    ):
        assert line in receipt.body, line
    assert copy.to == "ops@linen.example" and copy.subject.startswith("[Linen & Co] Subscription")
    assert "Customer: Kim <b> <sky@example.com>" in copy.body


def test_nothing_a_buyer_typed_becomes_markup_in_the_html_part() -> None:
    declined = _charge(ChargeStatus.DECLINED, res_cd="SB05", res_msg="한도 초과")
    notice, copy = emails.for_charge(SHOP, "ko", _sub(), declined, date(2026, 12, 4))
    assert "<script>" not in notice.html and "&lt;script&gt;" in notice.html
    assert "Kim <b>" not in copy.html and "Kim &lt;b&gt;" in copy.html
    assert "2026년 12월 4일에 다시 결제를 시도합니다" in notice.body


def test_an_english_cancellation_shows_the_refund_and_how_it_was_reached() -> None:
    paid = PaidPeriod("2026-12", "20261203000001", 31000, date(2026, 12, 3), date(2027, 1, 3), AT)
    cancelled = _sub(
        status=Status.CANCELLED,
        last_paid=paid,
        cancel_when=CancelWhen.IMMEDIATELY.value,
        cancelled_at=datetime(2026, 12, 12, 3, tzinfo=UTC),
        service_until=date(2026, 12, 12),
        refund_amount=21000,
        refund_cancellation_id="cnl_9",
    )
    notice, copy = emails.for_cancellation(SHOP, "en", cancelled)
    for line in (
        "Status: Cancelled",
        "Cancelled: Immediately (the rest of the period refunded)",
        "Service until: 12 Dec 2026",
        "Last payment: KRW 31,000 (3 Dec 2026 to 2 Jan 2027)",
        "Used: 3 Dec 2026 to 12 Dec 2026",
        "Refund (the unused days, pro rata): KRW 21,000",
        "Refund cancellation: cnl_9",
        "Cancelled at: 12 Dec 2026, 12:00 KST",
    ):
        assert line in notice.body, line
    assert copy.subject == "[Linen & Co] Subscription cancelled: Kim <b> (sub_1)"
