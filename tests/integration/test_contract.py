"""The API answers what openapi.json says, operation by operation (schemathesis on the stack).

Every operation gets generated requests, valid and invalid, half of them aimed at real records
(registered tnos, a cancellation, a subscription) so the success answers are checked too. Each
answer must be no server error, with a documented status, content type, headers and body schema.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local.openapi import OUT
from local.stack import LocalStack

from .billing_support import batch_key, subscribe
from .conftest import Sandbox, ShopClient, http

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 12  # per operation and phase: bounded, so the suite stays fast


def _subscription_ids(shop: ShopClient) -> set[str]:
    found: set[str] = set()
    cursor = ""
    while True:
        page = http("GET", f"{shop.url}/v1/subscriptions?limit=100{cursor}", headers=shop.auth)
        assert page.status == 200, page.body
        found |= {s["subscription_id"] for s in page.body["items"]}
        if not page.body["next_cursor"]:
            return found
        cursor = f"&cursor={page.body['next_cursor']}"


@pytest.fixture(scope="module")
def known(shop: ShopClient, sandbox: Sandbox) -> Iterator[dict[str, list[str]]]:
    """Real records to aim requests at; what the fuzzing changes is put back afterwards."""
    tnos = []
    for _ in range(3):
        payment = sandbox.approve()
        assert shop.register(payment).status == 201
        tnos.append(payment["tno"])
    cancel = shop.cancel(tnos[0], {"reason_code": "DEFECTIVE", "amount": 1000})
    assert cancel.status == 202, cancel.body
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    sub = subscribe(shop, batch_key(sandbox.url), tomorrow)
    assert sub.status == 201, sub.body
    policy = http("GET", f"{shop.url}/v1/shop/policy", headers=shop.auth).body
    subscriptions_before = _subscription_ids(shop) - {sub.body["subscription_id"]}
    yield {
        "tno": tnos,
        "cancellation_id": [cancel.body["cancellation_id"]],
        "subscription_id": [sub.body["subscription_id"]],
    }
    assert http("PUT", f"{shop.url}/v1/shop/policy", policy, shop.auth).status == 200
    # A generated subscription must not be charged by another test's billing run.
    for made in _subscription_ids(shop) - subscriptions_before:
        ended = http(
            "POST", f"{shop.url}/v1/subscriptions/{made}/cancel", {"when": "PERIOD_END"}, shop.auth
        )
        assert ended.status == 200, ended.body


# Loaded at import (schemathesis' fixture-based loader does not run under this pytest); the
# stack's URL and key are given per call.
schema = schemathesis.openapi.from_path(
    OUT,
    config=SchemathesisConfig.from_dict(
        {
            "max-redirects": 0,  # the export's 303 is the answer; its link is S3's
            "generation": {"max-examples": EXAMPLES},
            # Methods no route has are tried too; the local gateway's HTTP server speaks only
            # the ones API Gateway routes (OPTIONS, TRACE and QUERY would be its 501, not ours).
            "phases": {
                "coverage": {"unexpected-methods": ["get", "put", "post", "delete", "patch"]}
            },
        }
    ),
)
_turn = itertools.count()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_one_the_contract_documents(
    case: Any, stack: LocalStack, known: dict[str, list[str]]
) -> None:
    turn = next(_turn)  # every other case aims at a real record, the others as generated
    for name, values in known.items():
        if turn % 2 and case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = values[turn // 2 % len(values)]
    if turn % 2 and case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())  # a fresh key: a real request
    case.call_and_validate(
        base_url=stack.env["API_URL"],
        headers={"Authorization": f"Bearer {stack.env['SHOP_API_KEY']}"},
        checks=CHECKS,
    )
