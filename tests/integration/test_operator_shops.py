"""Shops onboarded through the operator API (SigV4): a new shop's key works at once, keys
rotate by overlap, and a revoked key stops."""

from __future__ import annotations

import secrets

from local.shop import onboard
from local.stack import LocalStack
from tests.integration.conftest import Operator, ShopClient, http


def test_a_new_shops_key_works_rotation_overlaps_and_a_revoked_key_stops(
    stack: LocalStack, operator: Operator
) -> None:
    shop_id = f"onboarded-{secrets.token_hex(3)}"
    made = onboard(stack.env, "새 상점", shop_id=shop_id)
    first = made["key"]
    assert first["api_key"].startswith("sk_live_") and first["active"] is True

    shop = ShopClient(stack.env["API_URL"], first["api_key"])
    assert http("GET", f"{shop.url}/v1/payments", headers=shop.auth).status == 200

    # Rotation: a second key works beside the first until the first is revoked.
    second = operator.call("POST", f"/v1/shops/{shop_id}/api-keys")
    assert second.status == 201
    rotated = ShopClient(stack.env["API_URL"], second.body["api_key"])
    assert http("GET", f"{rotated.url}/v1/payments", headers=rotated.auth).status == 200
    assert http("GET", f"{shop.url}/v1/payments", headers=shop.auth).status == 200

    listed = operator.call("GET", f"/v1/shops/{shop_id}/api-keys").body["items"]
    assert {k["key_id"] for k in listed} == {first["key_id"], second.body["key_id"]}
    assert all(k["last_used_at"] for k in listed)  # each key's last use
    assert all("api_key" not in k for k in listed)  # the secret is shown once only

    revoked = operator.call("DELETE", f"/v1/shops/{shop_id}/api-keys/{first['key_id']}")
    assert (revoked.status, revoked.body["active"]) == (200, False)
    assert revoked.body["revoked_at"]

    # A key revoked before its first use (no cached authorization) is refused at once.
    third = operator.call("POST", f"/v1/shops/{shop_id}/api-keys").body
    operator.call("DELETE", f"/v1/shops/{shop_id}/api-keys/{third['key_id']}")
    gone = http(
        "GET", f"{shop.url}/v1/payments", headers={"Authorization": f"Bearer {third['api_key']}"}
    )
    assert (gone.status, gone.code) == (401, "UNAUTHORIZED")
    assert http("GET", f"{rotated.url}/v1/payments", headers=rotated.auth).status == 200


def test_a_shop_id_is_taken_once_and_unknown_shops_keys_are_404(operator: Operator) -> None:
    body = {"shop_id": "demo-shop", "name": "again", "email": "x@demo-shop.example"}
    taken = operator.call("POST", "/v1/shops", body)
    assert (taken.status, taken.code) == (409, "SHOP_EXISTS")
    missing = operator.call("POST", "/v1/shops/no-such-shop/api-keys")
    assert (missing.status, missing.code) == (404, "SHOP_NOT_FOUND")
    bad = operator.call(
        "POST", "/v1/shops", {"shop_id": "Bad Id", "name": "x", "email": "x@y.example"}
    )
    assert (bad.status, bad.code) == (400, "VALIDATION_FAILED")


def test_shop_management_needs_operator_credentials(shop: ShopClient, operator: Operator) -> None:
    body = {"shop_id": "sneaky-shop", "name": "x", "email": "x@y.example"}
    with_shop_key = http("POST", f"{operator.url}/v1/shops", body, headers=shop.auth)
    assert (with_shop_key.status, with_shop_key.code) == (403, "FORBIDDEN")
    assert operator.call("POST", "/v1/shops/demo-shop/api-keys", sign=False).status == 403
