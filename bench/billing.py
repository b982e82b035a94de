"""Subscription billing figures (issue 6): DynamoDB reads follow the due, not the total; KCP
charges per second against the TPS budget; peak memory as the due count grows.

Run: PYTHONPATH=layers/cancelflow:. .venv/bin/python bench/billing.py [--scale 0.02]
Full size (--scale 1) is 10,000 due of 100,000. The local ASL interpreter and the in-process
Lambdas share 2 cores, so the default scale keeps a run to a few minutes; sizes are printed.

How the budget is held: the Map runs at most BillingMaxConcurrency charges at once and each slot
spaces its KCP calls MaxConcurrency / TPS seconds apart (subscriptions.hold_slot), so KCP sees at
most TPS calls a second without any shared counter. Scenarios:
  A  N due of N total        B  N due of 10N total (9N on other days)     C  10N due (memory)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.handlers

from cancelflow.billing.dynamodb import subscription_item
from cancelflow.billing.schedule import Cycle
from cancelflow.billing.subscriptions import Status, Subscription
from cancelflow.billing.vault import SecretsVault
from cancelflow.gateway.kcp import KcpGateway
from cancelflow.store.dynamodb import _marshal
from local.stack import LocalStack

READS = {"GetItem", "Query", "BatchGetItem", "Scan", "TransactGetItems"}


class DynamoCounter:
    """Counts DynamoDB requests made by this process (the in-process Lambdas included)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests: dict[str, int] = {}
        self.due_queries = 0
        self.due_items = 0
        self.capacity = 0.0

    def after(self, model: Any, parsed: dict[str, Any], params: Any = None, **_: Any) -> None:
        with self.lock:
            self.requests[model.name] = self.requests.get(model.name, 0) + 1
            consumed = parsed.get("ConsumedCapacity") or []
            for entry in consumed if isinstance(consumed, list) else [consumed]:
                self.capacity += float(entry.get("CapacityUnits", 0) or 0)

    def before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query" and params.get("IndexName") == "SubscriptionsDue":
            with self.lock:
                self.due_queries += 1

    def reads(self) -> int:
        return sum(n for op, n in self.requests.items() if op in READS)


class ChargeClock:
    """When each KCP charge call was made (wraps the client's charge, in this process)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Lock()
        original = KcpGateway.charge

        def timed(gateway: KcpGateway, order: Any) -> Any:
            with self.lock:
                self.times.append(time.monotonic())
            return original(gateway, order)

        KcpGateway.charge = timed  # type: ignore[method-assign]

    def rate(self) -> tuple[float, int]:
        """(calls per second over the run, the most calls in any 1-second window)."""
        ts = sorted(self.times)
        if len(ts) < 2:
            return 0.0, len(ts)
        peak, j = 0, 0
        for i, t in enumerate(ts):
            while ts[j] <= t - 1.0:
                j += 1
            peak = max(peak, i - j + 1)
        return (len(ts) - 1) / (ts[-1] - ts[0]), peak


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakRss:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self.base = rss_kib()
        self.peak = self.base
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_kib())

    def __exit__(self, *_: Any) -> None:
        self._stop.set()


def seed(stack: LocalStack, day: date, due: int, other: int, batch_key: str, tag: str) -> None:
    """Write subscriptions straight into the table: `due` due on day, `other` on later days."""
    ddb = stack.client("dynamodb")
    table = stack.env["TABLE_NAME"]
    vault = SecretsVault(stack.client("secretsmanager"), "cancelflow/billing/")
    now = datetime.now(UTC).replace(microsecond=0)
    sealed_other = "v1:k1:unused"  # never charged in this run: no need to seal each one
    items = []
    for n in range(due + other):
        sid = f"sub_{tag}{n:015d}"[:24]
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
            batch_key_ref=vault.seal("demo-shop", sid, batch_key) if n < due else sealed_other,
            batch_key_last4=batch_key[-4:],
            period_date=when,
            due_on=when,
            created_at=now,
            updated_at=now,
        )
        items.append({"PutRequest": {"Item": _marshal(subscription_item(sub))}})
    for start in range(0, len(items), 25):
        batch = {table: items[start : start + 25]}
        while batch:
            batch = ddb.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}


def run(stack: LocalStack, day: date, config: dict[str, Any]) -> tuple[dict[str, Any], float]:
    sfn = stack.client("stepfunctions")
    assert stack.template
    arn = next(
        m["arn"]
        for m in stack.template.state_machines()
        if m["logical_id"] == "SubscriptionBillingStateMachine"
    )
    started = time.monotonic()
    execution = sfn.start_execution(
        stateMachineArn=arn,
        name=f"bench-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"billing_date": day.isoformat(), "config": config}),
    )
    done = stack.wait_for_execution(execution["executionArn"], timeout=7200)
    if done["status"] != "SUCCEEDED":
        sys.exit(f"billing run {done['status']}: {done.get('error')} {done.get('cause')}")
    return json.loads(done["output"]), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.02, help="1 = 10,000 due of 100,000")
    parser.add_argument("--tps", type=float, default=20.0, help="KCP TPS budget")
    parser.add_argument("--concurrency", type=int, default=10, help="Map MaxConcurrency")
    args = parser.parse_args()
    due = max(10, int(10_000 * args.scale))
    config = {"max_concurrency": args.concurrency, "tps": args.tps, "page_size": 500}
    print(
        f"sizes: {due:,} due of {due:,} (A), {due:,} due of {10 * due:,} (B), {10 * due:,} due (C)"
    )
    print(
        f"budget: {args.tps:g} TPS, MaxConcurrency {args.concurrency}, pace "
        f"{args.concurrency / args.tps:.2f} s per call per slot"
    )

    counter = DynamoCounter()
    hooks = [
        ("before-parameter-build.dynamodb", counter.before),
        ("after-call.dynamodb", counter.after),
    ]
    botocore.handlers.BUILTIN_HANDLERS.extend(hooks)
    clock = ChargeClock()
    serialize_moto_transactions()
    logging_off()
    stack = LocalStack(
        state_dir=Path(tempfile.mkdtemp(prefix="bench-billing-")),
        parameters={"ReconcileWaitSeconds": "0", "KcpReadTimeoutSeconds": "10"},
    )
    stack.start()
    assert stack.lambdas
    # The functions' own log lines and metrics would drown the figures.
    stack.lambdas.extra_env |= {
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    try:
        from tests.integration.billing_support import batch_key

        key = batch_key(stack.env["SANDBOX_URL"])
        rows = []
        scenarios = [
            ("A", date(2040, 1, 10), due, 0),
            ("B", date(2040, 3, 10), due, 9 * due - due),  # + A's N, now due on other days
            ("C", date(2040, 5, 10), 10 * due, 0),
        ]
        for name, day, n_due, n_other in scenarios:
            seed(stack, day, n_due, n_other, key, name.lower())
            counter.reset()
            clock.times.clear()
            with PeakRss() as memory:
                summary, seconds = run(stack, day, config)
            rate, peak_window = clock.rate()
            rows.append(
                (
                    name,
                    n_due,
                    summary,
                    counter.reads(),
                    counter.due_queries,
                    rate,
                    peak_window,
                    (memory.peak - memory.base) / 1024,
                    seconds,
                )
            )
        print()
        print(
            "scen  due      charged  reads(req)  reads/due  due-index Query  "
            "charges/s  ÷budget  max in 1 s  peak RSS +MiB  run s"
        )
        for name, n_due, summary, reads, queries, rate, peak, mem, seconds in rows:
            print(
                f"{name:<5} {n_due:<8,} {summary['charged']:<8,} {reads:<11,} "
                f"{reads / n_due:<10.2f} {queries:<16} {rate:<10.2f} {rate / args.tps:<8.2f} "
                f"{peak:<11} {mem:<14.1f} {seconds:.0f}"
            )
        for name, _, summary, *_ in rows:
            others = {
                k: v for k, v in summary.items() if k not in ("billing_date", "charged") and v
            }
            if others:
                print(f"{name}: not charged: {others}")
        a, b = rows[0], rows[1]
        print(
            f"\nreads with 10x the subscriptions, same due: {b[3] / a[3]:.2f}x "
            "(scales with due, not total)"
        )
        print(
            f"peak RSS growth at 10x due: {rows[2][7]:.1f} MiB vs {rows[0][7]:.1f} MiB "
            "(process-wide: includes moto's table growing by the charge records)"
        )
        capacity = "n/a (moto reports none)" if counter.capacity == 0 else f"{counter.capacity}"
        print(f"consumed capacity reported: {capacity}")
    finally:
        stack.stop()
        for hook in hooks:
            botocore.handlers.BUILTIN_HANDLERS.remove(hook)


def serialize_moto_transactions() -> None:
    """moto's TransactWriteItems deep-copies the whole table for its rollback, unguarded: under
    concurrent charges it fails ("dictionary changed size during iteration") and its cost grows
    with the table. A lock makes it correct; the cost is moto's, not DynamoDB's (reported)."""
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    lock = threading.Lock()

    def locked(self: Any, transact_items: Any) -> Any:
        with lock:
            return original(self, transact_items)

    DynamoDBBackend.transact_write_items = locked  # type: ignore[method-assign]


def logging_off() -> None:
    import logging

    logging.getLogger().setLevel(logging.WARNING)


if __name__ == "__main__":
    main()
