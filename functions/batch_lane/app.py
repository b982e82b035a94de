"""Bulk cancel step: one lane's items, each an ordinary cancellation whose KCP call waits for one
of the lane's turns of the merchant's TPS budget."""

from typing import TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.batches import service as batches

logger = Logger()


class LaneEvent(TypedDict):
    """One lane of a batch (statemachine/cancellation_batch.asl.json): positions first..last,
    going on from `next`."""

    shop_id: str
    batch_id: str
    lane: int
    lanes: int
    first: int
    last: int
    next: int
    execution_id: str


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: LaneEvent, context: LambdaContext) -> dict:
    out = batches.run_lane(
        runtime.lane_deps(event["shop_id"]),
        event["batch_id"],
        int(event["lane"]),
        int(event["lanes"]),
        int(event["next"]),
        int(event["last"]),
        event["execution_id"],
        lambda: context.get_remaining_time_in_millis() / 1000,
    )
    logger.info("lane", extra={"lane": event["lane"], "done": out["done"], "more": out["more"]})
    return {
        "lane": event["lane"],
        "lanes": event["lanes"],
        "first": event["first"],
        "last": event["last"],
        "next": out["next"] if out["more"] else event["last"] + 1,
        "more": out["more"],
    }
