"""Review that resolves, through the real state machine: a cancel whose fate KCP never told
waits RUNNING at AwaitOperatorReview until an operator decides it (or the sweep proves it)."""

from __future__ import annotations

from typing import Any

from local.stack import LocalStack
from tests.integration.conftest import (
    Operator,
    Sandbox,
    ShopClient,
    http,
    mails_about,
    waiting_for_review,
)


def _open_case(shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any]) -> dict[str, Any]:
    """KCP answers the cancel with a 500 and its balance never moves: the workflow cannot know."""
    sandbox.fault(paid["tno"], "http_500")
    return shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])


def test_a_cancel_kcp_never_answered_waits_running_at_the_review_state(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict
) -> None:
    case = _open_case(shop, sandbox, paid)

    assert (case["status"], case["settled"]) == ("NEEDS_REVIEW", False)
    assert case["review"]["state"] == "UNDER_REVIEW"
    entered = waiting_for_review(stack, case["execution_id"])
    assert entered[-1] == "AwaitOperatorReview"
    execution = stack.client("stepfunctions").describe_execution(executionArn=case["execution_id"])
    assert execution["status"] == "RUNNING"
    assert all("확인 중" in m for m in mails_about(stack, case))  # "we are checking"
    assert shop.payment(paid["tno"])["available"] == 0  # the hold is kept


def _kcp_applied_unseen(shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any]) -> dict:
    """KCP applies the cancel but its answer is lost and the workflow's inquiries all fail."""
    sandbox.fault(paid["tno"], "commit_then_timeout", hold_seconds=5)
    sandbox.fault(paid["tno"], "http_500", path="inquiry", times=4)
    return shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])


def test_an_applied_decision_ends_the_same_execution_succeeded_and_emails_the_customer(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, operator: Operator, paid: dict
) -> None:
    case = _kcp_applied_unseen(shop, sandbox, paid)
    assert case["status"] == "NEEDS_REVIEW"
    cid = case["cancellation_id"]
    waiting_for_review(stack, case["execution_id"])

    seen = operator.call("GET", f"/v1/reviews/{cid}")
    assert seen.status == 200, seen.body
    assert seen.body["evidence"]["kcp"]["remaining_balance"] == 0  # a fresh inquiry
    assert seen.body["evidence"]["ours"]["balance"] == 15000
    assert seen.body["evidence"]["kcp_says"] == "APPLIED"
    assert seen.body["attempts"][0]["kind"] == "CANCEL"

    note = "KCP merchant admin shows the cancel at 14:02"
    decided = operator.call(
        "POST", f"/v1/reviews/{cid}/decision", {"decision": "APPLIED", "note": note}
    )
    assert decided.status == 202, decided.body
    assert decided.body["workflow"] == "RESUMED"

    execution = stack.wait_for_execution(case["execution_id"])
    assert execution["status"] == "SUCCEEDED"
    done = shop.cancellation(cid).body
    assert (done["status"], done["settled"], done["refunded_amount"]) == ("SUCCEEDED", True, 15000)
    assert done["confirmed_by"] == "OPERATOR"
    assert done["review"]["state"] == "CLOSED"
    assert [(d["outcome"], d["note"]) for d in done["review"]["decisions"]] == [("APPLIED", note)]
    internal = operator.call("GET", f"/v1/cancellations/{cid}").body
    assert internal["review"]["decisions"][0]["by"].endswith(":user/local-operator")
    assert internal["review"]["decisions"][0]["evidence"]["kcp_says"] == "APPLIED"
    payment = shop.payment(paid["tno"])
    assert (payment["status"], payment["balance"], payment["available"]) == ("CANCELLED", 0, 0)
    assert any("취소가 완료" in m for m in mails_about(stack, done))
    assert len(sandbox.calls(paid["tno"])) == 1  # decided, never resent


def test_a_not_applied_decision_releases_the_hold(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, operator: Operator, paid: dict
) -> None:
    case = _open_case(shop, sandbox, paid)
    cid = case["cancellation_id"]
    waiting_for_review(stack, case["execution_id"])
    decided = operator.call(
        "POST",
        f"/v1/reviews/{cid}/decision",
        {"outcome": "NOT_APPLIED", "note": "No cancel in KCP's admin; KCP support confirmed"},
    )
    assert decided.status == 202, decided.body

    assert stack.wait_for_execution(case["execution_id"])["status"] == "SUCCEEDED"
    done = shop.cancellation(cid).body
    assert (done["status"], [r["code"] for r in done["reasons"]]) == ("FAILED", ["NOT_APPLIED"])
    payment = shop.payment(paid["tno"])
    assert (payment["status"], payment["available"]) == ("PAID", 15000)
    assert shop.cancel(paid["tno"], {"reason_code": "CHANGE_OF_MIND"}).status == 202  # asked again


def test_a_decision_without_a_note_is_refused(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, operator: Operator, paid: dict
) -> None:
    case = _open_case(shop, sandbox, paid)
    cid = case["cancellation_id"]
    for body in (
        {"outcome": "APPLIED"},
        {"outcome": "APPLIED", "note": "   "},
        {"outcome": "MAYBE", "note": "x"},
    ):
        refused = operator.call("POST", f"/v1/reviews/{cid}/decision", body)
        assert (refused.status, refused.code) == (400, "VALIDATION_FAILED"), body
    assert shop.cancellation(cid).body["review"]["decisions"] == []


def test_unsigned_wrongly_signed_and_shop_key_requests_are_403(
    shop: ShopClient, operator: Operator
) -> None:
    unsigned = operator.call("GET", "/v1/reviews", sign=False)
    wrong = operator.call("GET", "/v1/reviews", secret="not-the-secret")
    shop_key = http("GET", f"{operator.url}/v1/reviews", headers=shop.auth)
    for answer in (unsigned, wrong, shop_key):
        assert (answer.status, answer.code) == (403, "FORBIDDEN")
        assert answer.headers["Content-Type"] == "application/problem+json"
    # and operator credentials are no shop key
    signed_on_shop_api = Operator(shop.url, operator.key, operator.secret).call(
        "GET", "/v1/payments"
    )
    assert signed_on_shop_api.status == 401


def test_the_queue_lists_open_reviews_across_shops_oldest_first_with_filters(
    stack: LocalStack,
    shop: ShopClient,
    shop_b: ShopClient,
    sandbox: Sandbox,
    operator: Operator,
) -> None:
    first = sandbox.approve(amount=15000)
    assert shop.register(first).status == 201
    second = sandbox.approve(amount=40000, site_cd="T0001")  # shop-b's KCP merchant
    assert shop_b.register(second).status == 201
    a = _open_case(shop, sandbox, first)
    sandbox.fault(second["tno"], "http_500")
    b = shop_b.outcome(shop_b.cancel(second["tno"]).body["cancellation_id"])
    assert b["status"] == "NEEDS_REVIEW"
    waiting_for_review(stack, b["execution_id"])

    listed = operator.call("GET", "/v1/reviews?limit=100").body["items"]
    ids = [r["cancellation_id"] for r in listed]
    assert ids.index(a["cancellation_id"]) < ids.index(b["cancellation_id"])  # oldest first
    only_b = operator.call("GET", "/v1/reviews?shop=shop-b&limit=100").body["items"]
    assert b["cancellation_id"] in [r["cancellation_id"] for r in only_b]
    assert all(r["shop_id"] == "shop-b" for r in only_b)
    large = operator.call("GET", "/v1/reviews?min_amount=20000&limit=100").body["items"]
    assert a["cancellation_id"] not in [r["cancellation_id"] for r in large]
    old = operator.call("GET", "/v1/reviews?min_age_minutes=60").body["items"]
    assert b["cancellation_id"] not in [r["cancellation_id"] for r in old]

    page = operator.call("GET", "/v1/reviews?limit=1").body
    assert len(page["items"]) == 1 and page["next_cursor"]
    following = operator.call("GET", f"/v1/reviews?limit=1&cursor={page['next_cursor']}").body
    assert following["items"][0]["cancellation_id"] != page["items"][0]["cancellation_id"]

    other_shop = operator.call("GET", f"/v1/cancellations/{b['cancellation_id']}")
    assert (other_shop.status, other_shop.body["shop_id"]) == (200, "shop-b")
    assert operator.call("GET", "/v1/cancellations/cnl_nosuch").code == "CANCELLATION_NOT_FOUND"


def test_a_decision_after_the_wait_ended_redrives_the_execution_to_its_end(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, operator: Operator, paid: dict
) -> None:
    case = _open_case(shop, sandbox, paid)
    cid = case["cancellation_id"]
    waiting_for_review(stack, case["execution_id"])
    # The wait ends without a decision (stopped here; a timeout ends it the same way): the
    # case stays open, held and listed.
    sfn = stack.client("stepfunctions")
    sfn.stop_execution(executionArn=case["execution_id"])
    assert stack.wait_for_execution(case["execution_id"])["status"] == "ABORTED"
    assert shop.cancellation(cid).body["status"] == "NEEDS_REVIEW"
    listed = operator.call("GET", "/v1/reviews?limit=100").body["items"]
    assert cid in [r["cancellation_id"] for r in listed]

    decided = operator.call(
        "POST", f"/v1/reviews/{cid}/decision", {"outcome": "NOT_APPLIED", "note": "KCP: no cancel"}
    )
    assert (decided.status, decided.body["workflow"]) == (202, "REDRIVEN")

    done = stack.wait_for_execution(case["execution_id"], timeout=60)
    assert (done["status"], done["redriveCount"]) == ("SUCCEEDED", 1)
    assert shop.cancellation(cid).body["status"] == "FAILED"
    assert shop.payment(paid["tno"])["available"] == 15000
