"""Workflow step: write the terminal outcome and its effect on the payment."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cancelflow import runtime
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.steps import received

logger = Logger()
metrics = Metrics(namespace="cancelflow")


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="execution_id")
def handler(event: dict, context: object) -> dict:
    # An execution started before a deploy runs the old definition, which passes `verdict`.
    verdict = event["verdict"] if "verdict" in event else received(event["step"])["verdict"]
    outcome = cancellations.settle(
        runtime.store(),
        runtime.clock,
        event["shop_id"],
        event["cancellation_id"],
        verdict,
        execution_id=event.get("execution_id", ""),
    )
    # One metric per terminal status: NEEDS_REVIEW has an alarm in the template.
    metrics.add_metric(
        name=f"Cancellations{outcome['status'].title().replace('_', '')}",
        unit=MetricUnit.Count,
        value=1,
    )
    logger.info("settled", extra=outcome)
    return outcome
