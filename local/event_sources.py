"""Lambda's event source mappings on the local stack: poll the template's DynamoDB streams and
SQS queues and invoke the mapped functions with Lambda-shaped batches, as the Lambda service
does (moto stores the streams and queues; it runs no pollers).

- Stream: each shard read in order from TRIM_HORIZON; records that pass the mapping's
  FilterCriteria are invoked in batches; a batch that raised, or that reported a failed item
  (ReportBatchItemFailures), is retried from that record after a pause, never skipped.
- Queue: ReceiveMessage, invoke, delete what succeeded; a failed message stays, and shows
  again when its visibility timeout ends (which the function may have changed: the backoff).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from datetime import datetime
from typing import Any

from local.lambdas import LocalLambdas
from local.template import ACCOUNT, REGION, Template

log = logging.getLogger("local.event_sources")


def _moto_shard(table: str) -> Any:
    """The table's stream as the embedded moto keeps it (one shard per table). Read here, not
    through GetRecords: moto serialises every record's image for each poll of each mapping,
    which cost the one server process more than all the requests it answers."""
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT][REGION].get_table(table).stream_shard


def matches(pattern: Any, value: Any) -> bool:
    """An event filter pattern (the subset mappings use: nested keys, lists of exact values,
    and {"exists": true|false} on a key that holds a plain value)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_key(p, value, k) for k, p in pattern.items())
    if isinstance(pattern, list):
        return any(value == p for p in pattern)
    return bool(pattern == value)


def _key(pattern: Any, value: dict[str, Any], key: str) -> bool:
    if key not in value:  # only a pattern asking for its absence passes a missing key
        return isinstance(pattern, list) and {"exists": False} in pattern
    plain = not isinstance(value[key], (dict, list))  # exists matches plain values only
    if isinstance(pattern, list) and {"exists": True} in pattern:
        return plain
    return matches(pattern, value[key])


def _plain_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    dynamodb = dict(record["dynamodb"])
    moment = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(moment, datetime):
        dynamodb["ApproximateCreationDateTime"] = moment.timestamp()
    return record | {"dynamodb": dynamodb, "eventSourceARN": stream_arn}


class EventSources:
    def __init__(
        self,
        template: Template,
        lambdas: LocalLambdas,
        client: Any,
        interval: float = 0.25,  # Lambda polls a stream's shards four times a second
        retry_pause: float = 1.0,
    ) -> None:
        self.template = template
        self.lambdas = lambdas
        self.client = client  # (service) -> a boto3 client of the local AWS
        self.interval = interval
        self.retry_pause = retry_pause
        self.mappings = template.event_source_mappings()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for mapping in self.mappings:
            run = self._stream if mapping["kind"] == "DynamoDB" else self._queue
            thread = threading.Thread(target=self._forever, args=(run, mapping), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _forever(self, run: Any, mapping: dict[str, Any]) -> None:
        try:
            run(mapping)
        except Exception:
            if not self._stop.is_set():
                log.exception(
                    "event source %s -> %s stopped", mapping["source"], mapping["function"]
                )

    def _function(self, mapping: dict[str, Any]) -> str:
        return self.template.physical_name(mapping["function"])

    # --- DynamoDB streams ----------------------------------------------------------------

    def _stream(self, mapping: dict[str, Any]) -> None:
        table = self.template.physical_name(mapping["source"])
        arn = self.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = _moto_shard(table)
        position = shard.starting_sequence_number  # TRIM_HORIZON
        while not self._stop.is_set():
            position = self._read_shard(mapping, shard, arn, position)
            self._stop.wait(self.interval)

    def _read_shard(self, mapping: dict[str, Any], shard: Any, arn: str, position: int) -> int:
        """Records from `position` on, as GetRecords answers them; returns where to go on."""
        start = position - shard.starting_sequence_number
        records = [_plain_record(r.to_json(), arn) for r in shard.items[start : start + 100]]
        filters = mapping["filters"]  # any one pattern passes a record; none: all pass
        wanted = [r for r in records if not filters or any(matches(f, r) for f in filters)]
        size = mapping["batch_size"]
        for first in range(0, len(wanted), size):
            batch = copy.deepcopy(wanted[first : first + size])  # the function's own copy
            failed = self._invoke_batch(mapping, batch, "SequenceNumber")
            if failed is not None:  # retry from the failed record: nothing after it is skipped
                self._stop.wait(self.retry_pause)
                return int(failed)
        return position + len(records)

    def _invoke_batch(self, mapping: dict[str, Any], batch: list[dict[str, Any]], key: str) -> Any:
        """None if the whole batch succeeded, else the first failed record's id."""
        try:
            result = self.lambdas.invoke(self._function(mapping), {"Records": batch})
        except Exception:
            log.exception("%s failed a batch; retrying it", mapping["function"])
            return batch[0]["dynamodb"][key]
        failures = (result or {}).get("batchItemFailures") or []
        return failures[0]["itemIdentifier"] if failures else None

    # --- SQS ---------------------------------------------------------------------------------

    def _queue(self, mapping: dict[str, Any]) -> None:
        sqs = self.client("sqs")
        name = self.template.physical_name(mapping["source"])
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        arn = self.template.arn(mapping["source"])
        while not self._stop.is_set():
            answer = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(mapping["batch_size"], 10),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                self._stop.wait(self.interval)
                continue
            batch = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": m.get("MessageAttributes", {}),
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
            try:
                result = self.lambdas.invoke(self._function(mapping), {"Records": batch})
                failed = {
                    f["itemIdentifier"] for f in (result or {}).get("batchItemFailures") or []
                }
            except Exception:
                log.exception("%s failed a batch; SQS shows it again", mapping["function"])
                failed = {m["messageId"] for m in batch}
            for m in batch:
                if m["messageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["receiptHandle"])
            time.sleep(0)  # let other pollers in
