"""What the operator API shows: a case with its evidence and every decision (who included)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cancelflow.cancellations.model import Cancellation, Decision
from cancelflow.http import operator_responses as out
from cancelflow.http.views import cancellation_view
from cancelflow.kernel.clock import to_kst_text
from cancelflow.shops.keys import ApiKey
from cancelflow.shops.model import Shop


def _decision_view(d: Decision) -> dict[str, Any]:
    return {
        "outcome": d.outcome,
        "note": d.note,
        "by": d.by,
        "decided_at": to_kst_text(d.at),
        "evidence": d.evidence,
    }


def review_summary_view(c: Cancellation, now: datetime) -> out.ReviewSummary:
    """A review in the queue: enough to pick the next one (oldest first)."""
    review = c.review
    opened = review.opened_at if review else c.updated_at
    return out.ReviewSummary(
        cancellation_id=c.cancellation_id,
        shop_id=c.shop_id,
        tno=c.tno,
        amount=c.amount,
        reasons=list(c.reasons),
        opened_at=to_kst_text(opened),
        age_seconds=_age(opened, now),
        decided=bool(review and review.decided),
    )


def operator_cancellation_view(
    c: Cancellation, execution_id: str, now: datetime, evidence: dict[str, Any] | None = None
) -> out.OperatorCancellation:
    """The cancellation as its shop sees it, plus its shop, the review's internals (who decided,
    on what evidence) and, for a case, KCP's answer to a fresh inquiry."""
    view = cancellation_view(c, execution_id, "en").model_dump(mode="json") | {"shop_id": c.shop_id}
    review = c.review
    if review is not None:
        view["review"] = {
            "state": view["review"]["state"],
            "opened_at": to_kst_text(review.opened_at),
            "age_seconds": _age(review.opened_at, now),
            "waiting_execution": bool(review.token),
            "decisions": [_decision_view(d) for d in review.decisions],
        }
    if evidence is not None:
        view["evidence"] = evidence
    return out.OperatorCancellation.model_validate(view)


def _age(since: datetime, now: datetime) -> int:
    return max(0, int((now - since).total_seconds()))


def shop_view(shop: Shop) -> out.ShopOnboarded:
    return out.ShopOnboarded(
        shop_id=shop.shop_id,
        name=shop.name,
        email=shop.email,
        kcp_secret_id=shop.kcp_secret_id,
    )


def api_key_view(key: ApiKey) -> out.ApiKey:
    """A key without its secret (shown once, when issued): whether it works, its last use."""
    return out.ApiKey(
        key_id=key.key_id,
        shop_id=key.shop_id,
        hint=key.hint,
        active=key.active,
        created_at=to_kst_text(key.created_at),
        revoked_at=to_kst_text(key.revoked_at) if key.revoked_at else None,
        last_used_at=to_kst_text(key.last_used_at) if key.last_used_at else None,
    )
