"""Workflow step: ask KCP whether a cancel of unknown fate was applied (never resend)."""

from aws_lambda_powertools import Logger

from cancelflow import runtime
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.steps import Step, handed_on, received

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="execution_id")
def handler(event: dict, context: object) -> Step:
    shop = runtime.shop(event["shop_id"])
    # An execution started before a deploy runs the old definition, which passes `tries`.
    tries = event["tries"] if "tries" in event else received(event["step"]).get("tries", 0)
    step = cancellations.reconcile(
        runtime.store(),
        runtime.gateway_for(shop),
        runtime.clock,
        shop.shop_id,
        event["cancellation_id"],
        tries=int(tries),
        max_tries=int(event["max_tries"]),
    )
    return handed_on(step, "Reconcile")
