"""KCP result codes: the one catalogue of what each res_cd means for the shop and the customer.

Only KCP's res_cd values live here. The client's own outcomes (timeouts, 5xx, connection errors)
are not res_cds: they are Outcome.UNKNOWN / Outcome.NOT_SENT with a detail, see gateway/port.py.
KCP publishes no official list; codes marked "(sandbox; KCP's code unconfirmed)" are invented by
local/kcp_sandbox.py for cases where KCP's real code is unknown. They start with "SB" so they can
never be mistaken for (or collide with) a real KCP code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    SUCCESS = "SUCCESS"
    # Nothing moved and the same request may succeed later, possibly after someone fixes a setting.
    RETRYABLE = "RETRYABLE"
    # Refused for this transaction: sending the same request again gets the same refusal.
    DEFINITIVE = "DEFINITIVE"


@dataclass(frozen=True)
class CodeInfo:
    category: Category
    shop_ko: str
    shop_en: str
    customer_ko: str
    customer_en: str
    # What to do next, for the shop operator.
    hint_ko: str
    hint_en: str


_CUSTOMER_FAILED_KO = "요청을 처리하지 못했습니다. 상점에 문의해 주세요."
_CUSTOMER_FAILED_EN = "We could not process your request. Please contact the shop."
_CUSTOMER_LATER_KO = "일시적으로 처리하지 못했습니다. 잠시 후 다시 안내드리겠습니다."
_CUSTOMER_LATER_EN = "We could not process this right now. We will get back to you shortly."

CATALOGUE: dict[str, CodeInfo] = {
    "0000": CodeInfo(
        Category.SUCCESS,
        "정상 처리되었습니다.",
        "Processed successfully.",
        "정상 처리되었습니다.",
        "Done.",
        "조치할 필요가 없습니다.",
        "Nothing to do.",
    ),
    # --- codes seen in public KCP sources ---
    "8012": CodeInfo(
        Category.RETRYABLE,
        "취소 거절: 서버 IP가 KCP 상점관리자에 등록되어 있지 않습니다.",
        "Cancel refused: this server's IP is not registered in KCP's merchant admin.",
        _CUSTOMER_LATER_KO,
        _CUSTOMER_LATER_EN,
        "이 스택의 외부 송신 IP(NAT Elastic IP)를 KCP 상점관리자에 등록한 뒤 재시도하세요.",
        "Register the stack's egress (NAT Elastic) IP in KCP's merchant admin, then retry.",
    ),
    "8094": CodeInfo(
        Category.DEFINITIVE,
        "중복 요청입니다 (휴대폰 결제).",
        "Duplicate request (mobile payment).",
        _CUSTOMER_FAILED_KO,
        _CUSTOMER_FAILED_EN,
        "같은 요청이 이미 처리되었을 수 있습니다. 다른 조치를 하기 전에 먼저 거래를 조회하세요.",
        "An identical earlier request may have been applied: inquire the transaction before "
        "doing anything else.",
    ),
    "8128": CodeInfo(
        Category.DEFINITIVE,
        "중복 카드 거래가 거절되었습니다.",
        "Duplicate card transaction refused.",
        _CUSTOMER_FAILED_KO,
        _CUSTOMER_FAILED_EN,
        "같은 요청이 이미 처리되었을 수 있습니다. 거래를 조회해 확인하세요.",
        "An identical earlier request may have been applied: inquire the transaction.",
    ),
    "8338": CodeInfo(
        Category.DEFINITIVE,
        "중복된 주문번호입니다.",
        "Duplicate order number (ordr_idxx).",
        _CUSTOMER_FAILED_KO,
        _CUSTOMER_FAILED_EN,
        "이 주문번호로 KCP에 이미 결제가 있습니다. 다시 결제하지 말고 기존 결제를 조회하세요.",
        "A charge with this order id already exists at KCP: look it up instead of charging again.",
    ),
    "8739": CodeInfo(
        Category.DEFINITIVE,
        "중복된 주문번호입니다.",
        "Duplicate order number.",
        _CUSTOMER_FAILED_KO,
        _CUSTOMER_FAILED_EN,
        "이 주문번호로 KCP에 이미 거래가 있습니다. 다시 보내지 말고 기존 거래를 조회하세요.",
        "A transaction with this order id already exists at KCP: look it up instead of resending.",
    ),
    "8742": CodeInfo(  # inferred from public sources
        Category.DEFINITIVE,
        "에스크로 결제는 부분취소할 수 없습니다.",
        "Escrow payments cannot be partially cancelled.",
        "에스크로 결제는 부분 환불이 불가능합니다. 상점에 문의해 주세요.",
        "Escrow payments cannot be partially refunded. Please contact the shop.",
        "결제 전체를 취소한 뒤 남길 금액만 다시 결제하거나, KCP를 거치지 않고 정산하세요.",
        "Cancel the whole payment (and re-charge what is kept) or settle outside KCP.",
    ),
    # --- (sandbox; KCP's code unconfirmed) — invented by local/kcp_sandbox.py ---
    "SB01": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "취소 요청 금액이 취소 가능 잔액을 초과합니다.",
        "Cancel amount exceeds the cancellable balance.",
        _CUSTOMER_FAILED_KO,
        _CUSTOMER_FAILED_EN,
        "결제를 조회해 현재 취소 가능 잔액을 확인하고, 그 금액 이내로 취소하세요.",
        "Inquire the payment for its current balance and cancel at most that.",
    ),
    "SB02": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "이미 전액 취소된 거래입니다.",
        "The transaction is already fully cancelled.",
        "이미 취소된 결제입니다.",
        "This payment is already cancelled.",
        "이미 취소가 반영되었습니다(운영자가 직접 취소했을 수 있습니다). "
        "처리 기록과 KCP 통보를 확인하세요.",
        "Check the journal and KCP notifications: a cancel was already applied (maybe by hand).",
    ),
    "SB03": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "휴대폰 결제는 결제한 달에만 취소할 수 있습니다.",
        "Mobile payments can only be cancelled within the calendar month of payment.",
        "휴대폰 결제는 결제한 달이 지나 취소할 수 없습니다. 상점에 문의해 주세요.",
        "This mobile payment can no longer be cancelled. Please contact the shop.",
        "KCP를 거치지 않고 계좌이체로 환불한 뒤, 환불 내역을 직접 기록하세요.",
        "Refund by bank transfer outside KCP and record it by hand.",
    ),
    "SB04": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.RETRYABLE,
        "인증서 또는 서명 검증에 실패했습니다.",
        "Certificate or signature verification failed.",
        _CUSTOMER_LATER_KO,
        _CUSTOMER_LATER_EN,
        "시크릿 저장소에 있는 상점의 KCP 인증서, 개인키, 비밀번호를 확인하세요.",
        "Check the merchant's KCP certificate, private key and password in the secret store.",
    ),
    "SB05": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.RETRYABLE,
        "카드 잔액(한도)이 부족합니다.",
        "Insufficient card balance or limit.",
        "카드 잔액 또는 한도가 부족합니다.",
        "Your card's balance or limit is insufficient.",
        "고객에게 잔액 충전이나 카드 변경을 요청하고, 나중에 결제를 재시도하세요.",
        "Ask the customer to top up or change card; retry the charge later.",
    ),
    "SB06": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "유효기간이 만료된 카드입니다.",
        "The card has expired.",
        "카드 유효기간이 만료되었습니다. 카드를 다시 등록해 주세요.",
        "Your card has expired. Please register a new card.",
        "고객에게 새 카드를 등록해 달라고 요청하세요(새 배치키가 발급됩니다).",
        "Ask the customer to register a new card (new batch key).",
    ),
    "SB07": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "유효하지 않은 배치키입니다.",
        "Invalid batch key (or batch group id).",
        "등록된 카드 정보가 유효하지 않습니다. 카드를 다시 등록해 주세요.",
        "Your registered card is no longer valid. Please register it again.",
        "배치키와 상점의 bt_group_id를 확인하세요. "
        "이상이 없으면 고객에게 카드를 다시 등록해 달라고 요청하세요.",
        "Check the batch key and the merchant's bt_group_id; else ask for a new registration.",
    ),
    "SB08": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "거래번호(tno)에 해당하는 거래가 없습니다.",
        "No transaction with this tno.",
        _CUSTOMER_FAILED_KO,
        _CUSTOMER_FAILED_EN,
        "주문에 저장된 거래번호(tno, 14자리 전체가 그대로 보관되어야 함)와 "
        "사이트 코드를 확인하세요.",
        "Check the tno stored with the order (it must be kept whole, 14 digits) and the site code.",
    ),
    "SB09": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "취소 가능 잔액(rem_mny)이 일치하지 않습니다.",
        "rem_mny does not match the cancellable balance.",
        _CUSTOMER_FAILED_KO,
        _CUSTOMER_FAILED_EN,
        "다른 취소(운영자의 수동 취소일 수 있음)로 잔액이 바뀌었습니다. "
        "먼저 거래를 조회해 기록과 대조하세요.",
        "Another cancel changed the balance (maybe by hand): inquire and reconcile first.",
    ),
    "SB10": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "환불 계좌 정보가 없거나 올바르지 않습니다.",
        "Refund bank account missing or invalid.",
        "환불 계좌 정보를 확인해 주세요.",
        "Please check your refund bank account details.",
        "고객에게 올바른 환불 계좌(은행 코드, 계좌번호, 예금주)를 요청하세요.",
        "Ask the customer for a valid refund account (bank code, number, holder).",
    ),
    "SB11": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "복합과세 금액(과세/부가세/면세)이 일치하지 않습니다.",
        "Mixed-taxation amounts (taxable/VAT/tax-free) are inconsistent.",
        _CUSTOMER_FAILED_KO,
        _CUSTOMER_FAILED_EN,
        "주문의 면세 금액이 결제에 남은 면세 금액과 맞는지 확인하세요.",
        "Check the order's tax-free amount against the payment's remaining tax-free part.",
    ),
    "SB12": CodeInfo(  # (sandbox; KCP's code unconfirmed)
        Category.DEFINITIVE,
        "요청 항목이 올바르지 않습니다.",
        "Malformed request (missing or invalid field).",
        _CUSTOMER_FAILED_KO,
        _CUSTOMER_FAILED_EN,
        "우리 시스템의 버그입니다. "
        "클라이언트가 만든 요청(마스킹된 내용)을 KCP 요청 항목과 대조해 확인하세요.",
        "A bug on our side: check the request the client built (masked) against KCP's fields.",
    ),
}

# Every res_cd local/kcp_sandbox.py can answer on its own (fault injection aside).
SANDBOX_CODES: frozenset[str] = frozenset(
    {"0000", "8338", "8742"} | {f"SB{n:02d}" for n in range(1, 13)}
)


def category(res_cd: str) -> Category:
    """Category of a res_cd KCP answered; unknown codes in a well-formed answer are definitive."""
    info = CATALOGUE.get(res_cd)
    return info.category if info else Category.DEFINITIVE


def describe(
    res_cd: str, res_msg: str = "", lang: str = "ko", audience: str = "shop"
) -> dict[str, Any]:
    """What to show for a res_cd: {code, message, hint, retryable}.

    Falls back to KCP's own res_msg for codes not in the catalogue. audience: "shop" | "customer".
    message and hint are in Korean, or in English when lang starts with "en".
    """
    info = CATALOGUE.get(res_cd)
    en = lang.lower().startswith("en")
    if info is None:
        message = res_msg or (f"KCP 오류 {res_cd}" if not en else f"KCP error {res_cd}")
        if audience == "customer":
            message = _CUSTOMER_FAILED_EN if en else _CUSTOMER_FAILED_KO
        if en:
            hint = f"Unknown KCP code; KCP said: {res_msg!r}. Check with KCP before retrying."
        else:
            hint = (
                f"알 수 없는 KCP 코드입니다. KCP 응답 메시지: {res_msg!r}. "
                "재시도하기 전에 KCP에 확인하세요."
            )
        return {"code": res_cd, "message": message, "hint": hint, "retryable": False}
    if audience == "customer":
        message = info.customer_en if en else info.customer_ko
    else:
        message = info.shop_en if en else info.shop_ko
    return {
        "code": res_cd,
        "message": message,
        "hint": info.hint_en if en else info.hint_ko,
        "retryable": info.category is Category.RETRYABLE,
    }
