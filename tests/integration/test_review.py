"""Review that resolves, through the real state machine: a cancel whose fate KCP never told
waits RUNNING at AwaitOperatorReview until an operator decides it (or the sweep proves it)."""

from __future__ import annotations

from typing import Any

from local.stack import LocalStack
from tests.integration.conftest import Sandbox, ShopClient, mails_about, waiting_for_review


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
