"""The billing ledger on DynamoDB (moto, with the local stack's fixes, on the template's table):
a claim is single, and a retried claim recognises its own write."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cancelflow.adapters.dynamodb.subscriptions import DynamoBilling
from cancelflow.kernel.errors import Conflict
from cancelflow.subscriptions.model import Charge, ChargeStatus, Status, Subscription
from cancelflow.subscriptions.schedule import Cycle
from local import moto_fixes
from local.template import REGION, Template

NOW = datetime(2032, 3, 15, 0, 0, tzinfo=UTC)


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_fixes.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        (table,) = Template().table_definitions()
        client.create_table(**table["create"])
        yield client, table["create"]["TableName"]


def subscription() -> Subscription:
    return Subscription(
        shop_id="demo-shop",
        subscription_id="sub_0123456789abcdef0123",
        status=Status.ACTIVE,
        customer_name="김고객",
        customer_email="kim@example.com",
        product_name="월간 원두 구독",
        amount=9900,
        cycle=Cycle.MONTHLY,
        anchor_day=15,
        batch_key_ref="v1:k1:sealed",
        batch_key_last4="1234",
        period_date=date(2032, 3, 15),
        due_on=date(2032, 3, 15),
        created_at=NOW,
        updated_at=NOW,
    )


def pending(sub: Subscription, token: str) -> Charge:
    return sub.pending_charge(sub.period_date, NOW, token)


def test_a_period_is_claimed_once_and_a_retried_claim_knows_its_own_write(
    ddb: tuple[Any, str],
) -> None:
    store = DynamoBilling(*ddb)
    sub = subscription()
    assert store.create(sub) is None
    mine = pending(sub, "run-a")

    assert store.claim(sub, mine) is None  # claimed
    assert store.claim(sub, mine) is None  # the SDK resent it after a lost answer: still ours
    theirs = store.claim(sub, pending(sub, "run-b"))  # another run: it finds our claim

    assert theirs is not None and theirs.claim_token == "run-a"
    assert [c.status for c in store.charges(sub.shop_id, sub.subscription_id)] == [
        ChargeStatus.PENDING
    ]


def test_a_cancelled_transaction_writes_nothing(ddb: tuple[Any, str]) -> None:
    store = DynamoBilling(*ddb)
    sub = subscription()
    store.create(sub)
    stale = replace(sub, version=7)  # the subscription moved on since this was read

    with pytest.raises(Conflict):
        store.claim(stale, pending(stale, "run-a"))

    assert store.charges(sub.shop_id, sub.subscription_id) == []
