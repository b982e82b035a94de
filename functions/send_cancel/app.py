"""Workflow step: journal the cancel, send it to KCP once, classify the answer."""

from aws_lambda_powertools import Logger

from cancelflow import runtime
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.steps import Step, handed_on

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="execution_id")
def handler(event: dict, context: object) -> Step:
    shop = runtime.shop(event["shop_id"])
    step = cancellations.send(
        runtime.store(),
        runtime.gateway_for(shop),
        runtime.clock,
        shop.shop_id,
        event["cancellation_id"],
    )
    return handed_on(step, "SendCancel")
