"""Outcome emails: what the customer and the shop read when a cancel ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cancelflow.cancellations.model import Cancellation, CancellationStatus
from cancelflow.kernel.email import Email, Letter, Mailer, language, moment_text, won
from cancelflow.kernel.reasons import BREAKDOWN, explain
from cancelflow.payments.model import Payment
from cancelflow.shops.model import Shop

if TYPE_CHECKING:
    from cancelflow.cancellations.ports import CancellationStore

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
        "requested": "요청 사유",
        "footer": "문의는 {shop}({email})로 연락해 주세요.",
        "shop_intro": "고객 결제의 취소 처리 결과입니다.",
        "shop_subject": "[{shop}] 고객 결제 취소 결과: {status} (주문 {order})",
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
        "requested": "Reason given",
        "footer": "Questions? Contact {shop} ({email}).",
        "shop_intro": "The outcome of a cancellation of a customer's payment.",
        "shop_subject": "[{shop}] Cancellation outcome: {status} (order {order})",
        "corrected": "This corrects our earlier message: KCP confirms the cancel was made.",
        "corrected_unsent": "The cancel we were checking never reached KCP: nothing was "
        "refunded, and it is safe to request it again.",
    },
}

# The outcome in words: a customer never reads an enum.
_STATUS = {
    "ko": {
        CancellationStatus.SUCCEEDED: "취소 완료",
        CancellationStatus.REJECTED: "취소 거절",
        CancellationStatus.FAILED: "처리하지 못함",
        CancellationStatus.NEEDS_REVIEW: "확인 중",
    },
    "en": {
        CancellationStatus.SUCCEEDED: "Cancelled",
        CancellationStatus.REJECTED: "Declined",
        CancellationStatus.FAILED: "Not completed",
        CancellationStatus.NEEDS_REVIEW: "Being checked",
    },
}


def outcome_emails(
    shop: Shop, payment: Payment, cancellation: Cancellation, lang: str = "ko"
) -> list[Email]:
    """The customer's and the shop's email for a settled cancellation, in the shop's language."""
    lang = language(lang)
    labels = _LABELS[lang]
    status = cancellation.status
    succeeded = status is CancellationStatus.SUCCEEDED
    subject = _SUBJECTS[lang][status].format(shop=shop.name)
    lead: tuple[str, ...] = ()
    if cancellation.corrected_from:
        lead = (labels["corrected" if succeeded else "corrected_unsent"],)
    facts = [(labels["product"], payment.product_name), (labels["order"], payment.order_id)]
    if succeeded:  # how the refund was reached: what was asked, a fee deducted, the items
        for line in cancellation.breakdown:
            if line.item is not None:
                item = f"{line.name} × {line.quantity} ({won(line.amount, lang)})"
                facts.append((labels["item"], item))
            elif len(cancellation.breakdown) > 1:
                label = BREAKDOWN.get(line.code, {}).get(lang, line.code)
                facts.append((label, won(line.amount, lang)))
    refunded = (cancellation.amount or 0) if succeeded else 0
    facts += [(labels["amount"], won(refunded, lang)), (labels["status"], _STATUS[lang][status])]
    facts += [(labels["reason"], explain(code, lang)["message"]) for code in cancellation.reasons]
    if cancellation.reason:
        facts.append((labels["requested"], cancellation.reason))
    facts += [
        (labels["when"], moment_text(cancellation.updated_at, lang)),
        (labels["id"], cancellation.cancellation_id),
    ]
    footer = labels["footer"].format(shop=shop.name, email=shop.email)
    customer = Letter(subject, lead, tuple(facts), footer=footer).to(payment.buyer_email, subject)
    shop_facts = [("tno", payment.tno), *facts]
    if cancellation.res_cd:
        shop_facts.append(("KCP", f"{cancellation.res_cd} {cancellation.res_msg}"))
    shop_subject = labels["shop_subject"].format(
        shop=shop.name, status=_STATUS[lang][status], order=payment.order_id
    )
    to_shop = Letter(labels["shop_intro"], lead, tuple(shop_facts)).to(shop.email, shop_subject)
    return [customer, to_shop]


def send_outcome(
    store: CancellationStore, mailer: Mailer, shop: Shop, cancellation_id: str, lang: str
) -> int:
    """Mail a settled cancellation's outcome (the Notify step, and a batch's lane): how many."""
    cancellation = store.get_cancellation(shop.shop_id, cancellation_id)
    payment = store.get_payment(shop.shop_id, cancellation.tno) if cancellation else None
    if cancellation is None or payment is None:
        raise LookupError("cancellation or payment vanished")
    emails = outcome_emails(shop, payment, cancellation, lang)
    for email in emails:
        mailer.send(email)
    return len(emails)
