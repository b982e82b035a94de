"""A shop's webhook endpoints and the deliveries of events to them.

An event is recorded with its change (cancelflow.kernel.events); fan-out makes one Delivery per
endpoint that wants it, with the payload rendered once, so every attempt sends the same bytes
under the same `webhook-id` (the event id): a receiver deduplicates on it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

EVENT_TYPES = (
    "cancellation.succeeded",
    "cancellation.rejected",
    "cancellation.failed",
    "cancellation.needs_review",
    "cancellation.corrected",
    "payment.cancelled_externally",
    "payment.deposited",
    "subscription.charged",
    "subscription.declined",
    "subscription.suspended",
    "subscription.cancelled",
)

ROTATION_GRACE = timedelta(hours=24)  # the replaced secret keeps signing this long
RETRY_WINDOW = timedelta(days=3)  # a delivery is retried this long; an endpoint failing this
# long is disabled (and the shop emailed)
MAX_BACKOFF_SECONDS = 12 * 3600  # SQS's longest visibility timeout
ATTEMPTS_KEPT = 30  # the newest attempts a delivery keeps (older ones are only counted)
EXCERPT_CHARS = 200  # of a receiver's answer body: never more is stored


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"  # queued or retrying
    SUCCEEDED = "SUCCEEDED"  # the endpoint answered 2xx
    FAILED = "FAILED"  # retried for RETRY_WINDOW without success (redeliver to try again)
    SKIPPED = "SKIPPED"  # the endpoint was disabled or deleted before it could be sent


@dataclass(frozen=True)
class SigningSecret:
    secret: str  # whsec_<base64 key>
    expires_at: datetime | None = None  # set when rotated out: signs until then


@dataclass(frozen=True)
class Endpoint:
    shop_id: str
    endpoint_id: str
    url: str
    events: tuple[str, ...]
    secrets: tuple[SigningSecret, ...]  # the current first; rotated ones during their grace
    created_at: datetime
    updated_at: datetime
    enabled: bool = True
    description: str = ""
    failing_since: datetime | None = None  # first failed attempt since the last success
    disabled_reason: str = ""  # "" | SHOP | FAILING

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """Every secret that signs now: the current one and those still in their grace."""
        return tuple(s.secret for s in self.secrets if s.expires_at is None or s.expires_at > now)

    def wants(self, event_type: str) -> bool:
        return self.enabled and event_type in self.events


@dataclass(frozen=True)
class DeliveryAttempt:
    at: datetime
    succeeded: bool
    status_code: int | None  # None: no HTTP answer (refused, timeout, unsafe address)
    latency_ms: int
    excerpt: str = ""  # the first EXCERPT_CHARS of the answer body
    error: str = ""  # why there was no answer, or why the address was refused
    manual: bool = False  # a redelivery the shop asked for


@dataclass(frozen=True)
class Delivery:
    shop_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    resource: str
    payload: str  # the JSON body, rendered once at fan-out
    occurred_at: datetime
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: tuple[DeliveryAttempt, ...] = ()
    attempt_count: int = 0
    next_attempt_at: datetime | None = None

    @property
    def delivery_id(self) -> str:
        return delivery_id_of(self.event_id)

    def with_attempt(self, attempt: DeliveryAttempt, status: DeliveryStatus) -> Delivery:
        kept = (*self.attempts, attempt)[-ATTEMPTS_KEPT:]
        return replace(self, attempts=kept, attempt_count=self.attempt_count + 1, status=status)


def delivery_id_of(event_id: str) -> str:
    """One delivery per endpoint and event: its id is the event's, so either names it."""
    return "dlv_" + event_id.removeprefix("evt_")


def event_id_of(delivery_or_event_id: str) -> str:
    return "evt_" + delivery_or_event_id.removeprefix("dlv_").removeprefix("evt_")


def retry_delay(attempts: int, base_seconds: float) -> int:
    """Exponential backoff after `attempts` failed attempts: base, 2 x base, 4 x base, ...,
    at most 12 hours; with a 30 s base the sum passes 3 days after about 16 attempts."""
    return int(min(base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))
