"""Workflow step: email the outcome to the customer and the shop."""

from typing import TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations.emails import send_outcome

logger = Logger()


class NotifyEvent(TypedDict):
    """What the state machine's Notify state passes (statemachine/cancel_refund.asl.json)."""

    shop_id: str
    cancellation_id: str
    execution_id: str


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: NotifyEvent, context: LambdaContext) -> dict:
    store = runtime.store()
    shop = runtime.shop(event["shop_id"])
    language = store.get_policy(shop.shop_id).email_language
    sent = send_outcome(store, runtime.mailer(), shop, event["cancellation_id"], language)
    return {"sent": sent}
