"""The webhook use cases: a shop's endpoints (API), fan-out of recorded events, delivery.

Delivery is at least once: a Job is retried (the queue hides it for `retry_delay`) until the
endpoint answers 2xx or RETRY_WINDOW has passed; a receiver deduplicates on `webhook-id`. Jobs
of one endpoint and resource share a queue group, so a resource's events arrive in order (a
later one waits while an earlier one is retried); a manual redelivery goes out at once.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from cancelflow.kernel.clock import Clock
from cancelflow.kernel.email import Mailer
from cancelflow.kernel.errors import Conflict, Problem
from cancelflow.kernel.events import Event
from cancelflow.webhooks import signing
from cancelflow.webhooks.emails import disabled_email
from cancelflow.webhooks.model import (
    EVENT_TYPES,
    EXCERPT_CHARS,
    RETRY_WINDOW,
    ROTATION_GRACE,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
    SigningSecret,
    event_id_of,
    retry_delay,
)
from cancelflow.webhooks.ports import Job, Poster, Queue, WebhookStore

MAX_ENDPOINTS = 16  # per shop


def _check_events(events: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        raise Problem(
            "WEBHOOK_EVENT_UNKNOWN",
            f"Unknown event types: {', '.join(unknown)}." if unknown else "Name at least one.",
            known=list(EVENT_TYPES),
        )
    return tuple(t for t in EVENT_TYPES if t in events)


def create_endpoint(
    store: WebhookStore,
    poster: Poster,
    clock: Clock,
    shop_id: str,
    url: str,
    events: list[str],
    description: str = "",
) -> Endpoint:
    """Register an endpoint; its secret is in the answer, and only there (shown once)."""
    refusal = poster.refusal(url)
    if refusal:
        raise Problem("WEBHOOK_URL_REFUSED", f"{url}: {refusal}.")
    wanted = _check_events(events)
    if len(store.shop_endpoints(shop_id)) >= MAX_ENDPOINTS:
        raise Problem("WEBHOOK_ENDPOINT_LIMIT", f"A shop has at most {MAX_ENDPOINTS} endpoints.")
    now = clock.now()
    endpoint = Endpoint(
        shop_id=shop_id,
        endpoint_id="whe_" + secrets.token_hex(12),
        url=url,
        events=wanted,
        secrets=(SigningSecret(signing.new_secret()),),
        created_at=now,
        updated_at=now,
        description=description,
    )
    store.create_endpoint(endpoint)
    return endpoint


def get_endpoint(store: WebhookStore, shop_id: str, endpoint_id: str) -> Endpoint:
    endpoint = store.get_endpoint(shop_id, endpoint_id)
    if endpoint is None:
        raise Problem("WEBHOOK_ENDPOINT_NOT_FOUND", f"No webhook endpoint {endpoint_id}.")
    return endpoint


def delete_endpoint(store: WebhookStore, shop_id: str, endpoint_id: str) -> None:
    get_endpoint(store, shop_id, endpoint_id)
    store.delete_endpoint(shop_id, endpoint_id)


def _save(store: WebhookStore, endpoint: Endpoint) -> Endpoint:
    try:
        store.save_endpoint(endpoint)
    except Conflict as gone:
        raise Problem(
            "WEBHOOK_ENDPOINT_NOT_FOUND", f"No endpoint {endpoint.endpoint_id}."
        ) from gone
    return endpoint


def rotate_secret(
    store: WebhookStore, clock: Clock, shop_id: str, endpoint_id: str
) -> tuple[Endpoint, str]:
    """A new signing secret (returned once); the old one keeps signing for ROTATION_GRACE, so
    a receiver can switch without missing a delivery."""
    endpoint = get_endpoint(store, shop_id, endpoint_id)
    now = clock.now()
    fresh = signing.new_secret()
    kept = tuple(
        s if s.expires_at else replace(s, expires_at=now + ROTATION_GRACE)
        for s in endpoint.secrets
        if s.expires_at is None or s.expires_at > now
    )
    rotated = replace(endpoint, secrets=(SigningSecret(fresh), *kept), updated_at=now)
    return _save(store, rotated), fresh


def change_endpoint(
    store: WebhookStore,
    poster: Poster,
    clock: Clock,
    shop_id: str,
    endpoint_id: str,
    changes: dict[str, Any],
) -> Endpoint:
    """Enable or disable, or change the URL, the events or the description."""
    endpoint = get_endpoint(store, shop_id, endpoint_id)
    if "url" in changes:
        refusal = poster.refusal(changes["url"])
        if refusal:
            raise Problem("WEBHOOK_URL_REFUSED", f"{changes['url']}: {refusal}.")
        endpoint = replace(endpoint, url=changes["url"])
    if "events" in changes:
        endpoint = replace(endpoint, events=_check_events(changes["events"]))
    if "description" in changes:
        endpoint = replace(endpoint, description=changes["description"])
    if "enabled" in changes:
        on = bool(changes["enabled"])
        endpoint = replace(
            endpoint,
            enabled=on,
            disabled_reason="" if on else "SHOP",
            failing_since=None if on else endpoint.failing_since,
        )
    return _save(store, replace(endpoint, updated_at=clock.now()))


def deliveries(
    store: WebhookStore, shop_id: str, endpoint_id: str, limit: int
) -> tuple[Endpoint, list[Delivery]]:
    endpoint = get_endpoint(store, shop_id, endpoint_id)
    return endpoint, store.endpoint_deliveries(shop_id, endpoint_id, limit)


def redeliver(
    store: WebhookStore, queue: Queue, clock: Clock, shop_id: str, endpoint_id: str, any_id: str
) -> Delivery:
    """Send one delivery again now (by its id or its event's id), whatever its status."""
    endpoint = get_endpoint(store, shop_id, endpoint_id)
    if not endpoint.enabled:
        raise Problem("WEBHOOK_ENDPOINT_DISABLED", "Enable the endpoint first (PATCH).")
    event_id = event_id_of(any_id)
    delivery = store.get_delivery(shop_id, endpoint_id, event_id)
    if delivery is None:
        raise Problem("WEBHOOK_DELIVERY_NOT_FOUND", f"No delivery of {any_id} to this endpoint.")
    stamp = clock.now().strftime("%Y%m%d%H%M%S%f")
    job = Job(shop_id, endpoint_id, event_id, manual=True)
    queue.enqueue(job, group=f"manual.{endpoint_id}.{event_id}", dedup=f"{event_id}.{stamp}")
    return delivery


# --- fan-out and delivery (the stream and queue functions) ---------------------------------


def payload(event: Event, view: dict[str, Any]) -> str:
    """The body every attempt sends: the event, and the resource as the API shows it."""
    doc = {
        "id": event.event_id,
        "type": event.type,
        "timestamp": event.occurred_at.isoformat(),
        "data": view,
        "change": event.data,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def fan_out(
    store: WebhookStore,
    queue: Queue,
    clock: Clock,
    event: Event,
    render: Callable[[Event], dict[str, Any]],
) -> int:
    """One delivery per endpoint that wants the event; returns how many were queued. Safe to
    run again (a stream batch retried): the delivery exists once, the queue dedups the job."""
    endpoints = [e for e in store.shop_endpoints(event.shop_id) if e.wants(event.type)]
    if not endpoints:
        return 0
    body = payload(event, render(event))
    now = clock.now()
    for endpoint in endpoints:
        delivery = Delivery(
            shop_id=event.shop_id,
            endpoint_id=endpoint.endpoint_id,
            event_id=event.event_id,
            event_type=event.type,
            resource=event.resource,
            payload=body,
            occurred_at=event.occurred_at,
            created_at=now,
        )
        store.create_delivery(delivery)
        queue.enqueue(
            Job(event.shop_id, endpoint.endpoint_id, event.event_id),
            group=f"{endpoint.endpoint_id}.{event.resource}",
            dedup=f"{endpoint.endpoint_id}.{event.event_id}",
        )
    return len(endpoints)


def deliver(
    store: WebhookStore,
    poster: Poster,
    mailer: Mailer,
    clock: Clock,
    job: Job,
    backoff_base_seconds: float,
) -> int | None:
    """Make one attempt; returns the seconds to wait before the next, or None when done
    (delivered, given up, or nothing to send)."""
    delivery = store.get_delivery(job.shop_id, job.endpoint_id, job.event_id)
    if delivery is None:
        return None  # its endpoint was deleted (and its deliveries with it)
    endpoint = store.get_endpoint(job.shop_id, job.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        if delivery.status is DeliveryStatus.PENDING and not job.manual:
            store.save_delivery(replace(delivery, status=DeliveryStatus.SKIPPED))
        return None
    if delivery.status is DeliveryStatus.SUCCEEDED and not job.manual:
        return None  # a redelivery got it there first
    now = clock.now()
    headers = signing.headers(
        endpoint.signing_secrets(now), delivery.event_id, int(now.timestamp()), delivery.payload
    ) | {"content-type": "application/json", "user-agent": "cancelflow-webhooks/1"}
    answer = poster.post(endpoint.url, headers, delivery.payload)
    ok = answer.status_code is not None and 200 <= answer.status_code < 300
    attempt = DeliveryAttempt(
        at=now,
        succeeded=ok,
        status_code=answer.status_code,
        latency_ms=answer.latency_ms,
        excerpt=answer.body_excerpt[:EXCERPT_CHARS],
        error=answer.error[:EXCERPT_CHARS],
        manual=job.manual,
    )
    if ok:
        store.save_delivery(
            replace(delivery.with_attempt(attempt, DeliveryStatus.SUCCEEDED), next_attempt_at=None)
        )
        if endpoint.failing_since:
            store.save_endpoint(replace(endpoint, failing_since=None))
        return None
    endpoint = _note_failure(store, mailer, endpoint, now)
    if job.manual:  # one attempt, logged; the automatic retries (if any) go on
        store.save_delivery(delivery.with_attempt(attempt, delivery.status))
        return None
    if not endpoint.enabled or now - delivery.created_at >= RETRY_WINDOW:
        store.save_delivery(
            replace(delivery.with_attempt(attempt, DeliveryStatus.FAILED), next_attempt_at=None)
        )
        return None
    delay = retry_delay(delivery.attempt_count + 1, backoff_base_seconds)
    later = delivery.with_attempt(attempt, DeliveryStatus.PENDING)
    store.save_delivery(replace(later, next_attempt_at=_plus(now, delay)))
    return delay


def _plus(now: datetime, seconds: int) -> datetime:
    return now + timedelta(seconds=seconds)


def _note_failure(
    store: WebhookStore, mailer: Mailer, endpoint: Endpoint, now: datetime
) -> Endpoint:
    """Count the endpoint as failing since its first failure; after RETRY_WINDOW of nothing but
    failures it is disabled and the shop is emailed (once: it is disabled after)."""
    if endpoint.failing_since is None:
        failing = replace(endpoint, failing_since=now)
        store.save_endpoint(failing)
        return failing
    if now - endpoint.failing_since < RETRY_WINDOW:
        return endpoint
    disabled = replace(endpoint, enabled=False, disabled_reason="FAILING", updated_at=now)
    store.save_endpoint(disabled)
    shop = store.get_shop(endpoint.shop_id)
    if shop is not None:
        mailer.send(disabled_email(shop, disabled, store.get_policy(shop.shop_id).email_language))
    return disabled
