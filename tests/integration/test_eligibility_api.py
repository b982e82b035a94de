"""The shop's policy and the goods' journey decide what can be refunded, through the API and
the real state machine; a shop changes its policy and sees the next decision follow it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from .conftest import Sandbox, ShopClient, http

ACCOUNT = {"bank_code": "BK04", "number": "110-123-456789", "holder": "김하늘"}


def _policy(shop: ShopClient, **changes: object) -> dict:
    current = http("GET", f"{shop.url}/v1/shop/policy", headers=shop.auth).body
    doc = {k: v for k, v in current.items() if k != "version"} | changes
    answer = http("PUT", f"{shop.url}/v1/shop/policy", doc, shop.auth)
    assert answer.status == 200, answer.body
    return answer.body


def _ship(shop: ShopClient, tno: str, *stages: tuple[str, datetime | None]) -> None:
    for status, at in stages:
        body = {"status": status} | ({"at": at.isoformat()} if at else {})
        answer = http("PATCH", f"{shop.url}/v1/payments/{tno}/fulfillment", body, shop.auth)
        assert answer.status == 200, answer.body


@pytest.fixture
def delivered(shop: ShopClient, sandbox: Sandbox) -> dict:
    """Paid two days ago, delivered yesterday."""
    now = datetime.now(UTC)
    payment = sandbox.approve(amount=30000, approved_at=(now - timedelta(days=2)).isoformat())
    assert shop.register(payment).status == 201
    _ship(
        shop,
        payment["tno"],
        ("SHIPPED", now - timedelta(days=2)),
        ("DELIVERED", now - timedelta(days=1)),
    )
    return payment


def test_goods_on_their_way_cannot_be_cancelled_a_return_is_required(
    shop: ShopClient, paid: dict
) -> None:
    _ship(shop, paid["tno"], ("SHIPPED", None))
    answer = shop.cancel(paid["tno"])
    assert answer.status == 422
    assert answer.code == "RETURN_REQUIRED"
    assert [r["code"] for r in answer.body["reasons"]] == ["RETURN_REQUIRED"]


def test_the_shop_itself_may_cancel_shipped_goods_for_example_out_of_stock(
    shop: ShopClient, sandbox: Sandbox, paid: dict
) -> None:
    _ship(shop, paid["tno"], ("SHIPPED", None))
    accepted = shop.cancel(paid["tno"], {"reason_code": "OTHER", "requested_by": "SHOP"})
    assert accepted.status == 202
    assert shop.outcome(accepted.body["cancellation_id"])["status"] == "SUCCEEDED"
    assert sandbox.state(paid["tno"])["balance"] == 0


def test_a_change_of_mind_after_delivery_deducts_the_shops_return_shipping_fee(
    shop_b: ShopClient, sandbox: Sandbox
) -> None:
    now = datetime.now(UTC)
    payment = sandbox.approve(
        amount=30000, site_cd="T0001", approved_at=(now - timedelta(days=3)).isoformat()
    )
    assert shop_b.register(payment).status == 201
    _ship(
        shop_b,
        payment["tno"],
        ("SHIPPED", now - timedelta(days=2)),
        ("DELIVERED", now - timedelta(days=1)),
    )
    policy = _policy(shop_b, return_shipping_fee=3000)

    outcome = shop_b.outcome(shop_b.cancel(payment["tno"]).body["cancellation_id"])

    assert outcome["status"] == "SUCCEEDED"
    assert outcome["refunded_amount"] == 27000
    assert outcome["decision"]["policy_version"] == policy["version"]
    assert [(b["code"], b["amount"]) for b in outcome["decision"]["breakdown"]] == [
        ("BALANCE", 30000),
        ("RETURN_SHIPPING_FEE", -3000),
    ]
    assert sandbox.state(payment["tno"])["balance"] == 3000
    _policy(shop_b, return_shipping_fee=0)


def test_a_defective_item_is_refunded_in_full_even_with_a_return_fee(
    shop: ShopClient, sandbox: Sandbox, delivered: dict
) -> None:
    outcome = shop.outcome(
        shop.cancel(delivered["tno"], {"reason_code": "DEFECTIVE"}).body["cancellation_id"]
    )
    assert outcome["status"] == "SUCCEEDED"
    assert outcome["refunded_amount"] == 30000


def test_after_the_withdrawal_window_only_defects_are_refunded(
    shop: ShopClient, sandbox: Sandbox
) -> None:
    now = datetime.now(UTC)
    payment = sandbox.approve(amount=8000, approved_at=(now - timedelta(days=20)).isoformat())
    shop.register(payment)
    _ship(
        shop,
        payment["tno"],
        ("SHIPPED", now - timedelta(days=19)),
        ("DELIVERED", now - timedelta(days=10)),
    )
    late = shop.cancel(payment["tno"])
    assert late.status == 422
    assert late.code == "WITHDRAWAL_PERIOD_EXPIRED"
    defect = shop.cancel(payment["tno"], {"reason_code": "DEFECTIVE"})
    assert shop.outcome(defect.body["cancellation_id"])["status"] == "SUCCEEDED"


def test_a_longer_withdrawal_window_in_the_policy_is_followed_by_the_next_decision(
    shop_b: ShopClient, sandbox: Sandbox
) -> None:
    now = datetime.now(UTC)
    payment = sandbox.approve(
        amount=8000, site_cd="T0001", approved_at=(now - timedelta(days=20)).isoformat()
    )
    shop_b.register(payment)
    _ship(
        shop_b,
        payment["tno"],
        ("SHIPPED", now - timedelta(days=19)),
        ("DELIVERED", now - timedelta(days=10)),
    )
    assert shop_b.cancel(payment["tno"]).code == "WITHDRAWAL_PERIOD_EXPIRED"

    policy = _policy(shop_b, withdrawal_days=14)
    outcome = shop_b.outcome(shop_b.cancel(payment["tno"]).body["cancellation_id"])

    assert outcome["status"] == "SUCCEEDED"
    assert outcome["decision"]["policy_version"] == policy["version"]
    _policy(shop_b, withdrawal_days=7)


def test_a_virtual_account_payment_needs_a_refund_account_and_is_refunded_to_it(
    shop: ShopClient, sandbox: Sandbox
) -> None:
    payment = sandbox.approve(amount=12000, method="VIRTUAL_ACCOUNT")
    shop.register(payment)
    missing = shop.cancel(payment["tno"])
    assert missing.status == 422
    assert missing.code == "REFUND_ACCOUNT_REQUIRED"

    accepted = shop.cancel(payment["tno"], {"reason_code": "OTHER", "refund_account": ACCOUNT})
    outcome = shop.outcome(accepted.body["cancellation_id"])

    assert outcome["status"] == "SUCCEEDED"
    assert outcome["refund_account"] == {
        "bank_code": "BK04",
        "number": "***6789",
        "holder": "김하늘",
    }
    (refund,) = sandbox.state(payment["tno"])["cancels"]
    assert refund["mod_type"] == "STHD"
    assert refund["refund_account"]["bank_code"] == "BK04"


def test_a_mobile_payment_from_last_month_cannot_be_cancelled(
    shop: ShopClient, sandbox: Sandbox
) -> None:
    payment = sandbox.approve(
        amount=5000,
        method="MOBILE",
        approved_at=(datetime.now(UTC) - timedelta(days=40)).isoformat(),
    )
    shop.register(payment)
    answer = shop.cancel(payment["tno"], {"reason_code": "OTHER", "requested_by": "SHOP"})
    assert answer.status == 422
    assert answer.code == "MOBILE_PREVIOUS_MONTH"


def test_escrow_cannot_be_partially_cancelled(shop: ShopClient, sandbox: Sandbox) -> None:
    payment = sandbox.approve(amount=20000, escrow=True)
    shop.register(payment | {"escrow": True})
    answer = shop.cancel(payment["tno"], {"reason_code": "OTHER", "amount": 5000})
    assert answer.code == "ESCROW_PARTIAL_NOT_ALLOWED"


def test_the_policy_is_validated_field_by_field(shop: ShopClient) -> None:
    answer = http(
        "PUT",
        f"{shop.url}/v1/shop/policy",
        {"withdrawal_days": 3, "return_shipping_fee": -1, "email_language": "jp"},
        shop.auth,
    )
    assert answer.status == 400
    assert answer.code == "VALIDATION_FAILED"
    fields = {e["field"] for e in answer.body["errors"]}
    assert {"withdrawal_days", "return_shipping_fee", "email_language"} <= fields


def test_the_default_policy_is_the_laws_minimum(shop: ShopClient) -> None:
    policy = http("GET", f"{shop.url}/v1/shop/policy", headers=shop.auth).body
    assert policy["withdrawal_days"] == 7
    assert policy["version"] >= 1


@pytest.mark.parametrize(
    ("stages", "then", "code"),
    [
        ([], "DELIVERED", "FULFILLMENT_TRANSITION_INVALID"),
        (["SHIPPED", "DELIVERED"], "PROCESSING", "FULFILLMENT_TRANSITION_INVALID"),
        (["SHIPPED"], "RETURNED", "FULFILLMENT_TRANSITION_INVALID"),
    ],
)
def test_fulfillment_moves_only_forward_along_the_goods_journey(
    shop: ShopClient, paid: dict, stages: list[str], then: str, code: str
) -> None:
    _ship(shop, paid["tno"], *((s, None) for s in stages))
    answer = http(
        "PATCH", f"{shop.url}/v1/payments/{paid['tno']}/fulfillment", {"status": then}, shop.auth
    )
    assert answer.status == 422
    assert answer.code == code
