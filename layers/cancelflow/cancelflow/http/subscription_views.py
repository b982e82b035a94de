"""What the subscriptions API shows: batch keys masked, times in KST, KCP codes explained."""

from __future__ import annotations

from typing import Any

from cancelflow.kcp import codes
from cancelflow.kernel.clock import to_kst_text
from cancelflow.subscriptions.model import Charge, ChargeStatus, Status, Subscription
from cancelflow.subscriptions.service import refund_waits_for_tno


def subscription_view(s: Subscription) -> dict[str, Any]:
    paid = s.last_paid
    return {
        "subscription_id": s.subscription_id,
        "status": s.status.value,
        "customer_name": s.customer_name,
        "customer_email": s.customer_email,
        "product_name": s.product_name,
        "amount": s.amount,
        "cycle": s.cycle.value,
        "anchor_day": s.anchor_day,
        "batch_key": f"****{s.batch_key_last4}",
        "next_charge_date": s.period_date.isoformat() if s.status is Status.ACTIVE else None,
        "next_attempt_date": s.due_on.isoformat() if s.due_on else None,
        "attempt": s.attempt,
        "last_paid": {
            "period": paid.period,
            "tno": paid.tno or None,
            "tno_unknown": not paid.tno,
            "amount": paid.amount,
            "period_start": paid.start.isoformat(),
            "period_end": paid.end.isoformat(),
            "paid_at": to_kst_text(paid.paid_at),
        }
        if paid
        else None,
        "cancellation": {
            "when": s.cancel_when,
            "cancelled_at": to_kst_text(s.cancelled_at) if s.cancelled_at else None,
            "service_until": s.service_until.isoformat() if s.service_until else None,
            "refund_amount": s.refund_amount,
            "refund_cancellation_id": s.refund_cancellation_id or None,
            # Owed but not sent: KCP's tno of the paid period is not known yet.
            "refund_waiting_for": "KCP_TNO" if refund_waits_for_tno(s) else None,
        }
        if s.status is Status.CANCELLED
        else None,
        "suspended_at": to_kst_text(s.suspended_at) if s.suspended_at else None,
        "created_at": to_kst_text(s.created_at),
        "updated_at": to_kst_text(s.updated_at),
    }


def charge_view(c: Charge, lang: str = "ko") -> dict[str, Any]:
    told = codes.describe(c.res_cd, c.res_msg, lang) if c.res_cd else None
    return {
        "period": c.period,
        "attempt": c.attempt,
        "order_id": c.order_id,
        "amount": c.amount,
        "status": c.status.value,
        "billing_date": c.billing_date.isoformat(),
        "tno": c.tno or None,
        "approved_at": to_kst_text(c.approved_at) if c.approved_at else None,
        "confirmed_by": c.confirmed_by or None,
        "gateway": {
            "res_cd": c.res_cd,
            "res_msg": c.res_msg,
            "message": told["message"] if told else "",
            "hint": told["hint"] if told else "",
        }
        if c.res_cd
        else None,
        "detail": c.detail or None,
        # Charged, but KCP answered only "duplicate order": refundable once its tno is linked.
        "open_case": "TNO_UNKNOWN" if c.status is ChargeStatus.SUCCEEDED and not c.tno else None,
        "created_at": to_kst_text(c.created_at),
        "updated_at": to_kst_text(c.updated_at),
    }
