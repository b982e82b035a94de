"""Billing emails, each its own: the receipt, a decline with the next try, the suspension and the
cancellation, to the customer and, with its own subject and content, to the shop. Text and HTML
(kernel/email.py's Letter), in the shop's language (ko or en): the status in words, amounts in
원 with how they were reached, times in KST, and the ids a support person looks up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from cancelflow.kcp import codes
from cancelflow.kernel.email import Email, Letter, Mailer, day_text, language, moment_text, won
from cancelflow.shops.model import Shop
from cancelflow.subscriptions.schedule import today_kst

if TYPE_CHECKING:  # the use cases import this module: types only, no cycle at runtime
    from cancelflow.subscriptions.model import Charge, Subscription

logger = logging.getLogger(__name__)

_TEXT = {
    "ko": {
        "receipt": "[{shop}] 정기결제 영수증 ({period})",
        "declined": "[{shop}] 정기결제 승인이 거절되었습니다",
        "suspended": "[{shop}] 정기결제가 중지되었습니다",
        "cancelled": "[{shop}] 정기결제가 해지되었습니다",
        "shop_receipt": "[{shop}] 고객 정기결제 승인: {customer} ({id}, {period})",
        "shop_declined": "[{shop}] 고객 정기결제 승인 실패: {customer} ({id}, {attempt}회차)",
        "shop_suspended": "[{shop}] 고객 정기결제 중지: {customer} ({id})",
        "shop_cancelled": "[{shop}] 고객 정기결제 해지: {customer} ({id})",
        "intro_receipt": "정기결제가 승인되었습니다. 영수증으로 보관해 주세요.",
        "intro_declined": "정기결제 승인이 카드사에서 거절되었습니다.",
        "intro_cancelled": "요청하신 정기결제 해지가 완료되었습니다.",
        "shop_intro_receipt": "고객의 정기결제가 승인되었습니다.",
        "shop_intro_declined": "고객의 정기결제 승인이 거절되었습니다. "
        "다음 시도 일정이 잡혀 있습니다.",
        "shop_intro": "고객의 정기결제가 결제 실패로 중지되었습니다.",
        "shop_intro_cancelled": "고객의 정기결제가 해지되었습니다.",
        "status": "처리 결과",
        "status_receipt": "결제 완료",
        "status_declined": "결제 거절 (다시 시도 예정)",
        "status_suspended": "정기결제 중지",
        "status_cancelled": "정기결제 해지",
        "product": "상품",
        "period": "결제 기간",
        "days": "{start} ~ {end}",
        "amount": "결제 금액",
        "declined_amount": "승인 요청 금액",
        "when": "승인 시각",
        "declined_at": "거절 시각",
        "cancelled_at": "해지 시각",
        "card": "결제 수단",
        "order": "주문번호",
        "attempt": "시도 회차",
        "attempt_n": "{n}회차",
        "next": "다음 결제일",
        "next_try": "다음 시도일",
        "reason": "사유",
        "customer": "고객",
        "how": "해지 방식",
        "PERIOD_END": "이용 기간이 끝날 때 해지",
        "IMMEDIATELY": "즉시 해지 (남은 기간 환불)",
        "service_until": "이용 가능 기간",
        "until": "{day}까지",
        "paid": "마지막 결제 금액",
        "used": "사용 기간",
        "refund": "환불 금액 (남은 기간 일할 계산)",
        "no_refund": "환불 금액",
        "refund_case": "환불 취소 번호",
        "refund_note": "환불은 결제 취소로 진행되며, 처리 결과는 별도 메일로 안내드립니다.",
        "no_charge": "더 이상 결제되지 않습니다.",
        "retry": "{day}에 다시 결제를 시도합니다. 카드 한도 또는 유효기간을 확인해 주세요.",
        "stopped": "여러 차례 결제가 거절되어 정기결제가 중지되었습니다. 상점에 문의해 주세요.",
        "hint": "조치",
        "id": "구독 번호",
        "footer": "문의는 {shop}({email})로 연락해 주세요.",
    },
    "en": {
        "receipt": "[{shop}] Your subscription receipt ({period})",
        "declined": "[{shop}] Your subscription payment was declined",
        "suspended": "[{shop}] Your subscription is suspended",
        "cancelled": "[{shop}] Your subscription is cancelled",
        "shop_receipt": "[{shop}] Subscription charged: {customer} ({id}, {period})",
        "shop_declined": "[{shop}] Subscription charge failed: "
        "{customer} ({id}, attempt {attempt})",
        "shop_suspended": "[{shop}] Subscription suspended: {customer} ({id})",
        "shop_cancelled": "[{shop}] Subscription cancelled: {customer} ({id})",
        "intro_receipt": "Your subscription payment went through. Keep this as your receipt.",
        "intro_declined": "Your card issuer declined your subscription payment.",
        "intro_cancelled": "Your subscription is cancelled, as you asked.",
        "shop_intro_receipt": "A customer's subscription was charged.",
        "shop_intro_declined": "A customer's subscription charge was declined; "
        "another try is scheduled.",
        "shop_intro": "A customer's subscription was suspended after its payments were declined.",
        "shop_intro_cancelled": "A customer's subscription was cancelled.",
        "status": "Status",
        "status_receipt": "Paid",
        "status_declined": "Declined (will be tried again)",
        "status_suspended": "Suspended",
        "status_cancelled": "Cancelled",
        "product": "Product",
        "period": "Period",
        "days": "{start} to {end}",
        "amount": "Amount",
        "declined_amount": "Amount asked",
        "when": "Approved at",
        "declined_at": "Declined at",
        "cancelled_at": "Cancelled at",
        "card": "Card",
        "order": "Order",
        "attempt": "Attempt",
        "attempt_n": "{n}",
        "next": "Next payment",
        "next_try": "Next try",
        "reason": "Reason",
        "customer": "Customer",
        "how": "Cancelled",
        "PERIOD_END": "At the end of the paid period",
        "IMMEDIATELY": "Immediately (the rest of the period refunded)",
        "service_until": "Service until",
        "until": "{day}",
        "paid": "Last payment",
        "used": "Used",
        "refund": "Refund (the unused days, pro rata)",
        "no_refund": "Refund",
        "refund_case": "Refund cancellation",
        "refund_note": "The refund is made as a cancel of your payment; "
        "you will get its outcome in a separate email.",
        "no_charge": "Nothing more will be charged.",
        "retry": "We will try again on {day}. Please check your card's limit and expiry date.",
        "stopped": "Your subscription is suspended after repeated declines. "
        "Please contact the shop.",
        "hint": "What to do",
        "id": "Subscription",
        "footer": "Questions? Contact {shop} ({email}).",
    },
}


def _days(t: dict[str, str], start: date, end: date, lang: str) -> str:
    """A half-open period (end is the next period's date) as the days it covers."""
    last = max(start, end - timedelta(days=1))
    return t["days"].format(start=day_text(start, lang), end=day_text(last, lang))


def _shop_facts(t: dict[str, str], sub: Subscription) -> list[tuple[str, str]]:
    # The shop's own customer: it reads who, to answer them.
    return [(t["customer"], f"{sub.customer_name} <{sub.customer_email}>")]


def for_charge(
    shop: Shop, lang: str, sub: Subscription, charge: Charge, retry_on: date | None
) -> list[Email]:
    """The emails a settled charge sends, the customer's and the shop's: a receipt, a decline,
    or a suspension. `sub` is the subscription as it was charged."""
    lang = language(lang)
    t = _TEXT[lang]
    footer = t["footer"].format(shop=shop.name, email=shop.email)
    period = _days(t, sub.period_date, sub.next_period_date, lang)
    ids = [(t["order"], charge.order_id), (t["id"], sub.subscription_id)]
    card = (t["card"], f"****{sub.batch_key_last4}")
    if charge.status.value == "SUCCEEDED":
        subject = t["receipt"].format(shop=shop.name, period=charge.period)
        facts = [
            (t["status"], t["status_receipt"]),
            (t["product"], sub.product_name),
            (t["period"], period),
            (t["amount"], won(charge.amount, lang)),
            card,
        ]
        if charge.approved_at:
            facts.append((t["when"], moment_text(charge.approved_at, lang)))
        facts += [(t["next"], day_text(sub.next_period_date, lang)), *ids]
        if charge.tno:
            facts.append(("KCP tno", charge.tno))
        receipt = Letter(subject, (t["intro_receipt"],), tuple(facts), footer=footer)
        shop_subject = t["shop_receipt"].format(
            shop=shop.name, customer=sub.customer_name, id=sub.subscription_id, period=charge.period
        )
        shop_copy = Letter(t["shop_intro_receipt"], facts=(*_shop_facts(t, sub), *facts))
        return [receipt.to(sub.customer_email, subject), shop_copy.to(shop.email, shop_subject)]
    told = codes.describe(charge.res_cd, charge.res_msg, lang, audience="customer")
    for_shop = codes.describe(charge.res_cd, charge.res_msg, lang, audience="shop")
    status = t["status_declined"] if retry_on is not None else t["status_suspended"]
    facts = [
        (t["status"], status),
        (t["product"], sub.product_name),
        (t["period"], period),
        (t["declined_amount"], won(charge.amount, lang)),
        card,
        (t["declined_at"], moment_text(charge.updated_at, lang)),
        (t["attempt"], t["attempt_n"].format(n=charge.attempt)),
        *ids,
    ]
    kcp = [("KCP", f"{charge.res_cd} {for_shop['message']}"), (t["hint"], for_shop["hint"])]
    customer_facts = (*facts, (t["reason"], told["message"]))
    if retry_on is not None:
        subject = t["declined"].format(shop=shop.name)
        retry = (t["retry"].format(day=day_text(retry_on, lang)),)
        letter = Letter(subject, (t["intro_declined"],), customer_facts, retry, footer)
        shop_subject = t["shop_declined"].format(
            shop=shop.name,
            customer=sub.customer_name,
            id=sub.subscription_id,
            attempt=charge.attempt,
        )
        next_try = (t["next_try"], day_text(retry_on, lang))
        shop_copy = Letter(
            t["shop_intro_declined"], facts=(*_shop_facts(t, sub), *facts, next_try, *kcp)
        )
        return [letter.to(sub.customer_email, subject), shop_copy.to(shop.email, shop_subject)]
    subject = t["suspended"].format(shop=shop.name)
    stopped = Letter(subject, facts=customer_facts, closing=(t["stopped"],), footer=footer)
    shop_subject = t["shop_suspended"].format(
        shop=shop.name, customer=sub.customer_name, id=sub.subscription_id
    )
    to_shop = Letter(t["shop_intro"], facts=(*_shop_facts(t, sub), *facts, *kcp))
    return [stopped.to(sub.customer_email, subject), to_shop.to(shop.email, shop_subject)]


def for_cancellation(shop: Shop, lang: str, sub: Subscription) -> list[Email]:
    """The customer's and the shop's email when a subscription is cancelled: until when it
    serves, and what is refunded and how that amount was reached (`sub` is as cancelled)."""
    lang = language(lang)
    t = _TEXT[lang]
    footer = t["footer"].format(shop=shop.name, email=shop.email)
    paid = sub.last_paid
    cancelled_at = sub.cancelled_at or sub.updated_at
    facts = [
        (t["status"], t["status_cancelled"]),
        (t["product"], sub.product_name),
        (t["how"], t.get(sub.cancel_when, sub.cancel_when)),
        (t["cancelled_at"], moment_text(cancelled_at, lang)),
    ]
    if sub.service_until is not None:
        # PERIOD_END serves up to the paid period's end (the next period's date, not served);
        # IMMEDIATELY up to the day of cancellation, which counts as used.
        last = sub.service_until
        if paid is not None and sub.cancel_when == "PERIOD_END" and last == paid.end:
            last = max(paid.start, paid.end - timedelta(days=1))
        facts.append((t["service_until"], t["until"].format(day=day_text(last, lang))))
    closing = [t["no_charge"]]
    if paid is not None and sub.refund_amount > 0:
        facts += [
            (t["paid"], f"{won(paid.amount, lang)} ({_days(t, paid.start, paid.end, lang)})"),
            (t["used"], _used(t, paid.start, cancelled_at, lang)),
            (t["refund"], won(sub.refund_amount, lang)),
        ]
        if sub.refund_cancellation_id:
            facts.append((t["refund_case"], sub.refund_cancellation_id))
        closing.append(t["refund_note"])
    else:
        facts.append((t["no_refund"], won(0, lang)))
    facts.append((t["id"], sub.subscription_id))
    if paid is not None and paid.tno:
        facts.append(("KCP tno", paid.tno))
    subject = t["cancelled"].format(shop=shop.name)
    letter = Letter(subject, (t["intro_cancelled"],), tuple(facts), tuple(closing), footer)
    shop_subject = t["shop_cancelled"].format(
        shop=shop.name, customer=sub.customer_name, id=sub.subscription_id
    )
    shop_copy = Letter(t["shop_intro_cancelled"], facts=(*_shop_facts(t, sub), *facts))
    return [letter.to(sub.customer_email, subject), shop_copy.to(shop.email, shop_subject)]


def _used(t: dict[str, str], start: date, cancelled_at: datetime, lang: str) -> str:
    end = today_kst(cancelled_at) + timedelta(days=1)  # the day of cancellation is used
    return _days(t, start, max(end, start + timedelta(days=1)), lang)


def cancellation_notice(mailer: Mailer, shop: Shop, lang: str) -> Callable[[Subscription], None]:
    """Send the cancellation's emails (service.cancel calls it once). Mail never changes the
    outcome: a failure is logged, the cancel stands."""

    def send(sub: Subscription) -> None:
        try:
            for email in for_cancellation(shop, lang, sub):
                mailer.send(email)
        except Exception:
            logger.exception(
                "cancellation email failed", extra={"subscription_id": sub.subscription_id}
            )

    return send
