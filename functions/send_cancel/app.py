"""Workflow step: journal the cancel, send it to KCP once, classify the answer."""

from typing import TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.steps import Step, handed_on

logger = Logger()


class SendCancelEvent(TypedDict):
    """What the state machine's SendCancel state passes (statemachine/cancel_refund.asl.json)."""

    shop_id: str
    cancellation_id: str
    execution_id: str


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: SendCancelEvent, context: LambdaContext) -> Step:
    shop = runtime.shop(event["shop_id"])
    step = cancellations.send(
        runtime.store(),
        runtime.gateway_for(shop),
        runtime.clock,
        shop.shop_id,
        event["cancellation_id"],
    )
    return handed_on(step, "SendCancel")
