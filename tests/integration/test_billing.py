"""Subscription billing through the real state machine: charged once per period, dunning,
month ends, unknown charges reconciled, and the subscriptions API (issue 6).

Each scenario bills on its own calendar year, so runs never see another scenario's subscriptions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from cancelflow.adapters.dynamodb.subscriptions import DynamoBilling
from cancelflow.kernel.clock import KST
from local.stack import LocalStack
from local.template import ROOT

from .billing_support import (
    batch_key,
    bill,
    call,
    charge_calls,
    charges_at_kcp,
    entered,
    finish_billing,
    mails_for,
    recipient,
    start_billing,
    subject,
    subscribe,
)
from .conftest import ShopClient, http


def test_a_due_subscription_is_charged_once_with_a_receipt_and_a_second_run_charges_nothing(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    key = batch_key(url)
    created = subscribe(shop, key, "2032-03-15")
    assert created.status == 201, created.body
    sub = created.body
    assert sub["batch_key"] == "****" + key[-4:]
    assert key not in str(created.body)

    first = bill(stack, "2032-03-15")
    again = bill(stack, "2032-03-15")

    assert first["charged"] == 1 and first["declined"] == first["unknown"] == 0
    assert again["charged"] == 0
    at_kcp = charges_at_kcp(url, sub["subscription_id"])
    assert [(c["amount"], c["ordr_idxx"]) for c in at_kcp] == [
        (9900, f"{sub['subscription_id']}-2032-03-1")
    ]
    after = call(shop, "GET", f"/v1/subscriptions/{sub['subscription_id']}").body
    assert after["next_charge_date"] == "2032-04-15"
    assert after["last_paid"]["tno"] == at_kcp[0]["tno"]
    charges = call(shop, "GET", f"/v1/subscriptions/{sub['subscription_id']}/charges").body
    assert [(c["period"], c["status"], c["tno"]) for c in charges["items"]] == [
        ("2032-03", "SUCCEEDED", at_kcp[0]["tno"])
    ]
    mails = mails_for(stack, sub["subscription_id"])
    # The receipt, and the shop's own copy (tests/integration/test_subscription_emails.py).
    assert sorted(recipient(m) for m in mails) == sorted(
        [sub["customer_email"], "shop@demo-shop.example"]
    )
    assert "정기결제 영수증" in subject(mails[0]) and "9,900원" in mails[0]


def test_the_execution_history_shows_every_charge(stack: LocalStack, shop: ShopClient) -> None:
    url = stack.env["SANDBOX_URL"]
    subs = [subscribe(shop, batch_key(url), "2032-06-02").body for _ in range(2)]
    summary = bill(stack, "2032-06-02")
    assert summary["charged"] == 2
    events = stack.client("stepfunctions").get_execution_history(
        executionArn=summary["execution_arn"], maxResults=1000
    )["events"]
    text = str(events)
    for sub in subs:  # each charge: its ordr_idxx, the outcome and KCP's tno
        (charged,) = charges_at_kcp(url, sub["subscription_id"])
        assert f"{charged['ordr_idxx']} CHARGED {charged['tno']}" in text


def test_a_run_started_while_another_is_charging_charges_nothing_and_names_that_run(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    subs = [subscribe(shop, batch_key(url), "2038-07-07").body for _ in range(3)]
    daily = start_billing(stack, "2038-07-07", {"tps": 1})  # three charges: about 3 s
    entered(stack, daily, "FindDue")  # it holds the run's lease

    twice = bill(stack, "2038-07-07")  # the schedule fired again, or someone ran make bill

    first = finish_billing(stack, daily)
    assert twice["another_run"] == daily
    assert twice["charged"] == twice["skipped"] == 0
    assert first["charged"] == 3 and "another_run" not in first
    assert [len(charges_at_kcp(url, s["subscription_id"])) for s in subs] == [1, 1, 1]
    assert bill(stack, "2038-07-07")["charged"] == 0  # the lease passes on once it is done


def test_a_run_may_go_slower_than_the_merchants_kcp_allowance_but_never_faster(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    sub = subscribe(shop, batch_key(url), "2038-09-09").body
    too_fast = start_billing(stack, "2038-09-09", {"tps": 1000})  # the stack allows 100

    failed = stack.wait_for_execution(too_fast)

    assert failed["status"] == "FAILED"
    assert "may not exceed BillingKcpTps" in failed.get("cause", "")
    assert charge_calls(url, sub["subscription_id"]) == []
    assert bill(stack, "2038-09-09", {"tps": 50})["charged"] == 1


def test_a_subscription_that_cannot_be_charged_fails_alone_and_stays_due(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    good, broken = (subscribe(shop, batch_key(url), "2039-02-03").body for _ in range(2))
    # Its sealed batch key is damaged (say, a bad restore): the vault cannot open it.
    stack.client("dynamodb").update_item(
        TableName=stack.env["TABLE_NAME"],
        Key={
            "PK": {"S": f"SHOP#demo-shop#SUB#{broken['subscription_id']}"},
            "SK": {"S": "SUBSCRIPTION"},
        },
        UpdateExpression="SET batch_key_ref = :bad",
        ExpressionAttributeValues={":bad": {"S": "v1:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
    )

    summary = bill(stack, "2039-02-03", {"max_concurrency": 1})  # one lane: both in it

    assert (summary["charged"], summary["failed"]) == (1, 1)
    assert len(charges_at_kcp(url, good["subscription_id"])) == 1
    assert charge_calls(url, broken["subscription_id"]) == []  # nothing reached KCP
    broken_charges = f"/v1/subscriptions/{broken['subscription_id']}/charges"
    assert call(shop, "GET", broken_charges).body["items"] == []  # nor was anything claimed
    after = call(shop, "GET", f"/v1/subscriptions/{broken['subscription_id']}").body
    assert after["status"] == "ACTIVE" and after["next_attempt_date"] == "2039-02-03"


def test_a_charge_kcp_approved_but_not_yet_recorded_is_recorded_from_its_journal_not_resent(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    sub = subscribe(shop, batch_key(url), "2039-04-04").body
    sid = sub["subscription_id"]
    paid = http(  # KCP approved the charge and its tno was journaled ...
        "POST", f"{url}/_sandbox/payments", {"amount": 9900, "product_name": "월간 원두 구독"}
    ).body
    store = DynamoBilling(stack.client("dynamodb"), stack.env["TABLE_NAME"])
    current = store.get("demo-shop", sid)
    assert current is not None
    long_ago = datetime.now(UTC) - timedelta(minutes=10)  # no longer in flight
    claimed = replace(
        current.pending_charge(date(2039, 4, 4), long_ago, "crashed-run"),
        sends=1,
        tno=paid["tno"],
        approved_at=long_ago,
    )
    assert store.claim(current, claimed) is None
    store.journal(claimed)  # ... then its run died before recording the effects

    summary = bill(stack, "2039-04-04")

    assert summary["charged"] == 1
    assert charge_calls(url, sid) == []  # not sent again: the journal knew
    charges = call(shop, "GET", f"/v1/subscriptions/{sid}/charges").body["items"]
    assert [(c["status"], c["tno"]) for c in charges] == [("SUCCEEDED", paid["tno"])]
    assert call(shop, "GET", f"/v1/payments/{paid['tno']}").status == 200  # refundable
    after = call(shop, "GET", f"/v1/subscriptions/{sid}").body
    assert after["next_charge_date"] == "2039-05-04"


def test_a_declined_card_walks_the_dunning_schedule_to_suspended_with_emails(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    sub = subscribe(shop, batch_key(url, decline="INSUFFICIENT_BALANCE"), "2033-01-10").body
    sid = sub["subscription_id"]

    results = [bill(stack, day) for day in ("2033-01-10", "2033-01-11", "2033-01-13")]
    assert [r["declined"] for r in results] == [1, 1, 1]
    nothing = bill(stack, "2033-01-12")  # not a retry day
    assert nothing["declined"] == nothing["charged"] == 0
    last = bill(stack, "2033-01-17")
    assert last["suspended"] == 1

    after = call(shop, "GET", f"/v1/subscriptions/{sid}").body
    assert after["status"] == "SUSPENDED"
    assert after["next_attempt_date"] is None
    charges = call(shop, "GET", f"/v1/subscriptions/{sid}/charges").body["items"]
    assert [(c["attempt"], c["status"], c["billing_date"]) for c in charges] == [
        (1, "DECLINED", "2033-01-10"),
        (2, "DECLINED", "2033-01-11"),
        (3, "DECLINED", "2033-01-13"),
        (4, "DECLINED", "2033-01-17"),
    ]
    assert charges[0]["gateway"]["res_cd"] == "SB05" and charges[0]["gateway"]["hint"]
    assert charges_at_kcp(url, sid) == []
    mails = mails_for(stack, sid)
    declines = [m for m in mails if "거절" in subject(m)]
    suspended = [m for m in mails if "중지" in subject(m)]
    assert [recipient(m) for m in declines] == [sub["customer_email"]] * 3
    assert "2033년 1월 11일" in declines[0] and "2033년 1월 17일" in declines[2]
    assert sorted(recipient(m) for m in suspended) == sorted(
        [sub["customer_email"], "shop@demo-shop.example"]
    )
    assert bill(stack, "2033-01-18")["charged"] == 0


def test_paused_and_cancelled_subscriptions_are_skipped(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    active, paused, cancelled = (
        subscribe(shop, batch_key(url), "2034-03-05").body for _ in range(3)
    )
    assert call(shop, "POST", f"/v1/subscriptions/{paused['subscription_id']}/pause").status == 200
    stop = call(
        shop,
        "POST",
        f"/v1/subscriptions/{cancelled['subscription_id']}/cancel",
        {"when": "PERIOD_END"},
    )
    assert stop.status == 200 and stop.body["status"] == "CANCELLED"

    summary = bill(stack, "2034-03-05")

    assert summary["charged"] == 1
    assert len(charges_at_kcp(url, active["subscription_id"])) == 1
    assert charges_at_kcp(url, paused["subscription_id"]) == []
    assert charges_at_kcp(url, cancelled["subscription_id"]) == []
    listed = call(shop, "GET", "/v1/subscriptions?status=PAUSED&limit=100").body["items"]
    assert paused["subscription_id"] in [s["subscription_id"] for s in listed]
    assert all(s["status"] == "PAUSED" for s in listed)


def test_month_end_anchor_charges_on_the_last_day_and_returns_to_the_31st(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    sub = subscribe(shop, batch_key(url), "2030-10-31", anchor_day=31).body
    sid = sub["subscription_id"]
    seen = []
    for day in ("2030-10-31", "2030-11-30", "2030-12-31", "2031-01-31", "2031-02-28"):
        assert bill(stack, day)["charged"] == 1, day
        seen.append(call(shop, "GET", f"/v1/subscriptions/{sid}").body["next_charge_date"])
    assert seen == ["2030-11-30", "2030-12-31", "2031-01-31", "2031-02-28", "2031-03-31"]
    periods = [c["ordr_idxx"].removeprefix(sid) for c in charges_at_kcp(url, sid)]
    assert periods == ["-2030-10-1", "-2030-11-1", "-2030-12-1", "-2031-01-1", "-2031-02-1"]


def test_an_unknown_charge_is_reconciled_by_resending_the_same_order_id_and_charged_once(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    sub = subscribe(shop, batch_key(url), "2035-05-20").body
    sid = sub["subscription_id"]
    # KCP applies the charge, then the answer never comes (client read timeout: 1 s).
    fault = {"path": "charge", "mode": "commit_then_timeout", "hold_seconds": 2}
    assert http("POST", f"{url}/_sandbox/faults", fault).status == 201

    summary = bill(stack, "2035-05-20")

    assert summary["charged"] == 1 and summary["unknown"] == 0
    assert len(charges_at_kcp(url, sid)) == 1
    calls = charge_calls(url, sid)
    assert len(calls) == 2 and len({c["ordr_idxx"] for c in calls}) == 1  # resent, same id
    charges = call(shop, "GET", f"/v1/subscriptions/{sid}/charges").body["items"]
    assert [(c["status"], c["confirmed_by"]) for c in charges] == [("SUCCEEDED", "DUPLICATE_ORDER")]
    assert bill(stack, "2035-05-20")["charged"] == 0
    assert len(charges_at_kcp(url, sid)) == 1


def test_cancel_immediately_refunds_the_unused_days_through_the_cancel_workflow(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    today = datetime.now(KST).date()  # the billing calendar is Korea's
    sub = subscribe(shop, batch_key(url), today.isoformat(), amount=30000).body
    sid = sub["subscription_id"]
    assert bill(stack, today.isoformat())["charged"] == 1
    paid = call(shop, "GET", f"/v1/subscriptions/{sid}").body["last_paid"]

    stopped = call(shop, "POST", f"/v1/subscriptions/{sid}/cancel", {"when": "IMMEDIATELY"})

    assert stopped.status == 200, stopped.body
    refund = stopped.body["cancellation"]
    start, end = date.fromisoformat(paid["period_start"]), date.fromisoformat(paid["period_end"])
    on = date.fromisoformat(refund["service_until"])
    days = (end - start).days
    assert refund["refund_amount"] == 30000 * ((end - on).days - 1) // days
    assert refund["refund_amount"] > 0
    outcome = shop.outcome(refund["refund_cancellation_id"])
    assert outcome["status"] == "SUCCEEDED", outcome
    assert outcome["refunded_amount"] == refund["refund_amount"]
    again = call(shop, "POST", f"/v1/subscriptions/{sid}/cancel", {"when": "IMMEDIATELY"})
    assert again.body["cancellation"] == refund  # repeated: the same refund, not a second
    assert on == today


def test_another_shops_subscription_is_not_found(
    stack: LocalStack, shop: ShopClient, shop_b: ShopClient
) -> None:
    sub = subscribe(shop, batch_key(stack.env["SANDBOX_URL"]), "2036-01-01").body
    sid = sub["subscription_id"]
    for method, path in (
        ("GET", f"/v1/subscriptions/{sid}"),
        ("GET", f"/v1/subscriptions/{sid}/charges"),
        ("POST", f"/v1/subscriptions/{sid}/pause"),
    ):
        answer = call(shop_b, method, path)
        assert answer.status == 404 and answer.code == "SUBSCRIPTION_NOT_FOUND", answer.body
    listed = call(shop_b, "GET", "/v1/subscriptions?limit=100").body["items"]
    assert sid not in [s["subscription_id"] for s in listed]


def test_bad_input_gets_problem_json_with_a_code(stack: LocalStack, shop: ShopClient) -> None:
    key = batch_key(stack.env["SANDBOX_URL"])
    bad_amount = subscribe(shop, key, "2036-02-01", amount=-5)
    assert bad_amount.status == 400 and bad_amount.code == "VALIDATION_FAILED"
    assert bad_amount.headers["Content-Type"] == "application/problem+json"
    assert key not in str(bad_amount.body)
    weekly = subscribe(shop, key, "2036-02-01", cycle="WEEKLY", anchor_day=9)
    assert weekly.code == "VALIDATION_FAILED"
    past = subscribe(shop, key, "2020-01-01")
    assert past.code == "VALIDATION_FAILED"
    no_key = http(
        "POST",
        f"{shop.url}/v1/subscriptions",
        {"customer_name": "x"},
        shop.auth,
    )
    assert no_key.status == 400
    unkeyed = subscribe(shop, key, "2036-02-01")
    assert unkeyed.status == 201
    headers = shop.auth
    missing = http(
        "POST",
        f"{shop.url}/v1/subscriptions",
        {
            "customer_name": "김고객",
            "customer_email": "a@example.com",
            "batch_key": key,
            "amount": 100,
            "product_name": "x",
            "cycle": "MONTHLY",
            "first_charge_date": "2036-02-01",
        },
        headers,
    )
    assert missing.status == 400 and missing.code == "IDEMPOTENCY_KEY_REQUIRED"
    # The message names what is being created, not another resource's rule.
    assert "subscription" in missing.body["detail"]
    assert "cancellation" not in (missing.body["title"] + missing.body["detail"]).lower()
    malformed = http("POST", f"{shop.url}/v1/subscriptions", raw=b"{not json", headers=headers)
    assert malformed.code == "MALFORMED_JSON"
    sid = unkeyed.body["subscription_id"]
    when = call(shop, "POST", f"/v1/subscriptions/{sid}/cancel", {"when": "LATER"})
    assert when.status == 400 and when.code == "VALIDATION_FAILED"
    cursor = call(shop, "GET", "/v1/subscriptions?cursor=bm9wZQ")
    assert cursor.status == 400 and cursor.code == "INVALID_CURSOR"


def test_subscriptions_page_with_a_signed_cursor_only_their_shop_and_filters_can_use(
    stack: LocalStack, shop: ShopClient, shop_b: ShopClient
) -> None:
    key = batch_key(stack.env["SANDBOX_URL"])
    mine = {subscribe(shop, key, "2036-04-01").body["subscription_id"] for _ in range(3)}
    seen: list[str] = []
    page = call(shop, "GET", "/v1/subscriptions?limit=2")
    first_cursor = page.body["next_cursor"]
    for _ in range(500):
        assert page.status == 200, page.body
        seen += [s["subscription_id"] for s in page.body["items"]]
        if not page.body["next_cursor"]:
            break
        page = call(shop, "GET", f"/v1/subscriptions?limit=2&cursor={page.body['next_cursor']}")
    assert len(seen) == len(set(seen)) and mine <= set(seen)
    # The cursor is bound to the shop and the filters it was made for, and cannot be edited.
    elsewhere = call(shop_b, "GET", f"/v1/subscriptions?limit=2&cursor={first_cursor}")
    refiltered = call(shop, "GET", f"/v1/subscriptions?status=PAUSED&cursor={first_cursor}")
    edited = call(shop, "GET", f"/v1/subscriptions?cursor=x{first_cursor}")
    assert [a.code for a in (elsewhere, refiltered, edited)] == ["INVALID_CURSOR"] * 3


def test_a_replayed_create_with_the_same_key_returns_the_same_subscription(
    stack: LocalStack, shop: ShopClient
) -> None:
    key = batch_key(stack.env["SANDBOX_URL"])
    body = {
        "customer_name": "김고객",
        "customer_email": "replay@example.com",
        "batch_key": key,
        "amount": 5000,
        "product_name": "주간 꽃 구독",
        "cycle": "WEEKLY",
        "anchor_day": 3,
        "first_charge_date": "2036-03-02",
    }
    headers = shop.auth | {"Idempotency-Key": "create-replay-1"}
    first = http("POST", f"{shop.url}/v1/subscriptions", body, headers)
    second = http("POST", f"{shop.url}/v1/subscriptions", body, headers)
    other = http("POST", f"{shop.url}/v1/subscriptions", body | {"amount": 6000}, headers)
    assert (first.status, second.status) == (201, 200)
    assert second.body["subscription_id"] == first.body["subscription_id"]
    assert first.body["next_charge_date"] == "2036-03-05"  # the first Wednesday on or after
    assert other.status == 422 and other.code == "IDEMPOTENCY_KEY_REUSED"


def test_a_charge_confirmed_only_as_a_duplicate_order_stays_open_until_its_tno_is_linked(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    today = datetime.now(KST).date()
    sid = subscribe(shop, batch_key(url), today.isoformat(), amount=30000).body["subscription_id"]
    fault = {"path": "charge", "mode": "commit_then_timeout", "hold_seconds": 2}
    assert http("POST", f"{url}/_sandbox/faults", fault).status == 201
    assert bill(stack, today.isoformat())["awaiting_tno"] == 1
    charges = call(shop, "GET", f"/v1/subscriptions/{sid}/charges").body["items"]
    assert [(c["status"], c["tno"], c["open_case"]) for c in charges] == [
        ("SUCCEEDED", None, "TNO_UNKNOWN")
    ]

    # Cancelled at once: the pro-rata refund is owed, and the subscription says what it waits for.
    stopped = call(shop, "POST", f"/v1/subscriptions/{sid}/cancel", {"when": "IMMEDIATELY"})
    assert stopped.status == 200, stopped.body
    waiting = stopped.body["cancellation"]
    assert waiting["refund_amount"] > 0 and waiting["refund_cancellation_id"] is None
    assert waiting["refund_waiting_for"] == "KCP_TNO"

    # An operator finds the tno in KCP's admin (here: the sandbox's ledger) and links it.
    tno = charges_at_kcp(url, sid)[0]["tno"]
    linked = link_tno(stack, sid, charges[0]["period"], tno)
    assert linked.returncode == 0, linked.stderr
    after = call(shop, "GET", f"/v1/subscriptions/{sid}").body
    assert after["last_paid"]["tno"] == tno
    assert after["cancellation"]["refund_waiting_for"] is None
    outcome = shop.outcome(after["cancellation"]["refund_cancellation_id"])
    assert (outcome["status"], outcome["refunded_amount"]) == (
        "SUCCEEDED",
        waiting["refund_amount"],
    )
    charges = call(shop, "GET", f"/v1/subscriptions/{sid}/charges").body["items"]
    assert [(c["tno"], c["open_case"]) for c in charges] == [(tno, None)]
    # Linking again changes nothing; a tno KCP does not hold as this charge is refused.
    assert link_tno(stack, sid, charges[0]["period"], tno).returncode == 0
    wrong = link_tno(stack, sid, charges[0]["period"], "20990101000000")
    assert wrong.returncode != 0 and "PAYMENT_CONFLICT" in wrong.stderr


def link_tno(stack: LocalStack, sid: str, period: str, tno: str) -> subprocess.CompletedProcess:
    env_file = str(stack.state_dir / "stack.env")
    return subprocess.run(  # noqa: S603 (our own CLI, as an operator runs it)
        [
            sys.executable,
            "-m",
            "local.charge_tno",
            "--subscription",
            sid,
            "--period",
            period,
            "--tno",
            tno,
            "--env",
            env_file,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ) | {"PYTHONPATH": f"{ROOT / 'layers' / 'cancelflow'}:{ROOT}"},
    )


def test_a_suspended_plan_with_a_new_card_charges_the_new_card_once_resumed(
    stack: LocalStack, shop: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    old_key = batch_key(url, decline="INSUFFICIENT_BALANCE")
    sid = subscribe(shop, old_key, "2034-03-10").body["subscription_id"]
    for day in ("2034-03-10", "2034-03-11", "2034-03-13", "2034-03-17"):
        bill(stack, day)
    assert call(shop, "GET", f"/v1/subscriptions/{sid}").body["status"] == "SUSPENDED"

    new_key = batch_key(url)
    replaced = call(shop, "PUT", f"/v1/subscriptions/{sid}/batch-key", {"batch_key": new_key})
    assert replaced.status == 200, replaced.body
    assert replaced.body["status"] == "SUSPENDED"  # a new card does not resume by itself
    assert replaced.body["batch_key"] == f"****{new_key[-4:]}"
    assert old_key not in str(replaced.body) and new_key not in str(replaced.body)

    resumed = call(shop, "POST", f"/v1/subscriptions/{sid}/resume").body
    assert bill(stack, resumed["next_attempt_date"])["charged"] == 1
    charges = call(shop, "GET", f"/v1/subscriptions/{sid}/charges").body["items"]
    assert [c["status"] for c in charges][-1] == "SUCCEEDED"
    assert len(charges_at_kcp(url, sid)) == 1  # the old card declines: the new one was charged


def test_a_card_cannot_be_replaced_on_a_cancelled_plan_or_another_shops(
    stack: LocalStack, shop: ShopClient, shop_b: ShopClient
) -> None:
    url = stack.env["SANDBOX_URL"]
    sid = subscribe(shop, batch_key(url), "2034-05-01").body["subscription_id"]
    body = {"batch_key": batch_key(url)}
    elsewhere = call(shop_b, "PUT", f"/v1/subscriptions/{sid}/batch-key", body)
    assert (elsewhere.status, elsewhere.code) == (404, "SUBSCRIPTION_NOT_FOUND")
    bad = call(shop, "PUT", f"/v1/subscriptions/{sid}/batch-key", {"batch_key": "x"})
    assert (bad.status, bad.code) == (400, "VALIDATION_FAILED")
    call(shop, "POST", f"/v1/subscriptions/{sid}/cancel", {"when": "PERIOD_END"})
    cancelled = call(shop, "PUT", f"/v1/subscriptions/{sid}/batch-key", body)
    assert (cancelled.status, cancelled.code) == (409, "SUBSCRIPTION_STATE_CONFLICT")
    assert "card" in cancelled.body["detail"]
