"""The sweep keeps records true to KCP: a cancel KCP applied late is corrected, never lost."""

from __future__ import annotations

import time

from local.stack import LocalStack
from local.sweep import run_sweep

from .conftest import Sandbox, ShopClient, mails_about


def _kcp_balance_becomes(sandbox: Sandbox, tno: str, balance: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while sandbox.state(tno)["balance"] != balance:
        assert time.monotonic() < deadline, sandbox.state(tno)
        time.sleep(0.1)


def test_a_cancel_kcp_applied_unseen_by_the_workflow_is_corrected_by_the_sweep(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict
) -> None:
    # KCP applies the cancel but its answer is lost, and the workflow's four inquiries fail:
    # the workflow cannot know (the same ending as a KCP that applies it only later).
    sandbox.fault(paid["tno"], "commit_then_timeout", hold_seconds=5)
    sandbox.fault(paid["tno"], "http_500", path="inquiry", times=4)
    open_case = shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])
    assert open_case["status"] == "NEEDS_REVIEW"
    assert open_case["settled"] is False
    assert [r["code"] for r in open_case["reasons"]] == ["INQUIRY_FAILED"]
    first_mails = mails_about(stack, open_case)
    assert all("확인 중" in m for m in first_mails)  # "we are checking", not "not refunded"

    _kcp_balance_becomes(sandbox, paid["tno"], 0)
    found = run_sweep(stack.client("stepfunctions"))["found"]

    corrected = shop.cancellation(open_case["cancellation_id"]).body
    assert found.get("CORRECTED", 0) >= 1
    assert corrected["status"] == "SUCCEEDED"
    assert corrected["settled"] is True
    assert corrected["refunded_amount"] == 15000
    assert (corrected["confirmed_by"], corrected["corrected_from"]) == ("SWEEP", "NEEDS_REVIEW")
    assert corrected["attempts"][-1]["kind"] == "SWEEP"
    payment = shop.payment(paid["tno"])
    assert (payment["status"], payment["balance"], payment["available"]) == ("CANCELLED", 0, 0)
    assert len(sandbox.calls(paid["tno"])) == 1  # asked, never resent
    mails = [m for m in stack.mail.messages() if open_case["cancellation_id"] in m]
    corrections = [m for m in mails if "정정" in m]
    assert len(corrections) == 2 and all("15,000원" in m for m in corrections)

    # A second sweep finds the records true and changes nothing.
    run_sweep(stack.client("stepfunctions"))
    assert shop.cancellation(open_case["cancellation_id"]).body == corrected
    assert shop.payment(paid["tno"]) == payment


def test_a_cancel_kcp_has_not_applied_stays_open_through_the_sweep(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict
) -> None:
    sandbox.fault(paid["tno"], "http_500")
    open_case = shop.outcome(shop.cancel(paid["tno"]).body["cancellation_id"])
    assert open_case["status"] == "NEEDS_REVIEW"

    run_sweep(stack.client("stepfunctions"))

    still = shop.cancellation(open_case["cancellation_id"]).body
    assert (still["status"], still["settled"], still["refunded_amount"]) == (
        "NEEDS_REVIEW",
        False,
        0,
    )
    assert shop.payment(paid["tno"])["available"] == 0
    assert sandbox.state(paid["tno"])["balance"] == 15000
