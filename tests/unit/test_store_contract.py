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
from cancelflow.adapters.dynamodb.table import key_hash, unmarshal
from cancelflow.cancellations.model import (
    Attempt,
    BreakdownLine,
    Cancellation,
    CancellationStatus,
    Decision,
    Review,
    effect_of,
    events_of,
)
from cancelflow.cancellations.ports import (
    CancellationQuery,
    InsufficientBalance,
    PaymentBusy,
    ReviewQuery,
)
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


def _settle(
    store: Store, cancellation: Cancellation, to: CancellationStatus, corrected_from: str = ""
) -> None:
    outcome = cancellation.with_status(to, updated_at=NOW, corrected_from=corrected_from)
    effect = effect_of(cancellation, to, cancellation.balance_before or 0)
    store.settle(cancellation, outcome, effect, events_of(cancellation, outcome))


def _events(store: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """Every event recorded for the shop: (type, resource, data), as the stream would see them."""
    if isinstance(store, MemoryStore):
        found = [(e.type, e.resource, e.data) for e in store.events.values()]
    else:
        items = store._db.scan(TableName=store._table)["Items"]  # the test looks at everything
        events = [unmarshal(i) for i in items if i.get("type", {}).get("S") == "EVENT"]
        found = [(e["event_type"], e["resource"], e["data"]) for e in events]
    return sorted(found, key=lambda e: (e[1], e[0]))


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


def test_a_settle_records_its_event_in_the_same_write(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _settle(store, _sending(store, "cnl_1", 10000), CancellationStatus.SUCCEEDED)
    assert _events(store) == [
        (
            "cancellation.succeeded",
            "cnl_1",
            {"status": "SUCCEEDED", "previous_status": "SENDING", "tno": TNO},
        )
    ]


def test_a_settle_that_loses_records_no_event(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _sending(store, "cnl_1", 10000)
    outcome = cancellation.with_status(CancellationStatus.SUCCEEDED, updated_at=NOW)
    wrong = effect_of(cancellation, CancellationStatus.SUCCEEDED, 25000)
    with pytest.raises(Conflict):
        store.settle(cancellation, outcome, wrong, events_of(cancellation, outcome))
    assert _events(store) == []  # no event without its change


def test_the_same_change_written_twice_records_one_event(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _sending(store, "cnl_1", 10000)
    _settle(store, cancellation, CancellationStatus.FAILED)
    with pytest.raises(Conflict):
        _settle(store, cancellation, CancellationStatus.FAILED)
    assert [e[0] for e in _events(store)] == ["cancellation.failed"]


def test_a_correction_records_a_corrected_event_beside_the_first(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    _settle(store, _sending(store, "cnl_1", 10000), CancellationStatus.FAILED)
    failed = store.get_cancellation(SHOP, "cnl_1")
    assert failed is not None
    _settle(store, failed, CancellationStatus.SUCCEEDED, corrected_from="FAILED")
    assert [(e[0], e[2].get("corrected_from")) for e in _events(store)] == [
        ("cancellation.corrected", "FAILED"),
        ("cancellation.failed", None),
    ]


def test_an_open_move_records_no_event(store: Store) -> None:
    store.put_payment(a_payment(TNO, 30000))
    cancellation = _sending(store, "cnl_1", 10000)
    store.mark(cancellation, CancellationStatus.RECONCILING)
    assert _events(store) == []


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


# --- reviews -------------------------------------------------------------------------------


def _in_review(store: Store, cid: str, amount: int, opened_minutes_ago: int) -> Cancellation:
    sending = _sending(store, cid, amount)
    opened = NOW - timedelta(minutes=opened_minutes_ago)
    outcome = sending.with_status(
        CancellationStatus.NEEDS_REVIEW,
        updated_at=NOW,
        review=Review(opened_at=opened, token=f"token-{cid}", version=1),
    )
    store.settle(sending, outcome, effect_of(sending, outcome.status, sending.balance_before or 0))
    found = store.get_cancellation(SHOP, cid)
    assert found is not None and found.review is not None
    return found


def test_the_review_queue_is_oldest_first_filtered_and_paged(store: Store) -> None:
    for n, (amount, age) in enumerate([(5000, 30), (20000, 300), (8000, 90)]):
        tno = f"2026112300010{n}"
        store.put_payment(a_payment(tno, 30000))
        cancellation = a_cancellation(f"cnl_{n}", tno, amount)
        store.create_cancellation(cancellation, f"key-{n}", "hash", EXPIRES)
        store.reserve(_decided(cancellation, amount), amount)
        reserved = store.get_cancellation(SHOP, f"cnl_{n}")
        assert reserved is not None
        store.begin_send(reserved, Attempt(seq=1, kind="CANCEL", sent_at=NOW))
        sending = store.get_cancellation(SHOP, f"cnl_{n}")
        assert sending is not None
        outcome = sending.with_status(
            CancellationStatus.NEEDS_REVIEW,
            updated_at=NOW,
            review=Review(opened_at=NOW - timedelta(minutes=age), token=f"t{n}", version=1),
        )
        store.settle(sending, outcome, effect_of(sending, outcome.status, 30000))

    def ids(query: ReviewQuery, position: Any = None) -> tuple[list[str], Any]:
        page = store.review_page(query, position)
        return [c.cancellation_id for c in page.cancellations], page.next_position

    assert ids(ReviewQuery())[0] == ["cnl_1", "cnl_2", "cnl_0"]  # oldest first
    assert ids(ReviewQuery(min_amount=8000))[0] == ["cnl_1", "cnl_2"]
    hour = ReviewQuery(min_age=timedelta(minutes=60), as_of=NOW)
    assert ids(hour)[0] == ["cnl_1", "cnl_2"]
    first, position = ids(ReviewQuery(limit=2))
    rest, end = ids(ReviewQuery(limit=2), position)
    assert (first, rest, end) == (["cnl_1", "cnl_2"], ["cnl_0"], None)
    assert store.find_cancellation("cnl_2") is not None
    assert store.find_cancellation("cnl_nosuch") is None


def test_a_review_changes_only_from_the_version_it_was_read_at_and_leaves_the_queue_when_settled(
    store: Store,
) -> None:
    store.put_payment(a_payment(TNO, 30000))
    case = _in_review(store, "cnl_1", 10000, 5)
    assert case.review is not None
    decision = Decision("APPLIED", "seen in KCP admin", "arn:aws:iam::1:user/ops", NOW, {"a": 1})
    decided = replace(case.review, decisions=(decision,), version=2)
    store.update_review(case, decided)
    with pytest.raises(Conflict):  # a second writer read version 1 too
        store.update_review(case, replace(case.review, token="other", version=2))
    found = store.get_cancellation(SHOP, "cnl_1")
    assert found is not None and found.review is not None
    assert found.review.decided == decision and found.review.token == "token-cnl_1"

    _settle(store, found, CancellationStatus.SUCCEEDED)
    assert store.review_page(ReviewQuery(), None).cancellations == ()
    with pytest.raises(Conflict):  # settled: no longer a review to change
        store.update_review(found, replace(decided, version=3))
