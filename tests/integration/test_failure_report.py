"""A support desk reviews the period's failure cases, as KCP's error guide asks ("결제 오류
사례를 검토하고 공통된 문제를 파악"): grouped by KCP code and reason code, most frequent first,
counted as each outcome is recorded. Through the API, the real cancel and billing machines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cancelflow.adapters.dynamodb.store import DynamoStore
from cancelflow.cancellations.model import CancellationStatus, PaymentEffect
from cancelflow.kernel.clock import KST
from cancelflow.kernel.errors import Conflict
from local.stack import LocalStack

from .billing_support import batch_key, bill, subscribe
from .conftest import Sandbox, ShopClient, http


def _report(client: ShopClient, query: str = "", lang: str = "") -> Any:
    headers = client.auth | ({"Accept-Language": lang} if lang else {})
    return http("GET", f"{client.url}/v1/reports/failures?{query}", headers=headers)


def _groups(client: ShopClient, lang: str = "") -> dict[tuple[str, Any, Any], dict[str, Any]]:
    answer = _report(client, lang=lang)
    assert answer.status == 200, answer.body
    return {(g["kind"], g["kcp_code"], g["reason_code"]): g for g in answer.body["groups"]}


def _count(groups: dict, key: tuple) -> int:
    return int(groups[key]["count"]) if key in groups else 0


def _refused(shop: ShopClient, sandbox: Sandbox, res_cd: str) -> dict[str, Any]:
    payment = sandbox.approve(amount=12000)
    assert shop.register(payment).status == 201
    sandbox.fault(payment["tno"], "res_cd", value=res_cd)
    outcome = shop.outcome(shop.cancel(payment["tno"]).body["cancellation_id"])
    assert outcome["status"] == "FAILED", outcome
    return outcome


KCP_REFUSED = ("CANCEL_FAILED", "8012", "GATEWAY_DECLINED")
TAKEN_ELSEWHERE = ("CANCEL_REJECTED", "SB02", "CANCELLED_EXTERNALLY")  # KCP: already cancelled


def test_failed_and_rejected_cancels_are_grouped_by_kcp_code_most_frequent_first(
    shop: ShopClient, shop_b: ShopClient, sandbox: Sandbox
) -> None:
    before, other_before = _groups(shop), _groups(shop_b)

    refused = [_refused(shop, sandbox, "8012") for _ in range(3)]
    payment = sandbox.approve(amount=8000)
    assert shop.register(payment).status == 201
    admin = http(
        "POST", f"{sandbox.url}/_sandbox/payments/{payment['tno']}/admin-cancel", {"notify": False}
    )
    assert admin.status == 202
    rejected = shop.outcome(shop.cancel(payment["tno"]).body["cancellation_id"])
    assert rejected["status"] == "REJECTED", rejected

    after = _groups(shop)

    assert _count(after, KCP_REFUSED) - _count(before, KCP_REFUSED) == 3
    group = after[KCP_REFUSED]
    examples = group["examples"]  # a few recent ids, the newest first
    assert examples[0] == refused[-1]["cancellation_id"]
    assert len(examples) == len(set(examples)) <= 5
    assert group["message"] and group["hint"]  # from KCP's code catalogue (kcp/codes.py)
    last_seen = datetime.fromisoformat(group["last_seen"])
    assert last_seen.utcoffset() == timedelta(hours=9)  # KST
    assert group["first_seen"] <= group["last_seen"]
    assert _count(after, TAKEN_ELSEWHERE) - _count(before, TAKEN_ELSEWHERE) == 1
    assert after[TAKEN_ELSEWHERE]["examples"][0] == rejected["cancellation_id"]
    counts = [g["count"] for g in _report(shop).body["groups"]]
    assert counts == sorted(counts, reverse=True)  # most frequent first
    assert _groups(shop_b) == other_before  # another shop sees none of it


def test_a_cancel_settled_again_is_counted_once(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox
) -> None:
    before = _count(_groups(shop), KCP_REFUSED)
    outcome = _refused(shop, sandbox, "8012")
    stack.wait_for_execution(outcome["execution_id"])
    cid = outcome["cancellation_id"]

    # The Settle step run again (a Lambda retry, a redrive): the outcome is already written.
    verdict = {"status": "FAILED", "reasons": ["GATEWAY_DECLINED"], "res_cd": "8012"}
    settle = stack.template.physical_name("SettleFunction")
    stack.lambdas.invoke(
        settle, {"shop_id": "demo-shop", "cancellation_id": cid, "verdict": verdict}
    )
    # A run that read the cancellation before the first write landed: its transaction (the
    # counter inside it) is refused as a whole, since the status is no longer SENDING.
    store = DynamoStore(stack.client("dynamodb"), stack.env["TABLE_NAME"])
    failed = store.get_cancellation("demo-shop", cid)
    assert failed is not None
    with pytest.raises(Conflict):
        store.settle(replace(failed, status=CancellationStatus.SENDING), failed, PaymentEffect())

    assert _count(_groups(shop), KCP_REFUSED) - before == 1


def test_declined_subscription_charges_are_counted_under_kcps_code(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    sub = subscribe(shop, batch_key(url, decline="INSUFFICIENT_BALANCE"), "2041-07-19").body
    key = ("CHARGE_DECLINED", "SB05", None)
    before = _count(_groups(shop), key)

    assert bill(stack, "2041-07-19")["declined"] == 1
    assert bill(stack, "2041-07-19")["declined"] == 0  # the same day again charges nothing

    groups = _groups(shop, lang="en")
    assert _count(groups, key) - before == 1
    assert groups[key]["examples"][0] == f"{sub['subscription_id']}-2041-07-1"
    assert groups[key]["hint"]


def test_the_period_is_kst_days_at_most_92_and_bad_dates_are_refused(shop: ShopClient) -> None:
    today = datetime.now(UTC).astimezone(KST).date()
    default = _report(shop).body
    assert (default["first_day"], default["last_day"]) == (
        (today - timedelta(days=29)).isoformat(),
        today.isoformat(),
    )
    tomorrow = _report(shop, f"from={today + timedelta(days=1)}&to={today + timedelta(days=2)}")
    assert tomorrow.status == 200 and tomorrow.body["groups"] == []
    for query in (
        f"from={today - timedelta(days=92)}&to={today}",  # 93 days
        "from=2026-03-12&to=2026-03-10",
        "from=yesterday",
        "form=2026-03-01",
    ):
        answer = _report(shop, query)
        assert (answer.status, answer.code) == (400, "VALIDATION_FAILED"), query
        assert answer.headers["Content-Type"].startswith("application/problem+json")
