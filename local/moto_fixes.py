"""Where moto's DynamoDB is not DynamoDB, made right for the local stack (and only there).

1. TransactWriteItems: moto deep-copies every table a transaction touches, then rolls back a
   cancelled one by swapping the whole copy back in. That costs time and memory in proportion to
   the table (a billing run over 100,000 subscriptions spent seconds on every claim), and the swap
   silently drops what other requests wrote meanwhile. Here a transaction checks all of its
   conditions first and writes only when they all hold, as DynamoDB does; to undo a write that
   fails half-way it keeps the old versions of just the items it touches.
2. Concurrency: moto's server answers on many threads, but its tables are plain dicts: a write
   during another request's iteration fails that request, and a transaction is not atomic
   against single-item writes. One lock serialises table operations (DynamoDB is serialisable
   per item; moto on a laptop needs no more parallelism than that).
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

_LOCK = threading.RLock()
_LOCKED = ("put_item", "get_item", "update_item", "delete_item", "query", "scan")
_installed = False


def install() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    global _installed
    from moto.dynamodb.models import DynamoDBBackend

    if _installed:
        return
    for name in _LOCKED:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    _installed = True


def _serialised(method: Any) -> Any:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return locked


def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _LOCK:
        seen: set[tuple[str, str]] = set()
        plan: list[tuple[str, dict[str, Any], dict[str, Any], Any]] = []
        errors: list[tuple[Any, Any, Any]] = []
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise MockValidationException("Unsupported transaction operation")
            table = self.get_table(op["TableName"])
            key = _key_of(table, op_type, op)
            marker = (op["TableName"], json.dumps(key, sort_keys=True))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            current = self.get_item(op["TableName"], key)
            errors.append(_check(op, current))
            plan.append((op_type, op, key, current))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        undo: list[tuple[str, dict[str, Any], Any]] = []
        try:
            for op_type, op, key, current in plan:
                undo.append((op["TableName"], key, current))
                _apply(self, op_type, op, key)
        except Exception:
            for table_name, key, old in reversed(undo):
                _restore(self, table_name, key, old)
            raise


def _check(op: dict[str, Any], current: Any) -> tuple[Any, Any, Any]:
    from moto.dynamodb.comparisons import get_filter_expression as condition_of

    expression = op.get("ConditionExpression")
    if expression is None:
        return (None, None, None)
    condition = condition_of(
        expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    if condition.expr(current):
        return (None, None, None)
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", "The conditional request failed", old)


def _apply(self: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    condition = op.get("ConditionExpression")  # holds: checked above, under the same lock
    if op_type == "Put":
        self.put_item(
            op["TableName"],
            op["Item"],
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif op_type == "Delete":
        self.delete_item(
            op["TableName"],
            key,
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif op_type == "Update":
        self.update_item(
            op["TableName"],
            key,
            update_expression=op["UpdateExpression"],
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )


def _restore(self: Any, table_name: str, key: dict[str, Any], old: Any) -> None:
    table = self.get_table(table_name)
    if old is not None:
        table.put_item(old.to_json()["Attributes"])
        return
    hash_value, range_value = self.get_keys_value(table, key)
    if table.get_item(hash_value, range_value) is not None:
        table.delete_item(hash_value, range_value)
