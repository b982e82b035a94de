"""Workflow step: ask KCP whether a cancel of unknown fate was applied (never resend)."""

from typing import Any, NotRequired, TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.steps import Step, handed_on, received

logger = Logger()


class ReconcileEvent(TypedDict):
    """What the state machine's Reconcile state passes (statemachine/cancel_refund.asl.json).

    `step` is the last step's result, returned or caught; `tries` is what an execution started
    before a deploy passes instead (it runs its old definition against the new code)."""

    shop_id: str
    cancellation_id: str
    execution_id: str
    step: NotRequired[dict[str, Any]]
    tries: NotRequired[int]
    max_tries: int


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: ReconcileEvent, context: LambdaContext) -> Step:
    shop = runtime.shop(event["shop_id"])
    tries = event["tries"] if "tries" in event else received(event.get("step", {})).get("tries", 0)
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
