"""Bulk cancel steps: begin (the shop's lease, the lanes) and finish (the batch's end)."""

from typing import Literal, TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.batches import service as batches

logger = Logger()


class RunEvent(TypedDict):
    """What statemachine/cancellation_batch.asl.json's Begin and Finish states pass."""

    action: Literal["begin", "finish"]
    shop_id: str
    batch_id: str
    execution_id: str


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: RunEvent, context: LambdaContext) -> dict:
    store, shop_id, batch_id = runtime.batches(), event["shop_id"], event["batch_id"]
    if event["action"] == "begin":
        out = batches.begin(
            store,
            runtime.clock,
            shop_id,
            batch_id,
            event["execution_id"],
            runtime.execution_running,
            runtime.batch_max_lanes(),
        )
        logger.info("batch begin", extra={"busy": out["busy"], "lanes": len(out.get("lanes", []))})
        return out
    out = batches.finish(store, runtime.clock, shop_id, batch_id, event["execution_id"])
    logger.info("batch finished", extra=out)
    return out
