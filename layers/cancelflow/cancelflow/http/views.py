"""What the API shows: the response models (http/responses.py), times in KST, secrets masked,
codes explained."""

from __future__ import annotations

from typing import Any

from cancelflow.cancellations.failures import FailureReport
from cancelflow.cancellations.model import (
    OPEN,
    Attempt,
    BreakdownLine,
    Cancellation,
    CancellationStatus,
)
from cancelflow.http import responses as out
from cancelflow.kcp import codes
from cancelflow.kernel.clock import to_kst_text
from cancelflow.kernel.reasons import BREAKDOWN, explain
from cancelflow.payments.model import Payment


def _kst(moment: Any) -> str | None:
    return to_kst_text(moment) if moment else None


def _payment_fields(payment: Payment) -> dict[str, Any]:
    return {
        "tno": payment.tno,
        "order_id": payment.order_id,
        "amount": payment.amount,
        "tax_free_amount": payment.tax_free_amount,
        "balance": payment.balance,
        "cancelled_amount": payment.cancelled_amount,
        "available": payment.available,
        "method": payment.method.value,
        "status": payment.status.value,
        "product_name": payment.product_name,
        "buyer_name": payment.buyer_name,
        "buyer_email": payment.buyer_email,
        "escrow": payment.escrow,
        "items": list(payment.items),
        "removed_items": sorted(payment.removed_items),  # by cancels done or still open
        "approved_at": _kst(payment.approved_at),
        "fulfillment": payment.fulfillment.value,
        "fulfillment_at": _kst(payment.fulfillment_at),
        "delivered_at": _kst(payment.delivered_at),
        "taxable_amount": payment.amount - payment.tax_free_amount,
        "taxable_cancelled_amount": payment.taxable_cancelled_amount,
        "taxable_balance": payment.taxable_balance,
        "tax_free_cancelled_amount": payment.tax_free_cancelled_amount,
        "tax_free_balance": payment.tax_free_balance,
    }


def payment_view(payment: Payment) -> out.Payment:
    return out.Payment.model_validate(_payment_fields(payment))


def payment_detail_view(
    payment: Payment, cancellations: list[out.Cancellation]
) -> out.PaymentDetail:
    return out.PaymentDetail.model_validate(
        _payment_fields(payment) | {"cancellations": cancellations}
    )


def gateway_view(res_cd: str, res_msg: str, lang: str) -> out.GatewayAnswer | None:
    """The one view of a KCP answer (cancels, inquiries and subscription charges alike)."""
    if not res_cd:
        return None
    told = codes.describe(res_cd, res_msg, lang)
    return out.GatewayAnswer(
        res_cd=res_cd,
        res_msg=res_msg,
        code=told["code"],
        message=told["message"],
        hint=told["hint"],
        retryable=told["retryable"],
    )


def attempt_view(attempt: Attempt, lang: str) -> out.Attempt:
    return out.Attempt.model_validate(
        {
            "seq": attempt.seq,
            "kind": attempt.kind,
            "sent_at": _kst(attempt.sent_at),
            "completed_at": _kst(attempt.completed_at),
            "outcome": attempt.outcome or "PENDING",
            "detail": attempt.detail,
            "gateway": gateway_view(attempt.res_cd, attempt.res_msg, lang),
        }
    )


def line_view(line: BreakdownLine, lang: str) -> out.BreakdownLine:
    """A decision's line; an ITEM line names the item it gives back (position, name, quantity)."""
    view: dict[str, Any] = {
        "code": line.code,
        "label": BREAKDOWN.get(line.code, {}).get(lang, line.code),
        "amount": line.amount,
    }
    if line.item is not None:
        view |= {"item": line.item, "name": line.name, "quantity": line.quantity}
    return out.BreakdownLine.model_validate(view)


def _cancellation_fields(cancellation: Cancellation, execution_id: str, lang: str) -> dict:
    c = cancellation
    account = c.refund_account
    refunded = c.status is CancellationStatus.SUCCEEDED
    return {
        "cancellation_id": c.cancellation_id,
        "tno": c.tno,
        "status": c.status.value,
        "requested_amount": c.requested_amount,
        "amount": c.amount,
        "refunded_amount": (c.amount or 0) if refunded else 0,
        "requested_tax_free_amount": c.requested_tax_free_amount,
        "tax_free_amount": c.tax_free_amount,
        "taxable_amount": c.taxable_amount,
        "refunded_tax_free_amount": c.tax_free_amount if refunded else 0,
        "refunded_taxable_amount": c.taxable_amount if refunded else 0,
        "reason_code": c.reason_code,
        "reason": c.reason,
        "reasons": [explain(code, lang) for code in c.reasons],
        "requested_by": c.requested_by,
        "batch_id": c.batch_id or None,
        "removed_items": list(c.removed_items),
        "decision": {
            "policy_version": c.policy_version,
            "breakdown": [line_view(line, lang) for line in c.breakdown],
        },
        "refund_account": (
            {
                "bank_code": account.bank_code,
                "number": "***" + account.number[-4:],
                "holder": account.holder,
            }
            if account
            else None
        ),
        "gateway": gateway_view(c.res_cd, c.res_msg, lang),
        "cancelled_at": _kst(c.cancelled_at),
        # Until KCP's answer is known the cancel is pending, its amount held (NEEDS_REVIEW
        # too).
        "settled": c.status not in OPEN,
        "confirmed_by": c.confirmed_by or None,
        "corrected_from": c.corrected_from or None,
        "partial_seq": c.partial_seq or None,
        "review": review_view(c),
        "created_at": _kst(c.created_at),
        "updated_at": _kst(c.updated_at),
        "execution_id": c.execution_id or execution_id,
    }


def cancellation_view(
    cancellation: Cancellation, execution_id: str, lang: str = "ko"
) -> out.Cancellation:
    attempts = [attempt_view(a, lang) for a in cancellation.attempts]
    fields = _cancellation_fields(cancellation, execution_id, lang)
    return out.Cancellation.model_validate(fields | {"attempts": attempts})


def review_view(c: Cancellation) -> dict[str, Any] | None:
    """What the shop sees of a review: under review until it ends, then each decision made
    (what was decided, when, the note; the operator's identity and evidence stay internal)."""
    if c.review is None:
        return None
    under = c.status is CancellationStatus.NEEDS_REVIEW
    return {
        "state": "UNDER_REVIEW" if under else "CLOSED",
        "opened_at": _kst(c.review.opened_at),
        "decisions": [
            {"outcome": d.outcome, "note": d.note, "decided_at": _kst(d.at)}
            for d in c.review.decisions
        ],
    }


def cancellation_list_view(
    cancellation: Cancellation, execution_id: str, lang: str = "ko"
) -> out.CancellationSummary:
    """A cancellation in a list: all but its journal of attempts (GET it by id for those)."""
    fields = _cancellation_fields(cancellation, execution_id, lang)
    return out.CancellationSummary.model_validate(fields)


def failure_report_view(report: FailureReport) -> out.FailureReport:
    """The failure-case report: each group with its plain message and hint, times in KST."""
    groups = [
        {
            "kind": g.kind.value,
            "kcp_code": g.kcp_code or None,
            "reason_code": g.reason_code or None,
            "count": g.count,
            "first_seen": to_kst_text(g.first_seen),
            "last_seen": to_kst_text(g.last_seen),
            "message": g.message,
            "hint": g.hint or None,
            "examples": list(g.examples),
        }
        for g in report.groups
    ]
    doc = {
        "first_day": report.since.isoformat(),
        "last_day": report.until.isoformat(),
        "groups": groups,
    }
    return out.FailureReport.model_validate(doc)
