"""The Store of payments, shops and cancellations on the one table (its layout: table.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from cancelflow.adapters.dynamodb.failures import tally
from cancelflow.adapters.dynamodb.table import (
    cancellation_key,
    cancellation_reasons,
    error_code,
    event_item,
    key_hash,
    marshal,
    payment_from,
    payment_item,
    payment_key,
    text_of,
    time_from,
    unmarshal,
)
from cancelflow.cancellations import failures
from cancelflow.cancellations.model import (
    OPEN,
    Attempt,
    BreakdownLine,
    Cancellation,
    CancellationStatus,
    Decision,
    PaymentEffect,
    Review,
)
from cancelflow.cancellations.ports import (
    CancellationPage,
    CancellationQuery,
    IdempotencyRecord,
    InsufficientBalance,
    PaymentBusy,
    ReviewQuery,
)
from cancelflow.kcp.port import RefundAccount
from cancelflow.kernel.clock import from_utc_text, to_utc_text
from cancelflow.kernel.errors import Conflict
from cancelflow.kernel.events import Event
from cancelflow.payments.model import Payment
from cancelflow.payments.ports import HistoryPage, HistoryQuery
from cancelflow.shops.keys import ApiKey
from cancelflow.shops.model import Shop
from cancelflow.shops.policy import ShopPolicy, default_policy, policy_from_doc, policy_to_doc

log = logging.getLogger(__name__)
_ser = TypeSerializer()
_de = TypeDeserializer()


class DynamoStore:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    # --- reading ---------------------------------------------------------------------

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        answer = self._db.get_item(TableName=self._table, Key=marshal(key), ConsistentRead=True)
        return unmarshal(answer["Item"]) if "Item" in answer else None

    def shop_for_key(self, key_hash_hex: str) -> str | None:
        item = self._get({"PK": f"APIKEY#{key_hash_hex}", "SK": "APIKEY"})
        return item["shop_id"] if item and item.get("active", True) else None

    def touch_api_key(self, key_hash_hex: str, at: datetime, every_s: int = 60) -> None:
        """Record a key's use, at most once per `every_s` (a conditional write, else nothing)."""
        stale = to_utc_text(datetime.fromtimestamp(at.timestamp() - every_s, tz=at.tzinfo))
        try:
            self._db.update_item(
                TableName=self._table,
                Key=marshal({"PK": f"APIKEY#{key_hash_hex}", "SK": "APIKEY"}),
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(PK) AND "
                "(attribute_not_exists(last_used_at) OR last_used_at < :stale)",
                ExpressionAttributeValues=marshal({":now": to_utc_text(at), ":stale": stale}),
            )
        except ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":
                raise

    def create_shop(self, shop: Shop, at: datetime) -> None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=marshal(
                    {
                        "PK": f"SHOP#{shop.shop_id}",
                        "SK": "PROFILE",
                        "name": shop.name,
                        "email": shop.email,
                        "kcp_secret_id": shop.kcp_secret_id,
                        "created_at": to_utc_text(at),
                    }
                ),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise Conflict("shop exists") from e
            raise

    def add_api_key(self, key: ApiKey, key_hash_hex: str) -> None:
        """The key's lookup item (what the authorizer reads) and the shop's record of it."""
        created = to_utc_text(key.created_at)
        lookup: dict[str, Any] = {
            "PK": f"APIKEY#{key_hash_hex}",
            "SK": "APIKEY",
            "shop_id": key.shop_id,
        }
        lookup |= {"active": True, "key_id": key.key_id, "created_at": created}
        record = {"PK": f"SHOP#{key.shop_id}", "SK": f"KEY#{key.key_id}", "key_hash": key_hash_hex}
        record |= {"key_id": key.key_id, "created_at": created, "hint": key.hint}
        self._db.transact_write_items(
            TransactItems=[
                self._put(lookup, "attribute_not_exists(PK)"),
                self._put(record, "attribute_not_exists(PK)"),
            ]
        )

    def api_keys(self, shop_id: str) -> list[ApiKey]:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :key)",
            ExpressionAttributeValues=marshal({":pk": f"SHOP#{shop_id}", ":key": "KEY#"}),
            ConsistentRead=True,
        )
        keys = []
        for raw in page["Items"]:
            record = unmarshal(raw)
            lookup = self._get({"PK": f"APIKEY#{record['key_hash']}", "SK": "APIKEY"}) or {}
            keys.append(_api_key_from(shop_id, record, lookup))
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    def revoke_api_key(self, shop_id: str, key_id: str, at: datetime) -> ApiKey | None:
        record = self._get({"PK": f"SHOP#{shop_id}", "SK": f"KEY#{key_id}"})
        if record is None:
            return None
        lookup_key = {"PK": f"APIKEY#{record['key_hash']}", "SK": "APIKEY"}
        lookup = self._get(lookup_key) or {}
        if lookup.get("active", True):
            self._db.update_item(
                TableName=self._table,
                Key=marshal(lookup_key),
                UpdateExpression="SET active = :off, revoked_at = :at",
                ExpressionAttributeValues=marshal({":off": False, ":at": to_utc_text(at)}),
            )
            lookup |= {"active": False, "revoked_at": to_utc_text(at)}
        return _api_key_from(shop_id, record, lookup)

    def get_shop(self, shop_id: str) -> Shop | None:
        item = self._get({"PK": f"SHOP#{shop_id}", "SK": "PROFILE"})
        if not item:
            return None
        return Shop(
            shop_id=shop_id,
            name=item["name"],
            email=item["email"],
            kcp_secret_id=item.get("kcp_secret_id", ""),
        )

    def get_payment(self, shop_id: str, tno: str) -> Payment | None:
        item = self._get(payment_key(shop_id, tno))
        return payment_from(item) if item else None

    def get_idempotency(self, shop_id: str, key: str) -> IdempotencyRecord | None:
        item = self._get({"PK": f"SHOP#{shop_id}#IDEM#{key_hash(key)}", "SK": "IDEMPOTENCY"})
        if not item:
            return None
        return IdempotencyRecord(item["body_hash"], item["cancellation_id"])

    def get_cancellation(self, shop_id: str, cancellation_id: str) -> Cancellation | None:
        pk = cancellation_key(shop_id, cancellation_id)["PK"]
        items = self._query_all(pk)
        main = next((i for i in items if i["SK"] == "CANCELLATION"), None)
        if main is None:
            return None
        attempts = [_attempt_from(i) for i in items if i["SK"].startswith("ATTEMPT#")]
        return _cancellation_from(main, tuple(sorted(attempts, key=lambda a: a.seq)))

    def _query_all(self, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            items += [unmarshal(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def payment_cancellations(self, shop_id: str, tno: str) -> list[Cancellation]:
        """Every cancellation of a payment with its attempts, oldest first (one Query)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "ByPayment",
            "KeyConditionExpression": "GSI2PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"SHOP#{shop_id}#PAY#{tno}"}},
        }
        while True:
            page = self._db.query(**kwargs)
            items += [unmarshal(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        attempts: dict[str, list[Attempt]] = {}
        for item in items:
            if item["type"] == "ATTEMPT":
                with _readable(item, attempts.setdefault(item["cancellation_id"], [])) as found:
                    found.append(_attempt_from(item))
        cancellations: list[Cancellation] = []
        for item in items:
            if item["type"] == "CANCELLATION":
                journal = sorted(attempts.get(item["cancellation_id"], []), key=lambda a: a.seq)
                with _readable(item, cancellations) as found:
                    found.append(_cancellation_from(item, tuple(journal)))
        return cancellations

    def history_page(
        self, shop_id: str, query: HistoryQuery, position: dict[str, Any] | None
    ) -> HistoryPage:
        """Newest first within the approval-time range (keyed); other filters are applied as
        DynamoDB reads, until the page is full, the range ends, or the read budget is spent."""
        partition = f"SHOP#{shop_id}#PAYMENTS"
        low = to_utc_text(query.since) if query.since else "0"
        high = (to_utc_text(query.until) + "#~") if query.until else "~"
        names: dict[str, str] = {}
        values: dict[str, Any] = {":pk": partition, ":low": low, ":high": high}
        filters = []
        if query.min_amount is not None:
            filters.append("amount >= :min")
            values[":min"] = query.min_amount
        if query.max_amount is not None:
            filters.append("amount <= :max")
            values[":max"] = query.max_amount
        if query.product:
            filters.append("contains(product_name_lower, :product)")
            values[":product"] = query.product.casefold()
        if query.status:
            filters.append("#st = :status")
            names["#st"] = "status"
            values[":status"] = query.status.value
        if query.method:
            filters.append("#method = :method")
            names["#method"] = "method"
            values[":method"] = query.method.value
        if query.order_id:
            filters.append("order_id = :order")
            values[":order"] = query.order_id
        if query.buyer:
            filters.append("(buyer_email = :buyer OR buyer_name = :buyer)")
            values[":buyer"] = query.buyer
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "ShopTimeline",
            "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK BETWEEN :low AND :high",
            "ExpressionAttributeValues": marshal(values),
            "ScanIndexForward": False,
            "ReturnConsumedCapacity": "TOTAL",
            # Unfiltered, a page is one read of exactly `limit`; filtered, read wider per request.
            "Limit": min(HISTORY_READ_MAX, query.limit * 10) if filters else query.limit,
        }
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if names:
            kwargs["ExpressionAttributeNames"] = names
        return _history(*self._query_page(kwargs, query.limit, _GSI1_KEY, position))

    def _query_page(
        self,
        kwargs: dict[str, Any],
        limit: int,
        key: tuple[str, ...],
        position: dict[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int, float, int]:
        """Up to `limit` raw rows of one index Query, newest first, within the read budget:
        (rows, where the next page starts or None, requests, read units, items read).

        A position resumes only inside the Query's own partition (Conflict otherwise).
        """
        if position:
            partition = kwargs["ExpressionAttributeValues"][":pk"]["S"]
            if position.get(key[2]) != partition:  # a cursor only ever resumes in this shop
                raise Conflict("position outside this shop's partition")
            kwargs["ExclusiveStartKey"] = marshal(position)
        found: list[dict[str, Any]] = []
        requests, units, read = 0, 0.0, 0
        while requests < HISTORY_READ_BUDGET:
            page = self._db.query(**kwargs)
            requests += 1
            units += float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0))
            read += int(page.get("ScannedCount", 0))
            rows = page["Items"]
            more = "LastEvaluatedKey" in page
            for n, raw in enumerate(rows):
                found.append(raw)
                if len(found) == limit:
                    last = n == len(rows) - 1 and not more
                    following = None if last else {k: _de.deserialize(raw[k]) for k in key}
                    return found, following, requests, units, read
            if not more:
                return found, None, requests, units, read
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        # Budget spent on a selective filter: a short page, and where to go on from.
        following = {k: _de.deserialize(v) for k, v in kwargs["ExclusiveStartKey"].items()}
        return found, following, requests, units, read

    def cancellation_page(
        self, shop_id: str, query: CancellationQuery, position: dict[str, Any] | None
    ) -> CancellationPage:
        """Newest first by creation time: a payment's (ByPayment) when a tno is given, else the
        shop's (ShopTimeline); the status is a filter, read within the same budget."""
        low = to_utc_text(query.since, precise=True) if query.since else "0"
        high = "~"
        if query.until:
            high = to_utc_text(query.until.replace(microsecond=999999), precise=True) + "#~"
        if query.tno:
            index, key = "ByPayment", _GSI2_KEY
            partition, low, high = f"SHOP#{shop_id}#PAY#{query.tno}", f"CNL#{low}", f"CNL#{high}"
        else:
            index, key, partition = "ShopTimeline", _GSI1_KEY, f"SHOP#{shop_id}#CANCELLATIONS"
        values: dict[str, Any] = {":pk": partition, ":low": low, ":high": high}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": f"{key[2]} = :pk AND {key[3]} BETWEEN :low AND :high",
            "ScanIndexForward": False,
            "ReturnConsumedCapacity": "TOTAL",
            "Limit": query.limit,
        }
        if query.status:
            kwargs["FilterExpression"] = "#st = :status"
            kwargs["ExpressionAttributeNames"] = {"#st": "status"}
            values[":status"] = query.status.value
            kwargs["Limit"] = min(HISTORY_READ_MAX, query.limit * 10)
        kwargs["ExpressionAttributeValues"] = marshal(values)
        rows, following, *_ = self._query_page(kwargs, query.limit, key, position)
        found: list[Cancellation] = []
        for raw in rows:
            item = unmarshal(raw)
            with _readable(item, found):
                found.append(_cancellation_from(item, ()))
        return CancellationPage(tuple(found), following, len(rows) - len(found))

    def find_cancellation(self, cancellation_id: str) -> Cancellation | None:
        """By the sparse CancellationById index (its id is unique across shops)."""
        page = self._db.query(
            TableName=self._table,
            IndexName="CancellationById",
            KeyConditionExpression="GSI6PK = :pk",
            ExpressionAttributeValues=marshal({":pk": f"CNL#{cancellation_id}"}),
        )
        for raw in page["Items"]:
            item = unmarshal(raw)
            return self.get_cancellation(item["shop_id"], cancellation_id)
        return None

    def review_page(self, query: ReviewQuery, position: dict[str, Any] | None) -> CancellationPage:
        """Open reviews across shops, oldest first, from the sparse OpenReviews index; shop and
        amount filter what the (opened-before) range reads."""
        high = "~"
        if query.opened_before:
            high = to_utc_text(query.opened_before, precise=True) + "#~"
        values: dict[str, Any] = {":pk": _OPEN_REVIEWS, ":high": high}
        filters = []
        if query.shop_id:
            filters.append("shop_id = :shop")
            values[":shop"] = query.shop_id
        if query.min_amount is not None:
            filters.append("amount >= :min_amount")
            values[":min_amount"] = query.min_amount
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "OpenReviews",
            "KeyConditionExpression": "GSI5PK = :pk AND GSI5SK <= :high",
            "ScanIndexForward": True,
            "ReturnConsumedCapacity": "TOTAL",
            "Limit": query.limit if not filters else min(HISTORY_READ_MAX, query.limit * 10),
            "ExpressionAttributeValues": marshal(values),
        }
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        rows, following, *_ = self._query_page(kwargs, query.limit, _GSI5_KEY, position)
        found: list[Cancellation] = []
        for raw in rows:
            item = unmarshal(raw)
            with _readable(item, found):
                found.append(_cancellation_from(item, ()))
        return CancellationPage(tuple(found), following, len(rows) - len(found))

    def to_sweep(self, failed_since: datetime) -> list[tuple[str, str]]:
        """(shop, tno) of every payment with an open cancel, or one FAILED since then."""
        found: dict[tuple[str, str], None] = {}
        for partition, low in (("SWEEP#OPEN", "0"), ("SWEEP#FAILED", to_utc_text(failed_since))):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": "ToSweep",
                "KeyConditionExpression": "GSI4PK = :pk AND GSI4SK >= :low",
                "ExpressionAttributeValues": marshal({":pk": partition, ":low": low}),
            }
            while True:
                page = self._db.query(**kwargs)
                for raw in page["Items"]:
                    item = unmarshal(raw)
                    found[(item["shop_id"], item["tno"])] = None
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return list(found)

    # --- setup (seeding a shop; the product has no sign-up flow yet) ------------------

    def put_shop(self, shop: Shop, api_keys: list[str]) -> None:
        self._db.put_item(
            TableName=self._table,
            Item=marshal(
                {
                    "PK": f"SHOP#{shop.shop_id}",
                    "SK": "PROFILE",
                    "name": shop.name,
                    "email": shop.email,
                    "kcp_secret_id": shop.kcp_secret_id,
                }
            ),
        )
        for secret in api_keys:
            item: dict[str, Any] = {"PK": f"APIKEY#{key_hash(secret)}", "SK": "APIKEY"}
            item |= {"shop_id": shop.shop_id, "active": True}
            self._db.put_item(TableName=self._table, Item=marshal(item))

    # --- writing ---------------------------------------------------------------------

    def put_payment(self, payment: Payment) -> bool:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=marshal(payment_item(payment)),
                ConditionExpression="attribute_not_exists(PK)",
            )
            return True
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise

    def create_cancellation(
        self, cancellation: Cancellation, key: str, body_hash: str, expires_at: datetime
    ) -> None:
        shop = cancellation.shop_id
        idem = {
            "PK": f"SHOP#{shop}#IDEM#{key_hash(key)}",
            "SK": "IDEMPOTENCY",
            "body_hash": body_hash,
            "cancellation_id": cancellation.cancellation_id,
            "expires_at": int(expires_at.timestamp()),
        }
        try:
            self._db.transact_write_items(
                TransactItems=[
                    self._put(idem, "attribute_not_exists(PK)"),
                    self._put(_cancellation_item(cancellation), "attribute_not_exists(PK)"),
                ]
            )
        except ClientError as e:
            if error_code(e) == "TransactionCanceledException":
                raise Conflict("idempotency key already used") from e
            raise

    def reserve(self, cancellation: Cancellation, amount: int, seen: Payment | None = None) -> None:
        """REQUESTED -> RESERVED with the decision (amount, breakdown, policy version, tax-free
        part); the payment's available balance lowered, its tax-free part held and the removed
        items taken, if still free. A mixed-tax payment's hold is conditional on the payment
        being as `seen` (DynamoDB cannot compare a difference of its attributes)."""
        now = to_utc_text(cancellation.updated_at)
        decision = {
            ":breakdown": [_line_doc(line) for line in cancellation.breakdown],
            ":policy": cancellation.policy_version,
            ":free": cancellation.tax_free_amount,
        }
        take, free, items = "", "", cancellation.removed_items
        item_values: dict[str, Any] = {}
        if items:
            take = " ADD removed_items :items"
            free = "".join(f" AND NOT contains(removed_items, :i{n})" for n in range(len(items)))
            item_values = {":items": set(items)} | {f":i{n}": i for n, i in enumerate(items)}
        if cancellation.tax_free_amount:
            take = ", tax_free_held = if_not_exists(tax_free_held, :zero) + :free" + take
            item_values |= {":free": cancellation.tax_free_amount, ":zero": 0}
        if seen is not None and seen.mixed_tax:
            free += " AND balance = :seen_bal AND available = :seen_avail AND " + (
                "tax_free_held = :seen_held"
                if seen.tax_free_held
                else "(attribute_not_exists(tax_free_held) OR tax_free_held = :seen_held)"
            )
            item_values |= {":seen_bal": seen.balance, ":seen_avail": seen.available}
            item_values |= {":seen_held": seen.tax_free_held}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    self._update(
                        cancellation_key(cancellation.shop_id, cancellation.cancellation_id),
                        "SET #st = :reserved, amount = :amt, updated_at = :now, "
                        "breakdown = :breakdown, policy_version = :policy, "
                        "tax_free_amount = :free",
                        "#st = :requested",
                        {":reserved": "RESERVED", ":amt": amount, ":now": now}
                        | {":requested": "REQUESTED"}
                        | decision,
                    ),
                    self._update(
                        payment_key(cancellation.shop_id, cancellation.tno),
                        "SET available = available - :amt" + take,
                        "available >= :amt" + free,
                        {":amt": amount} | item_values,
                    ),
                ]
            )
        except ClientError as e:
            if error_code(e) != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(e, 3)
            if reasons[0] == "ConditionalCheckFailed":
                raise Conflict("cancellation is not REQUESTED") from e
            raise InsufficientBalance() from e

    def begin_send(self, cancellation: Cancellation, attempt: Attempt) -> int:
        shop, cid = cancellation.shop_id, cancellation.cancellation_id
        pay_key = payment_key(shop, cancellation.tno)
        payment = self._get(pay_key)
        if payment is None:
            raise Conflict("payment vanished")
        balance = payment["balance"]
        try:
            self._db.transact_write_items(
                TransactItems=[
                    self._update(
                        cancellation_key(shop, cid),
                        "SET #st = :sending, balance_before = :bal, updated_at = :now",
                        "#st = :reserved",
                        {":sending": "SENDING", ":reserved": "RESERVED", ":bal": balance}
                        | {":now": to_utc_text(attempt.sent_at)},
                    ),
                    # The send lock: one cancel per payment at KCP at a time, so KCP's
                    # balance before it is known and an inquiry can tell what happened.
                    self._update(
                        pay_key,
                        "SET in_flight = :cid",
                        "attribute_not_exists(in_flight) AND balance = :bal",
                        {":cid": cid, ":bal": balance},
                    ),
                    self._put(_attempt_item(cancellation, attempt), "attribute_not_exists(PK)"),
                ]
            )
        except ClientError as e:
            if error_code(e) != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(e, 3)
            if reasons[0] == "ConditionalCheckFailed" or reasons[2] == "ConditionalCheckFailed":
                raise Conflict("cancellation is not RESERVED: it was sent before") from e
            raise PaymentBusy() from e
        return int(balance)

    def dispatch(self, cancellation: Cancellation, attempt: Attempt, claim: str) -> bool:
        key = {
            "PK": cancellation_key(cancellation.shop_id, cancellation.cancellation_id)["PK"],
            "SK": f"ATTEMPT#{attempt.seq:04d}",
        }
        try:
            self._db.update_item(
                TableName=self._table,
                Key=marshal(key),
                UpdateExpression="SET dispatched = :claim",
                ConditionExpression="dispatched = :pending",  # journaled, claimed by nobody
                ExpressionAttributeValues=marshal({":claim": claim, ":pending": "PENDING"}),
            )
            return True
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise

    def journal(self, cancellation: Cancellation, attempt: Attempt) -> None:
        self._db.put_item(TableName=self._table, Item=marshal(_attempt_item(cancellation, attempt)))

    def mark(self, cancellation: Cancellation, status: CancellationStatus) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=marshal(cancellation_key(cancellation.shop_id, cancellation.cancellation_id)),
                UpdateExpression="SET #st = :new, updated_at = :now",
                # attribute_exists: a missing item would otherwise be created as a ghost
                ConditionExpression="attribute_exists(PK) AND NOT #st IN (:s1, :s2, :s3, :s4)",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues=marshal(
                    {":new": status.value, ":now": to_utc_text(cancellation.updated_at)}
                    | _terminal_values()
                ),
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise Conflict("cancellation is already terminal") from e
            raise

    # --- re-indexing (make reindex): records written before an index existed -------------

    def reindex_record(
        self, raw: dict[str, Any], indexed: Callable[[Cancellation], Cancellation]
    ) -> bool | None:
        """Make a stored cancellation item's index keys those of `indexed(its cancellation)`;
        None for an item that is not one or cannot be read (logged). For `make reindex`, which
        reads the items (a Scan: an operator's one-off, never in the layer's request paths)."""
        item = unmarshal(raw)
        if item.get("type") != "CANCELLATION" or item.get("SK") != "CANCELLATION":
            return None
        found: list[Cancellation] = []
        with _readable(item, found):
            found.append(_cancellation_from(item, ()))
        if not found:
            return None
        keys = {k: v for k, v in item.items() if k.startswith("GSI")}
        return self.reindex_cancellation(found[0], keys, indexed(found[0]))

    def reindex_cancellation(
        self, stored: Cancellation, stored_keys: dict[str, Any], indexed: Cancellation
    ) -> bool:
        """Make the record's index keys those `indexed` has (and add the review it opened for
        the queue); False when they already are. Conditional on the record being unchanged
        since it was read, so a concurrent write is never overwritten (Conflict)."""
        wanted = {k: v for k, v in _cancellation_item(indexed).items() if k.startswith("GSI")}
        stale = sorted(set(stored_keys) - set(wanted))
        sets = [f"{k} = :{k}" for k, v in wanted.items() if stored_keys.get(k) != v]
        values: dict[str, Any] = {f":{k}": wanted[k] for k in wanted if f"{k} = :{k}" in sets}
        names = {"#st": "status"}
        condition = "#st = :status AND updated_at = :updated"
        if indexed.review is not None and stored.review is None:
            sets.append("#rv = :review")
            values[":review"] = _review_doc(indexed.review)
            names["#rv"] = "review"
            condition += " AND attribute_not_exists(#rv)"
        if not sets and not stale:
            return False
        values |= {":status": stored.status.value, ":updated": to_utc_text(stored.updated_at)}
        update = ("SET " + ", ".join(sets) if sets else "") + (
            " REMOVE " + ", ".join(stale) if stale else ""
        )
        try:
            self._db.update_item(
                TableName=self._table,
                Key=marshal(cancellation_key(stored.shop_id, stored.cancellation_id)),
                UpdateExpression=update.strip(),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=marshal(values),
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise Conflict("the cancellation changed meanwhile") from e
            raise
        return True

    def update_review(self, cancellation: Cancellation, review: Review) -> None:
        before = cancellation.review
        condition = "#st = :open AND " + (
            "#rv.version = :version" if before else "attribute_not_exists(#rv)"
        )
        values: dict[str, Any] = {
            ":review": _review_doc(review),
            ":open": CancellationStatus.NEEDS_REVIEW.value,
        } | ({":version": before.version} if before else {})
        if before is None:  # a case opened before reviews were kept: into the queue now
            values[":gsi5pk"] = _OPEN_REVIEWS
            values[":gsi5sk"] = _review_sort_key(cancellation.cancellation_id, review)
        try:
            self._db.update_item(
                TableName=self._table,
                Key=marshal(cancellation_key(cancellation.shop_id, cancellation.cancellation_id)),
                UpdateExpression="SET #rv = :review"
                + ("" if before else ", GSI5PK = :gsi5pk, GSI5SK = :gsi5sk"),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#st": "status", "#rv": "review"},
                ExpressionAttributeValues=marshal(values),
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise Conflict("the review changed meanwhile") from e
            raise

    def settle(
        self,
        cancellation: Cancellation,
        outcome: Cancellation,
        effect: PaymentEffect,
        events: tuple[Event, ...] = (),
    ) -> None:
        shop, cid = cancellation.shop_id, cancellation.cancellation_id
        items = [self._put(_cancellation_item(outcome), "#st = :from")]
        items[0]["Put"]["ExpressionAttributeNames"] = {"#st": "status"}
        items[0]["Put"]["ExpressionAttributeValues"] = marshal({":from": cancellation.status.value})
        items += [self._put(event_item(e), "attribute_not_exists(PK)") for e in events]
        # The failure report's counters (the domain decides what counts), in this transaction.
        items += [tally(self._table, m) for m in failures.marks_of(cancellation, outcome)]
        sets, conditions = [], ["attribute_exists(PK)"]
        values: dict[str, Any] = {}
        if effect.balance:
            sets.append("balance = balance + :dbal")
            values[":dbal"] = effect.balance
        if effect.available:
            sets.append("available = available + :davail")
            values[":davail"] = effect.available
        for name, delta in (
            ("tax_free_cancelled", effect.tax_free_cancelled),
            ("tax_free_held", effect.tax_free_held),
        ):
            if delta:
                sets.append(f"{name} = if_not_exists({name}, :zero) + :d_{name}")
                values |= {":zero": 0, f":d_{name}": delta}
        if effect.status is not None:
            sets.append("#st = :pstatus")
            values[":pstatus"] = effect.status.value
        if effect.expect_balance is not None:
            conditions.append("balance = :seen")
            values[":seen"] = effect.expect_balance
        if effect.idle:
            conditions.append("attribute_not_exists(in_flight)")
        if effect.release_lock:
            conditions.append("in_flight = :cid")
            values[":cid"] = cid
        expression = ("SET " + ", ".join(sets) if sets else "") + (
            " REMOVE in_flight" if effect.release_lock else ""
        )
        if effect.add_items:
            expression += " ADD removed_items :add_items"
            values[":add_items"] = set(effect.add_items)
        if effect.release_items:
            expression += " DELETE removed_items :release_items"
            values[":release_items"] = set(effect.release_items)
        if expression:
            items.append(
                self._update(
                    payment_key(shop, cancellation.tno),
                    expression.strip(),
                    " AND ".join(conditions),
                    values,
                )
            )
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as e:
            if error_code(e) == "TransactionCanceledException":
                raise Conflict("cancellation or payment changed meanwhile") from e
            raise

    def get_policy(self, shop_id: str) -> ShopPolicy:
        item = self._get({"PK": f"SHOP#{shop_id}", "SK": "POLICY"})
        return policy_from_doc(item["policy"]) if item else default_policy()

    def put_policy(self, shop_id: str, policy: ShopPolicy, replaces: int, at: datetime) -> None:
        """Store `policy` (whose version is replaces + 1) as current, and keep it in history.

        Conflict if another change replaced version `replaces` first.
        """
        doc = {"policy": policy_to_doc(policy), "version": policy.version, "at": to_utc_text(at)}
        current = {"PK": f"SHOP#{shop_id}", "SK": "POLICY"} | doc
        history = {"PK": f"SHOP#{shop_id}", "SK": f"POLICY#{policy.version:06d}"} | doc
        condition = "attribute_not_exists(PK) OR version = :prev"
        put_current = self._put(current, condition)
        put_current["Put"]["ExpressionAttributeValues"] = marshal({":prev": replaces})
        try:
            self._db.transact_write_items(
                TransactItems=[put_current, self._put(history, "attribute_not_exists(PK)")]
            )
        except ClientError as e:
            if error_code(e) == "TransactionCanceledException":
                raise Conflict("the policy changed meanwhile") from e
            raise

    def set_fulfillment(self, payment: Payment, changed: Payment) -> None:
        """Record a fulfillment transition; Conflict if the stored one moved meanwhile."""
        values = {
            ":new": changed.fulfillment.value,
            ":old": payment.fulfillment.value,
            ":at": text_of(changed.fulfillment_at),
            ":delivered": text_of(changed.delivered_at),
        }
        expression = "SET fulfillment = :new, fulfillment_at = :at"
        expression += (
            ", delivered_at = :delivered" if changed.delivered_at else " REMOVE delivered_at"
        )
        try:
            self._db.update_item(
                TableName=self._table,
                Key=marshal(payment_key(payment.shop_id, payment.tno)),
                UpdateExpression=expression,
                ConditionExpression="fulfillment = :old",
                ExpressionAttributeValues=marshal(values),
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise Conflict("fulfillment changed meanwhile") from e
            raise

    # --- transaction pieces ----------------------------------------------------------

    def _put(self, item: Mapping[str, Any], condition: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": marshal(item),
                "ConditionExpression": condition,
            }
        }

    def _update(
        self,
        key: Mapping[str, str],
        expression: str,
        condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": marshal(key),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": marshal(values),
        }
        if names is None:  # "status" is a reserved word; name it only where it is used
            names = {"#st": "status"} if "#st" in expression + condition else {}
        if names:
            update["ExpressionAttributeNames"] = dict(names)
        return {"Update": update}


HISTORY_READ_BUDGET = 8  # DynamoDB requests one history page may cost at most
HISTORY_READ_MAX = 1000  # items read per request when filters cannot be keyed
_GSI1_KEY = ("PK", "SK", "GSI1PK", "GSI1SK")  # a page position on ShopTimeline
_GSI2_KEY = ("PK", "SK", "GSI2PK", "GSI2SK")  # and on ByPayment
_GSI5_KEY = ("PK", "SK", "GSI5PK", "GSI5SK")  # and on OpenReviews
_OPEN_REVIEWS = "REVIEW#OPEN"


def _api_key_from(shop_id: str, record: Mapping[str, Any], lookup: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=record["key_id"],
        shop_id=shop_id,
        created_at=from_utc_text(record["created_at"]),
        hint=record.get("hint", ""),
        revoked_at=time_from(lookup.get("revoked_at")) if lookup else None,
        last_used_at=time_from(lookup.get("last_used_at")) if lookup else None,
    )


@contextmanager
def _readable(item: Mapping[str, Any], found: list[Any]) -> Iterator[list[Any]]:
    """Leave out (and log) a record that cannot be read: one bad record must not fail a list."""
    try:
        yield found
    except (KeyError, ValueError, TypeError) as error:
        log.warning("unreadable record %s %s: %r", item.get("PK"), item.get("SK"), error)


def _history(
    rows: list[dict[str, Any]],
    following: dict[str, Any] | None,
    requests: int,
    units: float,
    read: int,
) -> HistoryPage:
    payments, unreadable = [], 0
    for raw in rows:
        try:
            payments.append(payment_from(unmarshal(raw)))
        except (KeyError, ValueError, TypeError) as error:
            # One record that cannot be shown must not fail a shop's whole history.
            unreadable += 1
            log.warning("unreadable payment %s: %r", raw.get("PK", {}).get("S"), error)
    return HistoryPage(tuple(payments), following, requests, units, read, unreadable)


def _terminal_values() -> dict[str, str]:
    return {":s1": "SUCCEEDED", ":s2": "REJECTED", ":s3": "FAILED", ":s4": "NEEDS_REVIEW"}


# --- item <-> domain -------------------------------------------------------------------


def _sweep_keys(c: Cancellation, created: str) -> dict[str, str]:
    """Where the sweep finds a cancellation: open ones always, FAILED ones by when they failed."""
    if c.status in OPEN:
        return {"GSI4PK": "SWEEP#OPEN", "GSI4SK": f"{created}#{c.cancellation_id}"}
    if c.status is CancellationStatus.FAILED:
        updated = to_utc_text(c.updated_at, precise=True)
        return {"GSI4PK": "SWEEP#FAILED", "GSI4SK": f"{updated}#{c.cancellation_id}"}
    return {}


def _review_sort_key(cancellation_id: str, review: Review) -> str:
    return f"{to_utc_text(review.opened_at, precise=True)}#{cancellation_id}"


def _review_keys(c: Cancellation) -> dict[str, str]:
    """Where the review queue finds a cancellation: only while its review is open."""
    if c.status is not CancellationStatus.NEEDS_REVIEW or c.review is None:
        return {}
    return {"GSI5PK": _OPEN_REVIEWS, "GSI5SK": _review_sort_key(c.cancellation_id, c.review)}


def _review_doc(r: Review) -> dict[str, Any]:
    return {
        "opened_at": to_utc_text(r.opened_at, precise=True),
        "token": r.token,
        "version": r.version,
        "decisions": [
            {
                "outcome": d.outcome,
                "note": d.note,
                "by": d.by,
                "at": to_utc_text(d.at, precise=True),
                "evidence": d.evidence,
            }
            for d in r.decisions
        ],
    }


def _review_from(doc: dict[str, Any] | None) -> Review | None:
    if not doc:
        return None
    return Review(
        opened_at=from_utc_text(doc["opened_at"]),
        token=doc.get("token", ""),
        version=int(doc.get("version", 0)),
        decisions=tuple(
            Decision(
                d["outcome"], d["note"], d["by"], from_utc_text(d["at"]), d.get("evidence", {})
            )
            for d in doc.get("decisions", [])
        ),
    )


def _cancellation_item(c: Cancellation) -> dict[str, Any]:
    created = to_utc_text(c.created_at, precise=True)
    account = c.refund_account
    return (
        cancellation_key(c.shop_id, c.cancellation_id)
        | _sweep_keys(c, created)
        | _review_keys(c)
        | {
            "GSI1PK": f"SHOP#{c.shop_id}#CANCELLATIONS",  # the shop's list, newest first
            "GSI1SK": f"{created}#{c.cancellation_id}",
            "GSI2PK": f"SHOP#{c.shop_id}#PAY#{c.tno}",
            "GSI2SK": f"CNL#{created}#{c.cancellation_id}",
            "GSI6PK": f"CNL#{c.cancellation_id}",  # found by id alone, across shops (operators)
            "type": "CANCELLATION",
            "shop_id": c.shop_id,
            "cancellation_id": c.cancellation_id,
            "tno": c.tno,
            "status": c.status.value,
            "reason_code": c.reason_code,
            "reason": c.reason,
            "created_at": created,
            "updated_at": to_utc_text(c.updated_at),
            "requested_amount": c.requested_amount,
            "requested_by": c.requested_by,
            "removed_items": list(c.removed_items),
            "amount": c.amount,
            "breakdown": [_line_doc(line) for line in c.breakdown],
            "policy_version": c.policy_version,
            "refund_account": (
                {"bank_code": account.bank_code, "number": account.number, "holder": account.holder}
                if account
                else None
            ),
            "execution_id": c.execution_id or None,
            "reasons": list(c.reasons),
            "res_cd": c.res_cd,
            "res_msg": c.res_msg,
            "cancelled_at": text_of(c.cancelled_at),
            "partial_seq": c.partial_seq,
            "balance_before": c.balance_before,
            "confirmed_by": c.confirmed_by or None,
            "corrected_from": c.corrected_from or None,
            "review": _review_doc(c.review) if c.review else None,
            "requested_tax_free_amount": c.requested_tax_free_amount,
            "tax_free_amount": c.tax_free_amount or None,
            "batch_id": c.batch_id or None,
        }
    )


def _cancellation_from(i: dict[str, Any], attempts: tuple[Attempt, ...]) -> Cancellation:
    account = i.get("refund_account")
    return Cancellation(
        shop_id=i["shop_id"],
        cancellation_id=i["cancellation_id"],
        tno=i["tno"],
        status=CancellationStatus(i["status"]),
        reason_code=i["reason_code"],
        reason=i.get("reason", ""),
        created_at=from_utc_text(i["created_at"]),
        updated_at=from_utc_text(i["updated_at"]),
        requested_amount=i.get("requested_amount"),
        requested_by=i.get("requested_by", "CUSTOMER"),
        removed_items=tuple(int(n) for n in i.get("removed_items", [])),
        amount=i.get("amount"),
        breakdown=tuple(_line_from(line) for line in i.get("breakdown", [])),
        policy_version=i.get("policy_version"),
        refund_account=RefundAccount(**account) if account else None,
        execution_id=i.get("execution_id", ""),
        reasons=tuple(i.get("reasons", [])),
        res_cd=i.get("res_cd", ""),
        res_msg=i.get("res_msg", ""),
        cancelled_at=time_from(i.get("cancelled_at")),
        partial_seq=i.get("partial_seq", ""),
        balance_before=i.get("balance_before"),
        attempts=attempts,
        confirmed_by=i.get("confirmed_by", ""),
        corrected_from=i.get("corrected_from", ""),
        review=_review_from(i.get("review")),
        requested_tax_free_amount=i.get("requested_tax_free_amount"),
        tax_free_amount=i.get("tax_free_amount", 0),
        batch_id=i.get("batch_id") or "",
    )


def _line_doc(line: BreakdownLine) -> list[Any]:
    if line.item is None:
        return [line.code, line.amount]
    return [line.code, line.amount, line.item, line.name, line.quantity]


def _line_from(doc: list[Any]) -> BreakdownLine:
    code, amount, *item = doc  # [code, amount] or an ITEM line's [.., item, name, quantity]
    if not item:
        return BreakdownLine(str(code), int(amount))
    position, name, quantity = item
    return BreakdownLine(str(code), int(amount), int(position), str(name), int(quantity))


def _attempt_item(c: Cancellation, a: Attempt) -> dict[str, Any]:
    sent = to_utc_text(a.sent_at, precise=True)
    return {
        "PK": cancellation_key(c.shop_id, c.cancellation_id)["PK"],
        "SK": f"ATTEMPT#{a.seq:04d}",
        "GSI2PK": f"SHOP#{c.shop_id}#PAY#{c.tno}",
        "GSI2SK": f"ATT#{sent}#{c.cancellation_id}#{a.seq:04d}",
        "type": "ATTEMPT",
        "cancellation_id": c.cancellation_id,
        "seq": a.seq,
        "kind": a.kind,
        "sent_at": sent,
        "outcome": a.outcome,
        "res_cd": a.res_cd,
        "res_msg": a.res_msg,
        "detail": a.detail,
        "completed_at": text_of(a.completed_at),
        "dispatched": a.dispatched or None,
    }


def _attempt_from(i: dict[str, Any]) -> Attempt:
    return Attempt(
        seq=i["seq"],
        kind=i["kind"],
        sent_at=from_utc_text(i["sent_at"]),
        outcome=i.get("outcome", ""),
        res_cd=i.get("res_cd", ""),
        res_msg=i.get("res_msg", ""),
        detail=i.get("detail", ""),
        completed_at=time_from(i.get("completed_at")),
        dispatched=i.get("dispatched", ""),
    )
