"""Helpers for the billing scenarios: subscribe as a shop would, run billing as the schedule does,
and look in as an operator would (sandbox charges and calls, mail, execution history)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from local.stack import LocalStack

from .conftest import Answer, ShopClient, http


def batch_key(sandbox_url: str, decline: str | None = None, site_cd: str = "T0000") -> str:
    answer = http(
        "POST", f"{sandbox_url}/_sandbox/batch-keys", {"decline": decline, "site_cd": site_cd}
    )
    assert answer.status == 201, answer.body
    return str(answer.body["batch_key"])


def subscribe(shop: ShopClient, key: str, first: str, **fields: Any) -> Answer:
    body = {
        "customer_name": "김고객",
        "customer_email": f"cust-{uuid.uuid4().hex[:8]}@example.com",
        "batch_key": key,
        "amount": 9900,
        "product_name": "월간 원두 구독",
        "cycle": "MONTHLY",
        "first_charge_date": first,
    } | fields
    headers = shop.auth | {"Idempotency-Key": str(uuid.uuid4())}
    return http("POST", f"{shop.url}/v1/subscriptions", body, headers)


def call(shop: ShopClient, method: str, path: str, body: Any = None) -> Answer:
    return http(method, f"{shop.url}{path}", body, shop.auth)


def machine_arn(stack: LocalStack) -> str:
    assert stack.template
    return next(
        m["arn"]
        for m in stack.template.state_machines()
        if m["logical_id"] == "SubscriptionBillingStateMachine"
    )


def start_billing(stack: LocalStack, day: str, config: dict[str, Any] | None = None) -> str:
    """Start the billing state machine for a date, as the schedule does; its execution ARN."""
    run = {"billing_date": day, "config": config or {}}
    started = stack.client("stepfunctions").start_execution(
        stateMachineArn=machine_arn(stack),
        name=f"bill-{day}-{uuid.uuid4().hex[:8]}",
        input=json.dumps(run),
    )
    return str(started["executionArn"])


def finish_billing(stack: LocalStack, execution_arn: str) -> dict[str, Any]:
    """Wait for a billing run and return its summary (the execution's output)."""
    done = stack.wait_for_execution(execution_arn, timeout=120)
    assert done["status"] == "SUCCEEDED", done
    summary: dict[str, Any] = json.loads(done["output"])
    summary["execution_arn"] = execution_arn
    return summary


def bill(stack: LocalStack, day: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the billing state machine for a date and return its summary."""
    return finish_billing(stack, start_billing(stack, day, config))


def entered(stack: LocalStack, execution_arn: str, state: str, timeout: float = 30) -> None:
    """Wait until the execution has entered a state."""
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        names = {e.get("stateEnteredEventDetails", {}).get("name") for e in events}
        if state in names:
            return
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} never entered {state}")


def charges_at_kcp(sandbox_url: str, subscription_id: str) -> list[dict[str, Any]]:
    charges = http("GET", f"{sandbox_url}/_sandbox/charges").body
    return [c for c in charges if c["ordr_idxx"].startswith(subscription_id)]


def charge_calls(sandbox_url: str, subscription_id: str) -> list[dict[str, Any]]:
    calls = http("GET", f"{sandbox_url}/_sandbox/calls?path=charge").body
    return [c for c in calls if c["ordr_idxx"].startswith(subscription_id)]


def mails_for(stack: LocalStack, subscription_id: str) -> list[str]:
    return [m for m in stack.mail.messages() if subscription_id in m]


def recipient(mail: str) -> str:
    return mail.split("\n")[1].removeprefix("To: ")


def subject(mail: str) -> str:
    return mail.split("\n")[2].removeprefix("Subject: ")
