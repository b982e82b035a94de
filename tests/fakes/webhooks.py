"""In-memory webhook store, queue, poster and mailer for the webhook use cases' unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from cancelflow.kernel.email import Email
from cancelflow.kernel.errors import Conflict
from cancelflow.kernel.events import Event
from cancelflow.webhooks.model import Delivery, Endpoint
from cancelflow.webhooks.ports import Answer, Job
from cancelflow.webhooks.safety import url_refusal
from tests.fakes.store import MemoryStore


@dataclass
class MemoryWebhooks(MemoryStore):
    endpoints: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    deliveries: dict[tuple[str, str, str], Delivery] = field(default_factory=dict)

    def create_endpoint(self, endpoint: Endpoint) -> None:
        self.endpoints[(endpoint.shop_id, endpoint.endpoint_id)] = endpoint

    def get_endpoint(self, shop_id: str, endpoint_id: str) -> Endpoint | None:
        return self.endpoints.get((shop_id, endpoint_id))

    def shop_endpoints(self, shop_id: str) -> list[Endpoint]:
        found = [e for (shop, _), e in self.endpoints.items() if shop == shop_id]
        return sorted(found, key=lambda e: e.created_at)

    def save_endpoint(self, endpoint: Endpoint) -> None:
        key = (endpoint.shop_id, endpoint.endpoint_id)
        if key not in self.endpoints:
            raise Conflict("the endpoint was deleted")
        self.endpoints[key] = endpoint

    def delete_endpoint(self, shop_id: str, endpoint_id: str) -> None:
        self.endpoints.pop((shop_id, endpoint_id), None)
        for key in [k for k in self.deliveries if k[:2] == (shop_id, endpoint_id)]:
            del self.deliveries[key]

    def create_delivery(self, delivery: Delivery) -> bool:
        key = (delivery.shop_id, delivery.endpoint_id, delivery.event_id)
        if key in self.deliveries:
            return False
        self.deliveries[key] = delivery
        return True

    def get_delivery(self, shop_id: str, endpoint_id: str, event_id: str) -> Delivery | None:
        return self.deliveries.get((shop_id, endpoint_id, event_id))

    def save_delivery(self, delivery: Delivery) -> None:
        self.deliveries[(delivery.shop_id, delivery.endpoint_id, delivery.event_id)] = delivery

    def endpoint_deliveries(self, shop_id: str, endpoint_id: str, limit: int) -> list[Delivery]:
        found = [d for k, d in self.deliveries.items() if k[:2] == (shop_id, endpoint_id)]
        return sorted(found, key=lambda d: d.created_at, reverse=True)[:limit]

    def get_event(self, shop_id: str, event_id: str) -> Event | None:
        return self.events.get((shop_id, event_id))


@dataclass
class MemoryQueue:
    """Jobs as SQS FIFO would hold them: (job, group, dedup); a repeated dedup id is dropped."""

    jobs: list[tuple[Job, str, str]] = field(default_factory=list)

    def enqueue(self, job: Job, group: str, dedup: str) -> None:
        if dedup not in {d for _, _, d in self.jobs}:
            self.jobs.append((job, group, dedup))


@dataclass
class ScriptedPoster:
    """Answers each POST with the next scripted Answer (the last one repeats)."""

    answers: list[Answer] = field(default_factory=lambda: [Answer(200, "ok", 5)])
    sent: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    allow_loopback: bool = False

    def refusal(self, url: str) -> str:
        return url_refusal(url, self.allow_loopback)

    def post(self, url: str, headers: dict[str, str], body: str) -> Answer:
        self.sent.append((url, headers, body))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@dataclass
class MailBox:
    sent: list[Email] = field(default_factory=list)

    def send(self, email: Email) -> None:
        self.sent.append(email)
