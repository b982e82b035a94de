"""An operator redrives a crashed execution on the local stack, as in AWS (issue 13): the same
execution goes on from the step that failed, with that step's input, and nothing done before
the crash is done again."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.stack import LocalStack
from local.trace import Trace

from .billing_support import (
    batch_key,
    charge_calls,
    charges_at_kcp,
    mails_for,
    start_billing,
    subscribe,
)
from .conftest import TERMINAL, Sandbox, ShopClient, mails_about


def history(stack: LocalStack, execution_arn: str) -> list[dict[str, Any]]:
    sfn = stack.client("stepfunctions")
    events: list[dict[str, Any]] = sfn.get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return events


def entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("Entered")]


def test_a_cancel_whose_settle_crashed_is_redriven_to_success_with_kcp_called_once(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict, monkeypatch
) -> None:
    from cancelflow.adapters.dynamodb.store import DynamoStore

    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in Settle")

    monkeypatch.setattr(DynamoStore, "settle", crash)  # the handlers run in this process
    accepted = shop.cancel(paid["tno"]).body
    sfn = stack.client("stepfunctions")
    failed = stack.wait_for_execution(accepted["execution_id"], timeout=60)
    assert failed["status"] == "FAILED"
    assert (failed["redriveStatus"], failed["redriveCount"]) == ("REDRIVABLE", 0)
    assert shop.cancellation(accepted["cancellation_id"]).body["status"] not in TERMINAL
    assert len(sandbox.calls(paid["tno"])) == 1  # sent before Settle crashed
    input_of_settle = next(
        e["stateEnteredEventDetails"]["input"]
        for e in history(stack, accepted["execution_id"])
        if e.get("stateEnteredEventDetails", {}).get("name") == "Settle"
    )

    monkeypatch.undo()  # the fix is deployed
    redriven = sfn.redrive_execution(executionArn=accepted["execution_id"])
    done = stack.wait_for_execution(accepted["execution_id"], timeout=60)

    assert "redriveDate" in redriven
    assert done["status"] == "SUCCEEDED"
    assert done["name"] == accepted["cancellation_id"]
    assert (done["redriveCount"], done["redriveStatus"]) == (1, "NOT_REDRIVABLE")
    assert done["redriveDate"] == redriven["redriveDate"]
    machine = done["stateMachineArn"]
    listed = sfn.list_executions(stateMachineArn=machine, redriveFilter="REDRIVEN")["executions"]
    assert (accepted["execution_id"], 1) in [(e["executionArn"], e["redriveCount"]) for e in listed]
    others = sfn.list_executions(stateMachineArn=machine, redriveFilter="NOT_REDRIVEN")
    assert accepted["execution_id"] not in [e["executionArn"] for e in others["executions"]]
    outcome = shop.outcome(accepted["cancellation_id"])
    assert (outcome["status"], outcome["refunded_amount"]) == ("SUCCEEDED", 15000)
    assert len(sandbox.calls(paid["tno"])) == 1
    assert [c["amount"] for c in sandbox.state(paid["tno"])["cancels"]] == [15000]
    assert len(mails_about(stack, outcome)) == 2
    events = history(stack, accepted["execution_id"])
    kinds = [e["type"] for e in events]
    assert kinds.index("ExecutionFailed") < kinds.index("ExecutionRedriven")
    assert kinds[-1] == "ExecutionSucceeded"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    redriven_at = kinds.index("ExecutionRedriven")
    assert events[redriven_at]["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert entered(events[redriven_at:]) == ["Settle", "Notify"]
    assert events[redriven_at + 1]["stateEnteredEventDetails"]["input"] == input_of_settle
    assert entered(events[:redriven_at]) == ["Decide", "SendCancel", "Settle"]
    story = "\n".join(Trace(stack.env).lines(accepted["cancellation_id"]))
    assert "Settle → ⟲ redrive → Settle → Notify" in story
    assert "✗ LambdaFunctionFailed: RuntimeError: a bug in Settle" in story


def test_a_succeeded_or_running_execution_is_not_redrivable(
    stack: LocalStack, shop: ShopClient, paid: dict
) -> None:
    accepted = shop.cancel(paid["tno"]).body
    done = stack.wait_for_execution(accepted["execution_id"])
    assert done["status"] == "SUCCEEDED"
    assert done["redriveStatus"] == "NOT_REDRIVABLE"
    assert done["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven."

    with pytest.raises(ClientError) as refused:
        stack.client("stepfunctions").redrive_execution(executionArn=accepted["execution_id"])

    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert stack.wait_for_execution(accepted["execution_id"])["redriveCount"] == 0


def test_a_billing_run_whose_tally_crashed_is_redriven_without_charging_again(
    stack: LocalStack, shop: ShopClient, monkeypatch
) -> None:
    from cancelflow.subscriptions import billing as run

    url = stack.env["SANDBOX_URL"]
    sub = subscribe(shop, batch_key(url), "2041-05-20").body

    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in Tally")

    monkeypatch.setattr(run, "tally", crash)
    execution_arn = start_billing(stack, "2041-05-20")
    failed = stack.wait_for_execution(execution_arn, timeout=60)
    assert failed["status"] == "FAILED"
    assert len(charges_at_kcp(url, sub["subscription_id"])) == 1  # charged before Tally crashed

    monkeypatch.undo()
    stack.client("stepfunctions").redrive_execution(executionArn=execution_arn)
    done = stack.wait_for_execution(execution_arn, timeout=60)

    assert done["status"] == "SUCCEEDED", done
    summary = json.loads(done["output"])
    assert (summary["charged"], summary["declined"], summary["unknown"]) == (1, 0, 0)
    assert len(charge_calls(url, sub["subscription_id"])) == 1
    assert len(charges_at_kcp(url, sub["subscription_id"])) == 1
    # One receipt, and the shop's one copy of it: nothing mailed again.
    assert len(mails_for(stack, sub["subscription_id"])) == 2
    events = history(stack, execution_arn)
    redriven_at = [e["type"] for e in events].index("ExecutionRedriven")
    assert entered(events[redriven_at:]) == ["Tally", "MorePages?", "Done"]
    run_story = "\n".join(Trace(stack.env).lines(done["name"]))
    assert "Tally → ⟲ redrive → Tally → MorePages? → Done" in run_story
    assert "SUCCEEDED, 1 iteration(s): succeeded 1, failed 0" in run_story  # the lanes' map run
    assert f"{sub['subscription_id']}-2041-05-1" in run_story  # the charge's ordr_idxx at KCP
    assert sub["customer_email"] in run_story  # the receipt
    sub_story = "\n".join(Trace(stack.env).lines(sub["subscription_id"]))
    assert f"== execution {execution_arn}" in sub_story
    assert sub_story.count("answer 0000") == 1


def test_an_aborted_cancel_is_redriven_from_the_step_it_was_stopped_in_and_sent_once(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict
) -> None:
    sandbox.fault(paid["tno"], "latency_ms", value=1500)  # SendCancel is in flight a while
    accepted = shop.cancel(paid["tno"]).body
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + 30
    while not sandbox.calls(paid["tno"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    sfn.stop_execution(executionArn=accepted["execution_id"])
    aborted = stack.wait_for_execution(accepted["execution_id"])
    assert aborted["status"] == "ABORTED"

    sfn.redrive_execution(executionArn=accepted["execution_id"])
    done = stack.wait_for_execution(accepted["execution_id"], timeout=60)

    assert done["status"] == "SUCCEEDED", done
    assert shop.outcome(accepted["cancellation_id"])["status"] == "SUCCEEDED"
    assert len(sandbox.calls(paid["tno"])) == 1
    assert [c["amount"] for c in sandbox.state(paid["tno"])["cancels"]] == [15000]
    events = history(stack, accepted["execution_id"])
    kinds = [e["type"] for e in events]
    assert kinds.index("ExecutionAborted") < kinds.index("ExecutionRedriven")
    assert entered(events[kinds.index("ExecutionRedriven") :])[0] == "SendCancel"


def test_an_inline_map_is_redriven_for_its_unsuccessful_iterations_only(
    stack: LocalStack,
) -> None:
    assert stack.template
    table = stack.template.physical_name("Ledger")
    claim = {  # an iteration that ran twice would fail: its claim exists
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:putItem",
        "Parameters": {
            "TableName": table,
            "Item": {"PK": {"S.$": "$.pk"}, "SK": {"S": "CLAIM"}},
            "ConditionExpression": "attribute_not_exists(PK)",
        },
        "ResultPath": None,
        "End": True,
    }
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Claim",
                    "States": {"Claim": claim},
                },
                "End": True,
            }
        },
    }
    sfn, ddb = stack.client("stepfunctions"), stack.client("dynamodb")
    run = uuid.uuid4().hex[:8]
    machine = sfn.create_state_machine(
        name=f"redrive-inline-map-{run}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/test",
    )["stateMachineArn"]
    items = [{"pk": f"TEST#redrive-{run}#{n}"} for n in (1, 2, 3)]
    blocker = {"PK": {"S": items[1]["pk"]}, "SK": {"S": "CLAIM"}}
    ddb.put_item(TableName=table, Item=blocker)  # the second iteration fails
    arn = sfn.start_execution(
        stateMachineArn=machine, name=f"run-{run}", input=json.dumps({"items": items})
    )["executionArn"]
    assert stack.wait_for_execution(arn)["status"] == "FAILED"

    ddb.delete_item(TableName=table, Key=blocker)
    sfn.redrive_execution(executionArn=arn)
    done = stack.wait_for_execution(arn)

    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == items  # every iteration's output, in order
    events = history(stack, arn)
    redriven_at = [e["type"] for e in events].index("ExecutionRedriven")
    rerun = [
        e["mapIterationStartedEventDetails"]["index"]
        for e in events[redriven_at:]
        if e["type"] == "MapIterationStarted"
    ]
    assert rerun == [1, 2]
