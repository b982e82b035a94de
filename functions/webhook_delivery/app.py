"""The delivery queue -> one signed POST per message; a failure hides the message for its
backoff (ChangeMessageVisibility) and reports it failed, so SQS shows it again then."""

from aws_lambda_powertools import Logger

from cancelflow import runtime
from cancelflow.adapters.sqs import job_from
from cancelflow.webhooks import service as webhooks

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    failures = []
    for record in event.get("Records", []):
        job = job_from(record["body"])
        try:
            wait = webhooks.deliver(
                runtime.webhook_store(),
                runtime.webhook_poster(),
                runtime.mailer(),
                runtime.clock,
                job,
                runtime.webhook_backoff_seconds(),
            )
        except Exception:
            logger.exception("delivery step failed; SQS shows the message again", job=job.doc())
            wait = None
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        logger.info("delivery attempt", job=job.doc(), retry_in=wait)
        if wait is not None:
            runtime.webhook_queue().later(record["receiptHandle"], wait)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
