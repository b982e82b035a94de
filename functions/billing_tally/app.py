"""Billing run step: add a page's results to the run's summary and publish them as metrics."""

from typing import Any, NotRequired, TypedDict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow.adapters import logs
from cancelflow.subscriptions import billing as run

logger = Logger()
metrics = Metrics(namespace="cancelflow")


class TallyEvent(TypedDict):
    """What statemachine/subscription_billing.asl.json's tally passes: the run's summary so
    far and a page's lane results."""

    summary: dict[str, Any]
    results: list[dict[str, Any]]
    execution_id: NotRequired[str]


@metrics.log_metrics
@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: TallyEvent, context: LambdaContext) -> dict:
    before = event["summary"]
    after = run.tally(before, event["results"])
    # Per page, so the Sum over a run is the run's total (an alarm watches Unknown).
    for key in (*run.SUMMARY_KEYS, run.AWAITING_TNO):
        metrics.add_metric(
            name=f"Subscriptions{key.title().replace('_', '')}",
            unit=MetricUnit.Count,
            value=after.get(key, 0) - before.get(key, 0),
        )
    logger.info("billing tally", extra=after)
    return after
