"""A shop cancels a payment through the API; the real state machine runs it to the end."""

from __future__ import annotations

from local.stack import LocalStack

from .conftest import Sandbox, ShopClient, mails_about


def test_full_cancel_succeeds_at_kcp_and_emails_customer_and_shop(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict
) -> None:
    accepted = shop.cancel(paid["tno"])
    assert accepted.status == 202
    assert accepted.headers["Location"] == f"/v1/cancellations/{accepted.body['cancellation_id']}"
    assert accepted.body["status"] == "REQUESTED"

    outcome = shop.outcome(accepted.body["cancellation_id"])

    assert outcome["status"] == "SUCCEEDED"
    assert outcome["refunded_amount"] == 15000
    assert outcome["gateway"]["res_cd"] == "0000"
    assert [a["kind"] for a in outcome["attempts"]] == ["CANCEL"]
    at_kcp = sandbox.state(paid["tno"])
    assert at_kcp["status"] == "CANCELLED"
    assert [c["amount"] for c in at_kcp["cancels"]] == [15000]
    mails = mails_about(stack, outcome)
    recipients = sorted(m.split("\n")[1] for m in mails)
    assert recipients == ["To: kim@example.com", "To: shop@demo-shop.example"]
    customer, to_shop = sorted(mails, key=lambda m: "To: shop@" in m)
    assert "Subject: [데모상점] 결제 취소가 완료되었습니다" in customer
    assert "처리 결과: 취소 완료" in customer and "SUCCEEDED" not in customer
    # The shop's copy has a subject of its own, naming the order and the outcome.
    assert f"고객 결제 취소 결과: 취소 완료 (주문 {paid['order_id']})" in to_shop
    assert all("취소 금액: 15,000원" in m for m in mails)


def test_the_execution_is_named_by_the_cancellation_and_readable_by_an_operator(
    stack: LocalStack, shop: ShopClient, paid: dict
) -> None:
    accepted = shop.cancel(paid["tno"]).body
    outcome = shop.outcome(accepted["cancellation_id"])

    sfn = stack.client("stepfunctions")
    execution = stack.wait_for_execution(outcome["execution_id"])  # Notify runs after Settle
    assert execution["name"] == accepted["cancellation_id"]
    assert execution["status"] == "SUCCEEDED"
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in sfn.get_execution_history(executionArn=outcome["execution_id"])["events"]
        if e["type"].endswith("StateEntered")
    ]
    # Four transitions: a Choice state would cost one more on every cancel (issue 16).
    assert entered == ["Decide", "SendCancel", "Settle", "Notify"]


def test_a_repeated_idempotency_key_returns_the_same_cancellation_and_kcp_is_called_once(
    shop: ShopClient, sandbox: Sandbox, paid: dict
) -> None:
    first = shop.cancel(paid["tno"], key="order-77-cancel")
    second = shop.cancel(paid["tno"], key="order-77-cancel")
    assert first.status == second.status == 202
    assert second.body["cancellation_id"] == first.body["cancellation_id"]

    shop.outcome(first.body["cancellation_id"])
    third = shop.cancel(paid["tno"], key="order-77-cancel")

    assert third.status == 202
    assert third.body["cancellation_id"] == first.body["cancellation_id"]
    assert third.body["status"] == "SUCCEEDED"
    assert len(sandbox.calls(paid["tno"])) == 1
    assert len(sandbox.state(paid["tno"])["cancels"]) == 1


def test_the_same_key_with_another_request_is_refused(shop: ShopClient, paid: dict) -> None:
    shop.cancel(paid["tno"], key="reused-key")
    other = shop.cancel(paid["tno"], {"reason_code": "DEFECTIVE"}, key="reused-key")
    assert other.status == 422
    assert other.code == "IDEMPOTENCY_KEY_REUSED"


def test_cancelling_a_fully_cancelled_payment_is_refused_at_once(
    shop: ShopClient, sandbox: Sandbox, paid: dict
) -> None:
    shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])
    again = shop.cancel(paid["tno"])
    assert again.status == 422
    assert again.code == "ALREADY_CANCELLED"
    assert again.headers["Content-Type"] == "application/problem+json"
    assert len(sandbox.calls(paid["tno"])) == 1


def test_registering_the_same_payment_twice_is_idempotent_but_other_facts_conflict(
    shop: ShopClient, sandbox: Sandbox
) -> None:
    payment = sandbox.approve(amount=9900)
    assert shop.register(payment).status == 201
    again = shop.register(payment)
    assert again.status == 200
    assert again.body["amount"] == 9900
    conflict = shop.register(payment | {"amount": 1000})
    assert conflict.status == 409
    assert conflict.code == "PAYMENT_CONFLICT"


def test_a_step_that_crashes_fails_the_execution_and_leaves_the_cancel_open_and_unannounced(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict, monkeypatch
) -> None:
    from cancelflow.adapters.dynamodb.store import DynamoStore

    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in Decide")

    monkeypatch.setattr(DynamoStore, "reserve", crash)  # the handlers run in this process
    accepted = shop.cancel(paid["tno"]).body

    execution = stack.wait_for_execution(accepted["execution_id"])

    # Not a success with FAILED inside: the execution fails, so the alarm fires and a redrive
    # resumes at Decide; the cancel stays as it was (nothing sent), and nobody is told otherwise.
    assert execution["status"] == "FAILED"
    assert shop.cancellation(accepted["cancellation_id"]).body["status"] == "REQUESTED"
    assert sandbox.calls(paid["tno"]) == []
    assert [m for m in stack.mail.messages() if accepted["cancellation_id"] in m] == []
