"""The BillingStore on the one table (its layout: table.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from cancelflow.adapters.dynamodb.failures import tally
from cancelflow.adapters.dynamodb.table import (
    DUE_INDEX,
    LIST_INDEX,
    RUN_LEASE,
    SHARDS,
    cancellation_reasons,
    charge_key,
    due_key,
    error_code,
    event_item,
    marshal,
    payment_item,
    subscription_key,
    unmarshal,
)
from cancelflow.kernel.clock import from_utc_text, to_utc_text
from cancelflow.kernel.errors import Conflict
from cancelflow.kernel.events import Event
from cancelflow.payments.model import Payment
from cancelflow.subscriptions import failures
from cancelflow.subscriptions.model import (
    OPEN_CHARGE,
    Charge,
    ChargeStatus,
    PaidPeriod,
    Status,
    Subscription,
)
from cancelflow.subscriptions.schedule import Cycle


class DynamoBilling:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    # --- subscriptions -----------------------------------------------------------------

    def create(self, sub: Subscription) -> Subscription | None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=marshal(subscription_item(sub)),
                ConditionExpression="attribute_not_exists(PK)",
            )
            return None
        except ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":
                raise
        return self.get(sub.shop_id, sub.subscription_id)

    def get(self, shop_id: str, subscription_id: str) -> Subscription | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=marshal(subscription_key(shop_id, subscription_id)),
            ConsistentRead=True,
        )
        return subscription_from(unmarshal(answer["Item"])) if "Item" in answer else None

    def save(
        self, before: Subscription, after: Subscription, events: tuple[Event, ...] = ()
    ) -> Subscription:
        written = _next_version(after, before.version)
        put = {
            "TableName": self._table,
            "Item": marshal(subscription_item(written)),
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": marshal({":v": before.version}),
        }
        try:
            if events:  # the change and its events, or neither
                self._db.transact_write_items(
                    TransactItems=[{"Put": put}, *(_event_put(self._table, e) for e in events)]
                )
            else:
                self._db.put_item(**put)
        except ClientError as e:
            if error_code(e) in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise Conflict("subscription changed") from e
            raise
        return written

    def page(
        self,
        shop_id: str,
        status: str | None,
        date_from: date | None,
        date_to: date | None,
        limit: int,
        position: dict[str, Any] | None,
    ) -> tuple[list[Subscription], dict[str, Any] | None]:
        partition = f"SHOP#{shop_id}#SUBS"
        filters, values = [], {":pk": partition}
        names: dict[str, str] = {}
        if status:
            filters.append("#st = :st")
            names["#st"] = "status"
            values[":st"] = status
        if date_from:
            filters.append("period_date >= :from")
            values[":from"] = date_from.isoformat()
        if date_to:
            filters.append("period_date <= :to")
            values[":to"] = date_to.isoformat()
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": marshal(values),
            "ScanIndexForward": False,
        }
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if position:
            kwargs["ExclusiveStartKey"] = marshal(_list_position(position, partition))
        found: list[Subscription] = []
        while True:
            kwargs["Limit"] = limit - len(found)
            page = self._db.query(**kwargs)
            found += [subscription_from(unmarshal(i)) for i in page["Items"]]
            last = page.get("LastEvaluatedKey")
            if not last or len(found) >= limit:
                return found, unmarshal(last) if last else None
            kwargs["ExclusiveStartKey"] = last

    # --- the billing run ---------------------------------------------------------------

    def take_run_lease(
        self, execution_id: str, at: datetime, still_running: Callable[[str], bool]
    ) -> str | None:
        for _ in range(3):
            answer = self._db.get_item(
                TableName=self._table, Key=marshal(RUN_LEASE), ConsistentRead=True
            )
            holder = unmarshal(answer["Item"])["holder"] if "Item" in answer else None
            if holder and holder != execution_id and still_running(holder):
                return str(holder)
            condition = "holder = :seen" if holder else "attribute_not_exists(PK)"
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=marshal(RUN_LEASE | {"holder": execution_id, "taken_at": to_utc_text(at)}),
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": marshal({":seen": holder})} if holder else {}),
                )
                return None
            except ClientError as e:
                if error_code(e) != "ConditionalCheckFailedException":
                    raise
        raise Conflict("the billing run's lease keeps changing hands")

    def due_page(
        self, billing_date: date, days_back: int, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
        """Walk (day, shard) partitions, oldest day first, each with Query: cost ~ items due."""
        position = cursor or {"day": 0, "shard": 0, "key": None}
        day_index, shard, start = int(position["day"]), int(position["shard"]), position["key"]
        items: list[dict[str, str]] = []
        while day_index <= days_back and len(items) < limit:
            day = billing_date - timedelta(days=days_back - day_index)
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": DUE_INDEX,
                "KeyConditionExpression": "GSI3PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"DUE#{day.isoformat()}#{shard}"}},
                "ProjectionExpression": "GSI3SK",
                "Limit": limit - len(items),
                "ReturnConsumedCapacity": "TOTAL",
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._db.query(**kwargs)
            for raw in page["Items"]:
                shop_id, _, subscription_id = raw["GSI3SK"]["S"].rpartition("#")
                items.append({"shop_id": shop_id, "subscription_id": subscription_id})
            start = page.get("LastEvaluatedKey")
            if start:
                continue  # the same partition has more
            shard += 1
            if shard == SHARDS:
                day_index, shard = day_index + 1, 0
        if day_index > days_back:
            return items, None
        return items, {"day": day_index, "shard": shard, "key": start}

    def claim(self, sub: Subscription, charge: Charge) -> Charge | None:
        key = charge_key(sub.shop_id, sub.subscription_id, charge.period, charge.attempt)
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self._table,
                            "Key": marshal(subscription_key(sub.shop_id, sub.subscription_id)),
                            "ConditionExpression": "version = :v AND #st = :active",
                            "ExpressionAttributeNames": {"#st": "status"},
                            "ExpressionAttributeValues": marshal(
                                {":v": sub.version, ":active": Status.ACTIVE.value}
                            ),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": marshal(charge_item(charge)),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                ]
            )
            return None
        except ClientError as e:
            if error_code(e) != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(e, 2)
        if reasons[1] == "ConditionalCheckFailed":
            answer = self._db.get_item(TableName=self._table, Key=marshal(key), ConsistentRead=True)
            if "Item" in answer:
                found = charge_from(unmarshal(answer["Item"]))
                if charge.claim_token and found.claim_token == charge.claim_token:
                    # Our own claim: the SDK retried a request whose answer was lost after
                    # it was written (DynamoDB dedupes that retry by its token; moto does not).
                    return None
                return found
        raise Conflict("subscription changed")

    def record(
        self,
        sub: Subscription,
        charge: Charge,
        payment: Payment | None = None,
        events: tuple[Event, ...] = (),
    ) -> bool:
        open_values = {f":o{i}": s.value for i, s in enumerate(sorted(OPEN_CHARGE))}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": marshal(subscription_item(_next_version(sub, sub.version))),
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": marshal({":v": sub.version}),
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": marshal(charge_item(charge)),
                    "ConditionExpression": f"#st IN ({', '.join(open_values)})",
                    "ExpressionAttributeNames": {"#st": "status"},
                    "ExpressionAttributeValues": marshal(open_values),
                }
            },
        ]
        if payment is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": marshal(payment_item(payment)),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        items += [_event_put(self._table, e) for e in events]
        # The failure report's counter of a declined charge (the domain decides), in this
        # transaction: the charge's open-status condition keeps a retried record from counting.
        items += [tally(self._table, m) for m in failures.marks_of(charge)]
        try:
            self._db.transact_write_items(TransactItems=items)
            return True
        except ClientError as e:
            if error_code(e) != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(e, len(items))
        if "ConditionalCheckFailed" in reasons[1:]:  # the charge, its payment or its events
            return False  # another run of this step recorded it first
        raise Conflict("subscription changed")

    def journal(self, charge: Charge) -> None:
        open_values = {f":o{i}": s.value for i, s in enumerate(sorted(OPEN_CHARGE))}
        key = charge_key(charge.shop_id, charge.subscription_id, charge.period, charge.attempt)
        values = {
            ":st": charge.status.value,
            ":sends": charge.sends,
            ":detail": charge.detail,
            ":res_cd": charge.res_cd,
            ":now": to_utc_text(charge.updated_at),
        }
        update = (
            "SET #st = :st, sends = :sends, detail = :detail, res_cd = :res_cd, updated_at = :now"
        )
        if charge.tno:  # KCP approved it: kept even if recording its effects fails
            update += ", tno = :tno, approved_at = :approved"
            values |= {
                ":tno": charge.tno,
                ":approved": to_utc_text(charge.approved_at or charge.updated_at),
            }
        try:
            self._db.update_item(
                TableName=self._table,
                Key=marshal(key),
                UpdateExpression=update,
                ConditionExpression=f"#st IN ({', '.join(open_values)})",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues=marshal(open_values | values),
            )
        except ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":
                raise  # settled meanwhile by another run: its record stands

    def link_tno(self, charge: Charge, payment: Payment) -> None:
        key = charge_key(charge.shop_id, charge.subscription_id, charge.period, charge.attempt)
        values = {
            ":tno": charge.tno,
            ":ok": ChargeStatus.SUCCEEDED.value,
            ":at": to_utc_text(charge.approved_at or charge.updated_at),
            ":now": to_utc_text(charge.updated_at),
        }
        try:
            self._db.update_item(
                TableName=self._table,
                Key=marshal(key),
                UpdateExpression="SET tno = :tno, approved_at = :at, updated_at = :now",
                ConditionExpression="#st = :ok AND (attribute_not_exists(tno) OR tno = :tno)",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues=marshal(values),
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise Conflict("the charge has another tno") from e
            raise
        try:  # then its Payment, once: a repeat after a crash between the two finishes it
            self._db.put_item(
                TableName=self._table,
                Item=marshal(payment_item(payment)),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":
                raise

    def charges(self, shop_id: str, subscription_id: str) -> list[Charge]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :charge)",
            "ExpressionAttributeValues": marshal(
                {":pk": subscription_key(shop_id, subscription_id)["PK"], ":charge": "CHARGE#"}
            ),
            "ConsistentRead": True,
        }
        found: list[Charge] = []
        while True:
            page = self._db.query(**kwargs)
            found += [charge_from(unmarshal(i)) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _next_version(sub: Subscription, version: int) -> Subscription:
    from dataclasses import replace

    return replace(sub, version=version + 1)


def _list_position(position: Mapping[str, Any], partition: str) -> dict[str, Any]:
    """Resume only inside the caller's own list: any other position is a Conflict."""
    keys = {"PK", "SK", "GSI1PK", "GSI1SK"}
    if set(position) != keys or position["GSI1PK"] != partition:
        raise Conflict("the position is not in this shop's subscription list")
    if not all(isinstance(position[k], str) for k in keys):
        raise Conflict("the position is not a key of this list")
    return dict(position)


# --- item <-> domain ---------------------------------------------------------------------


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def subscription_item(s: Subscription) -> dict[str, Any]:
    created = to_utc_text(s.created_at)
    item: dict[str, Any] = subscription_key(s.shop_id, s.subscription_id) | {
        "GSI1PK": f"SHOP#{s.shop_id}#SUBS",
        "GSI1SK": f"{created}#{s.subscription_id}",
        "type": "SUBSCRIPTION",
        "shop_id": s.shop_id,
        "subscription_id": s.subscription_id,
        "status": s.status.value,
        "customer_name": s.customer_name,
        "customer_email": s.customer_email,
        "product_name": s.product_name,
        "amount": s.amount,
        "cycle": s.cycle.value,
        "anchor_day": s.anchor_day,
        "batch_key_ref": s.batch_key_ref,
        "batch_key_last4": s.batch_key_last4,
        "period_date": s.period_date.isoformat(),
        "attempt": s.attempt,
        "created_at": created,
        "updated_at": to_utc_text(s.updated_at),
        "version": s.version,
        "fingerprint": s.fingerprint,
        "cancel_when": s.cancel_when or None,
        "cancelled_at": to_utc_text(s.cancelled_at) if s.cancelled_at else None,
        "service_until": s.service_until.isoformat() if s.service_until else None,
        "refund_amount": s.refund_amount,
        "refund_cancellation_id": s.refund_cancellation_id or None,
        "suspended_at": to_utc_text(s.suspended_at) if s.suspended_at else None,
    }
    if s.status is Status.ACTIVE and s.due_on is not None:
        # Sparse: only a subscription with a next attempt is in the due index.
        item |= {
            "due_on": s.due_on.isoformat(),
            "GSI3PK": due_key(s.due_on, s.subscription_id),
            "GSI3SK": f"{s.shop_id}#{s.subscription_id}",
        }
    if s.last_paid:
        p = s.last_paid
        item["last_paid"] = {
            "period": p.period,
            "tno": p.tno,
            "amount": p.amount,
            "start": p.start.isoformat(),
            "end": p.end.isoformat(),
            "paid_at": to_utc_text(p.paid_at),
        }
    return item


def subscription_from(i: dict[str, Any]) -> Subscription:
    paid = i.get("last_paid")
    return Subscription(
        shop_id=i["shop_id"],
        subscription_id=i["subscription_id"],
        status=Status(i["status"]),
        customer_name=i["customer_name"],
        customer_email=i["customer_email"],
        product_name=i["product_name"],
        amount=int(i["amount"]),
        cycle=Cycle(i["cycle"]),
        anchor_day=int(i["anchor_day"]),
        batch_key_ref=i["batch_key_ref"],
        batch_key_last4=i["batch_key_last4"],
        period_date=date.fromisoformat(i["period_date"]),
        attempt=int(i.get("attempt", 1)),
        due_on=_day(i.get("due_on")),
        created_at=from_utc_text(i["created_at"]),
        updated_at=from_utc_text(i["updated_at"]),
        version=int(i.get("version", 0)),
        fingerprint=i.get("fingerprint", ""),
        last_paid=PaidPeriod(
            period=paid["period"],
            tno=paid.get("tno", ""),
            amount=int(paid["amount"]),
            start=date.fromisoformat(paid["start"]),
            end=date.fromisoformat(paid["end"]),
            paid_at=from_utc_text(paid["paid_at"]),
        )
        if paid
        else None,
        cancel_when=i.get("cancel_when", ""),
        cancelled_at=from_utc_text(i["cancelled_at"]) if i.get("cancelled_at") else None,
        service_until=_day(i.get("service_until")),
        refund_amount=int(i.get("refund_amount", 0)),
        refund_cancellation_id=i.get("refund_cancellation_id", ""),
        suspended_at=from_utc_text(i["suspended_at"]) if i.get("suspended_at") else None,
    )


def charge_item(c: Charge) -> dict[str, Any]:
    return charge_key(c.shop_id, c.subscription_id, c.period, c.attempt) | {
        "type": "CHARGE",
        "shop_id": c.shop_id,
        "subscription_id": c.subscription_id,
        "period": c.period,
        "attempt": c.attempt,
        "order_id": c.order_id,
        "amount": c.amount,
        "status": c.status.value,
        "billing_date": c.billing_date.isoformat(),
        "created_at": to_utc_text(c.created_at),
        "updated_at": to_utc_text(c.updated_at),
        "sends": c.sends,
        "tno": c.tno or None,
        "approved_at": to_utc_text(c.approved_at) if c.approved_at else None,
        "res_cd": c.res_cd,
        "res_msg": c.res_msg,
        "detail": c.detail,
        "confirmed_by": c.confirmed_by or None,
        "claim_token": c.claim_token or None,
    }


def charge_from(i: dict[str, Any]) -> Charge:
    return Charge(
        shop_id=i["shop_id"],
        subscription_id=i["subscription_id"],
        period=i["period"],
        attempt=int(i["attempt"]),
        order_id=i["order_id"],
        amount=int(i["amount"]),
        status=ChargeStatus(i["status"]),
        billing_date=date.fromisoformat(i["billing_date"]),
        created_at=from_utc_text(i["created_at"]),
        updated_at=from_utc_text(i["updated_at"]),
        sends=int(i.get("sends", 0)),
        tno=i.get("tno", ""),
        approved_at=from_utc_text(i["approved_at"]) if i.get("approved_at") else None,
        res_cd=i.get("res_cd", ""),
        res_msg=i.get("res_msg", ""),
        detail=i.get("detail", ""),
        confirmed_by=i.get("confirmed_by", ""),
        claim_token=i.get("claim_token", ""),
    )


def _event_put(table: str, event: Event) -> dict[str, Any]:
    """An event in its change's transaction: written once (a repeated change adds none)."""
    return {
        "Put": {
            "TableName": table,
            "Item": marshal(event_item(event)),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }
