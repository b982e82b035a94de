"""Shared by the bulk cancel tests: the batches API as a shop's back office calls it."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from .conftest import Answer, Sandbox, ShopClient, http

BATCHES = "/v1/cancellation-batches"


def post_batch(
    shop: ShopClient, body: Any, key: str | None = None, csv: str | None = None
) -> Answer:
    headers = shop.auth | {"Idempotency-Key": key or str(uuid.uuid4())}
    if csv is not None:
        return http(
            "POST",
            shop.url + BATCHES,
            raw=csv.encode(),
            headers=headers | {"Content-Type": "text/csv"},
        )
    return http("POST", shop.url + BATCHES, body, headers)


def batch(shop: ShopClient, batch_id: str) -> dict[str, Any]:
    answer = http("GET", f"{shop.url}{BATCHES}/{batch_id}", headers=shop.auth)
    assert answer.status == 200, answer.body
    return answer.body


def finished(shop: ShopClient, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll the batch until it has ended, as a shop would."""
    deadline = time.monotonic() + timeout
    while True:
        body = batch(shop, batch_id)
        if body["status"] in ("COMPLETED", "CANCELLED") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def counted(
    shop: ShopClient, batch_id: str, status: str, n: int, timeout: float = 30
) -> dict[str, Any]:
    """Poll the batch until `n` of its items are counted with `status` (items handed on move
    when their cancellation's outcome event reaches them, a moment after it is settled)."""
    deadline = time.monotonic() + timeout
    while True:
        body = batch(shop, batch_id)
        if body["counts"][status] == n or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def items(shop: ShopClient, batch_id: str, **query: Any) -> Answer:
    text = "&".join(f"{k}={v}" for k, v in query.items())
    return http("GET", f"{shop.url}{BATCHES}/{batch_id}/items?{text}", headers=shop.auth)


def paid(shop: ShopClient, sandbox: Sandbox, n: int, amount: int = 12000) -> list[str]:
    tnos = []
    for _ in range(n):
        payment = sandbox.approve(amount=amount)
        assert shop.register(payment).status == 201
        tnos.append(payment["tno"])
    return tnos


def cancel_times(sandbox: Sandbox, tnos: list[str]) -> list[float]:
    calls = [c for tno in tnos for c in sandbox.calls(tno)]
    return [datetime.fromisoformat(c["time"]).timestamp() for c in calls]
