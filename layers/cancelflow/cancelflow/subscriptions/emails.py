"""Billing emails: the customer's receipt, a decline with the next try, and the suspension
(customer and shop), in the shop's language (ko or en)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from cancelflow.kcp import codes
from cancelflow.kernel.clock import to_kst_text
from cancelflow.kernel.email import Email, won
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
        "id": "Subscription",
        "footer": "Questions? Contact {shop} ({email}).",
    },
}


def for_charge(
    shop: Shop, language: str, sub: Subscription, charge: Charge, retry_on: date | None
) -> list[Email]:
    """The emails a settled charge sends: a receipt, a decline, or a suspension (two)."""
    lang = language if language in _TEXT else "ko"
    t = _TEXT[lang]
    footer = t["footer"].format(shop=shop.name, email=shop.email)
    lines = [
        f"{t['product']}: {sub.product_name}",
        f"{t['period']}: {charge.period}",
        f"{t['amount']}: {won(charge.amount, lang)}",
        f"{t['card']}: ****{sub.batch_key_last4}",
        f"{t['order']}: {charge.order_id}",
        f"{t['id']}: {sub.subscription_id}",
    ]
    if charge.status.value == "SUCCEEDED":
        subject = t["receipt"].format(shop=shop.name, period=charge.period)
        if charge.approved_at:
            lines.append(f"{t['when']}: {to_kst_text(charge.approved_at)}")
        lines.append(f"{t['next']}: {sub.next_period_date.isoformat()}")
        return [Email(sub.customer_email, subject, "\n".join([*lines, "", footer]) + "\n")]
    told = codes.describe(charge.res_cd, charge.res_msg, lang, audience="customer")
    lines.append(f"{t['reason']}: {told['message']}")
    if retry_on is not None:
        subject = t["declined"].format(shop=shop.name)
        body = [*lines, "", t["retry"].format(day=retry_on.isoformat()), "", footer]
        return [Email(sub.customer_email, subject, "\n".join(body) + "\n")]
    subject = t["suspended"].format(shop=shop.name)
    customer = Email(sub.customer_email, subject, "\n".join([*lines, "", t["stopped"], "", footer]))
    for_shop = codes.describe(charge.res_cd, charge.res_msg, lang, audience="shop")
    shop_lines = [
        t["shop_intro"],
        "",
        *lines[:-1],
        f"KCP: {charge.res_cd} {for_shop['message']}",
        f"hint: {for_shop['hint']}",
    ]
    return [customer, Email(shop.email, subject, "\n".join(shop_lines) + "\n")]
