"""The cost bench's arithmetic: DynamoDB item sizes and request units as on-demand bills them,
index writes, billed transitions, and the price of 1,000 cancels (bench/cost.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench.cost import Figures, cost_per_1000
from local.metering import (
    Index,
    Meter,
    item_size,
    read_units,
    state_transitions,
    value_size,
    write_units,
)


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    assert item_size({"PK": {"S": "PAY#1"}}) == 2 + 5
    assert item_size({"상품": {"S": "티셔츠"}}) == 6 + 9  # UTF-8: 3 bytes a Hangul syllable
    assert value_size({"N": "15000"}) == 2  # "15": one byte per two digits, plus one
    assert value_size({"N": "-0.00123"}) == 3  # "123": zeros trimmed
    assert value_size({"BOOL": True}) == value_size({"NULL": True}) == 1
    assert value_size({"B": "AAEC"}) == 3  # raw bytes, not base64
    assert value_size({"SS": ["ab", "c"]}) == 3
    assert value_size({"L": [{"S": "ab"}, {"N": "7"}]}) == 3 + (1 + 2) + (1 + 2)
    assert value_size({"M": {"k": {"S": "v"}}}) == 3 + 1 + 1 + 1
    assert item_size(None) == 0


def test_read_units_round_up_to_4_kb_halved_when_eventually_consistent() -> None:
    assert read_units(3500) == 0.5
    assert read_units(3500, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2
    assert read_units(8192, transactional=True) == 4
    assert read_units(0) == 0.5  # an item not found still costs a read


def test_write_units_round_up_to_1_kb_doubled_in_a_transaction() -> None:
    assert write_units(1024) == 1
    assert write_units(1025) == 2
    assert write_units(3 * 1024, transactional=True) == 6
    assert write_units(0) == 1


INDEX = Index("ToSweep", ("G", "GS"), ("PK", "SK"), "INCLUDE", ("tno",))
KEYS = {"PK": {"S": "a"}, "SK": {"S": "b"}}


def test_an_index_is_written_only_when_its_entry_changes() -> None:
    entry = {"G": {"S": "open"}, "GS": {"S": "1"}, "tno": {"S": "t"}}
    inside = KEYS | entry
    assert INDEX.writes(None, KEYS) == []  # sparse: not in the index
    assert INDEX.writes(None, inside) == [item_size(inside)]  # put
    assert INDEX.writes(inside, KEYS) == [item_size(inside)]  # removed
    assert INDEX.writes(inside, inside | {"other": {"S": "x"}}) == []  # not projected
    moved = inside | {"GS": {"S": "2"}}
    assert INDEX.writes(inside, moved) == [item_size(inside), item_size(moved)]  # delete + put
    renamed = inside | {"tno": {"S": "tt"}}
    assert INDEX.writes(inside, renamed) == [item_size(renamed)]  # updated in place


def _event(kind: str) -> dict[str, Any]:
    return {"type": kind}


def test_billed_transitions_are_states_entered_plus_task_retries() -> None:
    history = [
        _event("ExecutionStarted"),
        _event("TaskStateEntered"),
        _event("LambdaFunctionScheduled"),
        _event("LambdaFunctionFailed"),
        _event("LambdaFunctionScheduled"),  # a retry
        _event("LambdaFunctionSucceeded"),
        _event("TaskStateExited"),
        _event("ChoiceStateEntered"),
        _event("ChoiceStateExited"),
        _event("SucceedStateEntered"),
        _event("ExecutionSucceeded"),
    ]
    assert state_transitions(history) == 3 + 1


def test_1000_cancels_are_priced_at_seoul_list_prices() -> None:
    bill = cost_per_1000(Figures(7, 5, 0.1, 16, 36, 2))
    assert bill["Step Functions transitions"] == pytest.approx(0.1897)  # 7 x $0.0271 / 1,000
    assert bill["Lambda requests"] == pytest.approx(0.001)  # 5,000 x $0.20 / million
    assert bill["Lambda duration (arm64)"] == pytest.approx(0.00133334)  # 100 GB-s
    assert bill["DynamoDB reads"] == pytest.approx(0.002168)  # 16,000 x $0.1355 / million
    assert bill["DynamoDB writes"] == pytest.approx(0.02448)  # 36,000 x $0.68 / million
    assert bill["SES messages"] == pytest.approx(0.2)  # 2,000 x $0.10 / 1,000


@pytest.fixture
def metered() -> Iterator[tuple[Any, Meter]]:
    meter = Meter()
    with mock_aws():
        meter.install_services()
        try:
            db = boto3.client("dynamodb", region_name="ap-northeast-2")
            db.create_table(
                TableName="ledger",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": a, "AttributeType": "S"} for a in ("PK", "SK", "G")
                ],
                KeySchema=[
                    {"AttributeName": "PK", "KeyType": "HASH"},
                    {"AttributeName": "SK", "KeyType": "RANGE"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "ByG",
                        "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                ],
            )
            yield db, meter
        finally:
            meter.uninstall()


BIG = {"PK": {"S": "a"}, "SK": {"S": "b"}, "G": {"S": "x"}, "note": {"S": "y" * 2000}}


def test_the_meter_counts_what_dynamodb_would_bill(metered: tuple[Any, Meter]) -> None:
    db, meter = metered
    db.put_item(TableName="ledger", Item=BIG)  # 2,012 bytes: 2 units, 1 to the index
    usage = meter.take()
    assert (usage.total("write_units"), usage.total("index_write_units")) == (3, 1)

    db.get_item(TableName="ledger", Key={"PK": {"S": "a"}, "SK": {"S": "b"}}, ConsistentRead=True)
    db.query(  # billed for the item read, though the filter returns nothing
        TableName="ledger",
        KeyConditionExpression="PK = :p",
        FilterExpression="attribute_exists(nothing)",
        ExpressionAttributeValues={":p": {"S": "a"}},
    )
    assert meter.take().total("read_units") == 1 + 0.5

    with pytest.raises(db.exceptions.ConditionalCheckFailedException):
        db.delete_item(
            TableName="ledger",
            Key={"PK": {"S": "a"}, "SK": {"S": "b"}},
            ConditionExpression="attribute_not_exists(PK)",
        )
    assert meter.take().total("write_units") == 2  # a failed condition still costs the write

    db.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": "ledger",
                    "Key": {"PK": {"S": "a"}, "SK": {"S": "b"}},
                    "UpdateExpression": "SET G = :g",
                    "ExpressionAttributeValues": {":g": {"S": "z"}},
                }
            }
        ]
    )
    usage = meter.take()  # 2 x 2 for the item, and the index key moved: delete + put
    assert (usage.total("write_units"), usage.total("index_write_units")) == (6, 2)


def test_the_meter_never_changes_an_answer(metered: tuple[Any, Meter]) -> None:
    db, meter = metered
    with pytest.raises(db.exceptions.ResourceNotFoundException):
        db.get_item(TableName="no-such-table", Key={"PK": {"S": "a"}})
    assert meter.take().total("read_units") == 0  # refused: nothing read, nothing billed
