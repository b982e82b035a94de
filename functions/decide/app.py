"""Workflow step: judge eligibility and hold the amount against the payment's balance."""

from aws_lambda_powertools import Logger

from cancelflow import runtime
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.steps import Step, handed_on

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="execution_id")
def handler(event: dict, context: object) -> Step:
    step = cancellations.decide(
        runtime.store(), runtime.clock, event["shop_id"], event["cancellation_id"]
    )
    return handed_on(step, "Decide")
