"""Bad input gets problem+json with a stable code, never a 500, and writes nothing."""

from __future__ import annotations

import json

import pytest

from local.stack import LocalStack

from .conftest import Sandbox, ShopClient, http


def _assert_problem(answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.body["code"] == code
    assert answer.body["status"] == status
    assert answer.body["title"]


def _cancellations_of(stack: LocalStack, shop_id: str, tno: str) -> list:
    db = stack.client("dynamodb")
    return db.query(
        TableName=stack.env["TABLE_NAME"],
        IndexName="ByPayment",
        KeyConditionExpression="GSI2PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SHOP#{shop_id}#PAY#{tno}"}},
    )["Items"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"reason_code": "CHANGE_OF_MIND", "amount": 0}, "VALIDATION_FAILED"),
        ({"reason_code": "CHANGE_OF_MIND", "amount": -500}, "VALIDATION_FAILED"),
        ({"reason_code": "CHANGE_OF_MIND", "amount": "1000"}, "VALIDATION_FAILED"),
        ({"reason_code": "CHANGE_OF_MIND", "amount": 10.5}, "VALIDATION_FAILED"),
        ({"reason_code": "BECAUSE"}, "VALIDATION_FAILED"),
        ({}, "VALIDATION_FAILED"),
        ({"reason_code": "OTHER", "surprise": 1}, "VALIDATION_FAILED"),
        (
            {
                "reason_code": "OTHER",
                "refund_account": {"bank_code": "04", "number": "1", "holder": ""},
            },
            "VALIDATION_FAILED",
        ),
    ],
)
def test_invalid_cancel_requests_are_refused_and_nothing_is_written(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict, body: dict, code: str
) -> None:
    answer = shop.cancel(paid["tno"], body)
    _assert_problem(answer, 400, code)
    assert answer.body["errors"]
    assert _cancellations_of(stack, "demo-shop", paid["tno"]) == []
    assert sandbox.calls(paid["tno"]) == []


def test_malformed_json_is_refused(shop: ShopClient, paid: dict) -> None:
    answer = http(
        "POST",
        f"{shop.url}/v1/payments/{paid['tno']}/cancellations",
        raw=b'{"reason_code": ',
        headers=shop.auth | {"Idempotency-Key": "k"},
    )
    _assert_problem(answer, 400, "MALFORMED_JSON")


def test_a_cancel_without_idempotency_key_is_refused(shop: ShopClient, paid: dict) -> None:
    answer = http(
        "POST",
        f"{shop.url}/v1/payments/{paid['tno']}/cancellations",
        {"reason_code": "OTHER"},
        shop.auth,
    )
    _assert_problem(answer, 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert "cancellation" in answer.body["detail"]


def test_an_amount_above_the_balance_is_refused(shop: ShopClient, paid: dict) -> None:
    answer = shop.cancel(paid["tno"], {"reason_code": "OTHER", "amount": 15001})
    _assert_problem(answer, 422, "AMOUNT_EXCEEDS_BALANCE")


def test_an_unknown_tno_is_not_found(shop: ShopClient) -> None:
    _assert_problem(shop.cancel("20990101000000"), 404, "PAYMENT_NOT_FOUND")


def test_a_malformed_tno_is_refused(shop: ShopClient) -> None:
    _assert_problem(shop.cancel("12ab"), 400, "VALIDATION_FAILED")


def test_another_shops_payment_and_cancellation_are_not_found(
    stack: LocalStack, shop: ShopClient, shop_b: ShopClient, sandbox: Sandbox, paid: dict
) -> None:
    _assert_problem(shop_b.cancel(paid["tno"]), 404, "PAYMENT_NOT_FOUND")
    mine = shop.cancel(paid["tno"]).body["cancellation_id"]
    _assert_problem(shop_b.cancellation(mine), 404, "CANCELLATION_NOT_FOUND")
    assert shop.outcome(mine)["status"] == "SUCCEEDED"
    assert _cancellations_of(stack, "shop-b", paid["tno"]) == []


@pytest.mark.parametrize("authorization", [None, "Bearer sk_test_wrong", "Basic abc", "Bearer "])
def test_missing_or_unknown_keys_are_unauthorized(
    shop: ShopClient, paid: dict, authorization: str | None
) -> None:
    headers = {"Idempotency-Key": "k"} | ({"Authorization": authorization} if authorization else {})
    answer = http(
        "POST",
        f"{shop.url}/v1/payments/{paid['tno']}/cancellations",
        {"reason_code": "OTHER"},
        headers,
    )
    _assert_problem(answer, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tno": "123"}, "tno"),
        ({"amount": 0}, "amount"),
        ({"method": "BITCOIN"}, "method"),
        ({"approved_at": "2026-11-01T10:00:00"}, "approved_at"),
        ({"buyer_email": "not-an-email"}, "buyer_email"),
        ({"tax_free_amount": 20000}, "body"),
    ],
)
def test_invalid_payment_registrations_are_refused(
    shop: ShopClient, sandbox: Sandbox, change: dict, field: str
) -> None:
    payment = sandbox.approve() | change
    answer = shop.register(payment)
    _assert_problem(answer, 400, "VALIDATION_FAILED")
    assert field in {e["field"] for e in answer.body["errors"]}


def test_an_unknown_route_is_a_problem_not_a_500(shop: ShopClient) -> None:
    answer = http("GET", f"{shop.url}/v1/nothing-here", headers=shop.auth)
    _assert_problem(answer, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded", ""],
)
def test_a_body_that_is_not_json_is_415_on_every_json_endpoint(
    shop: ShopClient, paid: dict, content_type: str
) -> None:
    body = json.dumps({"reason_code": "CHANGE_OF_MIND"}).encode()
    for method, path in [
        ("POST", f"/v1/payments/{paid['tno']}/cancellations"),
        ("POST", "/v1/payments"),
        ("PATCH", f"/v1/payments/{paid['tno']}/fulfillment"),
        ("PUT", "/v1/shop/policy"),
        ("POST", "/v1/subscriptions"),
    ]:
        headers = shop.auth | {"Idempotency-Key": "k-415", "Content-Type": content_type}
        answer = http(method, f"{shop.url}{path}", headers=headers, raw=body)
        _assert_problem(answer, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert shop.payment(paid["tno"])["available"] == 15000  # nothing was started


@pytest.mark.parametrize(
    "approved_at", ["0999-12-31T00:00:00Z", "1999-12-31T23:59:59Z", "2999-01-01T00:00:00+09:00"]
)
def test_an_implausible_approval_time_is_refused_and_the_history_stays_readable(
    shop: ShopClient, sandbox: Sandbox, approved_at: str
) -> None:
    payment = sandbox.approve() | {"approved_at": approved_at}

    _assert_problem(shop.register(payment), 400, "VALIDATION_FAILED")

    assert http("GET", f"{shop.url}/v1/payments/{payment['tno']}", headers=shop.auth).status == 404
    history = http("GET", f"{shop.url}/v1/payments?limit=100", headers=shop.auth)
    assert history.status == 200
    assert payment["tno"] not in [p["tno"] for p in history.body["items"]]


def test_a_payment_kcp_does_not_hold_as_described_is_refused_with_what_differs(
    shop: ShopClient, shop_b: ShopClient, sandbox: Sandbox
) -> None:
    payment = sandbox.approve(amount=15000)

    wrong_amount = shop.register(payment | {"amount": 150000})
    _assert_problem(wrong_amount, 422, "PAYMENT_MISMATCH")
    assert {"field": "amount", "kcp": 15000, "registered": 150000} in wrong_amount.body[
        "differences"
    ]
    _assert_problem(shop.register(payment | {"tno": "20990101000000"}), 422, "PAYMENT_MISMATCH")
    _assert_problem(shop.register(payment | {"method": "MOBILE"}), 422, "PAYMENT_MISMATCH")
    # Another merchant's tno: shop B's KCP credentials do not reach shop A's payment.
    _assert_problem(shop_b.register(payment), 422, "PAYMENT_MISMATCH")

    # Nothing was recorded by the refusals; the true facts register.
    assert http("GET", f"{shop.url}/v1/payments/{payment['tno']}", headers=shop.auth).status == 404
    assert shop.register(payment).status == 201


def test_a_throttled_table_is_503_with_retry_after_not_500(
    shop: ShopClient, paid: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from cancelflow.adapters.dynamodb.store import DynamoStore

    def throttled(*_: object, **__: object) -> None:
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}
        raise ClientError(error, "GetItem")  # type: ignore[arg-type]

    monkeypatch.setattr(DynamoStore, "get_payment", throttled)  # the handlers run in-process
    answer = http("GET", f"{shop.url}/v1/payments/{paid['tno']}", headers=shop.auth)

    _assert_problem(answer, 503, "SERVICE_UNAVAILABLE")
    assert answer.headers["Retry-After"] == "1"


def test_every_answer_carries_a_request_id_and_a_problem_quotes_it(
    shop: ShopClient, sandbox: Sandbox
) -> None:
    created = shop.register(sandbox.approve())
    refused = shop.cancel("20990101000000")
    not_json = http(
        "POST",
        f"{shop.url}/v1/payments",
        headers=shop.auth | {"Content-Type": "text/plain"},
        raw=b"x",
    )
    unauthorized = http("GET", f"{shop.url}/v1/payments", headers={"Authorization": "Bearer nope"})

    assert created.status == 201 and created.headers["Request-Id"]
    for problem in (refused, not_json):
        assert problem.body["request_id"] == problem.headers["Request-Id"]
    assert unauthorized.status == 401 and unauthorized.body["request_id"]  # the gateway's own
    ids = [a.headers["Request-Id"] for a in (created, refused, not_json)]
    assert len(set(ids)) == 3
