"""The cancel workflow on the embedded stack: state transitions and Lambda invocations of a
happy-path cancel (from the execution history), and the local end-to-end time from the 202 to
SUCCEEDED as a shop sees it (polling GET /v1/cancellations/{id}), median of several.

Targets (issue 2): <= 8 state transitions; local end-to-end median <= 1 s.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.stack import LocalStack

RUNS = 15


def call(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} | (headers or {}),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict = json.loads(response.read())
        return answer


def one_cancel(stack: LocalStack) -> tuple[float, str]:
    env = stack.env
    auth = {"Authorization": f"Bearer {env['SHOP_API_KEY']}"}
    paid = call(
        "POST",
        f"{env['SANDBOX_URL']}/_sandbox/payments",
        {"amount": 15000, "product_name": "bench", "buyer_email": "b@example.com"},
    )
    fields = ("tno", "order_id", "amount", "method", "product_name", "buyer_email", "approved_at")
    call("POST", f"{env['API_URL']}/v1/payments", {k: paid[k] for k in fields}, auth)
    started = time.perf_counter()
    accepted = call(
        "POST",
        f"{env['API_URL']}/v1/payments/{paid['tno']}/cancellations",
        {"reason_code": "CHANGE_OF_MIND"},
        auth | {"Idempotency-Key": str(uuid.uuid4())},
    )
    while True:
        view = call(
            "GET", f"{env['API_URL']}/v1/cancellations/{accepted['cancellation_id']}", headers=auth
        )
        if view["status"] not in ("REQUESTED", "RESERVED", "SENDING", "RECONCILING"):
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    assert view["status"] == "SUCCEEDED", view
    return elapsed, view["execution_id"]


def main() -> None:
    stack = LocalStack(state_dir=Path(tempfile.mkdtemp(prefix="cancelflow-bench-")), quiet=True)
    stack.start()
    try:
        one_cancel(stack)  # warm: handler imports happen once per process, as in a warm Lambda
        runs = [one_cancel(stack) for _ in range(RUNS)]
        _, execution = runs[-1]
        stack.wait_for_execution(execution)
        events = stack.client("stepfunctions").get_execution_history(executionArn=execution)[
            "events"
        ]
        entered = [
            e["stateEnteredEventDetails"]["name"]
            for e in events
            if e["type"].endswith("StateEntered")
        ]
        invoked = sum(1 for e in events if e["type"] == "LambdaFunctionScheduled")
        times = sorted(t for t, _ in runs)
        print("happy-path cancel (full cancel of a card payment)")
        print(f"  state transitions: {len(entered)} (target <= 8): {' > '.join(entered)}")
        print(f"  Lambda invocations: {invoked}")
        print(f"  local end-to-end, 202 -> SUCCEEDED seen by GET, {RUNS} warm runs:")
        print(
            f"    median {statistics.median(times) * 1000:.0f} ms (target <= 1000 ms), "
            f"min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
