"""A shop developer generates an SDK from openapi.json and cancels a payment with it.

openapi-python-client builds the client from the committed spec; every answer is parsed into the
generated models (typed attributes, not dicts), problem+json refusals too.
"""

from __future__ import annotations

import datetime
import importlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local.openapi import OUT
from local.stack import LocalStack

from .conftest import TERMINAL, Sandbox

PACKAGE = "cancelflow_sdk"


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    out = tmp_path_factory.mktemp("sdk")
    bin_dir = Path(sys.executable).parent
    subprocess.run(  # noqa: S603 - the pinned generator from this venv, on our own spec
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(OUT),
            "--output-path",
            str(out / PACKAGE),
            "--meta",
            "none",
        ],
        check=True,
        capture_output=True,
        env=dict(os.environ) | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))


def _mod(sdk: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{sdk.__name__}.{name}")


def test_a_shop_registers_cancels_and_reads_the_outcome_with_the_generated_sdk(
    stack: LocalStack, sandbox: Sandbox, sdk: ModuleType
) -> None:
    models = _mod(sdk, "models")
    register = _mod(sdk, "api.payments.register_payment")
    request = _mod(sdk, "api.cancellations.request_cancellation")
    read = _mod(sdk, "api.cancellations.get_cancellation")
    client = _mod(sdk, "client").AuthenticatedClient(
        base_url=stack.env["API_URL"], token=stack.env["SHOP_API_KEY"]
    )
    paid = sandbox.approve(amount=12000)

    registered = register.sync_detailed(
        client=client,
        body=models.PaymentIn(
            tno=paid["tno"],
            order_id=paid["order_id"],
            amount=paid["amount"],
            method=models.PayMethod(paid["method"]),
            product_name=paid["product_name"],
            buyer_email=paid["buyer_email"],
            buyer_name=paid["buyer_name"],
            approved_at=datetime.datetime.fromisoformat(paid["approved_at"]),
        ),
    )
    assert registered.status_code == 201
    payment = registered.parsed
    assert isinstance(payment, models.Payment)
    assert (payment.tno, payment.balance, payment.status) == (
        paid["tno"],
        12000,
        models.PaymentStatus.PAID,
    )
    assert isinstance(payment.approved_at, datetime.datetime)

    accepted = request.sync_detailed(
        paid["tno"],
        client=client,
        body=models.CancelIn(reason_code=models.ReasonCode.DEFECTIVE, amount=5000),
        idempotency_key=str(uuid.uuid4()),
    )
    assert accepted.status_code == 202
    assert isinstance(accepted.parsed, models.Cancellation)
    assert accepted.parsed.status == models.CancellationStatus.REQUESTED
    assert accepted.headers["Location"] == f"/v1/cancellations/{accepted.parsed.cancellation_id}"

    deadline = time.monotonic() + 60
    while True:
        outcome = read.sync(accepted.parsed.cancellation_id, client=client)
        assert isinstance(outcome, models.Cancellation)
        if outcome.status.value in TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert outcome.status == models.CancellationStatus.SUCCEEDED
    assert (outcome.refunded_amount, outcome.settled) == (5000, True)
    assert outcome.confirmed_by == models.ConfirmedBy.ANSWER
    (attempt,) = outcome.attempts
    assert isinstance(attempt, models.Attempt)
    assert (attempt.kind, attempt.outcome) == (
        models.AttemptKind.CANCEL,
        models.AttemptOutcome.SUCCEEDED,
    )
    assert isinstance(outcome.gateway, models.GatewayAnswer) and outcome.gateway.res_cd == "0000"
    assert isinstance(outcome.created_at, datetime.datetime)


def test_the_generated_sdk_reads_problem_answers_into_its_problem_model(
    stack: LocalStack, sandbox: Sandbox, shop: Any, sdk: ModuleType
) -> None:
    models = _mod(sdk, "models")
    request = _mod(sdk, "api.cancellations.request_cancellation")
    read = _mod(sdk, "api.cancellations.get_cancellation")
    client = _mod(sdk, "client").AuthenticatedClient(
        base_url=stack.env["API_URL"], token=stack.env["SHOP_API_KEY"]
    )
    paid = sandbox.approve(amount=8000)
    assert shop.register(paid).status == 201

    missing = read.sync_detailed("cnl_nobody", client=client)
    too_much = request.sync_detailed(
        paid["tno"],
        client=client,
        body=models.CancelIn(reason_code=models.ReasonCode.DEFECTIVE, amount=9000),
        idempotency_key=str(uuid.uuid4()),
    )

    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)
    assert missing.parsed.code == "CANCELLATION_NOT_FOUND"
    assert missing.parsed.request_id == missing.headers["Request-Id"]
    assert too_much.status_code == 422  # the answer an SDK built on HTTPValidationError broke on
    problem = too_much.parsed
    assert isinstance(problem, models.Problem)
    assert problem.code == "AMOUNT_EXCEEDS_BALANCE"
    assert [type(r) for r in problem.reasons] == [models.ReasonExplained]
    assert problem.reasons[0].code == "AMOUNT_EXCEEDS_BALANCE"
