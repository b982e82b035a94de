"""Bulk cancels through the API and the real state machine (cancellation_batch.asl.json):
each item becomes an ordinary cancellation, KCP never hears more than the batch's TPS in any
second, a retried batch cancels nothing twice, a cancelled batch stops what it has not started,
and bad input is refused with problem+json before anything is written."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from cancelflow.subscriptions.pacing import busiest_second

from .batch_support import (
    BATCHES,
    batch,
    cancel_times,
    counted,
    finished,
    items,
    paid,
    post_batch,
)
from .conftest import LocalStack, Sandbox, ShopClient, http


def test_each_item_is_cancelled_once_at_kcp_within_the_batchs_tps(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox
) -> None:
    tnos = paid(shop, sandbox, 12)
    over = sandbox.approve(amount=9000)
    assert shop.register(over).status == 201
    body = {
        "items": [{"tno": t, "reason_code": "DEFECTIVE", "reason": "리콜"} for t in tnos[:10]]
        + [{"tno": tnos[10], "amount": 5000, "reason_code": "DEFECTIVE"}]
        + [{"tno": over["tno"], "amount": 10000, "reason_code": "CHANGE_OF_MIND"}]
        + [{"tno": tnos[11], "reason_code": "DEFECTIVE"}],
        "tps": 4,
    }
    key = str(uuid.uuid4())
    accepted = post_batch(shop, body, key)
    assert accepted.status == 202, accepted.body
    assert accepted.headers["Location"] == f"{BATCHES}/{accepted.body['id']}"
    assert accepted.body["status"] == "QUEUED" and accepted.body["total"] == 13

    done = finished(shop, accepted.body["id"])
    assert done["status"] == "COMPLETED", done
    assert done["counts"] | {} == {
        "PENDING": 0,
        "SUCCEEDED": 12,
        "REJECTED": 1,
        "FAILED": 0,
        "OPEN": 0,
        "SKIPPED": 0,
    }
    assert done["progress"] == 1.0
    [refused] = done["not_succeeded"]
    assert refused["tno"] == over["tno"] and refused["status"] == "REJECTED"
    assert refused["reasons"] == ["AMOUNT_EXCEEDS_BALANCE"] and refused["detail"]
    assert refused["cancellation_id"] is None  # refused as the API refuses it: nothing written

    # KCP: each payment cancelled once, the partial one by its amount, the late one never; no
    # second of the run heard more than the batch's 4 calls.
    for tno in tnos:
        assert len(sandbox.calls(tno)) == 1, tno
    assert sandbox.calls(over["tno"]) == []
    assert sandbox.state(tnos[10])["balance"] == 12000 - 5000
    assert sandbox.state(tnos[0])["balance"] == 0
    assert busiest_second(cancel_times(sandbox, tnos)) <= 4

    # Each item is an ordinary cancellation: readable, requested by the shop, with its emails.
    page = items(shop, accepted.body["id"], status="SUCCEEDED", limit=100).body["items"]
    assert len(page) == 12
    first = shop.cancellation(page[0]["cancellation_id"]).body
    assert first["status"] == "SUCCEEDED" and first["tno"] == page[0]["tno"]
    assert first["requested_by"] == "SHOP" and first["batch_id"] == accepted.body["id"]
    mails = [m for m in stack.mail.messages() if page[0]["cancellation_id"] in m]
    assert len(mails) == 2  # the customer's and the shop's, as for any cancel

    # The same request again, with the same key: the same batch, and KCP hears nothing more.
    again = post_batch(shop, body, key)
    assert again.status == 200 and again.body["id"] == accepted.body["id"]
    assert all(len(sandbox.calls(tno)) == 1 for tno in tnos)


def test_a_csv_upload_becomes_a_batch_whose_items_page_by_position(
    shop: ShopClient, sandbox: Sandbox
) -> None:
    tnos = paid(shop, sandbox, 3, amount=8000)
    csv = "tno,amount,reason_code,reason\r\n" + "".join(
        f"{t},{'"3,000"' if n == 1 else ''},DEFECTIVE,행사 취소\r\n" for n, t in enumerate(tnos)
    )
    accepted = post_batch(shop, None, csv="\ufeff" + csv)
    assert accepted.status == 202, accepted.body
    done = finished(shop, accepted.body["id"])
    assert done["counts"]["SUCCEEDED"] == 3, done

    first = items(shop, done["id"], limit=2)
    assert first.status == 200, first.body
    assert [i["seq"] for i in first.body["items"]] == [1, 2]
    assert first.body["items"][1]["amount"] == 3000
    rest = items(shop, done["id"], limit=2, cursor=first.body["next_cursor"])
    assert [i["seq"] for i in rest.body["items"]] == [3] and rest.body["next_cursor"] is None
    assert sandbox.state(tnos[1])["balance"] == 5000

    # A cursor is only for the list it was made for.
    other = items(shop, done["id"], limit=2, status="FAILED", cursor=first.body["next_cursor"])
    assert other.status == 400 and other.body["code"] == "INVALID_CURSOR"


def test_a_cancelled_batch_skips_what_it_has_not_started_and_loses_nothing_sent(
    shop: ShopClient, sandbox: Sandbox
) -> None:
    tnos = paid(shop, sandbox, 12)
    accepted = post_batch(
        shop, {"items": [{"tno": t, "reason_code": "DEFECTIVE"} for t in tnos], "tps": 1}
    )
    assert accepted.status == 202, accepted.body
    batch_id = accepted.body["id"]
    deadline = time.monotonic() + 60
    while batch(shop, batch_id)["counts"]["SUCCEEDED"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    stopping = http("POST", f"{shop.url}{BATCHES}/{batch_id}/cancel", headers=shop.auth)
    assert stopping.status == 200, stopping.body
    assert stopping.body["status"] in ("STOPPING", "CANCELLED")

    done = finished(shop, batch_id)
    assert done["status"] == "CANCELLED", done
    counts = done["counts"]
    assert counts["SKIPPED"] >= 1 and counts["PENDING"] == 0
    assert counts["SUCCEEDED"] + counts["SKIPPED"] == 12, counts
    # What was sent settled and is counted; nothing skipped reached KCP.
    listed = {i["tno"]: i for i in items(shop, batch_id, limit=100).body["items"]}
    for tno in tnos:
        sent = len(sandbox.calls(tno))
        assert sent == (1 if listed[tno]["status"] == "SUCCEEDED" else 0), listed[tno]
    again = http("POST", f"{shop.url}{BATCHES}/{batch_id}/cancel", headers=shop.auth)
    assert again.status == 200 and again.body["status"] == "CANCELLED"


def test_a_second_batch_of_the_shop_waits_for_the_first(shop: ShopClient, sandbox: Sandbox) -> None:
    first_tnos, second_tnos = paid(shop, sandbox, 6), paid(shop, sandbox, 2)
    first = post_batch(
        shop, {"items": [{"tno": t, "reason_code": "DEFECTIVE"} for t in first_tnos], "tps": 2}
    )
    second = post_batch(
        shop, {"items": [{"tno": t, "reason_code": "DEFECTIVE"} for t in second_tnos]}
    )
    assert first.status == second.status == 202
    one, two = finished(shop, first.body["id"]), finished(shop, second.body["id"])
    assert one["counts"]["SUCCEEDED"] == 6 and two["counts"]["SUCCEEDED"] == 2
    assert two["started_at"] >= one["finished_at"], (one, two)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"items": []}, 400, "VALIDATION_FAILED"),
        ({"items": [{"tno": "123", "reason_code": "DEFECTIVE"}]}, 400, "VALIDATION_FAILED"),
        ({"items": [{"tno": "20261203123456", "reason_code": "NOPE"}]}, 400, "VALIDATION_FAILED"),
        (
            {"items": [{"tno": "20261203123456", "reason_code": "DEFECTIVE", "amount": 0}]},
            400,
            "VALIDATION_FAILED",
        ),
        (
            {"items": [{"tno": "20261203123456", "reason_code": "DEFECTIVE"}], "tps": 50},
            400,
            "VALIDATION_FAILED",
        ),
        (
            {"items": [{"tno": "20261203123456", "reason_code": "DEFECTIVE"}] * 2},
            422,
            "BATCH_DUPLICATE_TNO",
        ),
        (
            {
                "items": [
                    {"tno": f"2026120{n:07d}", "reason_code": "DEFECTIVE"} for n in range(10_001)
                ]
            },
            400,
            "VALIDATION_FAILED",
        ),
        (["not", "an", "object"], 400, "VALIDATION_FAILED"),
    ],
)
def test_bad_batches_are_refused_with_problem_json_and_start_nothing(
    shop: ShopClient, body: Any, status: int, code: str
) -> None:
    answer = post_batch(shop, body)
    assert (answer.status, answer.code) == (status, code), answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("csv", "status", "code"),
    [
        ("", 400, "VALIDATION_FAILED"),
        ("tno,reason\n20261203123456,x\n", 400, "VALIDATION_FAILED"),
        ("tno,reason_code,amount\n20261203123456,DEFECTIVE,abc\n", 400, "VALIDATION_FAILED"),
        ("tno,reason_code\n20261203123456,DEFECTIVE,extra\n", 400, "VALIDATION_FAILED"),
        ("tno,reason_code\n", 400, "VALIDATION_FAILED"),
    ],
)
def test_bad_csv_uploads_are_refused_naming_the_line(
    shop: ShopClient, csv: str, status: int, code: str
) -> None:
    answer = post_batch(shop, None, csv=csv)
    assert (answer.status, answer.code) == (status, code), answer.body


def test_the_key_the_type_and_the_shop_are_checked(
    shop: ShopClient, shop_b: ShopClient, sandbox: Sandbox
) -> None:
    one = {"items": [{"tno": "20261203123456", "reason_code": "DEFECTIVE"}]}
    keyless = http("POST", shop.url + BATCHES, one, shop.auth)
    assert (keyless.status, keyless.code) == (400, "IDEMPOTENCY_KEY_REQUIRED")
    xml = http(
        "POST",
        shop.url + BATCHES,
        raw=b"<items/>",
        headers=shop.auth | {"Idempotency-Key": "k", "Content-Type": "application/xml"},
    )
    assert (xml.status, xml.code) == (415, "UNSUPPORTED_MEDIA_TYPE")

    key = str(uuid.uuid4())
    [tno] = paid(shop, sandbox, 1)
    mine = post_batch(shop, {"items": [{"tno": tno, "reason_code": "DEFECTIVE"}]}, key)
    assert mine.status == 202
    reused = post_batch(shop, {"items": [{"tno": tno, "reason_code": "CHANGE_OF_MIND"}]}, key)
    assert (reused.status, reused.code) == (422, "IDEMPOTENCY_KEY_REUSED")
    finished(shop, mine.body["id"])

    # Another shop sees no such batch, and cannot stop it or list it.
    path = f"{shop_b.url}{BATCHES}/{mine.body['id']}"
    for method, url in (("GET", path), ("GET", path + "/items"), ("POST", path + "/cancel")):
        answer = http(method, url, headers=shop_b.auth)
        assert (answer.status, answer.code) == (404, "BATCH_NOT_FOUND"), (method, url)
    ended = http("POST", f"{shop.url}{BATCHES}/{mine.body['id']}/cancel", headers=shop.auth)
    assert (ended.status, ended.code) == (409, "BATCH_ENDED")


def test_an_item_kcp_leaves_unanswered_is_settled_by_its_own_workflow_and_the_batch_shows_it(
    shop: ShopClient, sandbox: Sandbox
) -> None:
    unanswered, declined, fine = paid(shop, sandbox, 3)
    sandbox.fault(unanswered, "commit_then_timeout", hold_seconds=5)  # applied, then silence
    sandbox.fault(declined, "res_cd", value="8133")
    accepted = post_batch(
        shop,
        {"items": [{"tno": t, "reason_code": "DEFECTIVE"} for t in (unanswered, declined, fine)]},
    )
    batch_id = accepted.body["id"]
    done = finished(shop, batch_id)
    assert done["status"] == "COMPLETED", done
    shown = {i["tno"]: i for i in items(shop, batch_id).body["items"]}
    assert shown[declined]["status"] == "FAILED" and shown[declined]["reasons"] == [
        "GATEWAY_DECLINED"
    ]
    # Handed on (OPEN), or already followed to its outcome when the batch was read.
    assert shown[unanswered]["status"] in ("OPEN", "SUCCEEDED") and shown[fine]["status"] == (
        "SUCCEEDED"
    )

    # The open one goes on in the ordinary workflow: KCP's balance proves it applied, and it
    # settles SUCCEEDED without a second cancel ever being sent.
    outcome = shop.outcome(shown[unanswered]["cancellation_id"])
    assert outcome["status"] == "SUCCEEDED", outcome
    assert outcome["confirmed_by"] == "INQUIRY"
    assert len(sandbox.calls(unanswered)) == 1
    assert sandbox.state(unanswered)["balance"] == 0
    assert sandbox.state(declined)["balance"] == 12000

    # ...and the batch follows it: the item shows the outcome, the counts with it.
    followed = counted(shop, batch_id, "SUCCEEDED", 2)
    assert {k: v for k, v in followed["counts"].items() if v} == {"SUCCEEDED": 2, "FAILED": 1}
    assert [i["tno"] for i in followed["not_succeeded"]] == [declined]
    assert items(shop, batch_id, status="OPEN").body["items"] == []
