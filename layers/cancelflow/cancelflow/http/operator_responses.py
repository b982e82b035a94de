"""What the operator API answers: one pydantic model per answer, as responses.py is for shops.

Only the operator API imports it. A cancellation is the shop's view plus what only operators
see: its shop, who decided a review and on what evidence, KCP's answer to a fresh inquiry.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from cancelflow.http.responses import (
    BATCH_EXAMPLE,
    CANCELLATION_EXAMPLE,
    CHARGE_EXAMPLE,
    SUBSCRIPTION_EXAMPLE,
    Answer,
    Batch,
    Cancellation,
    Charge,
    Krw,
    KstTime,
    Page,
    ReviewState,
    Subscription,
)


def _examples(*docs: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(docs)})


CASE_ID = "cnl_9a1e4b7c2d5f8a0b3c6d9e12"
OPENED = "2026-12-03T10:20:31+09:00"
EVIDENCE_EXAMPLE: dict[str, Any] = {
    "kcp": {
        "answered": True,
        "remaining_balance": 0,
        "status": "CANCELLED",
        "res_cd": "0000",
        "res_msg": "정상처리",
        "detail": None,
    },
    "ours": {"balance": 15000, "available": 0, "in_flight": CASE_ID},
    "balance_before": 15000,
    "amount": 15000,
    "balance_if_applied": 0,
    "balance_if_not_applied": 15000,
    "kcp_says": "APPLIED",
}
DECISION_EXAMPLE: dict[str, Any] = {
    "outcome": "APPLIED",
    "note": "KCP 상점관리자: 12-03 10:20 취소 완료",
    "by": "arn:aws:iam::123456789012:user/ops-kim",
    "decided_at": "2026-12-03T11:02:10+09:00",
    "evidence": EVIDENCE_EXAMPLE,
}
CASE_EXAMPLE: dict[str, Any] = CANCELLATION_EXAMPLE | {
    "cancellation_id": CASE_ID,
    "status": "NEEDS_REVIEW",
    "refunded_amount": 0,
    "requested_amount": None,
    "amount": 15000,
    "reasons": [
        {
            "code": "INQUIRY_FAILED",
            "message": "The cancel's outcome could not be confirmed; "
            "an operator will check with KCP.",
        }
    ],
    "gateway": None,
    "cancelled_at": None,
    "settled": False,
    "confirmed_by": None,
    "partial_seq": None,
    "shop_id": "demo-shop",
    "review": {
        "state": "UNDER_REVIEW",
        "opened_at": OPENED,
        "age_seconds": 2500,
        "waiting_execution": True,
        "decisions": [],
    },
    "evidence": EVIDENCE_EXAMPLE,
}
SUMMARY_EXAMPLE: dict[str, Any] = {
    "cancellation_id": CASE_ID,
    "shop_id": "demo-shop",
    "tno": CANCELLATION_EXAMPLE["tno"],
    "amount": 15000,
    "reasons": ["INQUIRY_FAILED"],
    "opened_at": OPENED,
    "age_seconds": 2500,
    "decided": False,
}
KEY_EXAMPLE: dict[str, Any] = {
    "key_id": "key_3f9a0c1b2d4e5f60",
    "shop_id": "hanok-tea",
    "hint": "sk_live_3f9a",
    "active": True,
    "created_at": "2026-12-03T09:00:00+09:00",
    "revoked_at": None,
    "last_used_at": "2026-12-03T10:19:58+09:00",
}


class KcpSays(StrEnum):
    """What KCP's balance reads as, against the balance before this cancel."""

    APPLIED = "APPLIED"  # KCP's balance is the balance before, less this cancel
    NOT_APPLIED_YET = "NOT_APPLIED_YET"  # unchanged: KCP may still apply it late
    MISMATCH = "MISMATCH"  # neither: another cancel moved it too (check KCP's admin)
    UNKNOWN = "UNKNOWN"  # KCP did not answer the inquiry


class KcpSide(Answer):
    answered: bool = Field(description="Whether KCP answered the fresh inquiry")
    remaining_balance: int | None = Field(description="KCP's balance now (KRW)")
    status: str | None
    res_cd: str | None
    res_msg: str | None
    detail: str | None = Field(description="Why there is no answer (timeout, error class)")


class OurSide(Answer):
    balance: int | None = Field(description="cancelflow's balance of the payment (KRW)")
    available: int | None = Field(description="What a new cancel may take (balance less holds)")
    in_flight: str | None = Field(
        description="The cancellation holding the payment's send lock (its fate not yet known)"
    )


class Evidence(Answer):
    """What an operator decides from."""

    model_config = _examples(EVIDENCE_EXAMPLE)

    kcp: KcpSide
    ours: OurSide
    balance_before: int | None = Field(description="The payment's balance when it was sent")
    amount: Krw = Field(description="This cancel's amount")
    balance_if_applied: int | None
    balance_if_not_applied: int | None
    kcp_says: KcpSays


class OperatorDecision(Answer):
    model_config = _examples(DECISION_EXAMPLE)

    outcome: str = Field(description="APPLIED (KCP made the cancel) or NOT_APPLIED")
    note: str
    by: str = Field(description="The operator's IAM principal (SigV4-verified)")
    decided_at: KstTime
    evidence: dict[str, Any] = Field(description="The evidence shown when deciding (as above)")


class OperatorReview(Answer):
    state: ReviewState
    opened_at: KstTime
    age_seconds: int = Field(ge=0)
    waiting_execution: bool = Field(
        description="true: the execution waits at AwaitOperatorReview for this decision"
    )
    decisions: list[OperatorDecision]


class OperatorCancellation(Cancellation):
    """A cancellation of any shop, as an operator sees it."""

    model_config = _examples(CASE_EXAMPLE)

    shop_id: str
    review: OperatorReview | None = None  # type: ignore[assignment]  # the operator's fuller view
    evidence: Evidence | None = Field(
        default=None, description="A review case only: KCP's fresh answer and both balances"
    )


class DecidedCancellation(OperatorCancellation):
    """The case as the decision left it, and how the decision reached its execution."""

    model_config = _examples(
        CASE_EXAMPLE
        | {
            "review": CASE_EXAMPLE["review"] | {"decisions": [DECISION_EXAMPLE]},
            "evidence": None,
            "workflow": "RESUMED",
        }
    )

    workflow: str = Field(
        description="How the decision reached the execution: RESUMED (the waiting execution "
        "took it: it settles and notifies) or REDRIVEN (its wait had ended: redriven)"
    )


class ReviewSummary(Answer):
    """A review in the queue: enough to pick the next one (oldest first)."""

    model_config = _examples(SUMMARY_EXAMPLE)

    cancellation_id: str
    shop_id: str
    tno: str
    amount: int | None
    reasons: list[str] = Field(description="Stable reason codes")
    opened_at: KstTime
    age_seconds: int = Field(ge=0)
    decided: bool


class ReviewPage(Page[ReviewSummary]):
    """Open reviews across shops, oldest first."""

    model_config = _examples({"items": [SUMMARY_EXAMPLE], "next_cursor": None})


class ShopOnboarded(Answer):
    model_config = _examples(
        {
            "shop_id": "hanok-tea",
            "name": "한옥 찻집",
            "email": "ops@hanok-tea.example",
            "kcp_secret_id": "cancelflow/kcp/hanok-tea",
        }
    )

    shop_id: str
    name: str
    email: str
    kcp_secret_id: str = Field(description="The Secrets Manager secret holding its KCP keys")


class ApiKey(Answer):
    """A shop's key without its secret: whether it works, its last use."""

    model_config = _examples(KEY_EXAMPLE)

    key_id: str
    shop_id: str
    hint: str = Field(description="The key's first characters, to tell keys apart")
    active: bool
    created_at: KstTime
    revoked_at: KstTime | None
    last_used_at: KstTime | None


class IssuedApiKey(ApiKey):
    model_config = _examples(
        KEY_EXAMPLE | {"last_used_at": None, "api_key": "sk_live_3f9a0c1b2d4e5f60a7b8c9d0e1f2"}
    )

    api_key: str = Field(description="The key itself: shown this once, stored only as a hash")


class ApiKeyPage(Page[ApiKey]):
    """All of a shop's keys (one page: next_cursor is always null)."""

    model_config = _examples({"items": [KEY_EXAMPLE], "next_cursor": None})


class OperatorSubscription(Subscription):
    """A shop's subscription with every charge, as an operator (and `make trace`) reads it."""

    model_config = _examples(
        SUBSCRIPTION_EXAMPLE | {"shop_id": "demo-shop", "charges": [CHARGE_EXAMPLE]}
    )

    shop_id: str
    charges: list[Charge] = Field(description="Every charge, oldest period first")


class OperatorBatch(Batch):
    """A shop's cancellation batch, as an operator (and `make trace`) reads it."""

    model_config = _examples(BATCH_EXAMPLE | {"shop_id": "demo-shop", "execution_id": None})

    shop_id: str
    execution_id: str | None = Field(description="The batch's execution, once it has begun")
