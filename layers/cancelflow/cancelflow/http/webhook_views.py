"""What the webhooks API shows: endpoints (a secret only when it is new) and deliveries."""

from __future__ import annotations

from typing import Any

from cancelflow.http import responses as out
from cancelflow.kernel.clock import to_kst_text
from cancelflow.webhooks.model import Delivery, Endpoint


def _kst(moment: Any) -> str | None:
    return to_kst_text(moment) if moment else None


def endpoint_view(e: Endpoint, secret: str = "") -> out.WebhookEndpoint:
    """The endpoint; `secret` is given once, on creation and rotation, never shown again."""
    view: dict[str, Any] = {
        "id": e.endpoint_id,
        "url": e.url,
        "events": list(e.events),
        "description": e.description,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason or None,
        "failing_since": _kst(e.failing_since),
        "secrets_in_grace": [_kst(s.expires_at) for s in e.secrets if s.expires_at],
        "created_at": _kst(e.created_at),
        "updated_at": _kst(e.updated_at),
    }
    if secret:
        view["secret"] = secret
    return out.WebhookEndpoint.model_validate(view)


def delivery_view(d: Delivery) -> out.WebhookDelivery:
    return out.WebhookDelivery.model_validate(_delivery_fields(d))


def _delivery_fields(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.delivery_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "resource": d.resource,
        "status": d.status.value,
        "occurred_at": _kst(d.occurred_at),
        "created_at": _kst(d.created_at),
        "attempt_count": d.attempt_count,
        "next_attempt_at": _kst(d.next_attempt_at),
        "attempts": [
            {
                "at": _kst(a.at),
                "status": "SUCCEEDED" if a.succeeded else "FAILED",
                "answer_code": a.status_code,
                "latency_ms": a.latency_ms,
                "answer_excerpt": a.excerpt,
                "error": a.error or None,
                "manual": a.manual,
            }
            for a in d.attempts
        ],
    }
