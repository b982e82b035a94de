"""The NotificationStore on the one table (its layout: table.py): KCP site links, notifications
kept, and each one's change written in one transaction with it.

    KCP site link   PK KCPSITE#{site_cd}              SK KCPSITE   (shop_id: whose site it is)
    notification    PK SHOP#{shop}#KCPNOTI#{notice}   SK KCP_NOTIFICATION
                    GSI2 ByPayment: SHOP#{shop}#PAY#{tno} / NOTI#{received}#{notice}
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from cancelflow.adapters.dynamodb.store import DynamoStore, _cancellation_item
from cancelflow.adapters.dynamodb.table import (
    cancellation_reasons,
    error_code,
    event_item,
    marshal,
    payment_key,
)
from cancelflow.cancellations.model import PaymentEffect
from cancelflow.kernel.clock import to_utc_text
from cancelflow.kernel.errors import Conflict
from cancelflow.notifications.model import Change
from cancelflow.notifications.ports import Received
from cancelflow.payments.model import Payment, PaymentStatus


def site_key(site_cd: str) -> dict[str, str]:
    return {"PK": f"KCPSITE#{site_cd}", "SK": "KCPSITE"}


def notice_key(shop_id: str, notice_id: str) -> dict[str, str]:
    return {"PK": f"SHOP#{shop_id}#KCPNOTI#{notice_id}", "SK": "KCP_NOTIFICATION"}


class DynamoNotifications(DynamoStore):
    def shop_for_site(self, site_cd: str) -> str | None:
        item = self._get(site_key(site_cd))
        return str(item["shop_id"]) if item else None

    def link_site(self, site_cd: str, shop_id: str) -> None:
        """Make site_cd's notifications this shop's (setup: its KCP credentials name it).
        Conflict if the site code is another shop's."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=marshal(site_key(site_cd) | {"shop_id": shop_id, "site_cd": site_cd}),
                ConditionExpression="attribute_not_exists(PK) OR shop_id = :shop",
                ExpressionAttributeValues=marshal({":shop": shop_id}),
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise Conflict(f"site_cd {site_cd} belongs to another shop") from e
            raise

    def received(self, shop_id: str, notice_id: str) -> bool:
        return self._get(notice_key(shop_id, notice_id)) is not None

    def keep(self, record: Received, payment: Payment | None, change: Change) -> bool:
        items = [self._put(_notice_item(record), "attribute_not_exists(PK)")]
        if change.effect is not None and payment is not None:
            items.append(self._payment_update(payment, change.effect, change.deposit))
        if change.cancellation is not None:
            item = _cancellation_item(change.cancellation)
            items.append(self._put(item, "attribute_not_exists(PK)"))
        if change.event is not None:
            items.append(self._put(event_item(change.event), "attribute_not_exists(PK)"))
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as e:
            if error_code(e) != "TransactionCanceledException":
                raise
            if cancellation_reasons(e, len(items))[0] == "ConditionalCheckFailed":
                return False  # kept before: a resend (or its twin, at the same time)
            raise Conflict("the payment changed meanwhile") from e
        return True

    def _payment_update(
        self, payment: Payment, effect: PaymentEffect, deposit: bool
    ) -> dict[str, Any]:
        """Execute the domain's effect, conditional on the facts it was decided from."""
        sets = ["balance = balance + :dbal", "available = available + :davail"]
        values: dict[str, Any] = {":dbal": effect.balance, ":davail": effect.available}
        conditions = ["attribute_exists(PK)"]
        if effect.status is not None:
            sets.append("#st = :pstatus")
            values[":pstatus"] = effect.status.value
        if effect.expect_balance is not None:
            conditions.append("balance = :seen")
            values[":seen"] = effect.expect_balance
        if effect.idle:
            conditions.append("attribute_not_exists(in_flight)")
        if effect.available < 0:  # never below what cancels of ours hold (a hold raced us)
            conditions.append("available >= :need")
            values[":need"] = -effect.available
        expression = "SET " + ", ".join(sets)
        if deposit:
            conditions.append("#st = :awaiting")
            values[":awaiting"] = PaymentStatus.AWAITING_DEPOSIT.value
        elif effect.balance < 0:  # an external cancel: counted apart from ours
            expression += " ADD externally_cancelled :taken"
            values[":taken"] = -effect.balance
        return self._update(
            payment_key(payment.shop_id, payment.tno), expression, " AND ".join(conditions), values
        )


def _notice_item(r: Received) -> dict[str, Any]:
    n, received = r.notice, to_utc_text(r.received_at, precise=True)
    return notice_key(r.shop_id, n.notice_id) | {
        "GSI2PK": f"SHOP#{r.shop_id}#PAY#{n.tno}",
        "GSI2SK": f"NOTI#{received}#{n.notice_id}",
        "type": "KCP_NOTIFICATION",
        "shop_id": r.shop_id,
        "notice_id": n.notice_id,
        "site_cd": n.site_cd,
        "tno": n.tno,
        "tx_cd": n.tx_cd,
        "tx_tm": n.fields.get("tx_tm", ""),
        "verdict": r.verdict,
        "note": r.note,
        "received_at": received,
        "form": n.masked(),  # personal and account data masked
    }
