"""The one table every adapter shares (single-table design; Query and GetItem only, never Scan):
its key schema, item plumbing, and the payment item both the store and billing write.

Keys (every key of a shop's data starts with the shop id, so one shop cannot reach another's):

    shop            PK SHOP#{shop}                 SK PROFILE
    API key         PK APIKEY#{sha256 of key}      SK APIKEY
    payment         PK SHOP#{shop}#PAY#{tno}       SK PAYMENT
                    GSI1 ShopTimeline: SHOP#{shop}#PAYMENTS / {approved_at}#{tno} (history);
                    subscriptions use it too: SHOP#{shop}#SUBS / {created}#{id}
    cancellation    PK SHOP#{shop}#CNL#{id}        SK CANCELLATION
                    GSI1 ShopTimeline (the shop's list): SHOP#{shop}#CANCELLATIONS / {created}#{id}
                    GSI2 (a payment's cancellations): SHOP#{shop}#PAY#{tno} / CNL#{created}#{id}
                    GSI4 ToSweep (sparse): SWEEP#OPEN / {created}#{id} while open (any age),
                    SWEEP#FAILED / {updated}#{id} once FAILED; gone once SUCCEEDED or REJECTED
    attempt         PK SHOP#{shop}#CNL#{id}        SK ATTEMPT#{seq}   (the gateway journal)
    idempotency     PK SHOP#{shop}#IDEM#{sha256}   SK IDEMPOTENCY     (TTL: expires_at)
    event           PK SHOP#{shop}#EVT#{event id}  SK EVENT  (written in its change's transaction)
    webhook endpoint PK SHOP#{shop}#WHE#{id}       SK ENDPOINT
                    GSI1 ShopTimeline (the shop's endpoints): SHOP#{shop}#WEBHOOKS / {created}#{id}
    delivery        PK SHOP#{shop}#WHE#{id}        SK DLV#{event id}  (one per endpoint and event)
                    GSI1 ShopTimeline (newest first): SHOP#{shop}#WHE#{id}#DLV / {created}#{event}
    KCP site link   PK KCPSITE#{site_cd}           SK KCPSITE  (whose KCP notifications they are)
    KCP notice      PK SHOP#{shop}#KCPNOTI#{id}    SK KCP_NOTIFICATION (notifications.py)
    subscription    PK SHOP#{shop}#SUB#{id}        SK SUBSCRIPTION
                    GSI1 ShopTimeline (a shop's list): SHOP#{shop}#SUBS / {created}#{id}
                    GSI3 SubscriptionsDue (sparse, while ACTIVE): DUE#{date}#{shard} / {shop}#{id}
    charge          PK SHOP#{shop}#SUB#{id}        SK CHARGE#{period}#{attempt:02d}
    run lease       PK BILLING#RUN                 SK LEASE   (holder: the charging execution)
    batch           PK SHOP#{shop}#BATCH#{id}      SK BATCH     (counts by item status; TTL)
    batch item      PK SHOP#{shop}#BATCH#{id}      SK ITEM#{seq:05d}
                    GSI1 ShopTimeline (sparse, once it did not succeed):
                    SHOP#{shop}#BATCH#{id}#{status} / {seq:05d}
    batch key       PK SHOP#{shop}#BATCHKEY#{sha256} SK BATCHKEY  (idempotency; TTL)
    batch lease     PK SHOP#{shop}#BATCHLEASE      SK LEASE   (holder: the running batch execution)
    batch follow    PK SHOP#{shop}#BATCHFOLLOW#{cancellation} SK BATCHFOLLOW  (batch id, seq
                    of an OPEN or FAILED item, which the cancellation's events move; TTL)
    failure counter PK SHOP#{shop}#FAILURES        SK {KST day}#{kind}#{kcp code}#{reason}#{shard}
                    (the failure-case report: written in its outcome's transaction; failures.py)

The due index holds only subscriptions with a next attempt, keyed by its date, so a billing run
reads what is due and nothing else. A day's partition is split into SHARDS by a hash of the
subscription id: one date's writes and reads never pile onto one partition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from cancelflow.kcp.port import PayMethod
from cancelflow.kernel.clock import from_utc_text, to_utc_text
from cancelflow.kernel.events import Event
from cancelflow.payments.model import Fulfillment, Payment, PaymentStatus

_ser = TypeSerializer()
_de = TypeDeserializer()


SHARDS = 8  # fixed: changing it would strand due items under the old keys
RUN_LEASE = {"PK": "BILLING#RUN", "SK": "LEASE"}  # which execution is charging (one at a time)
DUE_INDEX = "SubscriptionsDue"
LIST_INDEX = "ShopTimeline"  # GSI1: a shop's subscriptions by creation time


def shard_of(subscription_id: str) -> int:
    return int(hashlib.sha256(subscription_id.encode()).hexdigest()[:8], 16) % SHARDS


def due_key(day: date, subscription_id: str) -> str:
    return f"DUE#{day.isoformat()}#{shard_of(subscription_id)}"


def subscription_key(shop_id: str, subscription_id: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#SUB#{subscription_id}", "SK": "SUBSCRIPTION"}


def charge_key(shop_id: str, subscription_id: str, period: str, attempt: int) -> dict[str, str]:
    pk = subscription_key(shop_id, subscription_id)["PK"]
    return {"PK": pk, "SK": f"CHARGE#{period}#{attempt:02d}"}


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def payment_key(shop_id: str, tno: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#PAY#{tno}", "SK": "PAYMENT"}


def cancellation_key(shop_id: str, cancellation_id: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#CNL#{cancellation_id}", "SK": "CANCELLATION"}


def marshal(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None}


def unmarshal(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item in plain Python: what the domain and the views get, never a Decimal."""
    return {k: plain(_de.deserialize(v)) for k, v in item.items()}


def plain(value: Any) -> Any:
    # DynamoDB gives every number back as Decimal, at any depth (lists, maps, sets). Money and
    # positions are integers; anything else becomes a float, which the domain refuses as a
    # count and JSON can still show, so no stored value can make a read fail.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return {plain(v) for v in value}
    if isinstance(value, Binary):
        return bytes(value)
    return value


def time_from(text: str | None) -> datetime | None:
    return from_utc_text(text) if text else None


def text_of(moment: datetime | None) -> str | None:
    return to_utc_text(moment) if moment else None


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def cancellation_reasons(error: ClientError, n: int) -> list[str]:
    """Why each of a transaction's n items failed ("None" where it did not)."""
    codes = [r.get("Code", "None") for r in error.response.get("CancellationReasons") or []]
    return codes + ["None"] * (n - len(codes))


def payment_item(p: Payment) -> dict[str, Any]:
    approved = to_utc_text(p.approved_at)
    return payment_key(p.shop_id, p.tno) | {
        "GSI1PK": f"SHOP#{p.shop_id}#PAYMENTS",
        "GSI1SK": f"{approved}#{p.tno}",
        "type": "PAYMENT",
        "shop_id": p.shop_id,
        "tno": p.tno,
        "order_id": p.order_id,
        "amount": p.amount,
        "tax_free_amount": p.tax_free_amount,
        "method": p.method.value,
        "product_name": p.product_name,
        "product_name_lower": p.product_name.casefold(),
        "buyer_email": p.buyer_email,
        "buyer_name": p.buyer_name,
        "escrow": p.escrow,
        "items": list(p.items),
        "approved_at": approved,
        "registered_at": to_utc_text(p.registered_at),
        "balance": p.balance,
        "available": p.available,
        "status": p.status.value,
        "fulfillment": p.fulfillment.value,
        "fulfillment_at": text_of(p.fulfillment_at),
        "delivered_at": text_of(p.delivered_at),
        "removed_items": set(p.removed_items) or None,  # a number set (never empty in DynamoDB)
        "externally_cancelled": p.externally_cancelled or None,
        "tax_free_cancelled": p.tax_free_cancelled or None,
        "tax_free_held": p.tax_free_held or None,
    }


def payment_from(i: dict[str, Any]) -> Payment:
    return Payment(
        shop_id=i["shop_id"],
        tno=i["tno"],
        order_id=i["order_id"],
        amount=i["amount"],
        method=PayMethod(i["method"]),
        product_name=i["product_name"],
        buyer_email=i["buyer_email"],
        buyer_name=i.get("buyer_name", ""),
        approved_at=from_utc_text(i["approved_at"]),
        registered_at=from_utc_text(i["registered_at"]),
        tax_free_amount=i.get("tax_free_amount", 0),
        escrow=i.get("escrow", False),
        items=tuple(i.get("items", [])),
        balance=i["balance"],
        available=i["available"],
        status=PaymentStatus(i["status"]),
        fulfillment=Fulfillment(i.get("fulfillment", "PROCESSING")),
        fulfillment_at=time_from(i.get("fulfillment_at")),
        delivered_at=time_from(i.get("delivered_at")),
        in_flight=i.get("in_flight", ""),
        removed_items=frozenset(i.get("removed_items", ())),
        externally_cancelled=i.get("externally_cancelled", 0),
        tax_free_cancelled=i.get("tax_free_cancelled", 0),
        tax_free_held=i.get("tax_free_held", 0),
    )


def event_item(e: Event) -> dict[str, Any]:
    """An event as its change's transaction writes it: a Put conditional on
    attribute_not_exists(PK), so the same change written twice records its event once."""
    return {
        "PK": f"SHOP#{e.shop_id}#EVT#{e.event_id}",
        "SK": "EVENT",
        "type": "EVENT",
        "event_id": e.event_id,
        "event_type": e.type,
        "shop_id": e.shop_id,
        "resource": e.resource,
        "cause": e.cause,
        "occurred_at": to_utc_text(e.occurred_at, precise=True),
        "data": e.data,
    }


def event_key(shop_id: str, event_id: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#EVT#{event_id}", "SK": "EVENT"}


def event_from(i: dict[str, Any]) -> Event:
    """An event item (from a read or a stream's NEW_IMAGE, unmarshalled) as the domain's Event."""
    return Event(
        type=i["event_type"],
        shop_id=i["shop_id"],
        resource=i["resource"],
        occurred_at=from_utc_text(i["occurred_at"]),
        cause=i["cause"],
        data=i.get("data") or {},
    )


def endpoint_key(shop_id: str, endpoint_id: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#WHE#{endpoint_id}", "SK": "ENDPOINT"}


def delivery_key(shop_id: str, endpoint_id: str, event_id: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#WHE#{endpoint_id}", "SK": f"DLV#{event_id}"}
