"""No shop starves the others: each shop has its own rate and burst (the usage plan keyed by the
authorizer's usage key), and over it the gateway answers what the template's THROTTLED response
declares: 429 problem+json RATE_LIMITED with Retry-After."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from local.api_gateway import LocalApi
from local.stack import LocalStack
from local.template import Template
from tests.integration.conftest import http

LIMITS = {"ShopRateLimit": "1", "ShopBurstLimit": "3"}


@pytest.fixture(scope="module")
def api_url(stack: LocalStack) -> Iterator[str]:
    """The stack's API again, with a shop's limits low enough to reach (the stack's are high)."""
    assert stack.template and stack.lambdas
    api = LocalApi(Template(parameters=stack.template.parameters | LIMITS), stack.lambdas)
    yield api.start()
    api.stop()


def _policy(url: str, key: str):
    return http("GET", f"{url}/v1/shop/policy", headers={"Authorization": f"Bearer {key}"})


def test_a_burst_over_a_shops_limit_is_429_while_another_shop_keeps_going(
    stack: LocalStack, api_url: str
) -> None:
    shop_a, shop_b = stack.env["SHOP_API_KEY"], stack.env["SHOP_B_API_KEY"]
    answers = [_policy(api_url, shop_a) for _ in range(8)]
    assert [a.status for a in answers[:3]] == [200, 200, 200]  # the burst
    limited = [a for a in answers if a.status == 429]
    assert len(limited) >= 4  # refilled at 1 a second: at most one more got through

    declared = Template().api("ShopApi")["GatewayResponses"]["THROTTLED"]
    for answer in limited:
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.headers["Retry-After"] == "1"
        body = json.loads(declared["ResponseTemplates"]["application/json"])
        assert body.pop("request_id") == "$context.requestId"  # API Gateway fills it in
        assert answer.body == body | {"request_id": answer.body["request_id"]}
        assert answer.body["request_id"]
        assert answer.code == "RATE_LIMITED"

    # Shop B has its own bucket: A's burst cost it nothing.
    assert [_policy(api_url, shop_b).status for _ in range(3)] == [200, 200, 200]
    # And A is served again once Retry-After has passed.
    time.sleep(1.1)
    assert _policy(api_url, shop_a).status == 200


def test_the_shared_stack_is_not_throttled_for_tests_and_benches(stack: LocalStack) -> None:
    key = stack.env["SHOP_API_KEY"]
    assert all(_policy(stack.env["API_URL"], key).status == 200 for _ in range(20))
