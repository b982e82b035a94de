"""A support desk finds the shop's cancellations: by status (the FAILED and NEEDS_REVIEW ones to
follow up), by day, by payment; newest first, page by page. Through the API and the real ASL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cancelflow.kernel.clock import KST

from .conftest import Sandbox, ShopClient, http


def _list(client: ShopClient, query: str = "") -> tuple[int, Any]:
    answer = http("GET", f"{client.url}/v1/cancellations?{query}", headers=client.auth)
    return answer.status, answer.body


def _ids(body: dict[str, Any], among: list[str] | None = None) -> list[str]:
    found = [c["cancellation_id"] for c in body["items"]]
    return [i for i in found if among is None or i in among]


@pytest.fixture
def story(shop: ShopClient, sandbox: Sandbox) -> dict[str, Any]:
    """Payment A: a cancel KCP refused, then two partial cancels; payment B: one full cancel."""
    a, b = sandbox.approve(amount=30000), sandbox.approve(amount=8000)
    assert shop.register(a).status == 201 and shop.register(b).status == 201
    sandbox.fault(a["tno"], "res_cd", value="8012")
    ids = []
    for tno, amount in ((a["tno"], 5000), (a["tno"], 5000), (a["tno"], 7000), (b["tno"], None)):
        body = {"reason_code": "OTHER"} | ({"amount": amount} if amount else {})
        ids.append(shop.outcome(shop.cancel(tno, body).body["cancellation_id"])["cancellation_id"])
    return {"a": a["tno"], "b": b["tno"], "ids": ids}


def test_a_payments_cancellations_newest_first_and_only_the_failed_one_by_status(
    shop: ShopClient, story: dict
) -> None:
    failed, first, second, _ = story["ids"]

    status, body = _list(shop, f"tno={story['a']}")

    assert status == 200, body
    assert _ids(body) == [second, first, failed]
    assert [c["status"] for c in body["items"]] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert [c["amount"] for c in body["items"]] == [7000, 5000, 5000]
    assert body["items"][2]["gateway"]["res_cd"] == "8012"
    assert all("attempts" not in c for c in body["items"])  # read one by id for those
    assert body["next_cursor"] is None
    _, only_failed = _list(shop, f"tno={story['a']}&status=FAILED")
    assert _ids(only_failed) == [failed]


def test_the_shops_list_finds_todays_failures_and_nothing_tomorrow(
    shop: ShopClient, shop_b: ShopClient, story: dict
) -> None:
    failed, first, second, full = story["ids"]
    today = datetime.now(UTC).astimezone(KST).date()

    _, everything = _list(shop, "limit=100")
    _, todays_failures = _list(shop, f"status=FAILED&from={today}&to={today}&limit=100")
    _, tomorrow = _list(shop, f"from={today + timedelta(days=1)}")

    assert _ids(everything, story["ids"]) == [full, second, first, failed]
    assert _ids(todays_failures, story["ids"]) == [failed]
    assert {c["status"] for c in todays_failures["items"]} == {"FAILED"}
    assert tomorrow["items"] == []
    _, other_shop = _list(shop_b, f"tno={story['a']}")
    assert other_shop["items"] == []


def test_pages_follow_a_signed_cursor_bound_to_the_filters_and_the_shop(
    shop: ShopClient, shop_b: ShopClient, story: dict
) -> None:
    failed, first, second, _ = story["ids"]
    _, page = _list(shop, f"tno={story['a']}&limit=2")
    assert _ids(page) == [second, first]
    cursor = page["next_cursor"]
    assert cursor

    _, rest = _list(shop, f"tno={story['a']}&limit=2&cursor={cursor}")

    assert _ids(rest) == [failed]
    assert rest["next_cursor"] is None
    for client, query in (
        (shop, f"tno={story['b']}&cursor={cursor}"),  # other filters
        (shop, f"cursor={cursor}"),
        (shop_b, f"tno={story['a']}&limit=2&cursor={cursor}"),  # another shop
    ):
        status, problem = _list(client, query)
        assert (status, problem["code"]) == (400, "INVALID_CURSOR")


@pytest.mark.parametrize(
    "query",
    [
        "state=FAILED",
        "status=DONE",
        "tno=123",
        "from=2026-13-01",
        "limit=0",
        "from=2026-02-02&to=2026-02-01",
    ],
)
def test_bad_filters_are_refused_with_a_code(shop: ShopClient, query: str) -> None:
    status, problem = _list(shop, query)
    assert (status, problem["code"]) == (400, "VALIDATION_FAILED")
