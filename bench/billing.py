"""Subscription billing figures (issue 6), through the real state machine on the local stack:

- DynamoDB reads as the server answered them (requests, items, read units estimated from the
  answers' sizes): they must follow the number due, not the number of subscriptions;
- KCP charge calls per second as the sandbox (a process of its own) received them, over the
  budget (goal >= 0.9, never above 1.0), and the most calls it received in any one second;
- each billing function's peak memory (its worker process's max RSS, Lambda's "Max Memory
  Used"), and the largest state the execution carried (Step Functions' limit is 256 KB).

Scenarios:  A  N due of N subscriptions   B  N due of 10N   C  10N due (memory as due grows)
Full size (--scale 1) is N = 10,000: B is 10,000 due of 100,000 and C 100,000 due; that takes
about an hour at --tps 50. The default scale keeps `make bench` to a few minutes.

Run: PYTHONPATH=layers/cancelflow:. .venv/bin/python bench/billing.py [--scale 0.02] [--tps 20]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cancelflow.adapters.dynamodb.subscriptions import subscription_item
from cancelflow.adapters.dynamodb.table import marshal as _marshal
from cancelflow.adapters.secrets import SecretsVault
from cancelflow.subscriptions.model import Status, Subscription
from cancelflow.subscriptions.pacing import busiest_second
from cancelflow.subscriptions.schedule import Cycle
from local.stack import LocalStack

READ_ACTIONS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")
DUE_INDEX = "SubscriptionsDue"


class ServerReads:
    """DynamoDB reads as moto answered them, whichever process asked (the functions run in
    worker processes): requests, items returned, and read units estimated from the size of
    each answer (4 KB blocks; half for an eventually consistent read; JSON overstates size)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests = dict.fromkeys(READ_ACTIONS, 0)
            self.items = 0
            self.units = 0.0
            self.due_queries = 0

    def install(self) -> None:
        from moto.dynamodb.responses import DynamoHandler

        original = DynamoHandler.call_action

        def counted(handler: Any) -> Any:
            answer = original(handler)
            action = handler.get_endpoint_name(handler.headers)
            if action in READ_ACTIONS:
                self._count(action, handler.body or {}, answer[2])
            return answer

        DynamoHandler.call_action = counted  # type: ignore[method-assign]

    def _count(self, action: str, request: dict[str, Any], body: Any) -> None:
        size = len(body) if isinstance(body, str | bytes) else 0
        try:
            doc = json.loads(body)
        except (TypeError, ValueError):
            doc = {}
        items = doc.get("Count", 1 if "Item" in doc else 0)
        consistent = bool(request.get("ConsistentRead"))
        with self.lock:
            self.requests[action] += 1
            self.items += int(items)
            self.units += max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)
            if request.get("IndexName") == DUE_INDEX:
                self.due_queries += 1

    def total(self) -> int:
        return sum(self.requests.values())


def seed(stack: LocalStack, day: date, due: int, other: int, batch_key: str, tag: str) -> None:
    """Write subscriptions straight into the table: `due` due on day, `other` on later days."""
    ddb = stack.client("dynamodb")
    table = stack.env["TABLE_NAME"]
    vault = SecretsVault(stack.client("secretsmanager"), "cancelflow/billing/")
    now = datetime.now(UTC).replace(microsecond=0)
    batch: list[dict[str, Any]] = []
    for n in range(due + other):
        sid = f"sub_{tag}{n:019d}"
        when = day if n < due else day + timedelta(days=1 + n % 25)
        sub = Subscription(
            shop_id="demo-shop",
            subscription_id=sid,
            status=Status.ACTIVE,
            customer_name="벤치",
            customer_email=f"bench{n}@example.com",
            product_name="벤치 구독",
            amount=1000,
            cycle=Cycle.MONTHLY,
            anchor_day=when.day,
            # Others are never charged in this run: no need to seal each one.
            batch_key_ref=vault.seal("demo-shop", sid, batch_key) if n < due else "v1:k1:unused",
            batch_key_last4=batch_key[-4:],
            period_date=when,
            due_on=when,
            created_at=now,
            updated_at=now,
        )
        batch.append({"PutRequest": {"Item": _marshal(subscription_item(sub))}})
        if len(batch) == 25 or n == due + other - 1:
            pending: dict[str, Any] = {table: batch}
            while pending:
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            batch = []


def idle_lane(day: date) -> dict[str, Any]:
    """A lane with nothing to charge: a warm-up invocation of the charge function."""
    config = {"tps": 1, "retry_days": [1], "reconcile_max_tries": 1}
    return {"billing_date": day.isoformat(), "config": config, "lane": 0, "lanes": 1, "items": []}


def charge_calls(stack: LocalStack) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = stack.sandbox.admin("GET", "/_sandbox/calls?path=charge")
    return calls


def charge_times(stack: LocalStack, since: int) -> list[float]:
    """When the sandbox received each charge call since the first `since` calls."""
    calls = charge_calls(stack)[since:]
    return sorted(datetime.fromisoformat(c["time"]).timestamp() for c in calls)


def largest_state(stack: LocalStack, execution_arn: str) -> int:
    """The largest input or output any state of the execution carried, in bytes."""
    sfn = stack.client("stepfunctions")
    largest, kwargs = 0, {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        for event in page["events"]:
            for key, details in event.items():
                if key.endswith("EventDetails") and isinstance(details, dict):
                    for field in ("input", "output"):
                        largest = max(largest, len(details.get(field, "").encode()))
        if not page.get("nextToken"):
            return largest
        kwargs["nextToken"] = page["nextToken"]


def run(stack: LocalStack, day: date, config: dict[str, Any]) -> tuple[dict[str, Any], str, float]:
    assert stack.template
    arn = next(
        m["arn"]
        for m in stack.template.state_machines()
        if m["logical_id"] == "SubscriptionBillingStateMachine"
    )
    started = time.monotonic()
    execution = stack.client("stepfunctions").start_execution(
        stateMachineArn=arn,
        name=f"bench-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"billing_date": day.isoformat(), "config": config}),
    )
    done = stack.wait_for_execution(execution["executionArn"], timeout=6 * 3600)
    if done["status"] != "SUCCEEDED":
        sys.exit(f"billing run {done['status']}: {done.get('error')} {done.get('cause')}")
    return json.loads(done["output"]), execution["executionArn"], time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.02, help="1: N = 10,000")
    parser.add_argument("--tps", type=float, default=20.0, help="KCP TPS budget")
    parser.add_argument("--concurrency", type=int, default=10, help="lanes (MaxConcurrency)")
    parser.add_argument("--only", default="ABC", help="scenarios to run, e.g. AB")
    args = parser.parse_args()
    n = max(10, int(10_000 * args.scale))
    config = {"max_concurrency": args.concurrency, "tps": args.tps, "page_size": 1000}
    print(f"N = {n:,}; budget {args.tps:g} KCP TPS; {args.concurrency} lanes")

    reads = ServerReads()
    reads.install()
    stack = LocalStack(
        state_dir=Path(tempfile.mkdtemp(prefix="bench-billing-")),
        parameters={
            "BillingKcpTps": f"{args.tps:g}",  # the merchant's allowance
            "ReconcileWaitSeconds": "1",
            "KcpReadTimeoutSeconds": "10",
        },
        quiet=True,
        isolate=True,  # each function in worker processes: its own memory, every core
        sandbox_process=True,  # KCP's receive times not held up by the stack's threads
    )
    stack.start()
    assert stack.lambdas
    try:
        from tests.integration.billing_support import batch_key

        key = batch_key(stack.env["SANDBOX_URL"])
        rows = []
        scenarios = [  # (name, billing day, due, subscriptions in all)
            ("A", date(2040, 1, 10), n, n),
            ("B", date(2040, 3, 10), n, 10 * n),  # earlier scenarios' count: due next month
            ("C", date(2040, 5, 10), 10 * n, 10 * n),
        ]
        total = 0
        for name, day, due, in_all in scenarios:
            if name not in args.only:
                continue
            other = max(0, in_all - due - total)
            seeded = time.monotonic()
            seed(stack, day, due, other, key, name.lower())
            total += due + other
            print(
                f"{name}: seeded {due + other:,} in {time.monotonic() - seeded:.0f} s", flush=True
            )
            # Fresh functions for each scenario's own memory peak, the lanes warm: ten Python
            # processes booting at once on 2 cores would otherwise eat a short run's first seconds.
            stack.lambdas.retire_workers()
            stack.lambdas.warm("cancelflow-BillingChargeFunction", args.concurrency, idle_lane(day))
            reads.reset()
            since = len(charge_calls(stack))
            summary, arn, seconds = run(stack, day, config)
            times = charge_times(stack, since)
            rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
            rows.append(
                {
                    "name": name,
                    "total": total,
                    "due": due,
                    "summary": summary,
                    "reads": reads.total(),
                    "items": reads.items,
                    "units": reads.units,
                    "due_queries": reads.due_queries,
                    "rate": rate,
                    "peak": busiest_second(times),
                    "memory": dict(stack.lambdas.max_memory_kib),
                    "state": largest_state(stack, arn),
                    "seconds": seconds,
                }
            )
            print(f"{name}: billed in {seconds:.0f} s: {summary}", flush=True)
        report(rows, args.tps)
    finally:
        stack.stop()


def report(rows: list[dict[str, Any]], tps: float) -> None:
    print(
        "\nscen  subs      due       charged   reads(req)  items read  ≈RCU      "
        "reads/due  charges/s  ÷budget  max in 1 s  run s"
    )
    for r in rows:
        print(
            f"{r['name']:<5} {r['total']:<9,} {r['due']:<9,} {r['summary']['charged']:<9,} "
            f"{r['reads']:<11,} {r['items']:<11,} {r['units']:<9,.0f} "
            f"{r['reads'] / r['due']:<10.2f} {r['rate']:<10.2f} {r['rate'] / tps:<8.2f} "
            f"{r['peak']:<11} {r['seconds']:.0f}"
        )
    for r in rows:
        others = {
            k: v for k, v in r["summary"].items() if k not in ("billing_date", "charged") and v
        }
        if others:
            print(f"{r['name']}: not charged: {others}")
    by = {r["name"]: r for r in rows}
    if "A" in by and "B" in by:
        a, b = by["A"], by["B"]
        print(
            f"\nreads, 10x the subscriptions and the same due (B/A): "
            f"{b['reads'] / a['reads']:.2f}x requests, {b['units'] / a['units']:.2f}x read units"
        )
    if "A" in by and "C" in by:
        a, c = by["A"], by["C"]
        print(f"reads, 10x the due (C/A): {c['reads'] / a['reads']:.2f}x requests")
    print(
        "due-index Queries: "
        + ", ".join(f"{r['name']} {r['due_queries']}" for r in rows)
        + "\npeak memory per function (MiB): "
        + " vs ".join(f"{r['name']} ({r['due']:,} due)" for r in rows)
    )
    for function in sorted({f for r in rows for f in r["memory"]}):
        peaks = [r["memory"].get(function, 0) / 1024 for r in rows]
        print(
            f"  {function.removeprefix('cancelflow-'):<28} " + "  ".join(f"{p:6.1f}" for p in peaks)
        )
    print(
        "largest state payload (KB): "
        + ", ".join(f"{r['name']} {r['state'] / 1024:.1f}" for r in rows)
        + " (Step Functions allows 256 KB)"
    )


if __name__ == "__main__":
    main()
