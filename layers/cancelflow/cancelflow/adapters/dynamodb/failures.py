"""The failure-case counters on the one table: written as one more item of the outcome's own
transaction (settle, a charge's record), read by Query for a report's days.

    counter  PK SHOP#{shop}#FAILURES  SK {KST day}#{kind}#{kcp code|-}#{reason|-}#{shard}

The outcome's transaction is conditional on the status it moves from, so a retried settle or
record cancels the whole transaction and counts nothing: no window where the count and the
outcome disagree. A counter is split into SHARDS by the example's id, so failures that come
together (KCP down for every cancel of a shop at once) do not all contend for one item inside
their transactions; the report merges the shards. Examples are kept in EXAMPLES slots, each
overwritten by the ids hashed to it, as "{time}#{id}": bounded without a read (an update cannot
append and trim one list), so the report shows a few recent ids, the newest always among them,
not strictly the last five.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from cancelflow.adapters.dynamodb.table import marshal, unmarshal
from cancelflow.cancellations.failures import EXAMPLES, FailureCount, FailureKind, FailureMark
from cancelflow.kernel.clock import from_utc_text, to_utc_text

SHARDS = 4  # fixed: a report reads whatever shards exist, so raising it later is safe
_SLOTS = [f"ex{n}" for n in range(EXAMPLES)]


def _partition(shop_id: str) -> str:
    return f"SHOP#{shop_id}#FAILURES"


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def tally(table: str, mark: FailureMark) -> dict[str, Any]:
    """The transaction item that adds one mark to its day's counter."""
    spread = _hash(mark.example)
    group = f"{mark.kind.value}#{mark.kcp_code or '-'}#{mark.reason_code or '-'}"
    key = {
        "PK": _partition(mark.shop_id),
        "SK": f"{mark.day.isoformat()}#{group}#{spread % SHARDS}",
    }
    at = to_utc_text(mark.at)
    values: dict[str, Any] = {
        ":one": 1,
        ":at": at,
        ":type": "FAILURE_COUNT",
        ":kind": mark.kind.value,
        ":kcp": mark.kcp_code,
        ":reason": mark.reason_code,
        ":day": mark.day.isoformat(),
        ":example": f"{to_utc_text(mark.at, precise=True)}#{mark.example}",
    }
    sets = [
        "#type = :type",
        "#kind = :kind",
        "kcp_code = :kcp",
        "reason_code = :reason",
        "#day = :day",
        "first_seen = if_not_exists(first_seen, :at)",
        "last_seen = :at",
        f"{_SLOTS[(spread // SHARDS) % EXAMPLES]} = :example",
    ]
    if mark.res_msg:
        sets.append("res_msg = :msg")
        values[":msg"] = mark.res_msg
    return {
        "Update": {
            "TableName": table,
            "Key": marshal(key),
            "UpdateExpression": "SET " + ", ".join(sets) + " ADD #count :one",
            "ExpressionAttributeNames": {
                "#type": "type",
                "#kind": "kind",
                "#day": "day",
                "#count": "count",
            },
            "ExpressionAttributeValues": marshal(values),
        }
    }


class DynamoFailureCounts:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def failure_counts(self, shop_id: str, since: date, until: date) -> list[FailureCount]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :low AND :high",
            "ExpressionAttributeValues": marshal(
                {":pk": _partition(shop_id), ":low": since.isoformat(), ":high": f"{until}#~"}
            ),
        }
        found: list[FailureCount] = []
        while True:  # bounded: days x groups x shards of one shop's period
            page = self._db.query(**kwargs)
            for raw in page["Items"]:
                count = _count_from(unmarshal(raw))
                if count is not None:
                    found.append(count)
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _count_from(i: dict[str, Any]) -> FailureCount | None:
    # Stored data never makes a read fail: a counter that cannot be read is left out.
    try:
        examples = []
        for slot in _SLOTS:
            at, _, example = str(i.get(slot, "")).partition("#")
            if example:
                examples.append((from_utc_text(at), example))
        return FailureCount(
            kind=FailureKind(i["kind"]),
            kcp_code=str(i.get("kcp_code", "")),
            reason_code=str(i.get("reason_code", "")),
            day=date.fromisoformat(i["day"]),
            count=int(i["count"]),
            first_seen=from_utc_text(i["first_seen"]),
            last_seen=from_utc_text(i["last_seen"]),
            examples=tuple(examples),
            res_msg=str(i.get("res_msg", "")),
        )
    except (KeyError, ValueError, TypeError):
        return None
