"""KCP client figures: signing + request building cost, and TCP connection reuse.

Run: PYTHONPATH=layers/cancelflow:. .venv/bin/python bench/kcp_client.py
Targets: request building (signing included) < 2 ms per call; 1 new TCP connection per 100
sequential cancels with one KcpGateway (the module-level pool is reused).
"""

from __future__ import annotations

import statistics
import time

from cancelflow.adapters.kcp import KcpGateway
from cancelflow.kcp.port import CancelOrder, KcpCredentials, Outcome, PayMethod
from local.kcp_sandbox import KcpSandbox

BUILD_CALLS = 500
CANCEL_CALLS = 100


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench_building(gateway: KcpGateway) -> None:
    order = CancelOrder(
        "20250101000001",
        PayMethod.CARD,
        "부분 반품 — 반품 배송비 차감",
        amount=15000,
        balance_before=20000,
        tax_free_amount=4000,
    )
    for _ in range(20):  # warm up
        gateway.cancel_request(order)
    samples = []
    for _ in range(BUILD_CALLS):
        started = time.perf_counter_ns()
        gateway.cancel_request(order)
        samples.append((time.perf_counter_ns() - started) / 1000)
    median, p95 = statistics.median(samples), percentile(samples, 0.95)
    verdict = "OK" if p95 < 2000 else "OVER TARGET"
    print(
        f"signing + request building ({BUILD_CALLS} calls): "
        f"median {median:.0f} µs ({median / 1000:.3f} ms), p95 {p95:.0f} µs "
        f"({p95 / 1000:.3f} ms)  target < 2 ms: {verdict}"
    )


def bench_connections(sandbox: KcpSandbox, gateway: KcpGateway) -> None:
    amount = CANCEL_CALLS * 100 + 1000
    tno = sandbox.ledger.create_payment({"amount": amount})["tno"]  # no HTTP: not counted
    before = sandbox.connections_accepted
    balance = amount
    started = time.perf_counter()
    for _ in range(CANCEL_CALLS):
        answer = gateway.cancel(
            CancelOrder(tno, PayMethod.CARD, "bench", amount=100, balance_before=balance)
        )
        if answer.outcome is not Outcome.SUCCEEDED or answer.remaining_balance is None:
            raise SystemExit(f"cancel failed: {answer}")
        balance = answer.remaining_balance
    elapsed = time.perf_counter() - started
    new_connections = sandbox.connections_accepted - before
    verdict = "OK" if new_connections == 1 else "OVER TARGET"
    print(
        f"new TCP connections per {CANCEL_CALLS} sequential cancels: {new_connections}  "
        f"target 1: {verdict}  (balance {amount} -> {balance}; "
        f"{elapsed / CANCEL_CALLS * 1000:.2f} ms per cancel round trip, local)"
    )


def main() -> None:
    sandbox = KcpSandbox()
    url = sandbox.start()
    try:
        credentials = KcpCredentials(**sandbox.register_merchant("T0000"))
        started = time.perf_counter()
        gateway = KcpGateway(credentials, url)  # default module-level pool, as in Lambda
        load_ms = (time.perf_counter() - started) * 1000
        print(f"private key load (once per KcpGateway): {load_ms:.1f} ms")
        bench_building(gateway)
        bench_connections(sandbox, gateway)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
