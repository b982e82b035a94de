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
}


def explain(code: str, lang: str = "ko") -> dict[str, str]:
    text = REASONS.get(code, {}).get(lang) or REASONS.get(code, {}).get("en") or code
    return {"code": code, "message": text}
