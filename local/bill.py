"""`make bill [DATE=YYYY-MM-DD]`: run subscription billing on the `make run` stack, as the daily
schedule does (EventBridge Scheduler is not emulated locally), with a progress bar and the summary.

Progress: the due count comes from the execution history (each FindDue page's items), the work
done from the KCP sandbox's charge calls since the run started (declines count: they are calls).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3

from local.template import REGION, ROOT


def stack_env(path: Path = ROOT / ".local" / "stack.env") -> dict[str, str]:
    if not path.exists():
        sys.exit("no .local/stack.env: start the local stack first (make run)")
    env = {}
    for line in path.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name:
            env[name] = value
    return env


def charge_calls(sandbox_url: str) -> int:
    with urllib.request.urlopen(f"{sandbox_url}/_sandbox/calls?path=charge", timeout=5) as r:  # noqa: S310 (local)
        return len(json.loads(r.read()))


def due_so_far(sfn: Any, execution_arn: str) -> tuple[int, bool]:
    """Items found by the FindDue pages so far, and whether the last page said no more."""
    due, more = 0, True
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        for event in page["events"]:
            details = event.get("lambdaFunctionSucceededEventDetails") or event.get(
                "taskSucceededEventDetails", {}
            )
            output = details.get("output")
            if output and '"lanes"' in output:
                doc = json.loads(output)
                if isinstance(doc, dict) and "due" in doc:  # a FindDue page
                    due += int(doc["due"])
                    more = bool(doc.get("more"))
        if not page.get("nextToken"):
            return due, not more
        kwargs["nextToken"] = page["nextToken"]


def why(status: dict[str, Any]) -> str:
    """A failed run's reason as a person reads it: the error's message, not its stack trace."""
    cause = status.get("cause", "")
    try:
        message = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        message = cause
    return f"{status.get('error', '')}: {message}"


def bar(done: int, total: int, width: int = 30) -> str:
    share = min(1.0, done / total) if total else 0.0
    filled = int(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total or '?'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--date", help="billing date YYYY-MM-DD (default: today in KST)")
    parser.add_argument("--max-concurrency", type=int, help="lanes: override BillingMaxConcurrency")
    parser.add_argument(
        "--tps", type=float, help="a lower KCP rate than BillingKcpTps (never higher)"
    )
    args = parser.parse_args()
    env = stack_env()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, env.get(name, "local"))
    sfn = boto3.client("stepfunctions", region_name=REGION, endpoint_url=env["AWS_ENDPOINT_URL"])
    machines = sfn.list_state_machines()["stateMachines"]
    arn = next(
        m["stateMachineArn"] for m in machines if m["name"].endswith("-subscription-billing")
    )
    run: dict[str, Any] = {"billing_date": args.date} if args.date else {}
    config = {k: v for k, v in (("max_concurrency", args.max_concurrency), ("tps", args.tps)) if v}
    if config:
        run["config"] = config
    before = charge_calls(env["SANDBOX_URL"])
    name = f"bill-{args.date or 'today'}-{uuid.uuid4().hex[:8]}"
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(run))
    execution_arn = execution["executionArn"]
    print(f"billing run {name}")
    while True:
        status = sfn.describe_execution(executionArn=execution_arn)
        due, complete = due_so_far(sfn, execution_arn)
        done = charge_calls(env["SANDBOX_URL"]) - before
        if status["status"] != "RUNNING":
            break
        label = "" if complete else " (finding more due)"
        print(f"\r  charging {bar(done, due)}{label}   ", end="", flush=True)
        time.sleep(0.3)
    progress = f"{bar(due, due)}, KCP calls: {done}" if due else "nothing due"
    print(f"\r  charging {progress}                    ")
    if status["status"] != "SUCCEEDED":
        sys.exit(f"run {status['status']}: {why(status)}\nexecution: {execution_arn}")
    summary = json.loads(status["output"])
    if "another_run" in summary:
        print(
            f"\nanother run is charging now; this one charged nothing: {summary.pop('another_run')}"
        )
    print(f"\nbilling date {summary.pop('billing_date')}")
    for key, value in summary.items():
        print(f"  {key:<10} {value}")
    print(f"\nexecution: {execution_arn}")
    print(f"mail:      {env.get('MAIL_DIR', '.local/mail')}/")


if __name__ == "__main__":
    main()
