"""Webhook endpoints and deliveries in the one table (keys in table.py)."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from cancelflow.adapters.dynamodb.store import DynamoStore
from cancelflow.adapters.dynamodb.table import (
    LIST_INDEX,
    delivery_key,
    endpoint_key,
    error_code,
    event_from,
    event_key,
    marshal,
    text_of,
    time_from,
    unmarshal,
)
from cancelflow.kernel.clock import from_utc_text, to_utc_text
from cancelflow.kernel.errors import Conflict
from cancelflow.kernel.events import Event
from cancelflow.webhooks.model import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
    SigningSecret,
)

KEPT_SECONDS = 30 * 24 * 3600  # deliveries and deleted endpoints, then the table's TTL


def _endpoint_item(e: Endpoint) -> dict[str, Any]:
    return endpoint_key(e.shop_id, e.endpoint_id) | {
        "GSI1PK": f"SHOP#{e.shop_id}#WEBHOOKS",
        "GSI1SK": f"{to_utc_text(e.created_at, precise=True)}#{e.endpoint_id}",
        "type": "WEBHOOK_ENDPOINT",
        "shop_id": e.shop_id,
        "endpoint_id": e.endpoint_id,
        "url": e.url,
        "events": list(e.events),
        "secrets": [{"secret": s.secret, "expires_at": text_of(s.expires_at)} for s in e.secrets],
        "enabled": e.enabled,
        "description": e.description,
        "created_at": to_utc_text(e.created_at, precise=True),
        "updated_at": to_utc_text(e.updated_at, precise=True),
        "failing_since": text_of(e.failing_since),
        "disabled_reason": e.disabled_reason,
    }


def _endpoint_from(i: dict[str, Any]) -> Endpoint:
    return Endpoint(
        shop_id=i["shop_id"],
        endpoint_id=i["endpoint_id"],
        url=i["url"],
        events=tuple(i["events"]),
        secrets=tuple(
            SigningSecret(s["secret"], time_from(s.get("expires_at"))) for s in i["secrets"]
        ),
        created_at=from_utc_text(i["created_at"]),
        updated_at=from_utc_text(i["updated_at"]),
        enabled=i.get("enabled", True),
        description=i.get("description", ""),
        failing_since=time_from(i.get("failing_since")),
        disabled_reason=i.get("disabled_reason", ""),
    )


def _delivery_item(d: Delivery) -> dict[str, Any]:
    created = to_utc_text(d.created_at, precise=True)
    return delivery_key(d.shop_id, d.endpoint_id, d.event_id) | {
        "GSI1PK": f"SHOP#{d.shop_id}#WHE#{d.endpoint_id}#DLV",
        "GSI1SK": f"{created}#{d.event_id}",
        "type": "WEBHOOK_DELIVERY",
        "shop_id": d.shop_id,
        "endpoint_id": d.endpoint_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "resource": d.resource,
        "payload": d.payload,
        "occurred_at": to_utc_text(d.occurred_at, precise=True),
        "created_at": created,
        "status": d.status.value,
        "attempt_count": d.attempt_count,
        "expires_at": int(d.created_at.timestamp()) + KEPT_SECONDS,  # TTL
        "next_attempt_at": text_of(d.next_attempt_at),
        "attempts": [
            {
                "at": to_utc_text(a.at, precise=True),
                "succeeded": a.succeeded,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "excerpt": a.excerpt,
                "error": a.error,
                "manual": a.manual,
            }
            for a in d.attempts
        ],
    }


def _delivery_from(i: dict[str, Any]) -> Delivery:
    return Delivery(
        shop_id=i["shop_id"],
        endpoint_id=i["endpoint_id"],
        event_id=i["event_id"],
        event_type=i["event_type"],
        resource=i["resource"],
        payload=i["payload"],
        occurred_at=from_utc_text(i["occurred_at"]),
        created_at=from_utc_text(i["created_at"]),
        status=DeliveryStatus(i["status"]),
        attempt_count=i.get("attempt_count", 0),
        next_attempt_at=time_from(i.get("next_attempt_at")),
        attempts=tuple(
            DeliveryAttempt(
                at=from_utc_text(a["at"]),
                succeeded=a["succeeded"],
                status_code=a.get("status_code"),
                latency_ms=a.get("latency_ms", 0),
                excerpt=a.get("excerpt", ""),
                error=a.get("error", ""),
                manual=a.get("manual", False),
            )
            for a in i.get("attempts", [])
        ),
    )


class DynamoWebhooks(DynamoStore):
    """The webhook store (and, from DynamoStore, the shop and the records events are about)."""

    def create_endpoint(self, endpoint: Endpoint) -> None:
        self._put_new(_endpoint_item(endpoint))

    def get_endpoint(self, shop_id: str, endpoint_id: str) -> Endpoint | None:
        item = self._get(endpoint_key(shop_id, endpoint_id))
        return _endpoint_from(item) if item and not item.get("deleted") else None

    def shop_endpoints(self, shop_id: str) -> list[Endpoint]:
        items = self._query_index(f"SHOP#{shop_id}#WEBHOOKS", forward=True, limit=100)
        return [_endpoint_from(i) for i in items]

    def save_endpoint(self, endpoint: Endpoint) -> None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=marshal(_endpoint_item(endpoint)),
                ConditionExpression="attribute_exists(PK) AND attribute_not_exists(deleted)",
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise Conflict("the endpoint was deleted") from e
            raise

    def delete_endpoint(self, shop_id: str, endpoint_id: str) -> None:
        # No function may delete items: the endpoint becomes a tombstone, out of the shop's
        # list and unreadable, and the table's TTL removes it (its deliveries expire too).
        item = self._get(endpoint_key(shop_id, endpoint_id))
        if not item or item.get("deleted"):
            return
        tombstone = endpoint_key(shop_id, endpoint_id) | {
            "type": "WEBHOOK_ENDPOINT",
            "shop_id": shop_id,
            "endpoint_id": endpoint_id,
            "deleted": True,
            "expires_at": int(time.time()) + KEPT_SECONDS,
        }
        self._db.put_item(TableName=self._table, Item=marshal(tombstone))

    def create_delivery(self, delivery: Delivery) -> bool:
        try:
            self._put_new(_delivery_item(delivery))
        except Conflict:
            return False
        return True

    def get_delivery(self, shop_id: str, endpoint_id: str, event_id: str) -> Delivery | None:
        item = self._get(delivery_key(shop_id, endpoint_id, event_id))
        return _delivery_from(item) if item else None

    def save_delivery(self, delivery: Delivery) -> None:
        self._db.put_item(TableName=self._table, Item=marshal(_delivery_item(delivery)))

    def endpoint_deliveries(self, shop_id: str, endpoint_id: str, limit: int) -> list[Delivery]:
        pk = f"SHOP#{shop_id}#WHE#{endpoint_id}#DLV"
        return [_delivery_from(i) for i in self._query_index(pk, forward=False, limit=limit)]

    def get_event(self, shop_id: str, event_id: str) -> Event | None:
        item = self._get(event_key(shop_id, event_id))
        return event_from(item) if item else None

    # --- plumbing ----------------------------------------------------------------------

    def _put_new(self, item: dict[str, Any]) -> None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=marshal(item),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise Conflict("already recorded") from e
            raise

    def _query_index(self, pk: str, forward: bool, limit: int) -> list[dict[str, Any]]:
        page = self._db.query(
            TableName=self._table,
            IndexName=LIST_INDEX,
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues=marshal({":pk": pk}),
            ScanIndexForward=forward,
            Limit=limit,
        )
        return [unmarshal(i) for i in page["Items"]]
