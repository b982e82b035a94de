"""Workflow step: judge eligibility and hold the amount against the payment's balance."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import cancellations, logs, runtime

logger = Logger()


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: dict, context: LambdaContext) -> dict:
    return cancellations.decide(
        runtime.store(), runtime.clock, event["shop_id"], event["cancellation_id"]
    )
