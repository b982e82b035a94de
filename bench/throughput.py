"""Throughput of the local stack (issues 10 and 16): sustained full cancels per second with many
concurrent shop clients, p50/p99 from the 202 to the terminal status a shop sees (polling
GET /v1/cancellations/{id}), beside one client alone, and where a cancel's time goes.

The clients run in a process of their own (so their HTTP and JSON work does not take the stack's
interpreter lock); the stack runs here, instrumented: each handler's time by execution, moto's
DynamoDB answers as the server gave them, and each execution's history for the interpreter's
share (time between states, and from the 202 to the execution's start).

Run: PYTHONPATH=layers/cancelflow:. .venv/bin/python bench/throughput.py
     [--clients 50] [--per-client 4] [--single 10] [--poll 0.05]
A fault-suite-sized run: --clients 100 --per-client 50.

Measured on the 2-core shared machine (default run, 200 cancels): before the local stack's
fixes 1.5 cancels/s with 50 clients, p50 22.6 s, p99 28.9 s, 7 dropped connections; one
client p50 0.38 s. After: 4.3 cancels/s, p50 8.3 s, p99 12.8 s, none dropped; one client
p50 0.28 s. At 50 clients the stack is CPU-bound on one interpreter lock: most of a cancel's
time is its handlers' SDK calls waiting for their turn at moto's serialised DynamoDB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TERMINAL = {"SUCCEEDED", "REJECTED", "FAILED", "NEEDS_REVIEW"}
WORKFLOW = tuple(f"{n}Function" for n in ("Decide", "SendCancel", "Reconcile", "Settle", "Notify"))
API = ("ApiFunction", "AuthorizerFunction")
BEFORE_TERMINAL = WORKFLOW[:-1]  # the shop sees the terminal status once Settle wrote it


# --- the shops' side (a process of its own) --------------------------------------------------


class Client:
    """One keep-alive connection, as a shop's back office would hold."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Content-Type": "application/json"} | (headers or {})
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            try:
                self.conn.request(method, path, data, self.headers | headers)
                answer = self.conn.getresponse()
                text = answer.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        if answer.status >= 400:
            raise RuntimeError(f"{method} {path}: {answer.status} {text[:200]!r}")
        return json.loads(text) if text else None


def _paid(sandbox: Client, api: Client) -> str:
    paid = sandbox.call(
        "POST",
        "/_sandbox/payments",
        {"amount": 15000, "product_name": "bench", "buyer_email": "b@example.com"},
    )
    fields = ("tno", "order_id", "amount", "method", "product_name", "buyer_email", "approved_at")
    api.call("POST", "/v1/payments", {k: paid[k] for k in fields})
    return str(paid["tno"])


def _cancel(api: Client, tno: str, poll: float) -> dict[str, Any]:
    """One cancel as a shop makes it; an error answer or a dropped connection is counted (a
    POST with the same Idempotency-Key is safe to repeat), never fatal to the run."""
    started, key, errors = time.time(), str(uuid.uuid4()), 0
    while True:
        try:
            accepted = api.call(
                "POST",
                f"/v1/payments/{tno}/cancellations",
                {"reason_code": "CHANGE_OF_MIND"},
                **{"Idempotency-Key": key},
            )
            break
        except (OSError, RuntimeError, http.client.HTTPException):
            errors += 1
            if errors > 20:
                raise
            time.sleep(poll)
    accepted_at = time.time()
    while True:
        try:
            view = api.call("GET", f"/v1/cancellations/{accepted['cancellation_id']}")
            if view["status"] in TERMINAL:
                break
        except (OSError, RuntimeError, http.client.HTTPException):
            errors += 1
        time.sleep(poll)
    return {
        "posted": started,
        "accepted": accepted_at,
        "seen": time.time(),
        "status": view["status"],
        "execution": view["execution_id"],
        "errors": errors,
    }


def clients_main(job: dict[str, Any]) -> None:
    """Prepare payments, then one client alone, then many at once; results as JSON on stdout."""
    auth = {"Authorization": f"Bearer {job['key']}"}
    local = threading.local()

    def clients() -> tuple[Client, Client]:
        if not hasattr(local, "api"):
            local.api = Client(job["api"], auth)
            local.sandbox = Client(job["sandbox"])
        return local.api, local.sandbox

    total = job["single"] + job["clients"] * job["per_client"] + 1
    with ThreadPoolExecutor(8) as pool:
        tnos = list(pool.map(lambda _: _paid(clients()[1], clients()[0]), range(total)))
    api = Client(job["api"], auth)
    _cancel(api, tnos.pop(), job["poll"])  # warm: handler imports, once per process
    single = [_cancel(api, tnos.pop(), job["poll"]) for _ in range(job["single"])]

    def one_client(i: int) -> list[dict[str, Any]]:
        mine = Client(job["api"], auth)
        return [
            _cancel(mine, tnos[i * job["per_client"] + n], job["poll"])
            for n in range(job["per_client"])
        ]

    with ThreadPoolExecutor(job["clients"]) as pool:
        many = [r for runs in pool.map(one_client, range(job["clients"])) for r in runs]
    print(json.dumps({"single": single, "many": many}))


# --- the stack's side: instruments ------------------------------------------------------------


class Instruments:
    """Time spent in the stack, recorded as (start, seconds, kind, execution) tuples."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[float, float, str, str]] = []

    def add(self, start: float, seconds: float, kind: str, execution: str = "") -> None:
        with self.lock:
            self.spans.append((start, seconds, kind, execution))

    def install(self, stack: Any) -> None:
        import botocore.client
        from moto.dynamodb.responses import DynamoHandler

        lambdas = stack.lambdas
        names = {f.name: f.logical_id for f in lambdas.functions.values()}
        invoke = lambdas.invoke
        inside = threading.local()  # the AWS SDK time of the handler running on this thread

        def timed_invoke(name_or_arn: str, event: Any) -> Any:
            start, clock = time.time(), time.perf_counter()
            outer, inside.sdk = getattr(inside, "sdk", None), {}
            try:
                return invoke(name_or_arn, event)
            finally:
                logical = names.get(lambdas.find(name_or_arn).name, "?")
                execution = event.get("execution_id", "") if isinstance(event, dict) else ""
                self.add(start, time.perf_counter() - clock, f"fn:{logical}", execution)
                for service, seconds in inside.sdk.items():
                    self.add(start, seconds, f"sdk:{logical}:{service}", execution)
                inside.sdk = outer

        lambdas.invoke = timed_invoke
        call = botocore.client.BaseClient._make_api_call

        def timed_sdk(client: Any, operation: str, params: Any) -> Any:
            clock = time.perf_counter()
            try:
                return call(client, operation, params)
            finally:
                sdk = getattr(inside, "sdk", None)
                if sdk is not None:
                    service = client.meta.service_model.service_name
                    sdk[service] = sdk.get(service, 0.0) + time.perf_counter() - clock

        botocore.client.BaseClient._make_api_call = timed_sdk  # type: ignore[method-assign]
        original = DynamoHandler.call_action

        def timed_call(handler: Any) -> Any:
            start, clock = time.time(), time.perf_counter()
            try:
                return original(handler)
            finally:
                self.add(start, time.perf_counter() - clock, "dynamodb")

        DynamoHandler.call_action = timed_call  # type: ignore[method-assign]

    def window(self, start: float, end: float) -> list[tuple[float, float, str, str]]:
        with self.lock:
            return [s for s in self.spans if start <= s[0] <= end]


# --- report ---------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        more: dict[str, str] = {"nextToken": token} if token else {}
        page = sfn.get_execution_history(executionArn=arn, **more)
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def breakdown(stack: Any, runs: list[dict[str, Any]], spans: list[Any]) -> dict[str, float]:
    """Mean seconds per cancel, from the 202 to the terminal status seen by GET."""
    sfn = stack.client("stepfunctions")
    handler_time: dict[str, float] = {}
    sdk_time: dict[str, float] = {}
    for _, seconds, kind, execution in spans:
        if not execution:
            continue
        if kind.removeprefix("fn:") in BEFORE_TERMINAL:
            handler_time[execution] = handler_time.get(execution, 0.0) + seconds
        if kind.startswith("sdk:") and kind.split(":")[1] in BEFORE_TERMINAL:
            sdk_time[execution] = sdk_time.get(execution, 0.0) + seconds
    parts = dict.fromkeys(("start", "tasks", "handlers", "sdk", "between", "poll"), 0.0)
    for run in runs:
        events = _history(sfn, run["execution"])
        ts = [e["timestamp"].timestamp() for e in events]
        started = ts[0]
        # The shop sees the terminal status once Settle has written it.
        settled = next(
            (
                t
                for e, t in zip(events, ts, strict=True)
                if e["type"] == "TaskStateExited"
                and e["stateExitedEventDetails"]["name"] == "Settle"
            ),
            ts[-1],
        )
        tasks, open_at = 0.0, None
        for e, t in zip(events, ts, strict=True):
            if t > settled:
                break
            if e["type"] == "LambdaFunctionScheduled":
                open_at = t
            elif e["type"].startswith("LambdaFunction") and e["type"] != "LambdaFunctionStarted":
                tasks += t - (open_at or t)
        parts["start"] += max(0.0, started - run["accepted"])
        parts["tasks"] += tasks
        parts["handlers"] += handler_time.get(run["execution"], 0.0)
        parts["sdk"] += sdk_time.get(run["execution"], 0.0)
        parts["between"] += max(0.0, settled - started - tasks)
        parts["poll"] += max(0.0, run["seen"] - settled)
    return {k: v / len(runs) for k, v in parts.items()}


def print_phase(title: str, stack: Any, runs: list[dict[str, Any]], ins: Instruments) -> None:
    latency = [r["seen"] - r["accepted"] for r in runs]
    begin, end = min(r["posted"] for r in runs), max(r["seen"] for r in runs)
    statuses = {s: sum(1 for r in runs if r["status"] == s) for s in {r["status"] for r in runs}}
    print(title)
    print(
        f"  {len(runs) / (end - begin):.1f} cancels/s over {end - begin:.1f} s; "
        f"202 -> terminal p50 {statistics.median(latency):.2f} s, "
        f"p99 {_pct(latency, 0.99):.2f} s, max {max(latency):.2f} s"
    )
    errors = sum(r["errors"] for r in runs)
    print(f"  outcomes {statuses}; HTTP errors or dropped connections: {errors}")
    spans = ins.window(begin, end)
    parts = breakdown(stack, runs, spans)
    total = sum(v for k, v in parts.items() if k not in ("handlers", "sdk"))
    print(f"  where one cancel's {total:.2f} s go (mean, from the execution histories):")
    print(f"    202 -> execution started        {parts['start']:6.3f} s")
    print(f"    in Lambda tasks up to Settle     {parts['tasks']:6.3f} s, of which")
    print(f"      invoking (the interpreter's)   {parts['tasks'] - parts['handlers']:6.3f} s")
    print(f"      handlers' AWS calls (moto)     {parts['sdk']:6.3f} s")
    print(f"      handlers' code and KCP         {parts['handlers'] - parts['sdk']:6.3f} s")
    print(f"    interpreter between states      {parts['between']:6.3f} s")
    print(f"    Settle done -> seen by GET      {parts['poll']:6.3f} s")
    wall = end - begin
    by_kind: dict[str, float] = {}
    for _, seconds, kind, _ in spans:
        if kind.startswith("sdk:"):
            kind = "handlers' AWS calls (" + kind.rsplit(":", 1)[1] + ")"
        name = kind.removeprefix("fn:")
        group = "workflow handlers" if name in WORKFLOW else kind
        group = "API + authorizer handlers" if name in API else group
        group = "moto's DynamoDB (server side)" if kind == "dynamodb" else group
        by_kind[group] = by_kind.get(group, 0.0) + seconds
    print("  busy threads on average (thread-seconds / wall second; 2 cores shared):")
    for kind in sorted(by_kind, key=by_kind.__getitem__, reverse=True)[:8]:
        print(f"    {kind:34s} {by_kind[kind] / wall:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=4)
    parser.add_argument("--single", type=int, default=10, help="cancels by one client alone")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between a shop's GETs")
    parser.add_argument("--client-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_job:
        clients_main(json.loads(args.client_job))
        return

    from local.stack import LocalStack

    stack = LocalStack(state_dir=Path(tempfile.mkdtemp(prefix="cancelflow-bench-")), quiet=True)
    stack.start()
    ins = Instruments()
    ins.install(stack)
    try:
        job = {
            "api": stack.env["API_URL"],
            "sandbox": stack.env["SANDBOX_URL"],
            "key": stack.env["SHOP_API_KEY"],
            "clients": args.clients,
            "per_client": args.per_client,
            "single": args.single,
            "poll": args.poll,
        }
        done = subprocess.run(
            [sys.executable, __file__, "--client-job", json.dumps(job)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            sys.exit(f"clients failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout)
        print(f"full cancels of card payments, shops polling every {args.poll * 1000:.0f} ms")
        print_phase(f"one client alone, {args.single} cancels:", stack, result["single"], ins)
        print_phase(
            f"{args.clients} concurrent clients, {args.per_client} cancels each:",
            stack,
            result["many"],
            ins,
        )
        print(f"  (at {datetime.now().isoformat(timespec='seconds')})")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
