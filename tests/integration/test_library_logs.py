"""The layer's log lines reach a function's log group as the function's own Powertools JSON, with
the invocation's correlation id: an operator finds a cancel's KCP call by its execution, a shop's
support ticket finds an API request's by its Request-Id (issue 11)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from local.log_shipping import LogShipper
from local.stack import LocalStack

from .conftest import Sandbox, ShopClient


@pytest.fixture
def functions_log_info(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The functions log at INFO, as on `make run` and in the template (the test stack keeps
    them to warnings)."""
    assert stack.lambdas
    monkeypatch.setitem(stack.lambdas.extra_env, "POWERTOOLS_LOG_LEVEL", "INFO")  # cold starts
    shipped = [  # and the warm ones
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
        and any(isinstance(h, LogShipper) for h in logger.handlers)
    ]
    levels = [logger.level for logger in shipped]
    for logger in shipped:
        logger.setLevel(logging.INFO)
    yield
    for logger, level in zip(shipped, levels, strict=True):
        logger.setLevel(level)


def kcp_calls(stack: LocalStack, function: str, tno: str) -> list[dict[str, Any]]:
    """The KCP call lines about a tno in the function's log group, each read as JSON."""
    assert stack.lambdas
    group = f"/aws/lambda/{stack.lambdas.functions[function].name}"
    logs = stack.client("logs")
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, filterPattern=f'"{tno}"'
    )
    try:
        lines = [json.loads(e["message"]) for page in pages for e in page["events"]]
    except logs.exceptions.ResourceNotFoundException:  # the function has shipped no line yet
        return []
    return [line for line in lines if line["message"] == "kcp call"]


def test_a_cancels_kcp_call_is_a_send_cancel_json_line_with_the_executions_correlation_id(
    stack: LocalStack, shop: ShopClient, paid: dict[str, Any], functions_log_info: None
) -> None:
    accepted = shop.cancel(paid["tno"]).body
    outcome = shop.outcome(accepted["cancellation_id"])
    assert outcome["status"] == "SUCCEEDED"

    (call,) = kcp_calls(stack, "SendCancelFunction", paid["tno"])

    assert call["correlation_id"] == outcome["execution_id"]
    assert call["service"] == "send-cancel"
    assert call["level"] == "INFO"
    assert call["kcp_path"] == "/gw/mod/v1/cancel"
    assert call["outcome"] == "SUCCEEDED" and call["res_cd"] == "0000"


def test_an_api_requests_kcp_call_carries_the_request_id_the_shop_was_answered(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, functions_log_info: None
) -> None:
    payment = sandbox.approve()
    answer = shop.register(payment)  # the API asks KCP about the payment first
    assert answer.status == 201

    (call,) = kcp_calls(stack, "ApiFunction", payment["tno"])

    assert call["correlation_id"] == answer.headers["Request-Id"]
    assert call["service"] == "api"
    assert call["kcp_path"] == "/std/inquery"


def test_at_the_functions_warning_level_a_kcp_call_is_not_logged(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox
) -> None:
    payment = sandbox.approve()
    assert shop.register(payment).status == 201

    assert kcp_calls(stack, "ApiFunction", payment["tno"]) == []
