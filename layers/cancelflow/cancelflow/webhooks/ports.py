"""What webhooks need from storage, the queue and the network (adapters implement them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cancelflow.kernel.events import Event
from cancelflow.shops.ports import ShopStore
from cancelflow.webhooks.model import Delivery, Endpoint


class WebhookStore(ShopStore, Protocol):
    def create_endpoint(self, endpoint: Endpoint) -> None: ...

    def get_endpoint(self, shop_id: str, endpoint_id: str) -> Endpoint | None: ...

    def shop_endpoints(self, shop_id: str) -> list[Endpoint]:
        """Every endpoint of the shop, oldest first (a shop has a handful)."""
        ...

    def save_endpoint(self, endpoint: Endpoint) -> None:
        """Replace an existing endpoint; Conflict if it was deleted."""
        ...

    def delete_endpoint(self, shop_id: str, endpoint_id: str) -> None: ...

    def create_delivery(self, delivery: Delivery) -> bool:
        """Record a delivery unless it exists (fan-out re-run); True if this call made it."""
        ...

    def get_delivery(self, shop_id: str, endpoint_id: str, event_id: str) -> Delivery | None: ...

    def save_delivery(self, delivery: Delivery) -> None: ...

    def endpoint_deliveries(self, shop_id: str, endpoint_id: str, limit: int) -> list[Delivery]:
        """The endpoint's newest deliveries first."""
        ...

    def get_event(self, shop_id: str, event_id: str) -> Event | None: ...


@dataclass(frozen=True)
class Job:
    """One queued delivery: what the delivery function is given (an SQS message's body)."""

    shop_id: str
    endpoint_id: str
    event_id: str
    manual: bool = False  # a redelivery the shop asked for: one attempt, no retries

    def doc(self) -> dict[str, Any]:
        return {
            "shop_id": self.shop_id,
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "manual": self.manual,
        }


class Queue(Protocol):
    def enqueue(self, job: Job, group: str, dedup: str) -> None:
        """Queue a job; jobs of one group are delivered in order, one at a time."""
        ...


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    body_excerpt: str
    latency_ms: int
    error: str = ""


class Poster(Protocol):
    def refusal(self, url: str) -> str:
        """Why this URL may not be an endpoint now ("" if it may): scheme, and every address
        its host resolves to."""
        ...

    def post(self, url: str, headers: dict[str, str], body: str) -> Answer:
        """POST with bounded timeouts, to a safe address only (re-resolved now): an unsafe or
        unreachable one is an Answer without status and with the error."""
        ...
