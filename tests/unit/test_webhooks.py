"""Webhooks to shops, on in-memory fakes: signing that a published verifier accepts, where a
delivery may go, retries with backoff, and an endpoint given up on after three days."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from cancelflow.adapters.webhook_http import HttpPoster
from cancelflow.kernel.errors import Problem
from cancelflow.kernel.events import Event
from cancelflow.shops.model import Shop
from cancelflow.webhooks import service as webhooks
from cancelflow.webhooks import signing
from cancelflow.webhooks.model import ROTATION_GRACE, DeliveryStatus, retry_delay
from cancelflow.webhooks.ports import Answer, Job
from cancelflow.webhooks.safety import address_refusal
from tests.fakes.examples import NOW, SHOP
from tests.fakes.webhooks import MailBox, MemoryQueue, MemoryWebhooks, ScriptedPoster
from tests.fakes.workflow import SteppingClock

URL = "https://hooks.shop-a.example/cancelflow"
DOWN = Answer(None, "", 3000, "ConnectionRefusedError: [Errno 111] Connection refused")


def an_event(status: str = "SUCCEEDED", resource: str = "cnl_1") -> Event:
    return Event(
        type=f"cancellation.{status.lower()}",
        shop_id=SHOP,
        resource=resource,
        occurred_at=NOW,
        cause=status,
        data={"status": status},
    )


@pytest.fixture
def world() -> tuple[MemoryWebhooks, MemoryQueue, ScriptedPoster, MailBox, SteppingClock]:
    store = MemoryWebhooks()
    store.put_shop(Shop(SHOP, "A Shop", "owner@shop-a.example"), ["sk_test_a"])
    return store, MemoryQueue(), ScriptedPoster(), MailBox(), SteppingClock()


def _registered(world, events=("cancellation.succeeded",)):  # type: ignore[no-untyped-def]
    store, _, poster, _, clock = world
    return webhooks.create_endpoint(store, poster, clock, SHOP, URL, list(events))


def _fanned_out(world, event: Event):  # type: ignore[no-untyped-def]
    store, queue, _, _, clock = world
    webhooks.fan_out(store, queue, clock, event, lambda e: {"cancellation_id": e.resource})
    return queue.jobs[-1][0]


# --- signing -----------------------------------------------------------------------------


def test_a_signed_delivery_is_accepted_by_the_standard_webhooks_verifier() -> None:
    secret = signing.new_secret()
    body = '{"type":"cancellation.succeeded","data":{"status":"SUCCEEDED","amount":15000}}'
    timestamp = int(time.time())  # the verifier refuses a timestamp 5 minutes off
    headers = signing.headers((secret,), "evt_1", timestamp, body)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers)["data"]["amount"] == 15000
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)  # another shop's secret
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("15000", "150000"), headers)  # a changed body


def test_during_a_rotation_both_secrets_sign_and_after_the_grace_only_the_new_one(
    world,  # type: ignore[no-untyped-def]
) -> None:
    store, _, _, _, clock = world
    endpoint = _registered(world)
    old = endpoint.secrets[0].secret
    rotated, new = webhooks.rotate_secret(store, clock, SHOP, endpoint.endpoint_id)
    now = clock.now()
    assert set(rotated.signing_secrets(now)) == {old, new}
    assert rotated.signing_secrets(now + ROTATION_GRACE + timedelta(minutes=1)) == (new,)

    body, stamp = '{"type":"cancellation.succeeded"}', int(time.time())
    headers = signing.headers(rotated.signing_secrets(now), "evt_2", stamp, body)
    for secret in (old, new):  # a receiver still on the old secret, and one already switched
        assert Webhook(secret).verify(body, headers) == {"type": "cancellation.succeeded"}


# --- where a webhook may go -----------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.7",
        "172.16.3.4",
        "192.168.1.1",
        "127.0.0.1",
        "::1",
        "169.254.169.254",
        "fd00:ec2::254",
        "169.254.10.1",
        "fe80::1",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address refused, not bound)
        "::ffff:10.0.0.7",
    ],
)
def test_private_loopback_link_local_and_metadata_addresses_are_refused(address: str) -> None:
    assert address_refusal(address, allow_loopback=False)


def test_a_public_address_is_allowed_and_loopback_only_when_the_setting_says_so() -> None:
    assert address_refusal("8.8.8.8", allow_loopback=False) == ""
    assert address_refusal("2606:4700:4700::1111", allow_loopback=False) == ""
    assert address_refusal("127.0.0.1", allow_loopback=True) == ""
    assert address_refusal("10.0.0.7", allow_loopback=True)  # local is loopback, not private


def test_a_host_that_resolves_to_a_private_address_is_refused_at_each_attempt() -> None:
    answers = {"hooks.shop-a.example": ["93.184.216.34"]}
    poster = HttpPoster(resolver=lambda host, port: answers[host])
    assert poster.refusal(URL) == ""
    answers["hooks.shop-a.example"] = ["93.184.216.34", "10.0.0.7"]  # DNS changed since
    answer = poster.post(URL, {}, "{}")
    assert answer.status_code is None
    assert "10.0.0.7 is not a public address" in answer.error


def test_plain_http_and_private_urls_cannot_be_registered(world) -> None:  # type: ignore[no-untyped-def]
    store, _, _, _, clock = world
    with pytest.raises(Problem) as refused:
        webhooks.create_endpoint(
            store, HttpPoster(), clock, SHOP, "http://hooks.example/x", ["cancellation.failed"]
        )
    assert refused.value.code == "WEBHOOK_URL_REFUSED"
    with pytest.raises(Problem) as unknown:
        _registered(world, events=("cancellation.refunded",))
    assert unknown.value.code == "WEBHOOK_EVENT_UNKNOWN"


# --- fan-out and delivery -------------------------------------------------------------------


def test_an_event_goes_to_each_endpoint_that_wants_it_once(world) -> None:  # type: ignore[no-untyped-def]
    store, queue, _, _, clock = world
    wants = _registered(world)
    _registered(world, events=("cancellation.failed",))
    event = an_event()
    for _ in range(2):  # a stream batch retried
        webhooks.fan_out(store, queue, clock, event, lambda e: {"cancellation_id": e.resource})
    assert [(j.endpoint_id, j.event_id) for j, _, _ in queue.jobs] == [
        (wants.endpoint_id, event.event_id)
    ]
    assert queue.jobs[0][1] == f"{wants.endpoint_id}.cnl_1"  # one group per resource: in order


def test_a_failing_receiver_is_retried_with_doubling_waits_then_given_up_after_three_days(
    world,  # type: ignore[no-untyped-def]
) -> None:
    store, _, poster, mail, clock = world
    endpoint = _registered(world)
    job = _fanned_out(world, an_event())
    poster.answers = [Answer(503, "maintenance", 40), DOWN]
    waits = [webhooks.deliver(store, poster, mail, clock, job, 30) for _ in range(4)]
    assert waits == [30, 60, 120, 240]
    delivery = store.get_delivery(SHOP, endpoint.endpoint_id, job.event_id)
    assert delivery is not None and delivery.status is DeliveryStatus.PENDING
    assert [(a.status_code, a.excerpt) for a in delivery.attempts[:2]] == [
        (503, "maintenance"),
        (None, ""),
    ]
    assert mail.sent == []

    clock.at += timedelta(days=3)
    assert webhooks.deliver(store, poster, mail, clock, job, 30) is None
    delivery = store.get_delivery(SHOP, endpoint.endpoint_id, job.event_id)
    assert delivery is not None and delivery.status is DeliveryStatus.FAILED
    after = store.get_endpoint(SHOP, endpoint.endpoint_id)
    assert after is not None and not after.enabled and after.disabled_reason == "FAILING"
    (email,) = mail.sent
    assert email.to == "owner@shop-a.example" and URL in email.subject


def test_the_backoff_spans_at_least_three_days_before_giving_up() -> None:
    waits, total = [], 0
    while total < 3 * 24 * 3600:
        waits.append(retry_delay(len(waits) + 1, 30))
        total += waits[-1]
    assert max(waits) == 12 * 3600  # SQS's longest visibility timeout
    assert len(waits) < 30


def test_a_success_after_failures_clears_the_endpoint_and_signs_with_its_secret(
    world,  # type: ignore[no-untyped-def]
) -> None:
    store, _, poster, mail, clock = world
    endpoint = _registered(world)
    job = _fanned_out(world, an_event())
    poster.answers = [DOWN, Answer(204, "", 12)]
    assert webhooks.deliver(store, poster, mail, clock, job, 30) == 30
    assert webhooks.deliver(store, poster, mail, clock, job, 30) is None
    after = store.get_endpoint(SHOP, endpoint.endpoint_id)
    assert after is not None and after.failing_since is None and after.enabled
    _, headers, body = poster.sent[-1]
    assert headers["webhook-id"] == job.event_id
    assert poster.sent[0][2] == body  # every attempt sends the same bytes
    assert webhooks.deliver(store, poster, mail, clock, job, 30) is None  # done: not sent again
    assert len(poster.sent) == 2


def test_a_manual_redelivery_sends_once_even_after_the_retries_gave_up(
    world,  # type: ignore[no-untyped-def]
) -> None:
    store, queue, poster, mail, clock = world
    endpoint = _registered(world)
    job = _fanned_out(world, an_event())
    poster.answers = [DOWN]
    webhooks.deliver(store, poster, mail, clock, job, 30)
    stored = store.get_delivery(SHOP, endpoint.endpoint_id, job.event_id)
    assert stored is not None
    store.save_delivery(replace(stored, status=DeliveryStatus.FAILED))

    webhooks.redeliver(store, queue, clock, SHOP, endpoint.endpoint_id, stored.delivery_id)
    manual = queue.jobs[-1][0]
    assert manual == Job(SHOP, endpoint.endpoint_id, job.event_id, manual=True)
    poster.answers = [Answer(200, "thanks", 8)]
    assert webhooks.deliver(store, poster, mail, clock, manual, 30) is None
    after = store.get_delivery(SHOP, endpoint.endpoint_id, job.event_id)
    assert after is not None and after.status is DeliveryStatus.SUCCEEDED
    assert [(a.manual, a.status_code) for a in after.attempts] == [(False, None), (True, 200)]


def test_a_disabled_endpoint_gets_nothing_and_cannot_be_redelivered_to(
    world,  # type: ignore[no-untyped-def]
) -> None:
    store, queue, poster, mail, clock = world
    endpoint = _registered(world)
    job = _fanned_out(world, an_event())
    webhooks.change_endpoint(store, poster, clock, SHOP, endpoint.endpoint_id, {"enabled": False})
    assert webhooks.deliver(store, poster, mail, clock, job, 30) is None
    assert poster.sent == []
    with pytest.raises(Problem) as refused:
        webhooks.redeliver(store, queue, clock, SHOP, endpoint.endpoint_id, job.event_id)
    assert refused.value.code == "WEBHOOK_ENDPOINT_DISABLED"
