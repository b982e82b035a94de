"""An order changes while it is being prepared: the shop gives back some of its items. The
decision names each item and its amount, KCP gets a partial cancel, the detail and the emails
list the items, and no item is ever given back twice. Through the API, on the real ASL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.stack import LocalStack

from .conftest import Sandbox, ShopClient, mails_about

ITEMS = [
    {"name": "셔츠", "quantity": 2, "price": 10000},
    {"name": "양말", "quantity": 1, "price": 5000},
    {"name": "모자", "quantity": 1, "price": 15000},
]


@pytest.fixture
def order(shop: ShopClient, sandbox: Sandbox) -> dict[str, Any]:
    """A 40,000 KRW order of three lines, paid at KCP and registered with its items."""
    payment = sandbox.approve(amount=40000) | {"items": ITEMS}
    answer = shop.register(payment)
    assert answer.status == 201, answer.body
    return payment


def _remove(shop: ShopClient, tno: str, *positions: int) -> Any:
    body = {"reason_code": "ORDER_CHANGE", "reason": "주문 변경", "removed_items": list(positions)}
    return shop.cancel(tno, body)


def _lines(outcome: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (line["code"], line.get("item"), line.get("name"), line.get("quantity"), line["amount"])
        for line in outcome["decision"]["breakdown"]
    ]


def test_removing_one_item_refunds_it_at_kcp_and_the_detail_and_emails_name_it(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, order: dict
) -> None:
    tno = order["tno"]
    accepted = _remove(shop, tno, 1)
    assert accepted.status == 202, accepted.body

    outcome = shop.outcome(accepted.body["cancellation_id"])

    assert outcome["status"] == "SUCCEEDED", outcome
    assert outcome["refunded_amount"] == 5000
    assert outcome["removed_items"] == [1]
    assert _lines(outcome) == [("ITEM", 1, "양말", 1, 5000)]
    at_kcp = sandbox.state(tno)
    assert [(c["mod_type"], c["amount"]) for c in at_kcp["cancels"]] == [("STPC", 5000)]
    assert at_kcp["balance"] == 35000
    detail = shop.payment(tno)  # stored items and positions read back as plain numbers
    assert (detail["balance"], detail["status"]) == (35000, "PARTIALLY_CANCELLED")
    assert detail["removed_items"] == [1]
    assert detail["items"][1] == ITEMS[1] | {"category": ""}
    (listed,) = detail["cancellations"]
    assert listed["removed_items"] == [1]
    assert _lines(listed) == [("ITEM", 1, "양말", 1, 5000)]
    mails = mails_about(stack, outcome)
    assert len(mails) == 2
    assert all("취소 상품: 양말 × 1 (5,000원)" in m for m in mails)
    assert all("모자" not in m for m in mails)  # only the item given back is listed


def test_an_item_already_removed_cannot_be_removed_again(
    shop: ShopClient, sandbox: Sandbox, order: dict
) -> None:
    tno = order["tno"]
    first = shop.outcome(_remove(shop, tno, 0).body["cancellation_id"])
    assert first["status"] == "SUCCEEDED"
    assert _lines(first) == [("ITEM", 0, "셔츠", 2, 20000)]

    again = _remove(shop, tno, 2, 0)

    assert again.status == 422
    assert again.code == "ITEM_ALREADY_REMOVED"
    assert again.body["already_removed"] == [0]
    assert len(sandbox.calls(tno)) == 1  # nothing more went to KCP
    rest = shop.outcome(_remove(shop, tno, 1, 2).body["cancellation_id"])
    assert (rest["status"], rest["refunded_amount"]) == ("SUCCEEDED", 20000)
    assert _lines(rest) == [("ITEM", 1, "양말", 1, 5000), ("ITEM", 2, "모자", 1, 15000)]
    detail = shop.payment(tno)
    assert (detail["balance"], detail["status"], detail["removed_items"]) == (
        0,
        "CANCELLED",
        [0, 1, 2],
    )


def test_two_cancels_racing_for_the_same_item_give_it_back_once(
    shop: ShopClient, sandbox: Sandbox, order: dict
) -> None:
    tno = order["tno"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda items: _remove(shop, tno, *items), [(2,), (2, 1)]))

    outcomes = [
        shop.outcome(a.body["cancellation_id"])["status"] if a.status == 202 else a.code
        for a in answers
    ]
    assert sorted(outcomes) in (
        ["ITEM_ALREADY_REMOVED", "SUCCEEDED"],  # the API saw the first one's hold
        ["REJECTED", "SUCCEEDED"],  # both accepted; the workflow refused the second
    )
    assert len(sandbox.state(tno)["cancels"]) == 1
    assert shop.payment(tno)["removed_items"] in ([2], [1, 2])
    rejected = [
        shop.outcome(a.body["cancellation_id"])
        for a in answers
        if a.status == 202 and shop.outcome(a.body["cancellation_id"])["status"] == "REJECTED"
    ]
    assert all([r["code"] for r in c["reasons"]] == ["ITEM_ALREADY_REMOVED"] for c in rejected)


def test_an_item_cancel_kcp_refused_gives_the_item_back_so_it_can_be_asked_again(
    shop: ShopClient, sandbox: Sandbox, order: dict
) -> None:
    tno = order["tno"]
    sandbox.fault(tno, "res_cd", value="8012")
    failed = shop.outcome(_remove(shop, tno, 2).body["cancellation_id"])
    assert failed["status"] == "FAILED"
    assert shop.payment(tno)["removed_items"] == []

    retried = shop.outcome(_remove(shop, tno, 2).body["cancellation_id"])

    assert (retried["status"], retried["refunded_amount"]) == ("SUCCEEDED", 15000)
    assert sandbox.state(tno)["balance"] == 25000


def test_no_stored_record_can_make_the_payments_detail_fail(
    stack: LocalStack, shop: ShopClient, order: dict
) -> None:
    tno = order["tno"]
    done = shop.outcome(_remove(shop, tno, 1).body["cancellation_id"])
    db, table = stack.client("dynamodb"), stack.env["TABLE_NAME"]
    # A record no code of ours writes: fields missing, numbers that are not whole.
    db.put_item(
        TableName=table,
        Item={
            "PK": {"S": "SHOP#demo-shop#CNL#cnl_broken"},
            "SK": {"S": "CANCELLATION"},
            "GSI2PK": {"S": f"SHOP#demo-shop#PAY#{tno}"},
            "GSI2SK": {"S": "CNL#2099-01-01T00:00:00.000000Z#cnl_broken"},
            "type": {"S": "CANCELLATION"},
            "cancellation_id": {"S": "cnl_broken"},
            "removed_items": {"L": [{"N": "1.5"}]},
        },
    )
    db.update_item(
        TableName=table,
        Key={"PK": {"S": f"SHOP#demo-shop#PAY#{tno}"}, "SK": {"S": "PAYMENT"}},
        UpdateExpression="SET #items[2].price = :odd",
        ExpressionAttributeNames={"#items": "items"},
        ExpressionAttributeValues={":odd": {"N": "15000.5"}},
    )

    detail = shop.payment(tno)

    assert [c["cancellation_id"] for c in detail["cancellations"]] == [done["cancellation_id"]]
    assert detail["items"][2]["price"] == 15000.5
    assert _remove(shop, tno, 2).code == "INVALID_ITEMS"  # refused, not a crash
