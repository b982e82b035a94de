"""Workflow step: judge eligibility and hold the amount against the payment's balance."""

from typing import TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.steps import Step, handed_on

logger = Logger()


class DecideEvent(TypedDict):
    """What the state machine's Decide state passes (statemachine/cancel_refund.asl.json)."""

    shop_id: str
    cancellation_id: str
    execution_id: str


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: DecideEvent, context: LambdaContext) -> Step:
    step = cancellations.decide(
        runtime.store(), runtime.clock, event["shop_id"], event["cancellation_id"]
    )
    return handed_on(step, "Decide")
