"""DynamoBatches (on moto, the template's table) behaves as the in-memory BatchStore the domain
spec runs on: items move once from each status with the batch's counts, the failed ones are found
by status and the open ones by their cancellation, the lease is one holder's, and nothing stored
makes a read fail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cancelflow.adapters.dynamodb.batches import DynamoBatches
from cancelflow.batches.model import Batch, BatchItem, BatchStatus, ItemRequest, ItemStatus
from local import moto_fixes
from local.template import REGION, Template
from tests.fakes.batches import MemoryBatches
from tests.fakes.examples import NOW, SHOP

BATCH = Batch(
    shop_id=SHOP,
    batch_id="cbt_000000000000000000000001",
    status=BatchStatus.QUEUED,
    total=3,
    tps=5.0,
    created_at=NOW,
    updated_at=NOW,
    counts={"PENDING": 3},
)
ITEMS = [
    BatchItem(seq=n, request=ItemRequest(tno=f"2026112300000{n}", reason_code="DEFECTIVE"))
    for n in (1, 2, 3)
]


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[tuple[Any, dict[str, Any]]]:
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.setenv(name, "test")
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        moto_fixes.install()
        with mock_aws():
            (table,) = Template().table_definitions()
            yield boto3.client("dynamodb", region_name=REGION), table["create"]


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryBatches()
        return
    client, create = request.getfixturevalue("dynamodb")
    client.create_table(**create)
    try:
        yield DynamoBatches(client, create["TableName"])
    finally:
        client.delete_table(TableName=create["TableName"])


def _created(store: Any) -> Any:
    store.create_batch(BATCH, ITEMS, "key-1", "print", NOW + timedelta(days=90))
    return store


def test_a_batch_is_read_back_with_its_items_and_its_key(store: Any) -> None:
    _created(store)
    got = store.get_batch(SHOP, BATCH.batch_id)
    assert got is not None and (got.status, got.total, got.count(ItemStatus.PENDING)) == (
        BatchStatus.QUEUED,
        3,
        3,
    )
    assert [i.seq for i in store.items(SHOP, BATCH.batch_id, 2, 3)] == [2, 3]
    assert store.batch_for_key(SHOP, "key-1") == ("print", BATCH.batch_id)
    assert store.get_batch("another-shop", BATCH.batch_id) is None


def test_an_item_moves_once_and_the_counts_with_it(store: Any) -> None:
    _created(store)
    failed = BatchItem(
        seq=2,
        request=ITEMS[1].request,
        status=ItemStatus.FAILED,
        reasons=("GATEWAY_DECLINED",),
        updated_at=NOW,  # the lane stamps every outcome it records
    )
    assert store.record_item(BATCH, ITEMS[1], failed) is True
    assert store.record_item(BATCH, ITEMS[1], failed) is False  # a re-run counts nothing
    got = store.get_batch(SHOP, BATCH.batch_id)
    assert (got.count(ItemStatus.PENDING), got.count(ItemStatus.FAILED)) == (2, 1)
    page, more = store.item_page(SHOP, BATCH.batch_id, "FAILED", 0, 10)
    assert [(i.seq, i.reasons) for i in page] == [(2, ("GATEWAY_DECLINED",))] and more is None
    first, after = store.item_page(SHOP, BATCH.batch_id, None, 0, 2)
    assert [i.seq for i in first] == [1, 2] and after == 2


def test_an_open_item_is_found_by_its_cancellation_and_moves_once_to_its_outcome(
    store: Any,
) -> None:
    _created(store)
    assert store.item_for_cancellation(SHOP, "cnl_1") is None
    handed_on = BatchItem(
        seq=3,
        request=ITEMS[2].request,
        status=ItemStatus.OPEN,
        cancellation_id="cnl_1",
        updated_at=NOW,
    )
    assert store.record_item(BATCH, ITEMS[2], handed_on) is True
    assert store.item_for_cancellation(SHOP, "cnl_1") == (BATCH.batch_id, 3)
    assert store.item_for_cancellation("another-shop", "cnl_1") is None
    got_item = store.get_item(SHOP, BATCH.batch_id, 3)
    assert (got_item.status, got_item.cancellation_id) == (ItemStatus.OPEN, "cnl_1")
    settled = BatchItem(
        seq=3,
        request=ITEMS[2].request,
        status=ItemStatus.SUCCEEDED,
        cancellation_id="cnl_1",
        updated_at=NOW,
    )
    assert store.record_item(BATCH, handed_on, settled) is True
    assert store.record_item(BATCH, handed_on, settled) is False  # a repeated event
    got = store.get_batch(SHOP, BATCH.batch_id)
    assert {k: v for k, v in got.counts.items() if v} == {"PENDING": 2, "SUCCEEDED": 1}
    assert store.item_page(SHOP, BATCH.batch_id, "OPEN", 0, 10) == ([], None)
    assert store.get_item(SHOP, BATCH.batch_id, 3).status is ItemStatus.SUCCEEDED


def test_an_open_item_that_failed_moves_from_one_status_list_to_the_other(store: Any) -> None:
    _created(store)
    handed_on = BatchItem(
        seq=1,
        request=ITEMS[0].request,
        status=ItemStatus.OPEN,
        cancellation_id="cnl_2",
        updated_at=NOW,
    )
    failed = replace(handed_on, status=ItemStatus.FAILED, reasons=("GATEWAY_DECLINED",))
    assert store.record_item(BATCH, ITEMS[0], handed_on) is True
    assert store.record_item(BATCH, handed_on, failed) is True
    assert store.item_page(SHOP, BATCH.batch_id, "OPEN", 0, 10) == ([], None)
    page, _ = store.item_page(SHOP, BATCH.batch_id, "FAILED", 0, 10)
    assert [(i.seq, i.reasons) for i in page] == [(1, ("GATEWAY_DECLINED",))]
    assert store.item_for_cancellation(SHOP, "cnl_2") == (BATCH.batch_id, 1)


def test_an_item_without_a_cancellation_is_found_by_none(store: Any) -> None:
    _created(store)
    rejected = BatchItem(
        seq=2,
        request=ITEMS[1].request,
        status=ItemStatus.FAILED,
        reasons=("INTERNAL_ERROR",),
        updated_at=NOW,
    )
    assert store.record_item(BATCH, ITEMS[1], rejected) is True
    assert store.item_for_cancellation(SHOP, "") is None


def test_a_status_moves_only_from_where_it_is_allowed(store: Any) -> None:
    _created(store)
    running = store.set_status(
        BATCH, BatchStatus.RUNNING, frozenset({BatchStatus.QUEUED}), NOW, "exec:1"
    )
    assert running is not None and running.execution_id == "exec:1"
    again = store.set_status(BATCH, BatchStatus.RUNNING, frozenset({BatchStatus.QUEUED}), NOW)
    assert again is None


def test_the_shops_lease_has_one_holder_until_given_back(store: Any) -> None:
    running = lambda _: True  # noqa: E731
    assert store.take_lease(SHOP, "exec:a", NOW, running) is None
    assert store.take_lease(SHOP, "exec:b", NOW, running) == "exec:a"
    assert store.take_lease(SHOP, "exec:b", NOW, lambda _: False) is None  # a dead holder's
    store.release_lease(SHOP, "exec:a")  # not the holder any more: nothing changes
    assert store.take_lease(SHOP, "exec:c", NOW, running) == "exec:b"
    store.release_lease(SHOP, "exec:b")
    assert store.take_lease(SHOP, "exec:c", NOW, running) is None


def test_an_unreadable_batch_or_item_never_makes_a_read_fail(dynamodb: Any) -> None:
    client, create = dynamodb
    client.create_table(**create)
    try:
        store = _created(DynamoBatches(client, create["TableName"]))
        pk = f"SHOP#{SHOP}#BATCH#{BATCH.batch_id}"
        for sk, field in (("ITEM#00002", "status"), ("BATCH", "total")):
            client.update_item(
                TableName=create["TableName"],
                Key={"PK": {"S": pk}, "SK": {"S": sk}},
                UpdateExpression="SET #f = :bad",
                ExpressionAttributeNames={"#f": field},
                ExpressionAttributeValues={":bad": {"S": "???"}},
            )
        assert [i.seq for i in store.items(SHOP, BATCH.batch_id, 1, 3)] == [1, 3]
        assert store.get_batch(SHOP, BATCH.batch_id) is None
    finally:
        client.delete_table(TableName=create["TableName"])
