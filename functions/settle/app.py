"""Workflow step: write the terminal outcome and its effect on the payment."""

from typing import Any, NotRequired, TypedDict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.steps import Verdict, received

logger = Logger()
metrics = Metrics(namespace="cancelflow")


class SettleEvent(TypedDict):
    """What the state machine's Settle state passes (statemachine/cancel_refund.asl.json).

    `step` is the last step's result, returned or caught; `verdict` is what an execution started
    before a deploy passes instead (it runs its old definition against the new code)."""

    shop_id: str
    cancellation_id: str
    execution_id: NotRequired[str]
    step: NotRequired[dict[str, Any]]
    verdict: NotRequired[Verdict]


@metrics.log_metrics
@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: SettleEvent, context: LambdaContext) -> dict:
    verdict = event["verdict"] if "verdict" in event else received(event.get("step", {}))["verdict"]
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
    if "INTERNAL_ERROR" in outcome["reasons"]:  # a step crashed on what it did not expect: alarm
        metrics.add_metric(name="CancellationsInternalError", unit=MetricUnit.Count, value=1)
    logger.info("settled", extra=outcome)
    return outcome
