"""Payment history at scale: 100,000 payments for one shop and 100,000 for another.

Prints, per filtered history page (by date range, by product, by amount, none): DynamoDB requests
and read units (the bounded cost the issue asks for), and the handler time per page (median).
Then the CSV export's peak RSS for 1,000 vs 10,000 rows, each in a fresh process that talks to
the stack over HTTP like a Lambda would: constant memory means the two peaks are about equal.

Read units: moto reports 1.0 per request whatever it reads, so they are estimated the way
DynamoDB bills a Query: items read (ScannedCount, before filters) x item size, in 4 KB units,
halved for eventually consistent reads. Times: moto answers a GSI Query by scanning the whole
table (O(table)), so local times grow with the table; on DynamoDB a Query costs O(items read).
Requests and read units are the real figures; times compare filters with each other.

Usage: python bench/history.py [--per-shop 100000]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.stack import LocalStack
from local.template import ACCOUNT, REGION

PRODUCTS = ["오가닉 티셔츠", "머그컵", "양말 세트", "겨울 코트", "에코백", "텀블러", "후드티"]


def seed(stack: LocalStack, shop_id: str, count: int) -> None:
    """Write payments straight into moto's table (the API would take an hour for 200,000)."""
    from boto3.dynamodb.types import TypeSerializer
    from moto.backends import get_backend

    from cancelflow.adapters.dynamodb.table import payment_item as _payment_item
    from cancelflow.kcp.port import PayMethod
    from cancelflow.payments.model import Payment

    table = get_backend("dynamodb")[ACCOUNT][REGION].get_table(stack.env["TABLE_NAME"])
    ser = TypeSerializer()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    methods = list(PayMethod)
    for n in range(count):
        approved = start + timedelta(seconds=n * 90)  # ~100 days of payments
        payment = Payment(
            shop_id=shop_id,
            tno=f"2026{n:010d}",
            order_id=f"ORD-{n}",
            amount=1000 + (n * 7919) % 200_000,
            method=methods[n % 4],
            product_name=f"{PRODUCTS[n % len(PRODUCTS)]} #{n % 997}",
            buyer_email="buyer@example.com",
            approved_at=approved,
            registered_at=approved,
        )
        item = {k: ser.serialize(v) for k, v in _payment_item(payment).items() if v is not None}
        table.put_item(item)


ITEM_BYTES = 700  # a stored payment item, attribute names included (measured: ~650-750 B)


def page_cost(stack: LocalStack, query: str, runs: int = 3) -> tuple[int, float, float, int]:
    """(requests, estimated read units, median handler ms, rows) of one history page."""
    from cancelflow import runtime
    from cancelflow.http.api import history_query
    from cancelflow.payments import service as payments

    store = runtime.store()
    key = runtime.cursor_key()
    params = dict(p.split("=", 1) for p in query.split("&")) if query else {}
    q = history_query(
        params.get("from"),
        params.get("to"),
        int(params["min_amount"]) if "min_amount" in params else None,
        int(params["max_amount"]) if "max_amount" in params else None,
        params.get("product"),
        None,
        None,
        int(params.get("limit", 20)),
    )
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        page, _ = payments.history(store, "demo-shop", q, None, key)
        times.append((time.perf_counter() - started) * 1000)
    units = math.ceil(page.items_read * ITEM_BYTES / 4096) * 0.5
    return page.requests, units, statistics.median(times), len(page.payments)


EXPORT = """
import sys
from datetime import UTC, datetime, timedelta
from cancelflow import payments, runtime
from cancelflow.export import csv_chunks
from cancelflow.payments import HistoryQuery
rows = int(sys.argv[1])
start = datetime(2026, 1, 1, tzinfo=UTC)
query = HistoryQuery(since=start, until=start + timedelta(seconds=max(rows - 1, 0) * 90))
if rows:
    chunks = csv_chunks(payments.export(runtime.store(), "demo-shop", query))
    runtime.exporter().upload("bench-shop", f"bench-{rows}.csv", chunks)
# VmHWM: this process's own peak (ru_maxrss would carry the parent's peak across exec).
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(int(status.split()[0]))
"""


def export_peak(stack: LocalStack, rows: int) -> float:
    """Peak RSS (MiB) of a fresh process that exports `rows` rows to S3."""
    assert stack.lambdas, "a started stack runs its Lambdas"
    env = (
        os.environ.copy() | stack.env | stack.lambdas.env_of(stack.lambdas.functions["ApiFunction"])
    )
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent / "layers" / "cancelflow")
    out = subprocess.run(
        [sys.executable, "-c", EXPORT, str(rows)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-shop", type=int, default=100_000)
    args = parser.parse_args()
    stack = LocalStack(state_dir=Path(tempfile.mkdtemp(prefix="cancelflow-bench-")), quiet=True)
    stack.start()
    try:
        # The API function's environment, so runtime.* builds the same adapters it would.
        assert stack.lambdas, "a started stack runs its Lambdas"
        api = stack.lambdas.functions["ApiFunction"]
        stack.lambdas.environ.update(stack.lambdas.env_of(api))
        started = time.perf_counter()
        seed(stack, "demo-shop", args.per_shop)
        seed(stack, "shop-b", args.per_shop)
        print(
            f"seeded {args.per_shop:,} payments for each of 2 shops "
            f"in {time.perf_counter() - started:.0f} s"
        )
        print("history page (limit 20), newest first:")
        print(f"  {'filter':<44} {'requests':>8} {'read units':>10} {'median ms':>10} {'rows':>5}")
        for label, query in [
            ("none", ""),
            ("date range (keyed): one day", "from=2026-01-03&to=2026-01-03"),
            ("product substring (filter), common", "product=티셔츠"),
            ("product substring (filter), rare", "product=텀블러 #5"),
            ("amount range (filter)", "min_amount=150000&max_amount=151000"),
            ("date range + product", "from=2026-01-02&to=2026-01-04&product=머그컵"),
        ]:
            requests, units, ms, rows = page_cost(stack, query)
            print(f"  {label:<44} {requests:>8} {units:>10.1f} {ms:>10.0f} {rows:>5}")
        print("  (a page costs at most 8 requests; a rare filter returns a short page + cursor)")
        print("CSV export, peak RSS of the exporting process:")
        base = export_peak(stack, 0)
        small, big = export_peak(stack, 1_000), export_peak(stack, 10_000)
        print(f"  imports only: {base:6.1f} MiB")
        print(f"  1,000 rows:   {small:6.1f} MiB (+{small - base:.1f})")
        print(f"  10,000 rows:  {big:6.1f} MiB (+{big - base:.1f})")
        print(f"  growth 10k vs 1k: {big - small:+.1f} MiB (constant memory: ~0)")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
