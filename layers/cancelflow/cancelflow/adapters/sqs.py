"""The webhook delivery queue (SQS FIFO): one group per endpoint and resource keeps a
resource's events in order; retries hide a message for its backoff (ChangeMessageVisibility)."""

from __future__ import annotations

import json
from typing import Any

from cancelflow.webhooks.ports import Job


class SqsQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def enqueue(self, job: Job, group: str, dedup: str) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps(job.doc()),
            MessageGroupId=group[:128],
            MessageDeduplicationId=dedup[:128],
        )

    def later(self, receipt_handle: str, seconds: int) -> None:
        """Show the message again in `seconds` (the next attempt)."""
        self._sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


def job_from(body: str) -> Job:
    doc = json.loads(body)
    return Job(doc["shop_id"], doc["endpoint_id"], doc["event_id"], bool(doc.get("manual")))
