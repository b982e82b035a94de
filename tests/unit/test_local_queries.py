"""The local stack's DynamoDB answers an index Query from the items holding its key value
(local/moto_fixes.py, fix 3): whatever way an item was written since, the answer is DynamoDB's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_fixes

TABLE = "t"


@pytest.fixture
def db() -> Iterator[Any]:
    with mock_aws():
        moto_fixes.install()
        client = boto3.client("dynamodb", region_name="ap-northeast-2")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("PK", "SK", "G")
            ],
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "GSI1",
                    "KeySchema": [
                        {"AttributeName": "G", "KeyType": "HASH"},
                        {"AttributeName": "SK", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        yield client


def put(db: Any, sk: str, g: str | None = None, **more: str) -> None:
    item = {"PK": {"S": "P"}, "SK": {"S": sk}} | ({"G": {"S": g}} if g else {})
    db.put_item(TableName=TABLE, Item=item | {k: {"S": v} for k, v in more.items()})


def in_index(db: Any, g: str) -> list[str]:
    answer = db.query(
        TableName=TABLE,
        IndexName="GSI1",
        KeyConditionExpression="G = :g",
        ExpressionAttributeValues={":g": {"S": g}},
    )
    return [item["SK"]["S"] for item in answer["Items"]]


def key(sk: str) -> dict[str, Any]:
    return {"PK": {"S": "P"}, "SK": {"S": sk}}


def test_an_index_query_sees_puts_in_key_order_and_replacements(db: Any) -> None:
    put(db, "b", "open")
    put(db, "a", "open")
    assert in_index(db, "open") == ["a", "b"]
    put(db, "b", "done")  # replaced: leaves one value for another
    put(db, "c", "open")
    assert in_index(db, "open") == ["a", "c"]
    assert in_index(db, "done") == ["b"]


def test_an_update_moves_an_item_between_values_and_out_of_the_index(db: Any) -> None:
    put(db, "a", "open")
    put(db, "b", "open")
    assert in_index(db, "open") == ["a", "b"]  # the index exists from here on
    db.update_item(
        TableName=TABLE,
        Key=key("a"),
        UpdateExpression="SET G = :g",
        ExpressionAttributeValues={":g": {"S": "done"}},
    )
    db.update_item(TableName=TABLE, Key=key("b"), UpdateExpression="REMOVE G")
    db.update_item(
        TableName=TABLE,
        Key=key("new"),
        UpdateExpression="SET G = :g",
        ExpressionAttributeValues={":g": {"S": "open"}},
    )
    assert in_index(db, "open") == ["new"]
    assert in_index(db, "done") == ["a"]


def test_deletes_and_batch_writes_are_seen(db: Any) -> None:
    put(db, "a", "open")
    assert in_index(db, "open") == ["a"]
    db.batch_write_item(
        RequestItems={
            TABLE: [
                {"PutRequest": {"Item": key("b") | {"G": {"S": "open"}}}},
                {"DeleteRequest": {"Key": key("a")}},
            ]
        }
    )
    assert in_index(db, "open") == ["b"]
    db.delete_item(TableName=TABLE, Key=key("b"))
    assert in_index(db, "open") == []


def test_a_transaction_is_seen_whole_and_a_cancelled_one_not_at_all(db: Any) -> None:
    put(db, "a", "open")
    assert in_index(db, "open") == ["a"]
    db.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": key("b") | {"G": {"S": "open"}}}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": key("a"),
                    "UpdateExpression": "SET G = :g",
                    "ExpressionAttributeValues": {":g": {"S": "done"}},
                }
            },
        ]
    )
    assert (in_index(db, "open"), in_index(db, "done")) == (["b"], ["a"])
    with pytest.raises(db.exceptions.TransactionCanceledException):
        db.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": key("c") | {"G": {"S": "open"}}}},
                {
                    "Delete": {
                        "TableName": TABLE,
                        "Key": key("b"),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )
    assert (in_index(db, "open"), in_index(db, "done")) == (["b"], ["a"])
