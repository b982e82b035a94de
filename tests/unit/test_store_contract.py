"""One contract, two stores: every scenario runs on the in-memory fake and on DynamoStore (moto,
the template's own Ledger table), so the fake the inner-loop tests use cannot drift from the
adapter that deploys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cancelflow.adapters.dynamodb.store import DynamoStore
from cancelflow.adapters.dynamodb.table import key_hash
from cancelflow.cancellations.model import (
    Attempt,
    BreakdownLine,
    Cancellation,
    CancellationStatus,
    effect_of,
)
from cancelflow.cancellations.ports import CancellationQuery, InsufficientBalance, PaymentBusy
from cancelflow.cancellations.ports import CancellationStore as Store
from cancelflow.kcp.port import RefundAccount
from cancelflow.kernel.errors import Conflict
from cancelflow.payments.model import Fulfillment, PaymentStatus
from cancelflow.shops.model import Shop
from cancelflow.shops.policy import ShopPolicy, default_policy
from local import moto_fixes
from local.template import REGION, Template
from tests.fakes.examples import NOW, SHOP, a_cancellation, a_payment
from tests.fakes.store import MemoryStore

TNO = "20261123000001"
EXPIRES = NOW + timedelta(hours=48)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[tuple[Any, dict[str, Any]]]:
    """One moto per module; each test gets a fresh table from the template's Ledger."""
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
        yield MemoryStore()
        return
    client, create = request.getfixturevalue("dynamodb")
    client.create_table(**create)
    try:
        yield DynamoStore(client, create["TableName"])
    finally:
        client.delete_table(TableName=create["TableName"])


def _requested(store: Store, cid: str = "cnl_1", amount: int | None = None) -> Cancellation:
    cancellation = a_cancellation(cid, TNO, amount)
    store.create_cancellation(cancellation, f"key-{cid}", "hash", EXPIRES)
    found = store.get_cancellation(SHOP, cid)
    assert found is not None
    return found


def _reserved(store: Store, cid: str = "cnl_1", amount: int = 10000) -> Cancellation:
    cancellation = _requested(store, cid, amount)
    store.reserve(_decided(cancellation, amount), amount)
    found = store.get_cancellation(SHOP, cid)
    assert found is not None
    return found


def _decided(cancellation: Cancellation, amount: int) -> Cancellation:
    # decide always records the policy it used; DynamoStore cannot write a reserve without it.
    return replace(cancellation, breakdown=(BreakdownLine("BALANCE", amount),), policy_version=1)


def _sending(store: Store, cid: str = "cnl_1", amount: int = 10000) -> Cancellation:
    cancellation = _reserved(store, cid, amount)
    store.begin_send(cancellation, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    found = store.get_cancellation(SHOP, cid)
    assert found is not None
    return found


def _settle(store: Store, cancellation: Cancellation, to: CancellationStatus) -> None:
    outcome = cancellation.with_status(to, updated_at=NOW)
    effect = effect_of(cancellation, to, cancellation.balance_before or 0)
    store.settle(cancellation, outcome, effect)


def _money(store: Store) -> tuple[int, int, str, PaymentStatus]:
    payment = store.get_payment(SHOP, TNO)
    assert payment is not None
    return payment.balance, payment.available, payment.in_flight, payment.status


def _status(store: Store, cid: str) -> CancellationStatus:
    found = store.get_cancellation(SHOP, cid)
    assert found is not None
    return found.status


# --- payments ------------------------------------------------------------------------------


def test_a_payment_is_registered_once_and_reads_back_as_stored(store: Store) -> None:
    payment = a_payment(TNO)
    payment = replace(payment, items=({"name": "셔츠", "quantity": 2, "price": 15000},))

    assert store.put_payment(payment) is True
    assert store.put_payment(replace(payment, amount=1)) is False

    whole_seconds = NOW.replace(microsecond=0)  # the table keeps approval times to the second
    assert store.get_payment(SHOP, TNO) == replace(
        payment, approved_at=whole_seconds, registered_at=whole_seconds
    )
    assert store.get_payment(SHOP, "20261123999999") is None
    assert store.get_payment("shop_b", TNO) is None


def test_registering_a_payment_never_takes_the_send_lock(store: Store) -> None:
    store.put_payment(replace(a_payment(TNO), in_flight="cnl_x"))
    assert _money(store)[2] == ""


def test_a_fulfillment_change_is_conditional_on_the_one_it_was_decided_from(
    store: Store,
) -> None:
    payment = a_payment(TNO)
    store.put_payment(payment)
    shipped = replace(payment, fulfillment=Fulfillment.SHIPPED, fulfillment_at=NOW)
    store.set_fulfillment(payment, shipped)
    with pytest.raises(Conflict):
        store.set_fulfillment(payment, replace(payment, fulfillment=Fulfillment.DELIVERED))
    found = store.get_payment(SHOP, TNO)
    assert found is not None
    assert (found.fulfillment, found.fulfillment_at) == (
        Fulfillment.SHIPPED,
        NOW.replace(microsecond=0),
    )


# --- shops and policies --------------------------------------------------------------------


def test_a_shop_is_found_by_the_hash_of_its_key(store: Any) -> None:
    store.put_shop(Shop(SHOP, "머그상점", "owner@mug.example"), ["sk_test_1"])
    assert store.shop_for_key(key_hash("sk_test_1")) == SHOP
    assert store.shop_for_key(key_hash("sk_test_2")) is None
    assert store.get_shop(SHOP) == Shop(SHOP, "머그상점", "owner@mug.example")
    assert store.get_shop("shop_b") is None


def test_a_policy_replaces_only_the_version_it_was_read_at(store: Store) -> None:
    assert store.get_policy(SHOP) == default_policy()
    store.put_policy(SHOP, ShopPolicy(version=2, withdrawal_days=14), replaces=1, at=NOW)
    with pytest.raises(Conflict):
        store.put_policy(SHOP, ShopPolicy(version=2, withdrawal_days=10), replaces=1, at=NOW)
    assert store.get_policy(SHOP) == ShopPolicy(version=2, withdrawal_days=14)
    assert store.get_policy("shop_b") == default_policy()


# --- accepting a cancel --------------------------------------------------------------------


def test_a_cancellation_is_created_with_its_idempotency_key_at_once(
    store: Store,
) -> None:
    store.put_payment(a_payment(TNO))
    account = RefundAccount("BK04", "12345678", "김고객")
    cancellation = replace(a_cancellation("cnl_1", TNO, 5000), refund_account=account)
    store.create_cancellation(cancellation, "key-1", "hash-1", EXPIRES)

    found = store.get_cancellation(SHOP, "cnl_1")
    assert found == replace(cancellation, updated_at=NOW.replace(microsecond=0))
    record = store.get_idempotency(SHOP, "key-1")
    assert record is not None
    assert (record.body_hash, record.cancellation_id) == ("hash-1", "cnl_1")
    assert store.get_idempotency("shop_b", "key-1") is None
    assert store.get_idempotency(SHOP, "key-2") is None


def test_a_reused_key_or_id_writes_nothing(store: Store) -> None:
    store.put_payment(a_payment(TNO))
    store.create_cancellation(a_cancellation("cnl_1", TNO), "key-1", "hash-1", EXPIRES)

    with pytest.raises(Conflict):
        store.create_cancellation(a_cancellation("cnl_2", TNO), "key-1", "hash-2", EXPIRES)
    with pytest.raises(Conflict):
        store.create_cancellation(a_cancellation("cnl_1", TNO), "key-2", "hash-2", EXPIRES)

    assert store.get_cancellation(SHOP, "cnl_2") is None
    assert store.get_idempotency(SHOP, "key-2") is None
    assert [c.cancellation_id for c in store.payment_cancellations(SHOP, TNO)] == ["cnl_1"]


# --- reserve -------------------------------------------------------------------------------


def test_reserving_holds_the_amount_and_records_the_decision(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _requested(store, "cnl_1", 10000)
    decided = replace(
        cancellation,
        updated_at=NOW + timedelta(seconds=1),
        breakdown=(BreakdownLine("BALANCE", 10000),),
        policy_version=3,
    )
    store.reserve(decided, 10000)

    found = store.get_cancellation(SHOP, "cnl_1")
    assert found is not None
    assert (found.status, found.amount, found.breakdown, found.policy_version) == (
        CancellationStatus.RESERVED,
        10000,
        (BreakdownLine("BALANCE", 10000),),
        3,
    )
    assert found.updated_at == (NOW + timedelta(seconds=1)).replace(microsecond=0)
    assert _money(store) == (30000, 20000, "", PaymentStatus.PAID)


def test_a_second_reserve_is_a_conflict_and_holds_nothing_more(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _decided(_requested(store, "cnl_1", 10000), 10000)
    store.reserve(cancellation, 10000)
    with pytest.raises(Conflict):
        store.reserve(cancellation, 10000)
    assert _money(store)[:2] == (30000, 20000)


def test_a_reserve_over_the_available_balance_writes_nothing(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _reserved(store, "cnl_1", 25000)
    second = _decided(_requested(store, "cnl_2", 10000), 10000)
    with pytest.raises(InsufficientBalance):
        store.reserve(second, 10000)
    assert _status(store, "cnl_2") is CancellationStatus.REQUESTED
    assert _money(store)[:2] == (30000, 5000)


def test_a_stale_reserve_is_a_conflict_even_when_the_balance_is_short(
    store: Store,
) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _decided(_requested(store, "cnl_1", 30000), 30000)
    store.reserve(cancellation, 30000)
    with pytest.raises(Conflict):  # not InsufficientBalance: the step routes on what happened
        store.reserve(cancellation, 30000)


# --- send ----------------------------------------------------------------------------------


def test_begin_send_takes_the_lock_journals_and_returns_the_balance_before(
    store: Store,
) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _reserved(store, "cnl_1", 10000)
    attempt = Attempt(seq=1, kind="CANCEL", sent_at=NOW)

    assert store.begin_send(cancellation, attempt) == 30000

    found = store.get_cancellation(SHOP, "cnl_1")
    assert found is not None
    assert (found.status, found.balance_before) == (CancellationStatus.SENDING, 30000)
    assert found.attempts == (attempt,)
    assert _money(store) == (30000, 20000, "cnl_1", PaymentStatus.PAID)


def test_a_cancel_is_never_begun_twice(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _reserved(store, "cnl_1", 10000)
    store.begin_send(cancellation, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    with pytest.raises(Conflict):
        store.begin_send(cancellation, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    with pytest.raises(Conflict):  # even with a new attempt number
        store.begin_send(cancellation, Attempt(seq=2, kind="CANCEL", sent_at=NOW))
    found = store.get_cancellation(SHOP, "cnl_1")
    assert found is not None and len(found.attempts) == 1


def test_a_cancel_not_reserved_cannot_be_begun(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _requested(store, "cnl_1", 10000)
    with pytest.raises(Conflict):
        store.begin_send(cancellation, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    assert _money(store)[2] == ""


def test_begin_send_over_an_existing_attempt_is_a_conflict(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _reserved(store, "cnl_1", 10000)
    store.journal(cancellation, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    with pytest.raises(Conflict):
        store.begin_send(cancellation, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    assert _status(store, "cnl_1") is CancellationStatus.RESERVED
    assert _money(store)[2] == ""


def test_one_cancel_per_payment_at_kcp_the_other_is_busy_and_unchanged(
    store: Store,
) -> None:
    store.put_payment(a_payment(TNO, 30000))
    first = _reserved(store, "cnl_1", 10000)
    second = _reserved(store, "cnl_2", 5000)
    store.begin_send(first, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    with pytest.raises(PaymentBusy):
        store.begin_send(second, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    found = store.get_cancellation(SHOP, "cnl_2")
    assert found is not None
    assert (found.status, found.attempts, found.balance_before) == (
        CancellationStatus.RESERVED,
        (),
        None,
    )
    assert _money(store)[2] == "cnl_1"


def test_a_busy_stale_cancel_is_a_conflict_not_busy(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    first = _sending(store, "cnl_1", 10000)
    with pytest.raises(Conflict):  # the cancellation's own state is reported first
        store.begin_send(
            replace(first, status=CancellationStatus.RESERVED),
            Attempt(seq=2, kind="CANCEL", sent_at=NOW),
        )


def test_the_journal_keeps_attempts_in_order_and_a_completion_replaces_its_attempt(
    store: Store,
) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _sending(store, "cnl_1", 10000)
    later = NOW + timedelta(seconds=3)
    store.journal(cancellation, Attempt(seq=2, kind="INQUIRY", sent_at=later))
    done = Attempt(
        seq=1,
        kind="CANCEL",
        sent_at=NOW,
        outcome="UNKNOWN",
        detail="ReadTimeout",
        completed_at=later,
    )
    store.journal(cancellation, done)

    found = store.get_cancellation(SHOP, "cnl_1")
    assert found is not None
    assert [(a.seq, a.kind, a.outcome) for a in found.attempts] == [
        (1, "CANCEL", "UNKNOWN"),
        (2, "INQUIRY", ""),
    ]
    assert found.attempts[0].completed_at == later.replace(microsecond=0)
    assert found.attempts[1].sent_at == later  # sent times keep their microseconds


def test_marking_moves_an_open_cancel_and_never_a_terminal_one(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _sending(store, "cnl_1", 10000)
    store.mark(cancellation, CancellationStatus.RECONCILING)
    assert _status(store, "cnl_1") is CancellationStatus.RECONCILING

    reconciling = store.get_cancellation(SHOP, "cnl_1")
    assert reconciling is not None
    _settle(store, reconciling, CancellationStatus.NEEDS_REVIEW)
    with pytest.raises(Conflict):
        store.mark(reconciling, CancellationStatus.RECONCILING)
    assert _status(store, "cnl_1") is CancellationStatus.NEEDS_REVIEW


def test_marking_a_cancellation_that_does_not_exist_writes_nothing(
    store: Store,
) -> None:
    with pytest.raises(Conflict):
        store.mark(a_cancellation("cnl_ghost", TNO), CancellationStatus.RECONCILING)
    assert store.get_cancellation(SHOP, "cnl_ghost") is None


# --- settle --------------------------------------------------------------------------------


def test_a_success_lowers_the_balance_and_releases_the_lock(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _sending(store, "cnl_1", 10000)
    _settle(store, cancellation, CancellationStatus.SUCCEEDED)
    assert _status(store, "cnl_1") is CancellationStatus.SUCCEEDED
    assert _money(store) == (20000, 20000, "", PaymentStatus.PARTIALLY_CANCELLED)


def test_a_full_success_cancels_the_payment(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _settle(store, _sending(store, "cnl_1", 30000), CancellationStatus.SUCCEEDED)
    assert _money(store) == (0, 0, "", PaymentStatus.CANCELLED)


def test_a_failure_gives_the_hold_back_and_releases_the_lock(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _settle(store, _sending(store, "cnl_1", 10000), CancellationStatus.FAILED)
    assert _money(store) == (30000, 30000, "", PaymentStatus.PAID)


def test_a_never_sent_failure_gives_the_hold_back(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _settle(store, _reserved(store, "cnl_1", 10000), CancellationStatus.FAILED)
    assert _money(store) == (30000, 30000, "", PaymentStatus.PAID)


def test_an_unconfirmed_cancel_keeps_its_hold_and_its_lock(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _settle(store, _sending(store, "cnl_1", 10000), CancellationStatus.NEEDS_REVIEW)
    assert _money(store) == (30000, 20000, "cnl_1", PaymentStatus.PAID)


def test_a_rejection_before_any_hold_leaves_the_payment_alone(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _settle(store, _requested(store, "cnl_1", 10000), CancellationStatus.REJECTED)
    assert _status(store, "cnl_1") is CancellationStatus.REJECTED
    assert _money(store) == (30000, 30000, "", PaymentStatus.PAID)


def test_a_settle_from_a_stale_status_writes_nothing(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _sending(store, "cnl_1", 10000)
    _settle(store, cancellation, CancellationStatus.SUCCEEDED)
    with pytest.raises(Conflict):
        _settle(store, cancellation, CancellationStatus.SUCCEEDED)
    assert _money(store) == (20000, 20000, "", PaymentStatus.PARTIALLY_CANCELLED)


def test_a_settle_decided_from_another_balance_writes_nothing(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _sending(store, "cnl_1", 10000)
    outcome = cancellation.with_status(CancellationStatus.SUCCEEDED, updated_at=NOW)
    wrong = effect_of(cancellation, CancellationStatus.SUCCEEDED, 25000)
    with pytest.raises(Conflict):
        store.settle(cancellation, outcome, wrong)
    assert _status(store, "cnl_1") is CancellationStatus.SENDING  # atomic: nothing written
    assert _money(store) == (30000, 20000, "cnl_1", PaymentStatus.PAID)


def test_only_the_lock_holder_can_release_the_lock(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _sending(store, "cnl_1", 10000)
    other = replace(
        _reserved(store, "cnl_2", 5000), status=CancellationStatus.SENDING, balance_before=30000
    )
    # As if cnl_2 believed itself sent: its settle must not free cnl_1's lock.
    with pytest.raises(Conflict):
        _settle(store, other, CancellationStatus.FAILED)
    assert _money(store) == (30000, 15000, "cnl_1", PaymentStatus.PAID)


def test_a_settled_outcome_replaces_the_record_and_keeps_the_journal(
    store: Store,
) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _sending(store, "cnl_1", 10000)
    outcome = cancellation.with_status(
        CancellationStatus.SUCCEEDED,
        res_cd="0000",
        res_msg="정상처리",
        cancelled_at=NOW,
        partial_seq="1",
        confirmed_by="ANSWER",
        execution_id="arn:exec",
        updated_at=NOW,
        attempts=(),
    )
    store.settle(cancellation, outcome, effect_of(cancellation, outcome.status, 30000))
    found = store.get_cancellation(SHOP, "cnl_1")
    assert found is not None
    assert found == replace(
        outcome,
        attempts=cancellation.attempts,
        cancelled_at=NOW.replace(microsecond=0),
        updated_at=NOW.replace(microsecond=0),
    )


def test_a_correction_of_a_failed_cancel_lowers_both_balances(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _settle(store, _sending(store, "cnl_1", 10000), CancellationStatus.FAILED)
    failed = store.get_cancellation(SHOP, "cnl_1")
    assert failed is not None
    _settle(store, failed, CancellationStatus.SUCCEEDED)  # the sweep found KCP applied it
    assert _money(store) == (20000, 20000, "", PaymentStatus.PARTIALLY_CANCELLED)


# --- listing -------------------------------------------------------------------------------


def test_a_payments_cancellations_are_listed_oldest_first_with_their_journal(
    store: Store,
) -> None:
    store.put_payment(a_payment(TNO, 30000))
    store.put_payment(a_payment("20261123000002", 30000))
    for n, cid in enumerate(["cnl_b", "cnl_a", "cnl_c"]):
        at = NOW + timedelta(microseconds=n)
        store.create_cancellation(a_cancellation(cid, TNO, 1000, at=at), cid, "h", EXPIRES)
    store.create_cancellation(a_cancellation("cnl_other", "20261123000002"), "other", "h", EXPIRES)
    first = store.get_cancellation(SHOP, "cnl_b")
    assert first is not None
    store.journal(first, Attempt(seq=1, kind="INQUIRY", sent_at=NOW))

    listed = store.payment_cancellations(SHOP, TNO)
    assert [c.cancellation_id for c in listed] == ["cnl_b", "cnl_a", "cnl_c"]
    assert [len(c.attempts) for c in listed] == [1, 0, 0]
    assert store.payment_cancellations("shop_b", TNO) == []


# --- removed items -------------------------------------------------------------------------

ITEMS = (
    {"name": "셔츠", "quantity": 2, "price": 10000},
    {"name": "양말", "quantity": 1, "price": 5000},
    {"name": "모자", "quantity": 1, "price": 15000},
)


def _item_cancel(store: Store, cid: str, *positions: int) -> Cancellation:
    """An order change removing the items at `positions`, reserved with one line per item."""
    cancellation = replace(a_cancellation(cid, TNO), removed_items=positions)
    store.create_cancellation(cancellation, f"key-{cid}", "hash", EXPIRES)
    lines = tuple(
        BreakdownLine("ITEM", ITEMS[p]["price"] * ITEMS[p]["quantity"], p, ITEMS[p]["name"], 1)
        for p in positions
    )
    decided = replace(cancellation, breakdown=lines, policy_version=1)
    store.reserve(decided, sum(line.amount for line in lines))
    found = store.get_cancellation(SHOP, cid)
    assert found is not None
    return found


def _removed(store: Store) -> frozenset[int]:
    payment = store.get_payment(SHOP, TNO)
    assert payment is not None
    return payment.removed_items


def test_items_are_taken_with_the_hold_and_read_back_as_plain_ints(
    store: Store,
) -> None:
    store.put_payment(replace(a_payment(TNO, 40000), items=ITEMS))
    found = _item_cancel(store, "cnl_1", 0, 1)

    assert _removed(store) == {0, 1}
    assert found.removed_items == (0, 1)
    assert [type(p) for p in found.removed_items] == [int, int]  # never Decimal
    assert found.breakdown[0] == BreakdownLine("ITEM", 20000, 0, "셔츠", 1)
    (listed,) = store.payment_cancellations(SHOP, TNO)
    assert listed.removed_items == (0, 1)
    payment = store.get_payment(SHOP, TNO)
    assert payment is not None
    assert all(type(v) is int for item in payment.items for v in item.values() if v != item["name"])


def test_an_item_held_by_another_cancel_cannot_be_taken_and_nothing_is_written(
    store: Store,
) -> None:
    store.put_payment(replace(a_payment(TNO, 40000), items=ITEMS))
    _item_cancel(store, "cnl_1", 1)
    with pytest.raises(InsufficientBalance):
        _item_cancel(store, "cnl_2", 2, 1)
    assert _removed(store) == {1}
    assert _money(store)[1] == 35000
    assert _status(store, "cnl_2") is CancellationStatus.REQUESTED


def test_a_failed_item_cancel_gives_its_items_back_and_a_success_keeps_them(
    store: Store,
) -> None:
    store.put_payment(replace(a_payment(TNO, 40000), items=ITEMS))
    _settle(store, _item_cancel(store, "cnl_1", 0), CancellationStatus.FAILED)
    assert _removed(store) == frozenset()
    cancellation = _item_cancel(store, "cnl_2", 0, 2)
    store.begin_send(cancellation, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    sent = store.get_cancellation(SHOP, "cnl_2")
    assert sent is not None
    _settle(store, sent, CancellationStatus.SUCCEEDED)
    assert _removed(store) == {0, 2}
    assert _money(store) == (5000, 5000, "", PaymentStatus.PARTIALLY_CANCELLED)


def test_a_failed_item_cancel_that_kcp_had_applied_takes_its_items_again(
    store: Store,
) -> None:
    store.put_payment(replace(a_payment(TNO, 40000), items=ITEMS))
    cancellation = _item_cancel(store, "cnl_1", 1)
    store.begin_send(cancellation, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
    sent = store.get_cancellation(SHOP, "cnl_1")
    assert sent is not None
    _settle(store, sent, CancellationStatus.FAILED)
    assert _removed(store) == frozenset()
    failed = store.get_cancellation(SHOP, "cnl_1")
    assert failed is not None
    _settle(store, failed, CancellationStatus.SUCCEEDED)  # the sweep found KCP applied it
    assert _removed(store) == {1}
    assert _money(store) == (35000, 35000, "", PaymentStatus.PARTIALLY_CANCELLED)


# --- the shop's cancellation list ----------------------------------------------------------


def test_the_shops_cancellations_are_listed_newest_first_by_filters_and_pages(
    store: Store,
) -> None:
    other = "20261123000002"
    store.put_payment(a_payment(TNO, 30000))
    store.put_payment(a_payment(other, 30000))
    for n, tno in enumerate((TNO, other, TNO)):
        at = NOW + timedelta(minutes=n)
        store.create_cancellation(
            a_cancellation(f"cnl_{n}", tno, 1000, at=at), f"k{n}", "h", EXPIRES
        )
    store.create_cancellation(a_cancellation("cnl_b", TNO, shop="shop_b"), "kb", "h", EXPIRES)
    rejected = store.get_cancellation(SHOP, "cnl_1")
    assert rejected is not None
    _settle(store, rejected, CancellationStatus.REJECTED)

    def ids(query: CancellationQuery, position: Any = None) -> tuple[list[str], Any]:
        page = store.cancellation_page(SHOP, query, position)
        assert all(c.attempts == () for c in page.cancellations)
        return [c.cancellation_id for c in page.cancellations], page.next_position

    assert ids(CancellationQuery()) == (["cnl_2", "cnl_1", "cnl_0"], None)
    assert ids(CancellationQuery(tno=TNO))[0] == ["cnl_2", "cnl_0"]
    assert ids(CancellationQuery(status=CancellationStatus.REJECTED))[0] == ["cnl_1"]
    since = CancellationQuery(since=NOW + timedelta(minutes=1), until=NOW + timedelta(minutes=1))
    assert ids(since)[0] == ["cnl_1"]
    first, position = ids(CancellationQuery(limit=2))
    assert (first, ids(CancellationQuery(limit=2), position)) == (
        ["cnl_2", "cnl_1"],
        (["cnl_0"], None),
    )
    with pytest.raises(Conflict):
        store.cancellation_page("shop_b", CancellationQuery(limit=2), position)


def test_one_run_claims_a_pending_attempt_and_a_claimed_or_unmarked_one_stays_claimed(
    store: Store,
) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _reserved(store)
    pending = Attempt(seq=1, kind="CANCEL", sent_at=NOW, dispatched="PENDING")
    store.begin_send(cancellation, pending)

    assert store.dispatch(cancellation, pending, "SENT") is True
    assert store.dispatch(cancellation, pending, "VOID") is False  # sent: it cannot be voided
    stored = store.get_cancellation(SHOP, "cnl_1")
    assert stored is not None and stored.attempts[0].dispatched == "SENT"
    legacy = Attempt(seq=2, kind="CANCEL", sent_at=NOW)  # no claim at all: may have been sent
    store.journal(cancellation, legacy)
    assert store.dispatch(cancellation, legacy, "SENT") is False
