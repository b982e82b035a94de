"""The one catalogue of reason codes a cancellation can end with, in plain Korean and English."""

from __future__ import annotations

REASONS: dict[str, dict[str, str]] = {
    "ALREADY_CANCELLED": {
        "ko": "이미 전액 취소된 결제입니다.",
        "en": "The payment is already fully cancelled.",
    },
    "AMOUNT_EXCEEDS_BALANCE": {
        "ko": "요청 금액이 취소 가능 잔액보다 큽니다.",
        "en": "The amount is more than the payment's cancellable balance.",
    },
    "CANCELLED_EXTERNALLY": {
        "ko": "이 결제는 cancelflow 밖(예: KCP 상점관리자)에서 이미 취소되어 "
        "요청한 금액이 남아 있지 않습니다. 결제 내역의 외부 취소를 확인하세요.",
        "en": "The payment was already cancelled outside cancelflow (e.g. in KCP's merchant "
        "admin), so the amount asked for is no longer there; see the payment's external cancel.",
    },
    "CANCELLED_AT_KCP": {
        "ko": "cancelflow 밖(예: KCP 상점관리자)에서 취소되어 KCP의 통보로 기록되었습니다.",
        "en": "Cancelled outside cancelflow (e.g. in KCP's merchant admin); "
        "recorded from KCP's notification.",
    },
    "NOT_DEPOSITED": {
        "ko": "가상계좌 입금 전인 결제입니다. 입금이 확인된 뒤에 취소할 수 있습니다.",
        "en": "The virtual account has not been paid into yet; "
        "a cancel is possible once the deposit arrives.",
    },
    "PAYMENT_NOT_FOUND": {
        "ko": "결제 정보를 찾을 수 없습니다.",
        "en": "The payment could not be found.",
    },
    "GATEWAY_DECLINED": {
        "ko": "KCP가 취소를 거절했습니다. 응답 코드와 안내를 확인하세요.",
        "en": "KCP refused the cancel; see its code and hint.",
    },
    "GATEWAY_UNREACHABLE": {
        "ko": "KCP에 연결하지 못했습니다. 요청은 전송되지 않았으니 다시 시도해도 안전합니다.",
        "en": "KCP could not be reached; nothing was sent, so it is safe to try again.",
    },
    "NOT_APPLIED": {
        "ko": "KCP 조회 결과 취소가 적용되지 않았습니다. 다시 요청해도 안전합니다.",
        "en": "KCP's records show the cancel was not applied; it is safe to request it again.",
    },
    "INQUIRY_FAILED": {
        "ko": "취소 결과를 확인하지 못했습니다. 운영자가 KCP와 확인합니다.",
        "en": "The cancel's outcome could not be confirmed; an operator will check with KCP.",
    },
    "NOT_CONFIRMED": {
        "ko": "KCP 잔액이 아직 바뀌지 않았지만 취소가 늦게 적용될 수 있어 운영자가 확인합니다.",
        "en": "KCP's balance has not changed yet, but the cancel may still apply late; "
        "an operator will check.",
    },
    "BALANCE_MISMATCH": {
        "ko": "KCP 잔액이 예상과 다릅니다. 운영자가 확인합니다.",
        "en": "KCP's balance differs from what we expected; an operator will check.",
    },
    "PAYMENT_BUSY": {
        "ko": "같은 결제의 다른 취소가 처리 중이어서 진행하지 못했습니다. 잠시 후 다시 요청하세요.",
        "en": "Another cancel of this payment was in progress; request it again shortly.",
    },
    "INVALID_REQUEST": {
        "ko": "취소 요청 정보가 올바르지 않아 KCP로 보내지 않았습니다.",
        "en": "The cancel request was invalid and was not sent to KCP.",
    },
    "INTERNAL_ERROR": {
        "ko": "처리 중 오류가 발생했습니다. 금액은 이동하지 않았습니다.",
        "en": "An internal error stopped the cancel before anything was sent.",
    },
    # Eligibility: why a request is not allowed (cancelflow.eligibility).
    "RETURN_REQUIRED": {
        "ko": "이미 발송된 상품은 취소할 수 없습니다. 상품을 받은 뒤 반품을 신청하세요.",
        "en": "The goods have shipped and cannot be cancelled; request a return once they arrive.",
    },
    "RETURN_NOT_RECEIVED": {
        "ko": "반품 상품이 아직 도착하지 않았습니다. 반품이 도착하면 환불됩니다.",
        "en": "The returned goods have not arrived yet; the refund follows once they do.",
    },
    "DELIVERY_TIME_UNKNOWN": {
        "ko": "배송 완료 시각이 없어 반품 기간을 확인할 수 없습니다. "
        "상점이 배송 정보를 갱신해야 합니다.",
        "en": "The delivery time is missing, so the return period cannot be checked; "
        "the shop must update the delivery details.",
    },
    "WITHDRAWAL_PERIOD_EXPIRED": {
        "ko": "청약철회(반품) 기간이 지났습니다. 상품 하자나 오배송만 환불할 수 있습니다.",
        "en": "The withdrawal period has passed; "
        "only defective or wrong items can be refunded now.",
    },
    "WARRANTY_PERIOD_EXPIRED": {
        "ko": "하자·오배송 상품의 반품 기간이 지났습니다. 상점에 문의하세요.",
        "en": "The return period for defective or wrong items has passed; contact the shop.",
    },
    "NON_REFUNDABLE_ITEM": {
        "ko": "단순 변심으로 반품할 수 없는 상품"
        "(예: 사용한 디지털 콘텐츠, 주문 제작 상품)이 포함되어 있습니다.",
        "en": "The order includes goods that cannot be returned for a change of mind "
        "(e.g. digital content already used, custom-made goods).",
    },
    "FEE_EXCEEDS_REFUND": {
        "ko": "반품 배송비가 환불 금액 이상이어서 환불할 금액이 없습니다.",
        "en": "The return shipping fee is as much as the refund, so nothing would be refunded.",
    },
    "MOBILE_PREVIOUS_MONTH": {
        "ko": "휴대폰 결제는 결제한 달(한국 시간) 안에만 취소할 수 있습니다.",
        "en": "Mobile-phone payments can be cancelled only in the month they were made (KST).",
    },
    "REFUND_ACCOUNT_REQUIRED": {
        "ko": "가상계좌·계좌이체 결제는 환불받을 계좌 정보가 필요합니다.",
        "en": "Virtual-account and bank-transfer refunds need the customer's refund account.",
    },
    "ESCROW_PARTIAL_NOT_ALLOWED": {
        "ko": "에스크로 결제는 부분 취소할 수 없습니다. 전액만 취소할 수 있습니다.",
        "en": "Escrow payments cannot be partially cancelled; only the full amount can be.",
    },
    "INVALID_ITEMS": {
        "ko": "취소할 상품 목록이 올바르지 않습니다. "
        "결제의 상품 순번(0부터)을 한 번씩만 지정하세요.",
        "en": "The removed items are invalid: name each of the payment's items once, "
        "by position from 0.",
    },
    "ITEM_ALREADY_REMOVED": {
        "ko": "이미 취소된(또는 취소 처리 중인) 상품이 포함되어 있습니다. "
        "같은 상품은 한 번만 취소할 수 있습니다.",
        "en": "An item named was already removed by an earlier cancellation of this payment "
        "(done or still in progress); an item can be removed only once.",
    },
    "ITEMS_AMOUNT_MISMATCH": {
        "ko": "요청 금액이 취소할 상품 금액의 합계와 다릅니다.",
        "en": "The amount differs from the total of the removed items.",
    },
    "INVALID_AMOUNT": {
        "ko": "취소 금액은 0원보다 커야 합니다.",
        "en": "The amount to cancel must be more than 0 KRW.",
    },
    # Mixed taxation (복합과세, issue 12)
    "TAX_FREE_EXCEEDS_BALANCE": {
        "ko": "요청한 면세 금액이 결제의 취소 가능한 면세 잔액보다 큽니다.",
        "en": "The tax-free amount is more than the payment's cancellable tax-free balance.",
    },
    "TAXABLE_EXCEEDS_BALANCE": {
        "ko": "취소 금액 중 과세 금액(취소 금액 - 면세 금액)이 결제의 취소 가능한 과세 "
        "잔액보다 큽니다. 면세 금액을 더 크게 지정하세요.",
        "en": "The taxable part (amount less tax_free_amount) is more than the payment's "
        "cancellable taxable balance; name a larger tax_free_amount.",
    },
    "TAX_FREE_EXCEEDS_REFUND": {
        "ko": "면세 금액이 환불 금액(반품 배송비 차감 후)보다 큽니다.",
        "en": "The tax-free amount is more than the refund (after any return shipping fee).",
    },
}


# Labels of a decision's breakdown lines (eligibility.Decision.breakdown).
BREAKDOWN: dict[str, dict[str, str]] = {
    "REQUESTED": {"ko": "요청 금액", "en": "Amount requested"},
    "BALANCE": {"ko": "취소 가능 잔액 전체", "en": "All that is left on the payment"},
    "ITEM": {"ko": "취소 상품", "en": "Removed item"},
    "ITEMS": {"ko": "취소 상품 금액", "en": "Removed items"},  # decisions before per-item lines
    "RETURN_SHIPPING_FEE": {"ko": "반품 배송비", "en": "Return shipping fee"},
}


def explain(code: str, lang: str = "ko") -> dict[str, str]:
    text = REASONS.get(code, {}).get(lang) or REASONS.get(code, {}).get("en") or code
    return {"code": code, "message": text}
