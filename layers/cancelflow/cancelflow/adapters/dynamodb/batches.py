"""The BatchStore on the one table (its layout: table.py).

A batch's items share its partition, so a lane reads its run of items with one Query per page
(reads follow items). An item that did not succeed is also put in a sparse index by status, so
"what failed, and why" is read without going through the items that succeeded. An OPEN or
FAILED item is also named by its cancellation (BATCHFOLLOW), which its later events look up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from cancelflow.adapters.dynamodb.table import (
    LIST_INDEX,
    cancellation_reasons,
    error_code,
    key_hash,
    marshal,
    text_of,
    time_from,
    unmarshal,
)
from cancelflow.batches.model import (
    COUNTED,
    FOLLOWED,
    Batch,
    BatchItem,
    BatchStatus,
    ItemRequest,
    ItemStatus,
)
from cancelflow.kernel.errors import Conflict

PAGE = 100  # items per Query page a lane reads
WRITERS = 4  # item transactions in flight while a batch is created
TRANSACTION = 100  # items per transaction (DynamoDB's most)
CONFLICT_TRIES = 8  # lanes recording at once contend for the batch's counts


def _partition(shop_id: str, batch_id: str) -> str:
    return f"SHOP#{shop_id}#BATCH#{batch_id}"


def _batch_key(shop_id: str, batch_id: str) -> dict[str, str]:
    return {"PK": _partition(shop_id, batch_id), "SK": "BATCH"}


def _item_key(shop_id: str, batch_id: str, seq: int) -> dict[str, str]:
    return {"PK": _partition(shop_id, batch_id), "SK": f"ITEM#{seq:05d}"}


def _idempotency_key(shop_id: str, key: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#BATCHKEY#{key_hash(key)}", "SK": "BATCHKEY"}


def _lease_key(shop_id: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#BATCHLEASE", "SK": "LEASE"}


def _follow_key(shop_id: str, cancellation_id: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#BATCHFOLLOW#{cancellation_id}", "SK": "BATCHFOLLOW"}


def _item_item(shop_id: str, batch_id: str, item: BatchItem, expires: int) -> dict[str, Any]:
    ask = item.request
    return _item_key(shop_id, batch_id, item.seq) | {
        "type": "BATCH_ITEM",
        "seq": item.seq,
        "tno": ask.tno,
        "amount": ask.amount,
        "reason_code": ask.reason_code,
        "reason": ask.reason,
        "status": item.status.value,
        "expires_at": expires,
    }


def _batch_item(b: Batch, expires: int) -> dict[str, Any]:
    return _batch_key(b.shop_id, b.batch_id) | {
        "type": "BATCH",
        "shop_id": b.shop_id,
        "batch_id": b.batch_id,
        "status": b.status.value,
        "total": b.total,
        "tps": str(b.tps),
        "counts": {s.value: int(b.counts.get(s.value, 0)) for s in COUNTED},
        "created_at": text_of(b.created_at),
        "updated_at": text_of(b.updated_at),
        "expires_at": expires,
    }


def batch_from(i: dict[str, Any]) -> Batch:
    return Batch(
        shop_id=i["shop_id"],
        batch_id=i["batch_id"],
        status=BatchStatus(i["status"]),
        total=int(i["total"]),
        tps=float(i["tps"]),
        created_at=time_from(i["created_at"]),  # type: ignore[arg-type]
        updated_at=time_from(i["updated_at"]),  # type: ignore[arg-type]
        counts={k: int(v) for k, v in (i.get("counts") or {}).items()},
        execution_id=str(i.get("execution_id", "")),
        started_at=time_from(i.get("started_at")),
        finished_at=time_from(i.get("finished_at")),
    )


def item_from(i: dict[str, Any]) -> BatchItem:
    return BatchItem(
        seq=int(i["seq"]),
        request=ItemRequest(
            tno=str(i["tno"]),
            reason_code=str(i["reason_code"]),
            reason=str(i.get("reason", "")),
            amount=int(i["amount"]) if i.get("amount") is not None else None,
        ),
        status=ItemStatus(i["status"]),
        cancellation_id=str(i.get("cancellation_id", "")),
        reasons=tuple(i.get("reasons") or ()),
        detail=str(i.get("detail", "")),
        updated_at=time_from(i.get("updated_at")),
    )


class DynamoBatches:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    # --- the API's ---------------------------------------------------------------------

    def create_batch(
        self,
        batch: Batch,
        items: Sequence[BatchItem],
        idempotency_key: str,
        fingerprint: str,
        expires_at: datetime,
    ) -> None:
        expires = int(expires_at.timestamp())

        def write(first: int) -> None:  # one transaction's rows at a time, not all 10,000
            chunk = items[first : first + TRANSACTION]
            self._write_all([_item_item(batch.shop_id, batch.batch_id, i, expires) for i in chunk])

        with ThreadPoolExecutor(WRITERS) as pool:  # items first: a batch never lacks one
            list(pool.map(write, range(0, len(items), TRANSACTION)))
        key = _idempotency_key(batch.shop_id, idempotency_key) | {
            "type": "BATCH_KEY",
            "body_hash": fingerprint,
            "batch_id": batch.batch_id,
            "expires_at": expires,
        }
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {"Put": self._new(_batch_item(batch, expires))},
                    {"Put": self._new(key)},
                ]
            )
        except ClientError as e:
            if error_code(e) == "TransactionCanceledException":
                raise Conflict("batch key taken") from e
            raise

    def _new(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Item": marshal(item),
            "ConditionExpression": "attribute_not_exists(PK)",
        }

    def _write_all(self, rows: list[dict[str, Any]]) -> None:
        # Puts in a transaction, not BatchWriteItem (which may delete: no function may).
        puts = [{"Put": {"TableName": self._table, "Item": marshal(r)}} for r in rows]
        for n in range(CONFLICT_TRIES):
            try:
                self._db.transact_write_items(TransactItems=puts)
                return
            except ClientError as e:
                if error_code(e) != "TransactionCanceledException":
                    raise
                time.sleep(0.05 * (2**n))
        raise Conflict("DynamoDB kept refusing the batch's items")  # nothing is started

    def batch_for_key(self, shop_id: str, idempotency_key: str) -> tuple[str, str] | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=marshal(_idempotency_key(shop_id, idempotency_key)),
            ConsistentRead=True,
        )
        if "Item" not in answer:
            return None
        i = unmarshal(answer["Item"])
        return str(i["body_hash"]), str(i["batch_id"])

    def get_batch(self, shop_id: str, batch_id: str) -> Batch | None:
        answer = self._db.get_item(
            TableName=self._table, Key=marshal(_batch_key(shop_id, batch_id)), ConsistentRead=True
        )
        if "Item" not in answer:
            return None
        i = unmarshal(answer["Item"])
        try:  # stored data never makes a read fail: an unreadable batch is not found
            return batch_from(i) if i.get("shop_id") == shop_id else None
        except (KeyError, ValueError, TypeError):
            return None

    def item_page(
        self, shop_id: str, batch_id: str, status: str | None, after: int, limit: int
    ) -> tuple[list[BatchItem], int | None]:
        if status and status != ItemStatus.SUCCEEDED.value and status != ItemStatus.PENDING.value:
            kwargs: dict[str, Any] = {  # the sparse index: only items that did not succeed
                "IndexName": LIST_INDEX,
                "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK > :after",
                "ExpressionAttributeValues": marshal(
                    {":pk": f"{_partition(shop_id, batch_id)}#{status}", ":after": f"{after:05d}"}
                ),
            }
        else:
            values = {
                ":pk": _partition(shop_id, batch_id),
                ":after": f"ITEM#{after:05d}",
                ":end": "ITEM#~",
            }
            kwargs = {
                "KeyConditionExpression": "PK = :pk AND SK BETWEEN :after AND :end",
                "ExpressionAttributeValues": marshal(values),
            }
            if status:  # SUCCEEDED or PENDING: most items, so read through them
                kwargs["FilterExpression"] = "#status = :status"
                kwargs["ExpressionAttributeNames"] = {"#status": "status"}
                kwargs["ExpressionAttributeValues"] |= marshal({":status": status})
        found: list[BatchItem] = []
        while len(found) <= limit:
            page = self._db.query(TableName=self._table, Limit=limit + 1, **kwargs)
            for raw in page["Items"]:
                item = _readable(unmarshal(raw))
                if item is not None and item.seq > after:
                    found.append(item)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        more = len(found) > limit
        found = found[:limit]
        return found, (found[-1].seq if more and found else None)

    # --- the execution's ---------------------------------------------------------------

    def items(self, shop_id: str, batch_id: str, first: int, last: int) -> Iterator[BatchItem]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :first AND :last",
            "ExpressionAttributeValues": marshal(
                {
                    ":pk": _partition(shop_id, batch_id),
                    ":first": f"ITEM#{first:05d}",
                    ":last": f"ITEM#{last:05d}",
                }
            ),
            "ConsistentRead": True,  # what an earlier run of the lane recorded
            "Limit": PAGE,
        }
        while True:
            page = self._db.query(**kwargs)
            for raw in page["Items"]:
                item = _readable(unmarshal(raw))
                if item is not None:
                    yield item
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_item(self, shop_id: str, batch_id: str, seq: int) -> BatchItem | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=marshal(_item_key(shop_id, batch_id, seq)),
            ConsistentRead=True,
        )
        return _readable(unmarshal(answer["Item"])) if "Item" in answer else None

    def item_for_cancellation(self, shop_id: str, cancellation_id: str) -> tuple[str, int] | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=marshal(_follow_key(shop_id, cancellation_id)),
            ConsistentRead=True,  # written a moment before the event that looks it up
        )
        if "Item" not in answer:
            return None
        i = unmarshal(answer["Item"])
        try:
            return str(i["batch_id"]), int(i["seq"])
        except (KeyError, ValueError, TypeError):
            return None

    def record_item(self, batch: Batch, before: BatchItem, after: BatchItem) -> bool:
        part = _partition(batch.shop_id, batch.batch_id)
        values: dict[str, Any] = {
            ":from": before.status.value,
            ":status": after.status.value,
            ":cid": after.cancellation_id,
            ":reasons": list(after.reasons),
            ":detail": after.detail,
            ":at": text_of(after.updated_at),
        }
        sets = [
            "#status = :status",
            "cancellation_id = :cid",
            "reasons = :reasons",
            "detail = :detail",
            "updated_at = :at",
        ]
        removes = []
        if after.status is not ItemStatus.SUCCEEDED:  # the sparse index of what did not succeed
            sets += ["GSI1PK = :gpk", "GSI1SK = :gsk"]
            values |= {":gpk": f"{part}#{after.status.value}", ":gsk": f"{after.seq:05d}"}
        else:
            removes = ["GSI1PK", "GSI1SK"]  # an OPEN item that succeeded leaves the index
        item_update = {
            "Update": {
                "TableName": self._table,
                "Key": marshal(_item_key(batch.shop_id, batch.batch_id, after.seq)),
                "UpdateExpression": "SET "
                + ", ".join(sets)
                + (" REMOVE " + ", ".join(removes) if removes else ""),
                "ConditionExpression": "#status = :from",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": marshal(values),
            }
        }
        counts_update = {
            "Update": {
                "TableName": self._table,
                "Key": marshal(_batch_key(batch.shop_id, batch.batch_id)),
                "UpdateExpression": "SET #c.#from = #c.#from - :one, #c.#to = #c.#to + :one, "
                "updated_at = :at",
                "ExpressionAttributeNames": {
                    "#c": "counts",
                    "#from": before.status.value,
                    "#to": after.status.value,
                },
                "ExpressionAttributeValues": marshal({":one": 1, ":at": text_of(after.updated_at)}),
            }
        }
        writes = [item_update, counts_update]
        if after.status in FOLLOWED and after.cancellation_id:
            # Found by the cancellation's later events (the same Put each time: no condition).
            follow = _follow_key(batch.shop_id, after.cancellation_id) | {
                "type": "BATCH_FOLLOW",
                "batch_id": batch.batch_id,
                "seq": after.seq,
                "expires_at": int(batch.expires_at.timestamp()),
            }
            writes.append({"Put": {"TableName": self._table, "Item": marshal(follow)}})
        for n in range(CONFLICT_TRIES):
            try:
                self._db.transact_write_items(TransactItems=writes)
                return True
            except ClientError as e:
                if error_code(e) != "TransactionCanceledException":
                    raise
                if cancellation_reasons(e, len(writes))[0] == "ConditionalCheckFailed":
                    return False  # moved already (an earlier run, another event): counted once
                time.sleep(0.02 * (2**n))  # another lane's record of the same counts
        raise Conflict("the batch's counts stayed busy")

    def set_status(
        self,
        batch: Batch,
        status: BatchStatus,
        allowed_from: frozenset[BatchStatus],
        at: datetime,
        execution_id: str = "",
    ) -> Batch | None:
        names = {"#status": "status"}
        values: dict[str, Any] = {":status": status.value, ":at": text_of(at)}
        sets = ["#status = :status", "updated_at = :at"]
        if status is BatchStatus.RUNNING:
            sets += ["started_at = :at", "execution_id = :eid"]
            values[":eid"] = execution_id
        if status in (BatchStatus.COMPLETED, BatchStatus.CANCELLED):
            sets.append("finished_at = :at")
        allowed = []
        for n, s in enumerate(sorted(allowed_from)):
            values[f":from{n}"] = s.value
            allowed.append(f":from{n}")
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=marshal(_batch_key(batch.shop_id, batch.batch_id)),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"#status IN ({', '.join(allowed)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=marshal(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return None
            raise
        return batch_from(unmarshal(answer["Attributes"]))

    def take_lease(
        self, shop_id: str, holder: str, at: datetime, still_running: Callable[[str], bool]
    ) -> str | None:
        key = _lease_key(shop_id)
        for _ in range(3):
            answer = self._db.get_item(TableName=self._table, Key=marshal(key), ConsistentRead=True)
            current = unmarshal(answer["Item"]).get("holder") if "Item" in answer else None
            if current == holder:
                return None
            if current and still_running(str(current)):
                return str(current)
            condition = "holder = :seen" if current else "attribute_not_exists(holder)"
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=marshal(key | {"holder": holder, "taken_at": text_of(at)}),
                    ConditionExpression=condition,
                    **(
                        {"ExpressionAttributeValues": marshal({":seen": current})}
                        if current
                        else {}
                    ),
                )
                return None
            except ClientError as e:
                if error_code(e) != "ConditionalCheckFailedException":
                    raise
        raise Conflict("the shop's batch lease keeps changing hands")

    def release_lease(self, shop_id: str, holder: str) -> None:
        try:  # the item stays, without a holder (no function may delete)
            self._db.update_item(
                TableName=self._table,
                Key=marshal(_lease_key(shop_id)),
                UpdateExpression="REMOVE holder",
                ConditionExpression="holder = :me",
                ExpressionAttributeValues=marshal({":me": holder}),
            )
        except ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":
                raise  # another execution holds it now: leave it


def _readable(i: dict[str, Any]) -> BatchItem | None:
    # Stored data never makes a read fail: an item that cannot be read is left out.
    try:
        return item_from(i)
    except (KeyError, ValueError, TypeError):
        return None
