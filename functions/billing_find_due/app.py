"""Billing run steps: begin (billing date, settings) and one page of due subscriptions."""

from datetime import date
from typing import Any, Literal, NotRequired, TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.subscriptions import billing as run

logger = Logger()


class BeginEvent(TypedDict):
    """The run's start (statemachine/subscription_billing.asl.json): the execution's input."""

    action: Literal["begin"]
    input: NotRequired[dict[str, Any] | None]
    execution_id: str


class PageEvent(TypedDict):
    """One page of due subscriptions after `cursor` (None: the first)."""

    action: Literal["page"]
    billing_date: str
    config: dict[str, Any]
    cursor: NotRequired[dict[str, Any] | None]
    execution_id: str


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: BeginEvent | PageEvent, context: LambdaContext) -> dict:
    if event["action"] == "begin":
        return run.begin_run(
            runtime.clock,
            event.get("input") or {},
            runtime.billing_settings(),
            runtime.billing_store(),
            event["execution_id"],
            runtime.execution_running,
        )
    page = run.find_due(
        runtime.billing_store(),
        runtime.clock,
        date.fromisoformat(event["billing_date"]),
        event["config"],
        event.get("cursor"),
        event["execution_id"],
        runtime.execution_running,
    )
    logger.info("due page", extra={"due": page["due"], "more": page["more"]})
    return page
