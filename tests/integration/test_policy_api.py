"""A shop edits its cancel policy: PUT replaces the whole of it, PATCH (a JSON Merge Patch)
changes only what it names; each makes a new version that the next decision records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.stack import LocalStack

from .conftest import Answer, Sandbox, ShopClient, http, mails_about

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
WHOLE = {
    "withdrawal_days": 14,
    "warranty_days": 92,
    "return_shipping_fee": 3000,
    "non_refundable_categories": ["CUSTOM_MADE"],
    "allow_cancel_after_shipped": False,
    "subscription_pro_rata": True,
    "email_language": "ko",
}


def _get(shop: ShopClient) -> dict[str, Any]:
    answer = http("GET", f"{shop.url}/v1/shop/policy", headers=shop.auth)
    assert answer.status == 200
    return answer.body


def _put(shop: ShopClient, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return http("PUT", f"{shop.url}/v1/shop/policy", body, shop.auth | (headers or {}))


def _patch(shop: ShopClient, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return http("PATCH", f"{shop.url}/v1/shop/policy", body, shop.auth | (headers or MERGE_PATCH))


@pytest.fixture
def shop_b_policy(shop_b: ShopClient) -> Iterator[dict[str, Any]]:
    """Shop B with the WHOLE policy; its previous policy is put back afterwards."""
    before = {k: v for k, v in _get(shop_b).items() if k != "version"}
    answer = _put(shop_b, WHOLE)
    assert answer.status == 200, answer.body
    yield answer.body
    assert _put(shop_b, before).status == 200


def test_a_put_that_leaves_fields_out_is_refused_naming_them_and_changes_nothing(
    shop_b: ShopClient, shop_b_policy: dict
) -> None:
    answer = _put(shop_b, {"email_language": "en"})

    assert (answer.status, answer.code) == (400, "VALIDATION_FAILED")
    missing = {e["field"] for e in answer.body["errors"] if e["message"] == "required"}
    assert missing == set(WHOLE) - {"email_language"}
    assert "withdrawal_days" in answer.body["detail"]
    assert _get(shop_b) == shop_b_policy  # the 14 days and the 3,000 KRW fee are still there


def test_a_put_replaces_the_whole_policy_as_a_new_version(
    shop_b: ShopClient, shop_b_policy: dict
) -> None:
    answer = _put(shop_b, WHOLE | {"withdrawal_days": 30, "version": 1})  # GET's doc sent back
    assert answer.status == 200, answer.body
    assert answer.body == WHOLE | {"withdrawal_days": 30, "version": shop_b_policy["version"] + 1}
    assert _get(shop_b) == answer.body


def test_a_merge_patch_changes_only_what_it_names_and_the_next_cancel_follows_it(
    stack: LocalStack, shop_b: ShopClient, sandbox: Sandbox, shop_b_policy: dict
) -> None:
    answer = _patch(shop_b, {"email_language": "en"})

    assert answer.status == 200, answer.body
    assert answer.body == shop_b_policy | {
        "email_language": "en",
        "version": shop_b_policy["version"] + 1,
    }
    assert _get(shop_b) == answer.body
    # A change of mind after delivery: the fee the patch kept is deducted, in English.
    now = datetime.now(UTC)
    payment = sandbox.approve(
        amount=20000, site_cd="T0001", approved_at=(now - timedelta(days=3)).isoformat()
    )
    assert shop_b.register(payment).status == 201
    for status, at in (("SHIPPED", now - timedelta(days=2)), ("DELIVERED", now - timedelta(1))):
        body = {"status": status, "at": at.isoformat()}
        moved = http(
            "PATCH", f"{shop_b.url}/v1/payments/{payment['tno']}/fulfillment", body, shop_b.auth
        )
        assert moved.status == 200, moved.body
    outcome = shop_b.outcome(shop_b.cancel(payment["tno"]).body["cancellation_id"])
    assert (outcome["status"], outcome["refunded_amount"]) == ("SUCCEEDED", 17000)
    assert outcome["decision"]["policy_version"] == answer.body["version"]
    assert sandbox.state(payment["tno"])["balance"] == 3000
    mails = mails_about(stack, outcome)
    customer, to_shop = sorted(mails, key=lambda m: "Cancellation outcome" in m)
    assert "Your payment was cancelled" in customer
    assert "Cancellation outcome: Cancelled" in to_shop  # in the shop's language too
    # The email says what the return fee took from the refund.
    assert all("Return shipping fee: KRW -3,000" in m and "KRW 17,000" in m for m in mails)


def test_null_in_a_merge_patch_resets_a_field_to_the_laws_default(
    shop_b: ShopClient, shop_b_policy: dict
) -> None:
    answer = _patch(shop_b, {"return_shipping_fee": None, "non_refundable_categories": []})
    assert answer.status == 200, answer.body
    assert (answer.body["return_shipping_fee"], answer.body["non_refundable_categories"]) == (0, [])
    assert answer.body["withdrawal_days"] == 14


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (
            [{"op": "replace"}],
            {"Content-Type": "application/json-patch+json"},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ("withdrawal_days=30", {"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ([{"op": "replace"}], MERGE_PATCH, 400, "VALIDATION_FAILED"),
        ({"withdrawal_days": 3}, MERGE_PATCH, 400, "VALIDATION_FAILED"),
        ({"version": 99}, MERGE_PATCH, 400, "VALIDATION_FAILED"),
        ({"withdrawl_days": 30}, MERGE_PATCH, 400, "VALIDATION_FAILED"),
    ],
)
def test_a_patch_that_is_not_a_valid_merge_patch_is_refused_and_changes_nothing(
    shop_b: ShopClient,
    shop_b_policy: dict,
    body: Any,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    answer = _patch(shop_b, body, headers)
    assert (answer.status, answer.code) == (status, code), answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert _get(shop_b) == shop_b_policy


def test_a_malformed_merge_patch_is_malformed_json(shop_b: ShopClient) -> None:
    answer = http(
        "PATCH", f"{shop_b.url}/v1/shop/policy", raw=b'{"email_', headers=shop_b.auth | MERGE_PATCH
    )
    assert (answer.status, answer.code) == (400, "MALFORMED_JSON")


def test_a_put_sent_as_a_merge_patch_is_refused_as_the_wrong_media_type(
    shop_b: ShopClient, shop_b_policy: dict
) -> None:
    answer = _put(shop_b, WHOLE, MERGE_PATCH)
    assert (answer.status, answer.code) == (415, "UNSUPPORTED_MEDIA_TYPE")
