"""KCP's notifications (공통 통보) through the real path: the sandbox plays KCP and POSTs its form
to the local notification API (its resource policy, the function, the table), resending until
it reads KCP's success page; the shop sees the outcome in the API."""

from __future__ import annotations

import time
import urllib.parse
from http.client import HTTPConnection
from typing import Any

import pytest

from cancelflow.kcp.notifications import parse
from cancelflow.kernel.events import Event
from local.stack import LocalStack

from .conftest import Sandbox, ShopClient, http


def _notice(sandbox: Sandbox, notice_id: str) -> dict[str, Any]:
    answer = http("GET", f"{sandbox.url}/_sandbox/notifications/{notice_id}")
    assert answer.status == 200, answer.body
    return answer.body


def _answered(sandbox: Sandbox, notice: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
    """Wait until KCP (the sandbox) has read its success page for this notification."""
    deadline = time.monotonic() + timeout
    while True:
        found = _notice(sandbox, notice["id"])
        if found["answered"] or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _admin_cancel(sandbox: Sandbox, tno: str, **body: Any) -> dict[str, Any]:
    answer = http("POST", f"{sandbox.url}/_sandbox/payments/{tno}/admin-cancel", body)
    assert answer.status == 202, answer.body
    return answer.body


def _event(stack: LocalStack, shop_id: str, kind: str, notice: dict[str, Any]) -> dict | None:
    """The event recorded for this notification, by the id its change names (GetItem)."""
    parsed = parse(urllib.parse.urlencode(notice["form"]))
    cause = parsed.notice_id
    probe = Event(kind, shop_id, notice["tno"], parsed.at, cause)  # type: ignore[arg-type]
    item = stack.client("dynamodb").get_item(
        TableName=stack.env["TABLE_NAME"],
        Key={"PK": {"S": f"SHOP#{shop_id}#EVT#{probe.event_id}"}, "SK": {"S": "EVENT"}},
        ConsistentRead=True,
    )
    return item.get("Item")


def _post_from(address: str, url: str, form: dict[str, str]) -> tuple[int, str]:
    """POST a notification form to `url` from a local source address of our choosing."""
    parts = urllib.parse.urlsplit(url)
    connection = HTTPConnection(parts.hostname, parts.port, timeout=10, source_address=(address, 0))
    body = urllib.parse.urlencode(form)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    connection.request("POST", parts.path, body, headers)
    answer = connection.getresponse()
    text = answer.read().decode()
    connection.close()
    return answer.status, text


def test_an_admin_cancel_updates_the_payment_and_records_payment_cancelled_externally(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any]
) -> None:
    notice = _answered(sandbox, _admin_cancel(sandbox, paid["tno"], amount=4000))
    assert notice["answered"], notice["deliveries"]

    detail = shop.payment(paid["tno"])
    assert (detail["status"], detail["balance"], detail["available"]) == (
        "PARTIALLY_CANCELLED",
        11000,
        11000,
    )
    (external,) = [c for c in detail["cancellations"] if c["requested_by"] == "KCP"]
    assert external["status"] == "SUCCEEDED" and external["refunded_amount"] == 4000
    assert external["confirmed_by"] == "KCP_NOTIFICATION"
    assert [r["code"] for r in external["reasons"]] == ["CANCELLED_AT_KCP"]
    event = _event(stack, "demo-shop", "payment.cancelled_externally", notice)
    assert event is not None and event["event_type"]["S"] == "payment.cancelled_externally"
    assert event["data"]["M"]["amount"]["N"] == "4000"


def test_a_repeated_notification_changes_nothing(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any]
) -> None:
    notice = _answered(sandbox, _admin_cancel(sandbox, paid["tno"], amount=5000))
    before = shop.payment(paid["tno"])

    assert http("POST", f"{sandbox.url}/_sandbox/notifications/{notice['id']}/send").status == 202
    deadline = time.monotonic() + 20
    while len(_notice(sandbox, notice["id"])["deliveries"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    again = _answered(sandbox, notice)
    assert again["answered"] and len(again["deliveries"]) == 2  # answered 0000 again

    after = shop.payment(paid["tno"])
    assert after == before
    assert after["balance"] == 10000 and len(after["cancellations"]) == 1


def test_a_notification_from_an_address_not_on_the_list_is_refused_and_changes_nothing(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any]
) -> None:
    notice = _admin_cancel(sandbox, paid["tno"], amount=3000, notify=False)
    url = stack.env["KCP_NOTIFY_URL"]

    status, text = _post_from("127.0.0.2", url, notice["form"])  # not in KcpNotifySourceIps

    assert status == 403 and 'value="0000"' not in text
    assert shop.payment(paid["tno"])["balance"] == 15000
    # The same form from KCP's address is taken: only the address was wrong.
    assert _post_from("127.0.0.1", url, notice["form"]) == (200, _success_page())
    assert shop.payment(paid["tno"])["balance"] == 12000


def test_a_notification_for_an_unknown_site_cd_is_refused_and_changes_nothing(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any]
) -> None:
    notice = _admin_cancel(sandbox, paid["tno"], notify=False)
    form = notice["form"] | {"site_cd": "T9999"}

    status, text = _post_from("127.0.0.1", stack.env["KCP_NOTIFY_URL"], form)

    assert status == 403 and 'value="0000"' not in text  # KCP will send it again
    detail = shop.payment(paid["tno"])
    assert detail["balance"] == 15000 and detail["cancellations"] == []


def test_a_deposit_makes_a_virtual_account_payment_paid(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox
) -> None:
    payment = sandbox.approve(20000, method="VIRTUAL_ACCOUNT", deposited=False)
    assert shop.register(payment).status == 201
    waiting = shop.payment(payment["tno"])
    assert (waiting["status"], waiting["balance"], waiting["cancelled_amount"]) == (
        "AWAITING_DEPOSIT",
        0,
        0,
    )
    early = shop.cancel(payment["tno"], _refund_to_account())
    assert early.status == 422 and early.code == "NOT_DEPOSITED"

    answer = http("POST", f"{sandbox.url}/_sandbox/payments/{payment['tno']}/deposit", {})
    assert answer.status == 202, answer.body
    notice = _answered(sandbox, answer.body)

    assert notice["answered"], notice["deliveries"]
    paid = shop.payment(payment["tno"])
    assert (paid["status"], paid["balance"], paid["available"]) == ("PAID", 20000, 20000)
    assert _event(stack, "demo-shop", "payment.deposited", notice) is not None


def test_a_cancel_after_an_admin_cancel_is_refused_with_the_new_reason(
    shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any]
) -> None:
    _answered(sandbox, _admin_cancel(sandbox, paid["tno"]))

    answer = shop.cancel(paid["tno"])

    assert answer.status == 422 and answer.code == "CANCELLED_EXTERNALLY"
    assert [r["code"] for r in answer.body["reasons"]] == ["CANCELLED_EXTERNALLY"]


def test_a_cancel_kcp_refuses_as_already_cancelled_ends_rejected_with_the_new_reason(
    shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any]
) -> None:
    notice = _admin_cancel(sandbox, paid["tno"], notify=False)  # KCP's notice not here yet

    accepted = shop.cancel(paid["tno"])
    assert accepted.status == 202, accepted.body
    outcome = shop.outcome(accepted.body["cancellation_id"])

    assert outcome["status"] == "REJECTED", outcome
    assert [r["code"] for r in outcome["reasons"]] == ["CANCELLED_EXTERNALLY"]
    assert outcome["refunded_amount"] == 0
    # The notification arrives later and corrects the balance.
    http("POST", f"{sandbox.url}/_sandbox/notifications/{notice['id']}/send")
    assert _answered(sandbox, notice)["answered"]
    detail = shop.payment(paid["tno"])
    assert (detail["status"], detail["balance"], detail["available"]) == ("CANCELLED", 0, 0)


def _refund_to_account() -> dict[str, Any]:
    account = {"bank_code": "BK04", "number": "110123456789", "holder": "김하늘"}
    return {"reason_code": "CHANGE_OF_MIND", "refund_account": account}


def _success_page() -> str:
    return '<html><body><form><input type="hidden" name="result" value="0000"></form></body></html>'


@pytest.fixture(autouse=True)
def _no_faults(sandbox: Sandbox) -> None:
    http("DELETE", f"{sandbox.url}/_sandbox/faults")


def test_a_notification_cancelflow_does_not_act_on_is_kept_answered_and_changes_nothing(
    stack: LocalStack, shop: ShopClient, paid: dict[str, Any]
) -> None:
    form = {"site_cd": "T0000", "tno": paid["tno"], "order_no": paid["order_id"]}
    form |= {"tx_cd": "TX03", "tx_tm": "20261203120000", "waybill_no": "6012345678901"}

    assert _post_from("127.0.0.1", stack.env["KCP_NOTIFY_URL"], form) == (200, _success_page())

    detail = shop.payment(paid["tno"])
    assert (detail["status"], detail["balance"], detail["cancellations"]) == ("PAID", 15000, [])
    kept = stack.client("dynamodb").get_item(
        TableName=stack.env["TABLE_NAME"],
        Key={
            "PK": {"S": f"SHOP#demo-shop#KCPNOTI#{parse(urllib.parse.urlencode(form)).notice_id}"},
            "SK": {"S": "KCP_NOTIFICATION"},
        },
    )["Item"]
    assert (kept["tx_cd"]["S"], kept["verdict"]["S"]) == ("TX03", "KEPT")
    assert kept["form"]["M"]["waybill_no"]["S"] == "6012345678901"
