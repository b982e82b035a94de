"""Outcome emails: what the customer and the shop read when a cancel ends."""

from __future__ import annotations

from cancelflow.cancellations.model import Cancellation, CancellationStatus
from cancelflow.kernel.clock import to_kst_text
from cancelflow.kernel.email import Email, won
from cancelflow.kernel.reasons import explain
from cancelflow.payments.model import Payment
from cancelflow.shops.model import Shop

_SUBJECTS = {
    "ko": {
        CancellationStatus.SUCCEEDED: "[{shop}] 결제 취소가 완료되었습니다",
        CancellationStatus.REJECTED: "[{shop}] 결제 취소 요청이 거절되었습니다",
        CancellationStatus.FAILED: "[{shop}] 결제 취소를 처리하지 못했습니다",
        CancellationStatus.NEEDS_REVIEW: "[{shop}] 결제 취소를 확인 중입니다",
    },
    "en": {
        CancellationStatus.SUCCEEDED: "[{shop}] Your payment was cancelled",
        CancellationStatus.REJECTED: "[{shop}] Your cancellation request was declined",
        CancellationStatus.FAILED: "[{shop}] Your cancellation could not be completed",
        CancellationStatus.NEEDS_REVIEW: "[{shop}] We are checking your cancellation",
    },
}

_LABELS = {
    "ko": {
        "product": "상품",
        "order": "주문번호",
        "amount": "취소 금액",
        "item": "취소 상품",
        "status": "처리 결과",
        "reason": "사유",
        "when": "처리 시각",
        "id": "취소 번호",
        "balance": "남은 결제 금액",
        "footer": "문의는 {shop}({email})로 연락해 주세요.",
        "shop_intro": "고객 결제의 취소 처리 결과입니다.",
        "corrected": "앞서 안내드린 결과를 정정합니다. KCP 확인 결과 취소가 완료되었습니다.",
        "corrected_unsent": "앞서 확인 중으로 안내드린 취소 요청은 KCP에 전달되지 않았습니다. "
        "결제는 취소되지 않았으며, 다시 요청하셔도 안전합니다.",
    },
    "en": {
        "product": "Product",
        "order": "Order",
        "amount": "Amount cancelled",
        "item": "Removed item",
        "status": "Outcome",
        "reason": "Reason",
        "when": "Time",
        "id": "Cancellation",
        "balance": "Remaining paid amount",
        "footer": "Questions? Contact {shop} ({email}).",
        "shop_intro": "The outcome of a cancellation of a customer's payment.",
        "corrected": "This corrects our earlier message: KCP confirms the cancel was made.",
        "corrected_unsent": "The cancel we were checking never reached KCP: nothing was "
        "refunded, and it is safe to request it again.",
    },
}


def outcome_emails(
    shop: Shop, payment: Payment, cancellation: Cancellation, lang: str = "ko"
) -> list[Email]:
    """The customer's and the shop's email for a settled cancellation, in the shop's language."""
    lang = lang if lang in _SUBJECTS else "ko"
    labels = _LABELS[lang]
    subject = _SUBJECTS[lang][cancellation.status].format(shop=shop.name)
    refunded = (
        (cancellation.amount or 0) if cancellation.status is CancellationStatus.SUCCEEDED else 0
    )
    lines = []
    if cancellation.corrected_from:
        succeeded = cancellation.status is CancellationStatus.SUCCEEDED
        lines = [labels["corrected" if succeeded else "corrected_unsent"], ""]
    lines += [
        f"{labels['product']}: {payment.product_name}",
        f"{labels['order']}: {payment.order_id}",
        f"{labels['amount']}: {won(refunded, lang)}",
    ]
    lines += [
        f"{labels['item']}: {line.name} × {line.quantity} ({won(line.amount, lang)})"
        for line in cancellation.breakdown
        if line.item is not None
    ]
    lines += [f"{labels['status']}: {cancellation.status.value}"]
    lines += [
        f"{labels['reason']}: {explain(code, lang)['message']}" for code in cancellation.reasons
    ]
    lines += [
        f"{labels['when']}: {to_kst_text(cancellation.updated_at)}",
        f"{labels['id']}: {cancellation.cancellation_id}",
    ]
    footer = labels["footer"].format(shop=shop.name, email=shop.email)
    customer = Email(payment.buyer_email, subject, "\n".join([*lines, "", footer]) + "\n")
    shop_lines = [labels["shop_intro"], "", f"tno: {payment.tno}", *lines]
    if cancellation.res_cd:
        shop_lines.append(f"KCP: {cancellation.res_cd} {cancellation.res_msg}")
    shop_copy = Email(shop.email, subject, "\n".join(shop_lines) + "\n")
    return [customer, shop_copy]
