"""Billing run steps: begin (billing date, settings) and one page of due subscriptions."""

from datetime import date

from aws_lambda_powertools import Logger

from cancelflow import runtime
from cancelflow.subscriptions import billing as run

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="execution_id")
def handler(event: dict, context: object) -> dict:
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
