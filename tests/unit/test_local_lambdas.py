"""The local stack's isolated functions (what the benches measure): each invocation runs in a
warm worker process of its function, answers as Lambda does, and reports its peak memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.lambdas import FunctionError, LocalLambdas
from local.template import Template

TALLY = "cancelflow-BillingTallyFunction"


@pytest.fixture
def lambdas() -> Iterator[LocalLambdas]:
    isolated = LocalLambdas(
        Template(), extra_env={"POWERTOOLS_METRICS_DISABLED": "true"}, isolate=True
    )
    yield isolated
    isolated.retire_workers()


def test_an_isolated_function_answers_from_its_own_warm_process(lambdas: LocalLambdas) -> None:
    summary = {"billing_date": "2040-01-10", "charged": 1} | dict.fromkeys(
        ("declined", "suspended", "skipped", "unknown", "failed"), 0
    )
    lane = {"counts": {"charged": 2, "declined": 1}}
    event = {"summary": summary, "results": [lane], "execution_id": "local"}

    first = lambdas.invoke(TALLY, event)
    second = lambdas.invoke(TALLY, event)

    assert (first["charged"], first["declined"]) == (3, 1)
    assert second == first
    assert lambdas.environments == 1  # the second invocation found it warm
    assert 10_000 < lambdas.max_memory_kib[TALLY] < 512 * 1024  # KiB: a Python runtime's worth


def test_an_isolated_handler_that_raises_gives_lambdas_error_document(
    lambdas: LocalLambdas,
) -> None:
    with pytest.raises(FunctionError) as raised:
        lambdas.invoke(TALLY, {"execution_id": "local"})  # no summary: a KeyError
    assert raised.value.failure["errorType"] == "KeyError"
    assert raised.value.failure["stackTrace"]
