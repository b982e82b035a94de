"""Webhooks to shops through the real path: the cancel's settle records its event, the Ledger's
stream feeds the fan-out function, the FIFO queue the delivery function, which signs and POSTs
to the stack's inbox; the inbox verifies with the published `standardwebhooks` verifier."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.stack import LocalStack

from .conftest import ShopClient, http


def arrivals(stack: LocalStack, resource: str, timeout: float = 20, count: int = 1) -> list[dict]:
    """What the inbox got about one resource, once `count` deliveries arrived (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            a
            for a in stack.inbox.arrivals
            if isinstance(a["body"], dict)
            and a["body"].get("data", {}).get("cancellation_id") == resource
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def deliveries(shop: ShopClient, endpoint_id: str) -> list[dict[str, Any]]:
    answer = http(
        "GET", f"{shop.url}/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=shop.auth
    )
    assert answer.status == 200, answer.body
    return answer.body["items"]


@pytest.fixture
def endpoint(stack: LocalStack, shop: ShopClient) -> Iterator[dict[str, Any]]:
    """The inbox registered as the shop's endpoint for cancellation events; its secret given to
    the inbox, as a shop puts it in its receiver's configuration."""
    answer = http(
        "POST",
        f"{shop.url}/v1/webhook-endpoints",
        {
            "url": stack.env["WEBHOOK_INBOX_URL"],
            "events": ["cancellation.succeeded", "cancellation.failed"],
        },
        shop.auth,
    )
    assert answer.status == 201, answer.body
    assert answer.body["secret"].startswith("whsec_")
    http(
        "POST",
        stack.env["WEBHOOK_INBOX_URL"].replace("/hooks", "/_inbox/secrets"),
        {"secret": answer.body["secret"]},
    )
    yield answer.body
    if stack.inbox._server is None:  # a test stopped it and failed before starting it
        stack.inbox.start()
    http("DELETE", f"{shop.url}/v1/webhook-endpoints/{answer.body['id']}", headers=shop.auth)


def test_a_cancel_that_succeeds_reaches_the_shop_signed_and_verified(
    stack: LocalStack, shop: ShopClient, paid: dict, endpoint: dict
) -> None:
    outcome = shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])
    assert outcome["status"] == "SUCCEEDED"

    (arrival,) = arrivals(stack, outcome["cancellation_id"])
    assert arrival["verified"], arrival["error"]
    assert arrival["body"]["type"] == "cancellation.succeeded"
    assert arrival["body"]["id"] == arrival["webhook_id"]
    assert arrival["body"]["data"]["status"] == "SUCCEEDED"
    assert arrival["body"]["data"]["refunded_amount"] == 15000
    assert arrival["body"]["data"]["tno"] == paid["tno"]
    listed = http("GET", stack.env["WEBHOOK_INBOX_URL"].replace("/hooks", "/_inbox/events"))
    assert arrival["webhook_id"] in [a["webhook_id"] for a in listed.body]

    (logged,) = [
        d for d in deliveries(shop, endpoint["id"]) if d["resource"] == outcome["cancellation_id"]
    ]
    assert logged["status"] == "SUCCEEDED"
    assert logged["event_id"] == arrival["webhook_id"]
    assert [(a["status"], a["answer_code"]) for a in logged["attempts"]] == [("SUCCEEDED", 200)]


def test_a_stopped_receiver_is_retried_and_a_manual_redelivery_succeeds_once_it_is_back(
    stack: LocalStack, shop: ShopClient, paid: dict, endpoint: dict
) -> None:
    stack.inbox.stop()
    outcome = shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])
    deadline = time.monotonic() + 30
    while True:  # the first attempt, then a retry after the backoff (2 s locally)
        logged = [
            d
            for d in deliveries(shop, endpoint["id"])
            if d["resource"] == outcome["cancellation_id"]
        ]
        if (logged and logged[0]["attempt_count"] >= 2) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (delivery,) = logged
    assert delivery["status"] == "PENDING"
    assert delivery["next_attempt_at"]
    assert all(a["status"] == "FAILED" and a["answer_code"] is None for a in delivery["attempts"])
    assert delivery["attempt_count"] >= 2

    stack.inbox.start()
    answer = http(
        "POST",
        f"{shop.url}/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery['id']}/redeliver",
        headers=shop.auth,
    )
    assert answer.status == 202, answer.body
    (arrival,) = arrivals(stack, outcome["cancellation_id"])
    assert arrival["verified"], arrival["error"]
    assert arrival["webhook_id"] == delivery["event_id"]
    deadline = time.monotonic() + 10
    while True:
        (after,) = [d for d in deliveries(shop, endpoint["id"]) if d["id"] == delivery["id"]]
        if after["status"] == "SUCCEEDED" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after["status"] == "SUCCEEDED"
    assert after["attempts"][-1]["manual"] is True
    assert after["attempts"][-1]["answer_code"] == 200


def test_a_repeated_settle_records_no_second_event(
    stack: LocalStack, shop: ShopClient, paid: dict, endpoint: dict
) -> None:
    outcome = shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])
    arrivals(stack, outcome["cancellation_id"])
    # The settle step run again (a retried Lambda, a redrive): the change is already made.
    stack.lambdas.invoke(
        stack.template.physical_name("SettleFunction"),
        {
            "shop_id": "demo-shop",
            "cancellation_id": outcome["cancellation_id"],
            "verdict": {"status": "SUCCEEDED", "reasons": []},
        },
    )
    time.sleep(3)
    assert len(arrivals(stack, outcome["cancellation_id"], timeout=0)) == 1
    ddb = stack.client("dynamodb")
    events = ddb.query(
        TableName=stack.env["TABLE_NAME"],
        IndexName="ShopTimeline",
        KeyConditionExpression="GSI1PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SHOP#demo-shop#WHE#{endpoint['id']}#DLV"}},
    )["Items"]
    assert [e["resource"]["S"] for e in events].count(outcome["cancellation_id"]) == 1


def test_an_endpoint_at_a_private_address_is_refused(shop: ShopClient) -> None:
    answer = http(
        "POST",
        f"{shop.url}/v1/webhook-endpoints",
        {"url": "https://169.254.169.254/latest", "events": ["cancellation.succeeded"]},
        shop.auth,
    )
    assert answer.status == 422
    assert answer.code == "WEBHOOK_URL_REFUSED"


def test_a_shop_manages_its_endpoints_and_sees_a_secret_only_when_it_is_new(
    shop: ShopClient, shop_b: ShopClient
) -> None:
    base = f"{shop.url}/v1/webhook-endpoints"
    created = http(
        "POST", base, {"url": "https://8.8.8.8/hooks", "events": ["payment.deposited"]}, shop.auth
    )
    assert created.status == 201, created.body
    eid, first_secret = created.body["id"], created.body["secret"]
    shown = http("GET", f"{base}/{eid}", headers=shop.auth)
    assert shown.status == 200 and shown.body["secret"] is None  # shown once, never again
    assert eid in [e["id"] for e in http("GET", base, headers=shop.auth).body["items"]]
    assert (
        http("GET", f"{shop_b.url}/v1/webhook-endpoints/{eid}", headers=shop_b.auth).status == 404
    )

    rotated = http("POST", f"{base}/{eid}/rotate-secret", headers=shop.auth)
    assert rotated.status == 200
    assert rotated.body["secret"].startswith("whsec_") and rotated.body["secret"] != first_secret
    assert len(rotated.body["secrets_in_grace"]) == 1  # the old one still signs for a while

    off = http("PATCH", f"{base}/{eid}", {"enabled": False}, shop.auth)
    assert (off.status, off.body["enabled"], off.body["disabled_reason"]) == (200, False, "SHOP")
    on = http("PATCH", f"{base}/{eid}", {"enabled": True}, shop.auth)
    assert (on.body["enabled"], on.body["disabled_reason"]) == (True, None)

    assert http("DELETE", f"{base}/{eid}", headers=shop.auth).status == 204
    gone = http("GET", f"{base}/{eid}", headers=shop.auth)
    assert (gone.status, gone.code) == (404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    assert eid not in [e["id"] for e in http("GET", base, headers=shop.auth).body["items"]]


def test_an_unknown_event_type_is_refused_with_the_known_ones(shop: ShopClient) -> None:
    answer = http(
        "POST",
        f"{shop.url}/v1/webhook-endpoints",
        {"url": "https://8.8.8.8/hooks", "events": ["cancellation.refunded"]},
        shop.auth,
    )
    assert (answer.status, answer.code) == (422, "WEBHOOK_EVENT_UNKNOWN")
    assert "cancellation.succeeded" in answer.body["known"]


def test_a_subscription_charged_and_cancelled_reaches_the_shop(
    stack: LocalStack, shop: ShopClient
) -> None:
    from .billing_support import batch_key, bill, call, subscribe

    answer = http(
        "POST",
        f"{shop.url}/v1/webhook-endpoints",
        {
            "url": stack.env["WEBHOOK_INBOX_URL"],
            "events": ["subscription.charged", "subscription.cancelled"],
        },
        shop.auth,
    )
    assert answer.status == 201, answer.body
    inbox = stack.env["WEBHOOK_INBOX_URL"].replace("/hooks", "/_inbox/secrets")
    http("POST", inbox, {"secret": answer.body["secret"]})
    try:
        sub = subscribe(shop, batch_key(stack.env["SANDBOX_URL"]), "2033-07-09").body
        assert bill(stack, "2033-07-09")["charged"] >= 1
        cancelled = call(
            shop,
            "POST",
            f"/v1/subscriptions/{sub['subscription_id']}/cancel",
            {"when": "PERIOD_END"},
        )
        assert (cancelled.status, cancelled.body["status"]) == (200, "CANCELLED")

        def about(sub_id: str) -> list[dict[str, Any]]:
            return [
                a
                for a in stack.inbox.arrivals
                if isinstance(a["body"], dict)
                and a["body"].get("data", {}).get("subscription_id") == sub_id
            ]

        deadline = time.monotonic() + 20
        while len(about(sub["subscription_id"])) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        got = about(sub["subscription_id"])
        assert all(a["verified"] for a in got)
        charged = [a["body"] for a in got if a["body"]["type"] == "subscription.charged"]
        assert [(c["change"]["period"], c["change"]["amount"]) for c in charged] == [
            ("2033-07", 9900)
        ]
        assert [a["body"]["type"] for a in got] == [
            "subscription.charged",
            "subscription.cancelled",
        ]
    finally:
        http("DELETE", f"{shop.url}/v1/webhook-endpoints/{answer.body['id']}", headers=shop.auth)


def test_a_cancel_made_in_kcps_admin_reaches_the_shop_as_a_signed_webhook(
    stack: LocalStack, shop: ShopClient, paid: dict
) -> None:
    """Issue 15 end to end: KCP's notification -> the external cancel and its event, in one
    write -> the stream -> the shop's endpoint, signed; the payment shows the cancel."""
    answer = http(
        "POST",
        f"{shop.url}/v1/webhook-endpoints",
        {"url": stack.env["WEBHOOK_INBOX_URL"], "events": ["payment.cancelled_externally"]},
        shop.auth,
    )
    assert answer.status == 201, answer.body
    inbox = stack.env["WEBHOOK_INBOX_URL"].replace("/hooks", "/_inbox/secrets")
    http("POST", inbox, {"secret": answer.body["secret"]})
    try:
        sandbox_url = stack.env["SANDBOX_URL"]
        cancelled = http(
            "POST", f"{sandbox_url}/_sandbox/payments/{paid['tno']}/admin-cancel", {"amount": 5000}
        )
        assert cancelled.status == 202, cancelled.body
        deadline, found = time.monotonic() + 30, []
        while not found and time.monotonic() < deadline:
            found = [
                a
                for a in stack.inbox.arrivals
                if isinstance(a["body"], dict)
                and a["body"].get("type") == "payment.cancelled_externally"
                and a["body"].get("data", {}).get("tno") == paid["tno"]
            ]
            time.sleep(0.1)
        assert len(found) == 1, stack.inbox.arrivals[-3:]
        assert found[0]["verified"], found[0]["error"]
        payment = http("GET", f"{shop.url}/v1/payments/{paid['tno']}", headers=shop.auth).body
        assert found[0]["body"]["data"]["balance"] == payment["balance"] == paid["amount"] - 5000
    finally:
        endpoint_id = answer.body["id"]
        http("DELETE", f"{shop.url}/v1/webhook-endpoints/{endpoint_id}", headers=shop.auth)
