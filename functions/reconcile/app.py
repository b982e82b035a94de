"""Workflow step: ask KCP whether a cancel of unknown fate was applied (never resend)."""

from typing import TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import cancellations, logs, runtime

logger = Logger()


class ReconcileEvent(TypedDict):
    """What the state machine's Reconcile state passes (statemachine/cancel_refund.asl.json)."""

    shop_id: str
    cancellation_id: str
    execution_id: str
    tries: int
    max_tries: int


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: ReconcileEvent, context: LambdaContext) -> dict:
    shop = runtime.shop(event["shop_id"])
    return cancellations.reconcile(
        runtime.store(),
        runtime.gateway_for(shop),
        runtime.clock,
        shop.shop_id,
        event["cancellation_id"],
        tries=int(event["tries"]),
        max_tries=int(event["max_tries"]),
    )
