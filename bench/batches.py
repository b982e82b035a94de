"""Bulk cancel figures (issue 16), through the API and the real state machine on the local stack:

- KCP cancel calls per second as the sandbox (a process of its own) received them, over the
  batch's TPS budget (goal >= 0.9, never above 1.0), and the most calls in any one second;
- doubles: payments the sandbox's ledger cancelled more than once, or cancelled by more than
  was asked (goal 0), and the batch's counts;
- DynamoDB reads as the server answered them, per item: they must follow the items;
- each function's peak memory (its worker process's max RSS, Lambda's "Max Memory Used"),
  which must stay flat as the batch grows.

Sizes: the default keeps `make bench` to a few minutes (100 and 1,000 items); the issue's
figures are --items 1000,10000 (about 40 minutes at --tps 5).

Run: PYTHONPATH=layers/cancelflow:. .venv/bin/python bench/batches.py [--items 100,1000] [--tps 5]

Measured on the 2-core shared machine (--items 1000,10000 --tps 5 --lanes 20, 15 lanes used):
before the local stack's index fix, 10,000 items ran at 4.28 cancels/s (0.86: every GSI query,
a webhook fan-out's per event among them, compared every item of the growing table). After it
(local/moto_fixes.py, fix 3): 1,000 items at 4.74 cancels/s (0.95 of the budget), 10,000 at
4.68 (0.94) in 2,156 s; never more than 5 calls in a second, 0 doubles, 0 left uncancelled,
16.2-16.3 reads per item; peak memory flat for the lane (86.9 vs 87.7 MiB), BatchRun (49.4 vs
49.4), WebhookFanOut (59.3 vs 58.7), Authorizer (50.2 vs 50.3); BatchesApi 75.5 vs 88.5: it
holds the request, ten times larger, while it validates and writes it. Then the API let go of
the validated models before writing, and the store built each transaction's rows as it wrote
them (not all 10,000 first): BatchesApi 75.1 vs 80.1 MiB (accepting alone, the same stack).

With BatchFollowUp added (every cancellation outcome event invoked it), the same run measured
1,000 at 4.40 (0.88) and 10,000 at 4.35 (0.87). A profile of the stack's main process found
why: 62% of its interpreter lock went to the two stream pollers' GetRecords (moto serialising
each record's image, per mapping, ten times a second). With the pollers reading moto's shard in
memory, four polls a second, about 4 x TPS lanes (one tick in nine had been lost to a lane still
busy) and only batch items' events reaching the follow-up, the final code measured: 1,000 at
4.75 (0.95, the pacing's HEADROOM ceiling), 10,000 at 4.72 (**0.94**) in 2,134 s; never more than
5 calls in a second, 0 doubles, 0 left uncancelled, 17.2-17.3 reads per item; peak memory (MiB,
1,000 vs 10,000) BatchLane 86.5 vs 87.3, BatchFollowUp 51.3 vs 51.4, BatchRun 49.4 vs 49.4,
WebhookFanOut 58.9 vs 59.1, Authorizer 50.3 vs 50.4, BatchesApi 75.0 vs 80.0 (it holds the
request).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.billing import ServerReads
from cancelflow.adapters.dynamodb.table import marshal, payment_item
from cancelflow.kcp.port import PayMethod
from cancelflow.payments.model import Payment
from cancelflow.subscriptions.pacing import busiest_second
from local.stack import LocalStack

AMOUNT = 10000


def seed(stack: LocalStack, n: int) -> list[str]:
    """n payments approved at the sandbox's KCP and registered with the demo shop (written
    straight into the table: registering through the API asks KCP about each one)."""
    assert stack.sandbox
    ddb, table = stack.client("dynamodb"), stack.env["TABLE_NAME"]
    now = datetime.now(UTC).replace(microsecond=0)
    tnos, puts = [], []
    for _ in range(n):
        approved = stack.sandbox.admin(
            "POST", "/_sandbox/payments", {"amount": AMOUNT, "product_name": "행사 티켓"}
        )
        tno = approved["tno"]
        tnos.append(tno)
        payment = Payment(
            shop_id="demo-shop",
            tno=tno,
            order_id=approved.get("order_id") or f"ORD-{tno}",
            amount=AMOUNT,
            method=PayMethod.CARD,
            product_name="행사 티켓",
            buyer_email="fan@example.com",
            approved_at=now,
            registered_at=now,
        )
        puts.append({"PutRequest": {"Item": marshal(payment_item(payment))}})
        if len(puts) == 25:
            _write(ddb, table, puts)
            puts = []
    if puts:
        _write(ddb, table, puts)
    return tnos


def _write(ddb: Any, table: str, puts: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table: puts}
    while pending:
        pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def call(stack: LocalStack, method: str, path: str, body: Any = None) -> Any:
    headers = {
        "Authorization": f"Bearer {stack.env['SHOP_API_KEY']}",
        "Content-Type": "application/json",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    request = urllib.request.Request(
        stack.env["API_URL"] + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers=headers,
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


def cancel_calls(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.sandbox
    calls: list[dict[str, Any]] = stack.sandbox.admin("GET", "/_sandbox/calls?path=cancel")
    return calls


def run(stack: LocalStack, tnos: list[str], tps: float) -> dict[str, Any]:
    assert stack.sandbox and stack.lambdas
    since = len(cancel_calls(stack))
    items = [{"tno": t, "reason_code": "DEFECTIVE", "reason": "행사 취소"} for t in tnos]
    started = time.monotonic()
    batch = call(stack, "POST", "/v1/cancellation-batches", {"items": items, "tps": tps})
    accepted = time.monotonic() - started
    while batch["status"] not in ("COMPLETED", "CANCELLED"):
        time.sleep(1)
        batch = call(stack, "GET", f"/v1/cancellation-batches/{batch['id']}")
    seconds = time.monotonic() - started
    calls = cancel_calls(stack)[since:]
    times = sorted(datetime.fromisoformat(c["time"]).timestamp() for c in calls)
    per_tno = Counter(c["tno"] for c in calls)
    balances = [stack.sandbox.admin("GET", f"/_sandbox/payments/{t}")["balance"] for t in tnos]
    return {
        "items": len(tnos),
        "counts": {k: v for k, v in batch["counts"].items() if v},
        "rate": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
        "peak": busiest_second(times),
        "calls": len(calls),
        "doubles": sum(1 for n in per_tno.values() if n > 1)
        + sum(1 for b in balances if b < 0 or b not in (0, AMOUNT)),
        "not_cancelled": sum(1 for b in balances if b == AMOUNT),
        "accepted": accepted,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", default="100,1000", help="batch sizes, e.g. 1000,10000")
    parser.add_argument("--tps", type=float, default=5.0, help="the batch's KCP TPS budget")
    parser.add_argument("--lanes", type=int, default=20, help="BatchMaxConcurrency")
    args = parser.parse_args()
    sizes = [int(s) for s in args.items.split(",")]
    print(f"batches of {', '.join(f'{s:,}' for s in sizes)} items; budget {args.tps:g} KCP TPS")
    reads = ServerReads()
    reads.install()
    stack = LocalStack(
        state_dir=Path(tempfile.mkdtemp(prefix="bench-batches-")),
        parameters={
            "BatchKcpTps": f"{args.tps:g}",
            "BatchMaxConcurrency": str(args.lanes),
            "KcpReadTimeoutSeconds": "10",
        },
        quiet=True,
        isolate=True,  # each function in worker processes: its own memory, every core
        sandbox_process=True,  # KCP's receive times not held up by the stack's threads
    )
    stack.start()
    assert stack.lambdas
    rows = []
    try:
        for size in sizes:
            seeded = time.monotonic()
            tnos = seed(stack, size)
            print(f"{size:,}: seeded in {time.monotonic() - seeded:.0f} s", flush=True)
            stack.lambdas.retire_workers()  # each size's own memory peaks
            reads.reset()
            row = run(stack, tnos, args.tps)
            row |= {
                "reads": reads.total(),
                "units": reads.units,
                "memory": dict(stack.lambdas.max_memory_kib),
            }
            rows.append(row)
            print(f"{size:,}: done in {row['seconds']:.0f} s: {row['counts']}", flush=True)
        report(rows, args.tps)
    finally:
        stack.stop()


def report(rows: list[dict[str, Any]], tps: float) -> None:
    print(
        "\nitems     cancels/s  ÷budget  max in 1 s  KCP calls  doubles  not cancelled  "
        "reads/item  ≈RCU/item  202 in s  run s"
    )
    for r in rows:
        print(
            f"{r['items']:<9,} {r['rate']:<10.2f} {r['rate'] / tps:<8.2f} {r['peak']:<11} "
            f"{r['calls']:<10,} {r['doubles']:<8} {r['not_cancelled']:<14} "
            f"{r['reads'] / r['items']:<11.1f} {r['units'] / r['items']:<10.1f} "
            f"{r['accepted']:<9.1f} {r['seconds']:.0f}"
        )
    print("peak memory per function (MiB): " + " vs ".join(f"{r['items']:,}" for r in rows))
    for function in sorted({f for r in rows for f in r["memory"]}):
        peaks = [r["memory"].get(function, 0) / 1024 for r in rows]
        print(
            f"  {function.removeprefix('cancelflow-'):<28} " + "  ".join(f"{p:6.1f}" for p in peaks)
        )


if __name__ == "__main__":
    main()
