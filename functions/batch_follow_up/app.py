"""The Ledger's stream (cancellation outcome events only, by the mapping's filter) -> the batch
item of that cancellation, if it is one, follows its outcome (batches.service.follow)."""

from aws_lambda_powertools import Logger

from cancelflow import runtime
from cancelflow.adapters.dynamodb.table import event_from, unmarshal
from cancelflow.batches import service as batches

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    failures = []
    for record in event.get("Records", []):
        try:
            outcome = event_from(unmarshal(record["dynamodb"]["NewImage"]))
            moved = batches.follow(
                runtime.batches(), runtime.store(), runtime.clock, outcome.shop_id, outcome.resource
            )
            if moved:
                logger.info("batch item moved", seq=moved.seq, status=moved.status.value)
        except Exception:
            logger.exception("batch follow-up failed; the stream retries it")
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            break  # a stream's records stay in order: retry from the first that failed
    return {"batchItemFailures": failures}
