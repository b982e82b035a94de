"""`make reindex`: records written before an index existed become visible to it, once
(issue 13: old NEEDS_REVIEW cases reach the review queue, old cancels are found by id)."""

from __future__ import annotations

from typing import Any

from local.reindex import reindex
from local.stack import LocalStack

from .conftest import Operator, ShopClient


def _item(stack: LocalStack, shop_id: str, cancellation_id: str) -> dict[str, Any]:
    key = {"PK": {"S": f"SHOP#{shop_id}#CNL#{cancellation_id}"}, "SK": {"S": "CANCELLATION"}}
    found = stack.client("dynamodb").get_item(TableName=stack.env["TABLE_NAME"], Key=key)
    return dict(found["Item"])


def _put(stack: LocalStack, item: dict[str, Any]) -> None:
    stack.client("dynamodb").put_item(TableName=stack.env["TABLE_NAME"], Item=item)


def test_an_old_needs_review_case_reaches_the_queue_and_old_cancels_are_found_by_id(
    stack: LocalStack, shop: ShopClient, operator: Operator, paid: dict
) -> None:
    done = shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])
    cid = done["cancellation_id"]
    # As written before CancellationById existed: no GSI6PK.
    old = {k: v for k, v in _item(stack, "demo-shop", cid).items() if k != "GSI6PK"}
    _put(stack, old)
    # And a case left NEEDS_REVIEW before reviews were kept: no review, not in any queue.
    case_id = cid[:-4] + "0ld0"
    case = old | {
        "PK": {"S": f"SHOP#demo-shop#CNL#{case_id}"},
        "cancellation_id": {"S": case_id},
        "status": {"S": "NEEDS_REVIEW"},
        "GSI1SK": {"S": old["GSI1SK"]["S"].replace(cid, case_id)},
        "GSI2SK": {"S": old["GSI2SK"]["S"].replace(cid, case_id)},
    }
    case = {k: v for k, v in case.items() if not k.startswith(("GSI4", "GSI5"))}
    _put(stack, case)
    assert operator.call("GET", f"/v1/cancellations/{cid}").status == 404
    assert operator.call("GET", f"/v1/reviews/{case_id}").status == 404
    queue = operator.call("GET", "/v1/reviews?shop=demo-shop&limit=100").body["items"]
    assert case_id not in [r["cancellation_id"] for r in queue]

    db, table = stack.client("dynamodb"), stack.env["TABLE_NAME"]
    first = reindex(db, table)

    assert first["REINDEXED"] >= 2 and first["CHANGED_MEANWHILE"] == 0
    found = operator.call("GET", f"/v1/cancellations/{cid}")
    assert (found.status, found.body["status"], found.body["shop_id"]) == (
        200,
        "SUCCEEDED",
        "demo-shop",
    )
    queue = operator.call("GET", "/v1/reviews?shop=demo-shop&limit=100").body["items"]
    (queued,) = [r for r in queue if r["cancellation_id"] == case_id]
    assert queued["opened_at"] == found.body["updated_at"]  # its age counts from its last change
    shown = shop.cancellation(case_id).body
    assert (shown["status"], shown["review"]["state"]) == ("NEEDS_REVIEW", "UNDER_REVIEW")
    assert reindex(db, table)["REINDEXED"] == 0  # once: a second run changes nothing
