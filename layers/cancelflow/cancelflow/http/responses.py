"""What the API answers: one pydantic model per answer, so the OpenAPI schema is what is sent.

The handlers return these (Powertools serialises and checks them); views.py builds them from the
domain. Every list is a Page: `items` and the signed `next_cursor` (null on the last page).
Times are ISO 8601 in KST (+09:00); money is integer KRW.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from cancelflow.cancellations.model import CancellationStatus
from cancelflow.kcp.port import Outcome, PayMethod
from cancelflow.kernel.errors import CATALOGUE
from cancelflow.payments.model import Fulfillment, PaymentStatus
from cancelflow.subscriptions.model import CancelWhen, ChargeStatus, Status
from cancelflow.subscriptions.schedule import Cycle

KstTime = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "format": "date-time", "description": "ISO 8601, KST (+09:00)"}
    ),
]
Day = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]
Krw = Annotated[int, Field(ge=0, description="KRW, integer")]


def _examples(*docs: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(docs)})


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page[T](Answer):
    """The one list envelope: a page of items and the cursor to the next page."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page"
    )


# --- bulk cancels (issue 16) ---------------------------------------------------------------

BATCH_ITEM_EXAMPLE = {
    "seq": 2,
    "tno": "20261203123457",
    "amount": 5000,
    "reason_code": "DEFECTIVE",
    "status": "REJECTED",
    "cancellation_id": None,
    "reasons": ["TIME_WINDOW_EXPIRED"],
    "detail": "The cancel window for this payment has passed.",
    "updated_at": "2026-12-03T10:15:02+09:00",
}


class BatchItem(Answer):
    """One payment of a batch and where it stands. OPEN: sent, KCP's answer not known yet; its
    cancellation (cancellation_id) is settled by its own workflow and is never sent again."""

    model_config = _examples(BATCH_ITEM_EXAMPLE)

    seq: int = Field(description="Position in the request, from 1")
    tno: str
    amount: Krw | None = Field(description="As requested; null: everything that was left")
    reason_code: str
    status: str = Field(
        json_schema_extra={
            "enum": ["PENDING", "SUCCEEDED", "REJECTED", "FAILED", "OPEN", "SKIPPED"]
        }
    )
    cancellation_id: str | None
    reasons: list[str] = Field(description="Why it did not succeed: stable codes")
    detail: str | None
    updated_at: KstTime | None


class BatchItemPage(Page[BatchItem]):
    """A page of a batch's items, by position."""

    model_config = _examples({"items": [BATCH_ITEM_EXAMPLE], "next_cursor": None})


BATCH_EXAMPLE = {
    "id": "cbt_5f2c0e7a9b1d4c3e8f6a7b2c",
    "status": "RUNNING",
    "total": 3,
    "started": 2,
    "progress": 0.67,
    "counts": {
        "PENDING": 1,
        "SUCCEEDED": 1,
        "REJECTED": 1,
        "FAILED": 0,
        "OPEN": 0,
        "SKIPPED": 0,
    },
    "tps": 5.0,
    "not_succeeded": [BATCH_ITEM_EXAMPLE],
    "created_at": "2026-12-03T10:15:00+09:00",
    "started_at": "2026-12-03T10:15:01+09:00",
    "finished_at": None,
}


class Batch(Answer):
    """A cancellation batch: counts by item status, progress, and the first items that did not
    succeed with why (all of them: GET …/items?status=)."""

    model_config = _examples(BATCH_EXAMPLE)

    id: str
    status: str = Field(
        json_schema_extra={"enum": ["QUEUED", "RUNNING", "STOPPING", "COMPLETED", "CANCELLED"]}
    )
    total: int
    started: int = Field(description="Items past PENDING")
    progress: float = Field(ge=0, le=1, description="started / total")
    counts: dict[str, int] = Field(description="Items by status")
    tps: float = Field(description="KCP calls per second this batch may make")
    not_succeeded: list[BatchItem] = Field(description="Up to 20, by position")
    created_at: KstTime | None
    started_at: KstTime | None
    finished_at: KstTime | None


# --- KCP -----------------------------------------------------------------------------------

GATEWAY_EXAMPLE = {
    "res_cd": "8133",
    "res_msg": "이미 취소된 거래입니다",
    "code": "8133",
    "message": "이미 취소된 거래입니다.",
    "hint": "KCP 상점관리자에서 거래 상태를 확인하세요.",
    "retryable": False,
}


class GatewayAnswer(Answer):
    """KCP's answer to a call, with its code explained in plain words."""

    model_config = _examples(GATEWAY_EXAMPLE)

    res_cd: str = Field(description="KCP's result code (0000 is success)")
    res_msg: str = Field(description="KCP's own message")
    code: str = Field(description="The same result code")
    message: str = Field(description="What it means, in the answer's language")
    hint: str = Field(description="What to do about it")
    retryable: bool = Field(description="Whether asking again may succeed")


# --- payments ------------------------------------------------------------------------------


class PaymentItem(Answer):
    name: str
    quantity: int | float
    price: int | float = Field(description="KRW per unit as registered")
    category: str


PAYMENT_EXAMPLE: dict[str, Any] = {
    "tno": "20261203123456",
    "order_id": "ORD-20261203-0001",
    "amount": 15000,
    "tax_free_amount": 0,
    "balance": 10000,
    "cancelled_amount": 5000,
    "available": 10000,
    "method": "CARD",
    "status": "PARTIALLY_CANCELLED",
    "product_name": "오가닉 티셔츠",
    "buyer_name": "김하늘",
    "buyer_email": "kim@example.com",
    "escrow": False,
    "items": [{"name": "오가닉 티셔츠", "quantity": 1, "price": 15000, "category": ""}],
    "removed_items": [],
    "approved_at": "2026-12-03T10:15:00+09:00",
    "fulfillment": "PROCESSING",
    "fulfillment_at": None,
    "delivered_at": None,
    "taxable_amount": 15000,
    "taxable_cancelled_amount": 5000,
    "taxable_balance": 10000,
    "tax_free_cancelled_amount": 0,
    "tax_free_balance": 0,
}


class Payment(Answer):
    """A registered KCP payment and its balance."""

    model_config = _examples(PAYMENT_EXAMPLE)

    tno: str = Field(description="KCP transaction number")
    order_id: str
    amount: Krw
    tax_free_amount: Krw
    balance: Krw = Field(description="What KCP still holds (lowered when KCP confirms a cancel)")
    cancelled_amount: Krw
    available: Krw = Field(description="The balance less amounts held by open cancels")
    method: PayMethod
    status: PaymentStatus
    product_name: str
    buyer_name: str
    buyer_email: str
    escrow: bool
    items: list[PaymentItem]
    removed_items: list[int] = Field(description="Positions of items given back or held")
    approved_at: KstTime
    fulfillment: Fulfillment
    fulfillment_at: KstTime | None
    delivered_at: KstTime | None
    # Mixed taxation (복합과세): the amount, cancelled amount and balance, each in two parts.
    taxable_amount: Krw = Field(description="amount less tax_free_amount (VAT included)")
    taxable_cancelled_amount: Krw
    taxable_balance: Krw = Field(description="The taxable part of the balance")
    tax_free_cancelled_amount: Krw
    tax_free_balance: Krw = Field(description="The tax-free part of the balance")


class PaymentPage(Page[Payment]):
    """A page of the shop's payments, newest first."""

    model_config = _examples({"items": [PAYMENT_EXAMPLE], "next_cursor": None})


class ExportLink(Answer):
    """Where the CSV is: a short-lived link (also in the Location header)."""

    model_config = _examples(
        {
            "url": "https://exports.example/payments-20261203-101500.csv?sig=abc",
            "file": "payments-20261203-101500.csv",
        }
    )

    url: str
    file: str


# --- cancellations -------------------------------------------------------------------------


class AttemptKind(StrEnum):
    CANCEL = "CANCEL"
    INQUIRY = "INQUIRY"
    SWEEP = "SWEEP"


AttemptOutcome = StrEnum(  # type: ignore[misc]
    "AttemptOutcome", {o.value: o.value for o in Outcome} | {"PENDING": "PENDING"}
)


class Attempt(Answer):
    """One call to KCP, journaled before it was sent."""

    seq: int
    kind: AttemptKind
    sent_at: KstTime
    completed_at: KstTime | None
    outcome: AttemptOutcome  # type: ignore[valid-type]
    detail: str
    gateway: GatewayAnswer | None


class BreakdownLine(Answer):
    """One line of how the refund was reached; an ITEM line names the item it gives back."""

    code: str
    label: str
    amount: int
    item: int | None = None
    name: str | None = None
    quantity: int | None = None


class Decision(Answer):
    policy_version: int | None = Field(description="The shop policy version the decision used")
    breakdown: list[BreakdownLine]


class Reason(Answer):
    code: str = Field(description="A stable reason code (reasons.py)")
    message: str


class MaskedAccount(Answer):
    bank_code: str
    number: str = Field(description="The last 4 digits only")
    holder: str


class ConfirmedBy(StrEnum):
    ANSWER = "ANSWER"  # KCP's answer to the cancel
    INQUIRY = "INQUIRY"  # KCP's balance, asked after an unknown answer
    SWEEP = "SWEEP"  # KCP's balance, found by the scheduled sweep
    KCP_NOTIFICATION = "KCP_NOTIFICATION"  # a cancel made at KCP, told by its notification
    OPERATOR = "OPERATOR"  # an operator's review decision


CANCELLATION_EXAMPLE: dict[str, Any] = {
    "cancellation_id": "cnl_5f0c2a9e1b7d4c3a8e6f0b12",
    "tno": "20261203123456",
    "status": "SUCCEEDED",
    "requested_amount": 5000,
    "amount": 5000,
    "refunded_amount": 5000,
    "requested_tax_free_amount": None,
    "tax_free_amount": 0,
    "taxable_amount": 5000,
    "refunded_tax_free_amount": 0,
    "refunded_taxable_amount": 5000,
    "reason_code": "DEFECTIVE",
    "reason": "불량",
    "reasons": [],
    "requested_by": "CUSTOMER",
    "batch_id": None,
    "removed_items": [],
    "decision": {
        "policy_version": 1,
        "breakdown": [{"code": "REQUESTED", "label": "요청 금액", "amount": 5000}],
    },
    "refund_account": None,
    "gateway": {
        "res_cd": "0000",
        "res_msg": "정상처리",
        "code": "0000",
        "message": "정상 처리되었습니다.",
        "hint": "",
        "retryable": False,
    },
    "cancelled_at": "2026-12-03T10:20:01+09:00",
    "settled": True,
    "confirmed_by": "ANSWER",
    "corrected_from": None,
    "partial_seq": "0001",
    "attempts": [
        {
            "seq": 1,
            "kind": "CANCEL",
            "sent_at": "2026-12-03T10:20:00+09:00",
            "completed_at": "2026-12-03T10:20:01+09:00",
            "outcome": "SUCCEEDED",
            "detail": "",
            "gateway": None,
        }
    ],
    "created_at": "2026-12-03T10:19:59+09:00",
    "updated_at": "2026-12-03T10:20:01+09:00",
    "execution_id": "arn:aws:states:ap-northeast-2:123456789012:execution:"
    "cancelflow-cancel-refund:cnl_5f0c2a9e1b7d4c3a8e6f0b12",
}


class ReviewDecision(Answer):
    outcome: str = Field(description="APPLIED (KCP made the cancel) or NOT_APPLIED")
    note: str
    decided_at: KstTime | None


class ReviewState(StrEnum):
    UNDER_REVIEW = "UNDER_REVIEW"
    CLOSED = "CLOSED"


class CancellationReview(Answer):
    """An operator's review of a cancel KCP never told the fate of: under review until it ends,
    then each decision (the operator's identity and the evidence stay internal)."""

    state: ReviewState
    opened_at: KstTime | None
    decisions: list[ReviewDecision]


class CancellationSummary(Answer):
    """A cancel request and its outcome, as lists show it (without its KCP attempts)."""

    model_config = _examples({k: v for k, v in CANCELLATION_EXAMPLE.items() if k != "attempts"})

    cancellation_id: str
    tno: str
    status: CancellationStatus
    requested_amount: int | None = Field(description="null: everything that was left")
    amount: int | None = Field(description="The decided refund, held against the payment")
    refunded_amount: Krw
    requested_tax_free_amount: int | None = Field(
        description="The tax-free part asked for; null: split in proportion to what is left"
    )
    tax_free_amount: Krw = Field(description="The decided refund's tax-free part")
    taxable_amount: Krw = Field(description="The decided refund's taxable part (VAT included)")
    refunded_tax_free_amount: Krw
    refunded_taxable_amount: Krw
    reason_code: str
    reason: str
    reasons: list[Reason] = Field(description="Why it was rejected or failed")
    requested_by: str = Field(
        description="CUSTOMER or SHOP; KCP for a cancel made at KCP (its merchant admin)"
    )
    batch_id: str | None = Field(
        default=None, description="The cancellation batch it is an item of (null: asked alone)"
    )
    removed_items: list[int]
    decision: Decision
    refund_account: MaskedAccount | None
    gateway: GatewayAnswer | None
    cancelled_at: KstTime | None
    settled: bool = Field(description="false while KCP's answer is not known (amount held)")
    confirmed_by: ConfirmedBy | None
    corrected_from: CancellationStatus | None = Field(
        description="The status a sweep corrected (the customer was told it first)"
    )
    partial_seq: str | None
    review: CancellationReview | None = Field(
        default=None, description="Present once KCP's silence sent the cancel to an operator"
    )
    created_at: KstTime
    updated_at: KstTime
    execution_id: str = Field(description="The Step Functions execution an operator opens")


class Cancellation(CancellationSummary):
    """A cancel request and its outcome, with every call made to KCP for it."""

    model_config = _examples(CANCELLATION_EXAMPLE)

    attempts: list[Attempt] = Field(description="Every KCP call, in order")


class CancellationPage(Page[CancellationSummary]):
    """A page of cancellations, newest first (without their attempts)."""

    model_config = _examples(
        {
            "items": [{k: v for k, v in CANCELLATION_EXAMPLE.items() if k != "attempts"}],
            "next_cursor": None,
        }
    )


class PaymentDetail(Payment):
    """A payment with every cancellation of it and their KCP attempts."""

    model_config = _examples(PAYMENT_EXAMPLE | {"cancellations": [CANCELLATION_EXAMPLE]})

    cancellations: list[Cancellation]


# --- shop policy ---------------------------------------------------------------------------

POLICY_EXAMPLE: dict[str, Any] = {
    "version": 3,
    "withdrawal_days": 14,
    "warranty_days": 92,
    "return_shipping_fee": 3000,
    "non_refundable_categories": ["DIGITAL"],
    "allow_cancel_after_shipped": False,
    "subscription_pro_rata": True,
    "email_language": "ko",
}


class Language(StrEnum):
    KO = "ko"
    EN = "en"


class Policy(Answer):
    """The shop's cancel policy (never below the law's minimum); each change is a new version."""

    model_config = _examples(POLICY_EXAMPLE)

    version: int = Field(ge=1, description="Set by the server on every change")
    withdrawal_days: int = Field(ge=7, le=3650, description="KST days after delivery (§17①)")
    warranty_days: int = Field(ge=92, le=3650, description="Defects and wrong items (§17③)")
    return_shipping_fee: int = Field(ge=0, le=1_000_000, description="KRW off a change of mind")
    non_refundable_categories: list[str] = Field(
        description="Item categories a customer cannot withdraw"
    )
    allow_cancel_after_shipped: bool
    subscription_pro_rata: bool
    email_language: Language


Category = Annotated[str, Field(pattern=r"^[A-Z_]{1,40}$")]


class PolicyIn(BaseModel):
    """A whole policy (PUT): every field; `version` may be sent back as GET gave it (ignored:
    the server sets the next one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [POLICY_EXAMPLE]})

    version: int | None = Field(default=None, ge=1, le=1_000_000_000)
    withdrawal_days: int = Field(ge=7, le=3650)
    warranty_days: int = Field(ge=92, le=3650)
    return_shipping_fee: int = Field(ge=0, le=1_000_000)
    non_refundable_categories: list[Category] = Field(
        max_length=50, json_schema_extra={"uniqueItems": True}
    )
    allow_cancel_after_shipped: bool
    subscription_pro_rata: bool
    email_language: Language


class PolicyPatch(BaseModel):
    """A JSON Merge Patch (RFC 7396) of the policy: the fields named change; null resets one
    to its default (the law's minimum)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"withdrawal_days": 14}]}
    )

    withdrawal_days: int | None = Field(default=None, ge=7, le=3650)
    warranty_days: int | None = Field(default=None, ge=92, le=3650)
    return_shipping_fee: int | None = Field(default=None, ge=0, le=1_000_000)
    non_refundable_categories: list[Category] | None = Field(
        default=None, max_length=50, json_schema_extra={"uniqueItems": True}
    )
    allow_cancel_after_shipped: bool | None = None
    subscription_pro_rata: bool | None = None
    email_language: Language | None = None


# --- subscriptions -------------------------------------------------------------------------


class PaidPeriod(Answer):
    period: str
    tno: str | None = Field(description="null until KCP's tno of the charge is known")
    tno_unknown: bool
    amount: Krw
    period_start: Day
    period_end: Day
    paid_at: KstTime


class RefundWaitingFor(StrEnum):
    KCP_TNO = "KCP_TNO"


class SubscriptionCancellation(Answer):
    when: CancelWhen
    cancelled_at: KstTime | None
    service_until: Day | None
    refund_amount: Krw
    refund_cancellation_id: str | None
    refund_waiting_for: RefundWaitingFor | None


SUBSCRIPTION_EXAMPLE: dict[str, Any] = {
    "subscription_id": "sub_3b1f0c9a7e2d4f6a8b10",
    "status": "ACTIVE",
    "customer_name": "김하늘",
    "customer_email": "sky@example.com",
    "product_name": "커피 정기배송",
    "amount": 9900,
    "cycle": "MONTHLY",
    "anchor_day": 3,
    "batch_key": "****a1b2",
    "next_charge_date": "2027-01-03",
    "next_attempt_date": "2027-01-03",
    "attempt": 1,
    "last_paid": {
        "period": "2026-12",
        "tno": "20261203000001",
        "tno_unknown": False,
        "amount": 9900,
        "period_start": "2026-12-03",
        "period_end": "2027-01-03",
        "paid_at": "2026-12-03T09:00:02+09:00",
    },
    "cancellation": None,
    "suspended_at": None,
    "created_at": "2026-12-01T14:00:00+09:00",
    "updated_at": "2026-12-03T09:00:02+09:00",
}


class Subscription(Answer):
    """A subscription (정기결제) charged with the customer's KCP batch key."""

    model_config = _examples(SUBSCRIPTION_EXAMPLE)

    subscription_id: str
    status: Status
    customer_name: str
    customer_email: str
    product_name: str
    amount: Krw
    cycle: Cycle
    anchor_day: int
    batch_key: str = Field(description="Its last 4 characters only")
    next_charge_date: Day | None
    next_attempt_date: Day | None
    attempt: int
    last_paid: PaidPeriod | None
    cancellation: SubscriptionCancellation | None
    suspended_at: KstTime | None
    created_at: KstTime
    updated_at: KstTime


class SubscriptionPage(Page[Subscription]):
    """A page of the shop's subscriptions."""

    model_config = _examples({"items": [SUBSCRIPTION_EXAMPLE], "next_cursor": None})


class ChargeConfirmedBy(StrEnum):
    KCP_ANSWER = "KCP_ANSWER"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"


class OpenCase(StrEnum):
    TNO_UNKNOWN = "TNO_UNKNOWN"


CHARGE_EXAMPLE: dict[str, Any] = {
    "period": "2026-12",
    "attempt": 1,
    "order_id": "sub_3b1f0c9a7e2d4f6a8b10-2026-12-1",
    "amount": 9900,
    "status": "SUCCEEDED",
    "billing_date": "2026-12-03",
    "tno": "20261203000001",
    "approved_at": "2026-12-03T09:00:02+09:00",
    "confirmed_by": "KCP_ANSWER",
    "gateway": None,
    "detail": None,
    "open_case": None,
    "created_at": "2026-12-03T09:00:01+09:00",
    "updated_at": "2026-12-03T09:00:02+09:00",
}


class Charge(Answer):
    """One attempt at charging a period."""

    model_config = _examples(CHARGE_EXAMPLE)

    period: str
    attempt: int
    order_id: str = Field(description="KCP's ordr_idxx")
    amount: Krw
    status: ChargeStatus
    billing_date: Day
    tno: str | None
    approved_at: KstTime | None
    confirmed_by: ChargeConfirmedBy | None
    gateway: GatewayAnswer | None
    detail: str | None
    open_case: OpenCase | None = Field(description="TNO_UNKNOWN: charged, tno to be linked")
    created_at: KstTime
    updated_at: KstTime


class ChargePage(Page[Charge]):
    """Every charge of a subscription, oldest first (one page)."""

    model_config = _examples({"items": [CHARGE_EXAMPLE], "next_cursor": None})


# --- webhooks ------------------------------------------------------------------------------

ENDPOINT_EXAMPLE: dict[str, Any] = {
    "id": "whe_8f2c1d7a9b3e4f50",
    "url": "https://shop.example/hooks/cancelflow",
    "events": ["cancellation.succeeded", "cancellation.failed"],
    "description": "주문 시스템",
    "enabled": True,
    "disabled_reason": None,
    "failing_since": None,
    "secrets_in_grace": [],
    "created_at": "2026-12-03T10:00:00+09:00",
    "updated_at": "2026-12-03T10:00:00+09:00",
}


class WebhookEndpoint(Answer):
    """Where the shop's events are POSTed, signed (Standard Webhooks). `secret` (whsec_…) is in
    the answer only when it is new: on creation and on rotation."""

    model_config = _examples(
        ENDPOINT_EXAMPLE | {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    )

    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    failing_since: KstTime | None
    secrets_in_grace: list[KstTime | None] = Field(
        description="When each previous secret stops signing (after a rotation)"
    )
    created_at: KstTime | None
    updated_at: KstTime | None
    secret: str | None = Field(default=None, description="Shown once; store it to verify")


class WebhookEndpointPage(Page[WebhookEndpoint]):
    """The shop's webhook endpoints (one page)."""

    model_config = _examples({"items": [ENDPOINT_EXAMPLE], "next_cursor": None})


class DeliveryAttempt(Answer):
    at: KstTime | None
    status: str = Field(description="SUCCEEDED (a 2xx answer) or FAILED")
    answer_code: int | None
    latency_ms: int | None
    answer_excerpt: str | None = Field(description="At most the first 200 characters")
    error: str | None
    manual: bool


DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": "dlv_5a1e9c3b7d2f4e60",
    "event_id": "evt_0c4b8a2f6e1d3a5b7c9e1f20",
    "event_type": "cancellation.succeeded",
    "resource": "cnl_01JEXAMPLE0000000000000000",
    "status": "SUCCEEDED",
    "occurred_at": "2026-12-03T10:00:01+09:00",
    "created_at": "2026-12-03T10:00:01+09:00",
    "attempt_count": 1,
    "next_attempt_at": None,
    "attempts": [
        {
            "at": "2026-12-03T10:00:02+09:00",
            "status": "SUCCEEDED",
            "answer_code": 200,
            "latency_ms": 84,
            "answer_excerpt": "ok",
            "error": None,
            "manual": False,
        }
    ],
}


class WebhookDelivery(Answer):
    """One event's delivery to one endpoint, with every attempt."""

    model_config = _examples(DELIVERY_EXAMPLE)

    id: str
    event_id: str
    event_type: str
    resource: str
    status: str = Field(description="PENDING, SUCCEEDED, FAILED (gave up) or SKIPPED")
    occurred_at: KstTime | None
    created_at: KstTime | None
    attempt_count: int
    next_attempt_at: KstTime | None
    attempts: list[DeliveryAttempt]


class WebhookDeliveryPage(Page[WebhookDelivery]):
    """An endpoint's deliveries, newest first (the newest page)."""

    model_config = _examples({"items": [DELIVERY_EXAMPLE], "next_cursor": None})


# --- problems ------------------------------------------------------------------------------


class FieldProblem(Answer):
    field: str
    message: str


class Difference(Answer):
    field: str
    kcp: Any = Field(description="What KCP holds")
    registered: Any = Field(description="What the request said")


class ReasonExplained(Answer):
    code: str
    message: str
    message_ko: str


PROBLEM_EXAMPLE: dict[str, Any] = {
    "type": "https://cancelflow.dev/problems/payment-not-found",
    "title": "No payment with this tno for your shop.",
    "status": 404,
    "code": "PAYMENT_NOT_FOUND",
    "detail": "No payment 20990101000000 for this shop.",
    "instance": "/v1/payments/20990101000000",
    "request_id": "c0a8e7d2-3f41-4b8e-9a55-0d2b7e61f0aa",
}


class Problem(Answer):
    """An error (RFC 9457 problem+json). `code` is the contract; quote `request_id` to support."""

    model_config = _examples(PROBLEM_EXAMPLE)

    type: str
    title: str
    status: int
    code: str = Field(description="A stable code (errors.py)")
    detail: str
    instance: str | None = None
    request_id: str | None = Field(default=None, description="Also the Request-Id header")
    errors: list[FieldProblem] | None = Field(default=None, description="Each invalid field")
    reasons: list[ReasonExplained] | None = Field(
        default=None, description="Why a cancel is not allowed (every reason)"
    )
    policy_version: int | None = None
    already_removed: list[int] | None = None
    open_cancellation_id: str | None = None
    differences: list[Difference] | None = None
    allowed: list[Fulfillment] | None = None
    duplicate_items: list[int] | None = Field(
        default=None, description="BATCH_DUPLICATE_TNO: the positions that name one payment"
    )


# Codes API Gateway answers itself (template.yaml's GatewayResponses), before any handler.
GATEWAY_PROBLEMS: dict[str, tuple[int, str]] = {
    "UNAUTHORIZED": (401, "Missing or unknown API key."),
    "SHOP_NOT_PROVISIONED": (403, "This shop has no API rate plan yet."),
    "RATE_LIMITED": (429, "Too many requests from this shop."),
}


def status_of(code: str) -> int:
    """The HTTP status a problem code is answered with."""
    if code in GATEWAY_PROBLEMS:
        return GATEWAY_PROBLEMS[code][0]
    return CATALOGUE[code][0]


# --- failure-case report -------------------------------------------------------------------


class FailureKind(StrEnum):
    CANCEL_FAILED = "CANCEL_FAILED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    CHARGE_DECLINED = "CHARGE_DECLINED"


FAILURE_GROUP_EXAMPLE = {
    "kind": "CANCEL_FAILED",
    "kcp_code": "8012",
    "reason_code": "GATEWAY_DECLINED",
    "count": 14,
    "first_seen": "2026-11-03T10:12:40+09:00",
    "last_seen": "2026-12-01T18:02:11+09:00",
    "message": "취소 요청이 거부되었습니다 (서버 IP 미등록).",
    "hint": "KCP 상점관리자에 서버 IP를 등록하세요.",
    "examples": ["cnl_7f3a9c2e41b04d6e8a1f", "cnl_1b2c3d4e5f60718293a4"],
}


class FailureGroup(Answer):
    """One kind of failure in the period: how often, when, what it means, where to look."""

    model_config = _examples(FAILURE_GROUP_EXAMPLE)

    kind: FailureKind = Field(
        description="CANCEL_FAILED (KCP refused or nothing applied), CANCEL_REJECTED (not "
        "eligible, never sent), CHARGE_DECLINED (a subscription charge)"
    )
    kcp_code: str | None = Field(description="KCP's res_cd, when KCP answered one")
    reason_code: str | None = Field(
        description="The cancellation's reason code (a rejection with two counts in both)"
    )
    count: int = Field(ge=1)
    first_seen: KstTime
    last_seen: KstTime
    message: str = Field(description="What it means, in plain words (the answer's language)")
    hint: str | None = Field(description="What to do about it (KCP's codes have one)")
    examples: list[str] = Field(
        description="A few recent ids, newest first: cancellation ids, or a charge's order "
        "id (ordr_idxx: subscription id, period, attempt)"
    )


class FailureReport(Answer):
    """The period's failed and rejected cancels and declined charges, grouped by KCP code and
    reason code, most frequent first (counted as outcomes are recorded)."""

    model_config = _examples(
        {"first_day": "2026-11-02", "last_day": "2026-12-01", "groups": [FAILURE_GROUP_EXAMPLE]}
    )

    first_day: Day = Field(description="The first KST day (?from=), included")
    last_day: Day = Field(description="The last KST day (?to=), included")
    groups: list[FailureGroup]
