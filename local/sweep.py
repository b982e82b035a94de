"""`make sweep`: run the sweep on the `make run` stack now, as its schedule does every
SweepEveryMinutes (EventBridge Scheduler is not emulated locally), and print what it found."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any

import boto3

from local.bill import stack_env, why
from local.template import REGION


def run_sweep(sfn: Any, timeout: float = 300) -> dict[str, Any]:
    """Start one sweep execution and wait for it; its last call's summary."""
    machines = sfn.list_state_machines()["stateMachines"]
    arn = next(m["stateMachineArn"] for m in machines if m["name"].endswith("-sweep"))
    started = sfn.start_execution(stateMachineArn=arn, name=f"sweep-{uuid.uuid4().hex[:12]}")
    deadline = time.monotonic() + timeout
    while True:
        status = sfn.describe_execution(executionArn=started["executionArn"])
        if status["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if status["status"] != "SUCCEEDED":
        raise RuntimeError(f"sweep {status['status']}: {why(status)}")
    summary: dict[str, Any] = json.loads(status["output"])
    return summary | {"execution_arn": started["executionArn"]}


def main() -> None:
    env = stack_env()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, env.get(name, "local"))
    sfn = boto3.client("stepfunctions", region_name=REGION, endpoint_url=env["AWS_ENDPOINT_URL"])
    try:
        summary = run_sweep(sfn)
    except RuntimeError as error:
        sys.exit(str(error))
    print("sweep: payments checked against KCP")
    for finding, count in sorted(summary["found"].items()):
        print(f"  {finding:<15} {count}")
    if not summary["found"]:
        print("  nothing open")
    print(f"\nexecution: {summary['execution_arn']}")


if __name__ == "__main__":
    main()
