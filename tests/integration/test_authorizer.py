"""The authorizer, fed the sample TOKEN event: a shop's key becomes its shop id; others fail."""

from __future__ import annotations

import json

import pytest

from local.stack import LocalStack
from local.template import ROOT

SAMPLE = json.loads((ROOT / "events" / "authorizer_token.json").read_text())


def test_a_known_key_allows_every_route_of_the_api_for_that_shop(stack: LocalStack) -> None:
    event = SAMPLE | {"authorizationToken": f"Bearer {stack.env['SHOP_B_API_KEY']}"}
    policy = stack.lambdas.invoke("cancelflow-AuthorizerFunction", event)
    assert policy["principalId"] == "shop-b"
    assert policy["context"] == {"shop_id": "shop-b"}
    assert policy["usageIdentifierKey"] == "cancelflow-usage-key-shop-b"  # its usage plan key
    (statement,) = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"].endswith(":abcdef1234/prod/*")


@pytest.mark.parametrize("token", ["Bearer sk_test_replace_me", "", "sk_live_no_scheme"])
def test_an_unknown_or_malformed_key_is_unauthorized(stack: LocalStack, token: str) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        stack.lambdas.invoke(
            "cancelflow-AuthorizerFunction", SAMPLE | {"authorizationToken": token}
        )
