"""Billing emails: the customer's receipt, a decline with the next try, and the suspension
(customer and shop), in the shop's language (ko or en)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from cancelflow.kcp import codes
from cancelflow.kernel.email import Email, Letter, day_text, language, moment_text, won
from cancelflow.shops.model import Shop

if TYPE_CHECKING:  # the use cases import this module: types only, no cycle at runtime
    from cancelflow.subscriptions.model import Charge, Subscription

_TEXT = {
    "ko": {
        "receipt": "[{shop}] 정기결제 영수증 ({period})",
        "declined": "[{shop}] 정기결제 승인이 거절되었습니다",
        "suspended": "[{shop}] 정기결제가 중지되었습니다",
        "product": "상품",
        "period": "결제 기간",
        "amount": "결제 금액",
        "when": "승인 시각",
        "card": "결제 수단",
        "order": "주문번호",
        "next": "다음 결제일",
        "reason": "사유",
        "retry": "{day}에 다시 결제를 시도합니다. 카드 한도 또는 유효기간을 확인해 주세요.",
        "stopped": "여러 차례 결제가 거절되어 정기결제가 중지되었습니다. 상점에 문의해 주세요.",
        "shop_intro": "고객의 정기결제가 결제 실패로 중지되었습니다.",
        "shop_suspended": "[{shop}] 고객 정기결제 중지: {customer} ({id})",
        "hint": "조치",
        "id": "구독 번호",
        "footer": "문의는 {shop}({email})로 연락해 주세요.",
    },
    "en": {
        "receipt": "[{shop}] Your subscription receipt ({period})",
        "declined": "[{shop}] Your subscription payment was declined",
        "suspended": "[{shop}] Your subscription is suspended",
        "product": "Product",
        "period": "Period",
        "amount": "Amount",
        "when": "Approved at",
        "card": "Card",
        "order": "Order",
        "next": "Next payment",
        "reason": "Reason",
        "retry": "We will try again on {day}. Please check your card's limit and expiry date.",
        "stopped": "Your subscription is suspended after repeated declines. "
        "Please contact the shop.",
        "shop_intro": "A customer's subscription was suspended after its payments were declined.",
        "shop_suspended": "[{shop}] Subscription suspended: {customer} ({id})",
        "hint": "What to do",
        "id": "Subscription",
        "footer": "Questions? Contact {shop} ({email}).",
    },
}


def for_charge(
    shop: Shop, lang: str, sub: Subscription, charge: Charge, retry_on: date | None
) -> list[Email]:
    """The emails a settled charge sends: a receipt, a decline, or a suspension (two)."""
    lang = language(lang)
    t = _TEXT[lang]
    footer = t["footer"].format(shop=shop.name, email=shop.email)
    facts = [
        (t["product"], sub.product_name),
        (t["period"], charge.period),
        (t["amount"], won(charge.amount, lang)),
        (t["card"], f"****{sub.batch_key_last4}"),
        (t["order"], charge.order_id),
        (t["id"], sub.subscription_id),
    ]
    if charge.status.value == "SUCCEEDED":
        subject = t["receipt"].format(shop=shop.name, period=charge.period)
        if charge.approved_at:
            facts.append((t["when"], moment_text(charge.approved_at, lang)))
        facts.append((t["next"], day_text(sub.next_period_date, lang)))
        return [Letter(subject, facts=tuple(facts), footer=footer).to(sub.customer_email, subject)]
    told = codes.describe(charge.res_cd, charge.res_msg, lang, audience="customer")
    facts.append((t["reason"], told["message"]))
    if retry_on is not None:
        subject = t["declined"].format(shop=shop.name)
        retry = (t["retry"].format(day=day_text(retry_on, lang)),)
        letter = Letter(subject, facts=tuple(facts), closing=retry, footer=footer)
        return [letter.to(sub.customer_email, subject)]
    subject = t["suspended"].format(shop=shop.name)
    stopped = Letter(subject, facts=tuple(facts), closing=(t["stopped"],), footer=footer)
    for_shop = codes.describe(charge.res_cd, charge.res_msg, lang, audience="shop")
    shop_facts = (
        *facts[:-1],
        ("KCP", f"{charge.res_cd} {for_shop['message']}"),
        (t["hint"], for_shop["hint"]),
    )
    shop_subject = t["shop_suspended"].format(
        shop=shop.name, customer=sub.customer_name, id=sub.subscription_id
    )
    to_shop = Letter(t["shop_intro"], facts=shop_facts).to(shop.email, shop_subject)
    return [stopped.to(sub.customer_email, subject), to_shop]
