"""`make reindex [STACK=… REGION=…]`: give every cancellation record the index keys today's
code writes, once, after a deploy that added an index (OpenReviews, CancellationById, …).

Records written before an index existed are invisible to it: a case left NEEDS_REVIEW before
reviews were kept is not in the review queue, an old cancellation is not found by id across
shops. Each record is read and its keys recomputed by the store's own item mapping (one place
for the key schema); a NEEDS_REVIEW case without a review gets one (cancellations.review.as_queued).
Each write is conditional on the record being unchanged since it was read: a record the
workflow changed meanwhile already has its keys (every write puts them) and is skipped. Run it
again: it changes nothing (idempotent). It scans the table, so it is an operator's one-off
command, never part of a request.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import boto3

from cancelflow.adapters.dynamodb.store import DynamoStore
from cancelflow.cancellations.review import as_queued
from cancelflow.kernel.errors import Conflict
from local.bill import stack_env
from local.template import REGION


def reindex(client: Any, table: str) -> Counter[str]:
    """Re-index every cancellation; counts of REINDEXED, UNCHANGED and CHANGED_MEANWHILE."""
    store = DynamoStore(client, table)
    counts: Counter[str] = Counter()
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#t = :t",
        "ExpressionAttributeNames": {"#t": "type"},
        "ExpressionAttributeValues": {":t": {"S": "CANCELLATION"}},
    }
    while True:
        page = client.scan(**kwargs)
        for raw in page["Items"]:
            try:
                changed = store.reindex_record(raw, as_queued)
            except Conflict:
                counts["CHANGED_MEANWHILE"] += 1
                continue
            if changed is not None:
                counts["REINDEXED" if changed else "UNCHANGED"] += 1
        if "LastEvaluatedKey" not in page:
            return counts
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _table(stack: str | None, region: str | None) -> tuple[Any, str]:
    if stack:  # a deployed stack, with the caller's AWS credentials
        session = boto3.session.Session(region_name=region)
        (described,) = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        return session.client("dynamodb"), outputs["LedgerTableName"]
    env = stack_env()
    client: Any = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "local"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "local"),
    )
    return client, env["TABLE_NAME"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", help="a deployed stack's name (default: the local stack)")
    parser.add_argument("--region", help="the deployed stack's region (default: the CLI's)")
    args = parser.parse_args()
    counts = reindex(*_table(args.stack, args.region))
    for name in ("REINDEXED", "UNCHANGED", "CHANGED_MEANWHILE"):
        print(f"{name:<18} {counts[name]}")


if __name__ == "__main__":
    main()
