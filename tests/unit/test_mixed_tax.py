"""Mixed taxation (복합과세) partial cancels: how a refund splits into its taxable and tax-free
parts, that neither part is ever refunded beyond what is left of it, and what KCP is sent."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cancelflow.adapters.kcp import cancel_fields, split_vat
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.eligibility import CancelAsk, decide, split_tax_free
from cancelflow.cancellations.model import CancellationStatus, effect_of
from cancelflow.cancellations.service import CancelRequest
from cancelflow.kcp.port import CancelAnswer, CancelOrder, InquiryAnswer, Outcome, PayMethod
from cancelflow.kernel.errors import CATALOGUE, Problem
from cancelflow.kernel.reasons import REASONS
from cancelflow.payments.model import Fulfillment, Payment, PaymentStatus
from cancelflow.shops.policy import default_policy
from tests.fakes.examples import NOW, SHOP, a_cancellation, a_payment
from tests.fakes.store import MemoryStore
from tests.fakes.workflow import RecordingStarter, SteppingClock

TNO = "20261123000001"
TAX_CODES = ("TAX_FREE_EXCEEDS_BALANCE", "TAXABLE_EXCEEDS_BALANCE", "TAX_FREE_EXCEEDS_REFUND")


def mixed(amount: int = 30000, tax_free: int = 10000, **changes: Any) -> Payment:
    return replace(a_payment(TNO, amount), tax_free_amount=tax_free, **changes)


# --- the split when the request names no tax-free part ------------------------------------------


parts = st.tuples(st.integers(0, 10_000_000), st.integers(0, 10_000_000)).filter(lambda p: sum(p))


@given(parts, st.data())
def test_the_split_never_takes_more_than_either_part_and_the_parts_sum_to_the_refund(
    left: tuple[int, int], data: st.DataObject
) -> None:
    taxable_left, tax_free_left = left
    refund = data.draw(st.integers(1, taxable_left + tax_free_left))
    free = split_tax_free(refund, taxable_left, tax_free_left)
    taxable = refund - free
    assert 0 <= free <= tax_free_left
    assert 0 <= taxable <= taxable_left
    assert free + taxable == refund


@given(parts)
def test_the_cancel_of_everything_left_takes_exactly_both_parts(left: tuple[int, int]) -> None:
    taxable_left, tax_free_left = left
    assert split_tax_free(taxable_left + tax_free_left, *left) == tax_free_left


@given(parts, st.data())
def test_partial_cancels_one_after_another_end_with_both_parts_at_zero(
    left: tuple[int, int], data: st.DataObject
) -> None:
    taxable_left, tax_free_left = left
    for _ in range(data.draw(st.integers(0, 5))):  # a few partial cancels, then the rest
        if not taxable_left + tax_free_left:
            break
        refund = data.draw(st.integers(1, taxable_left + tax_free_left))
        free = split_tax_free(refund, taxable_left, tax_free_left)
        taxable_left, tax_free_left = taxable_left - (refund - free), tax_free_left - free
        assert taxable_left >= 0 and tax_free_left >= 0
    if taxable_left + tax_free_left:
        assert split_tax_free(taxable_left + tax_free_left, taxable_left, tax_free_left) == (
            tax_free_left
        )


def test_the_split_follows_what_is_left_of_each_part_tax_free_rounded_down() -> None:
    assert split_tax_free(10000, 20000, 10000) == 3333  # 1/3 tax-free: 6,667 taxable
    assert split_tax_free(3000, 0, 5000) == 3000  # only tax-free money is left
    assert split_tax_free(3000, 5000, 0) == 0  # an all-taxable payment


# --- the decision ---------------------------------------------------------------------------------


def _decide(payment: Payment, amount: int | None, tax_free: int | None = None) -> Any:
    ask = CancelAsk("DEFECTIVE", amount=amount, tax_free_amount=tax_free)
    return decide(payment, ask, default_policy(), NOW)


@given(
    st.integers(1, 1_000_000),
    st.data(),
)
def test_an_allowed_decision_never_refunds_more_than_either_part_has_available(
    amount: int, data: st.DataObject
) -> None:
    tax_free = data.draw(st.integers(0, amount))
    cancelled_free = data.draw(st.integers(0, tax_free))
    balance = data.draw(st.integers(tax_free - cancelled_free, amount))
    available = data.draw(st.integers(0, balance))
    held_free = data.draw(st.integers(0, tax_free - cancelled_free))
    payment = mixed(
        amount,
        tax_free,
        balance=balance,
        available=available,
        tax_free_cancelled=cancelled_free,
        tax_free_held=held_free,
        status=PaymentStatus.PARTIALLY_CANCELLED,
    )
    asked = data.draw(st.integers(1, amount))
    named = data.draw(st.none() | st.integers(0, asked))
    decision = _decide(payment, asked, named)
    if decision.allowed:
        assert 0 <= decision.tax_free_amount <= payment.tax_free_available
        assert decision.amount - decision.tax_free_amount <= payment.taxable_available
        assert named is None or decision.tax_free_amount == named
    else:
        assert decision.tax_free_amount == 0
    if named is None and asked <= payment.available:
        assert decision.allowed  # the rule's split always fits what is left


def test_a_named_tax_free_part_over_the_tax_free_balance_is_refused_with_its_code() -> None:
    decision = _decide(mixed(), 12000, tax_free=11000)
    assert decision.reasons == ("TAX_FREE_EXCEEDS_BALANCE",)


def test_a_taxable_remainder_over_the_taxable_balance_is_refused_with_its_code() -> None:
    decision = _decide(mixed(), 25000, tax_free=1000)  # 24,000 taxable of 20,000
    assert decision.reasons == ("TAXABLE_EXCEEDS_BALANCE",)


def test_a_tax_free_part_named_on_an_all_taxable_payment_is_refused() -> None:
    decision = _decide(a_payment(TNO, 30000), 5000, tax_free=1000)
    assert decision.reasons == ("TAX_FREE_EXCEEDS_BALANCE",)


def test_a_tax_free_part_larger_than_the_refund_after_the_fee_is_refused() -> None:
    shipped = mixed(fulfillment=Fulfillment.DELIVERED, delivered_at=NOW)
    policy = replace(default_policy(), return_shipping_fee=3000)
    ask = CancelAsk("CHANGE_OF_MIND", amount=10000, tax_free_amount=9000)
    assert decide(shipped, ask, policy, NOW).reasons == ("TAX_FREE_EXCEEDS_REFUND",)


def test_the_tax_codes_are_in_the_catalogue_with_korean_and_english_messages() -> None:
    for code in TAX_CODES:
        assert CATALOGUE[code][0] == 422
        assert REASONS[code]["ko"] and REASONS[code]["en"]
        assert Problem(code).status == 422


# --- old records ----------------------------------------------------------------------------------


def test_a_payment_stored_before_the_parts_were_kept_reads_as_taxable_first() -> None:
    old = mixed(balance=25000, available=25000, status=PaymentStatus.PARTIALLY_CANCELLED)
    assert (old.tax_free_balance, old.taxable_balance) == (10000, 15000)
    after_more = replace(old, balance=4000, available=4000)
    assert (after_more.tax_free_balance, after_more.taxable_balance) == (4000, 0)
    assert mixed(status=PaymentStatus.AWAITING_DEPOSIT, balance=0).tax_free_balance == 0


# --- the money rule -------------------------------------------------------------------------------


def test_settling_moves_the_tax_free_part_beside_the_balance() -> None:
    held = replace(
        a_cancellation(tno=TNO, amount=12000),
        status=CancellationStatus.SENDING,
        amount=12000,
        tax_free_amount=4000,
    )
    won = effect_of(held, CancellationStatus.SUCCEEDED, 30000)
    assert (won.balance, won.tax_free_cancelled, won.tax_free_held) == (-12000, 4000, -4000)
    lost = effect_of(held, CancellationStatus.FAILED, 30000)
    assert (lost.available, lost.tax_free_cancelled, lost.tax_free_held) == (12000, 0, -4000)
    failed = replace(held, status=CancellationStatus.FAILED)
    corrected = effect_of(failed, CancellationStatus.SUCCEEDED, 30000)
    assert (corrected.tax_free_cancelled, corrected.tax_free_held) == (4000, 0)


# --- what KCP is sent -----------------------------------------------------------------------------


def test_a_mixed_partial_cancel_carries_tg03_with_the_vat_inside_the_taxable_part() -> None:
    order = CancelOrder(
        TNO, PayMethod.CARD, "불량", 12000, 30000, tax_free_amount=4000, mixed_tax=True
    )
    fields = cancel_fields(order)
    assert (fields["tax_flag"], fields["mod_free_mny"]) == ("TG03", "4000")
    assert (fields["mod_tax_mny"], fields["mod_vat_mny"]) == ("7273", "727")  # 8,000 taxable


def test_a_mixed_partial_cancel_of_taxable_goods_only_still_names_both_parts() -> None:
    order = CancelOrder(TNO, PayMethod.CARD, "불량", 11000, 30000, mixed_tax=True)
    fields = cancel_fields(order)
    assert [fields[k] for k in ("tax_flag", "mod_tax_mny", "mod_vat_mny", "mod_free_mny")] == [
        "TG03",
        "10000",
        "1000",
        "0",
    ]


def test_an_all_taxable_payment_s_partial_cancel_carries_no_tax_fields() -> None:
    fields = cancel_fields(CancelOrder(TNO, PayMethod.CARD, "불량", 5000, 30000))
    assert "tax_flag" not in fields and "mod_free_mny" not in fields


@pytest.mark.parametrize(("taxable", "vat"), [(0, 0), (1, 0), (5, 0), (6, 1), (11000, 1000)])
def test_vat_is_a_tenth_of_the_supply_rounded_half_up(taxable: int, vat: int) -> None:
    assert split_vat(taxable) == (taxable - vat, vat)


# --- through the steps ----------------------------------------------------------------------------


@dataclass
class Kcp:
    """Answers every cancel SUCCEEDED and keeps what it was sent."""

    orders: list[CancelOrder] = field(default_factory=list)

    def cancel(self, order: CancelOrder) -> CancelAnswer:
        self.orders.append(order)
        return CancelAnswer(Outcome.SUCCEEDED, res_cd="0000", cancelled_at=NOW)

    def inquire(self, tno: str, method: PayMethod) -> InquiryAnswer:
        raise AssertionError("no inquiry on the happy path")

    def charge(self, order: Any) -> Any:
        raise AssertionError("no charges here")


def _run(store: MemoryStore, kcp: Kcp, request: CancelRequest, key: str) -> str:
    clock = SteppingClock()
    cancellation, _ = cancellations.request_cancellation(
        store, RecordingStarter(), clock, SHOP, TNO, request, key
    )
    cid = cancellation.cancellation_id
    step = cancellations.decide(store, clock, SHOP, cid)
    assert step["next"] == "SEND", step
    step = cancellations.send(store, kcp, clock, SHOP, cid)
    cancellations.settle(store, clock, SHOP, cid, step["verdict"])
    return cid


def test_partial_cancels_then_the_rest_move_both_parts_at_kcp_and_on_the_payment() -> None:
    store, kcp = MemoryStore(), Kcp()
    store.put_payment(mixed())  # 20,000 taxable + 10,000 tax-free
    named = CancelRequest("DEFECTIVE", amount=8000, tax_free_amount=3000)
    first = _run(store, kcp, named, "k1")
    _run(store, kcp, CancelRequest("DEFECTIVE", amount=11000), "k2")  # split by the rule
    _run(store, kcp, CancelRequest("DEFECTIVE"), "k3")  # the rest

    sent = [(o.amount, o.tax_free_amount, o.mixed_tax) for o in kcp.orders]
    # after the first: 15,000 taxable + 7,000 tax-free left; 11,000 x 7/22 = 3,500 tax-free
    assert sent == [(8000, 3000, True), (11000, 3500, True), (11000, 3500, True)]
    payment = store.get_payment(SHOP, TNO)
    assert payment is not None
    assert (payment.balance, payment.tax_free_balance, payment.taxable_balance) == (0, 0, 0)
    assert (payment.tax_free_cancelled, payment.tax_free_held) == (10000, 0)
    found = store.get_cancellation(SHOP, first)
    assert found is not None
    assert (found.requested_tax_free_amount, found.tax_free_amount) == (3000, 3000)


def test_an_over_balance_tax_free_part_is_refused_at_the_api_and_nothing_is_written() -> None:
    store = MemoryStore()
    store.put_payment(mixed())
    with pytest.raises(Problem) as refused:
        cancellations.request_cancellation(
            store,
            RecordingStarter(),
            SteppingClock(),
            SHOP,
            TNO,
            CancelRequest("DEFECTIVE", amount=12000, tax_free_amount=11000),
            "k1",
        )
    assert (refused.value.status, refused.value.code) == (422, "TAX_FREE_EXCEEDS_BALANCE")
    assert not store.cancellations and not store.idempotency


def test_a_request_without_tax_free_amount_keeps_the_fingerprint_it_had_before() -> None:
    # Idempotency records written before the field existed must still match their replays.
    request = CancelRequest("DEFECTIVE", amount=5000)
    before = {
        "tno": TNO,
        "amount": 5000,
        "reason_code": "DEFECTIVE",
        "reason": "",
        "refund_account": None,
        "requested_by": "CUSTOMER",
        "removed_items": [],
    }
    digest = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    assert request.fingerprint(TNO) == digest
    assert request.fingerprint(TNO) != replace(request, tax_free_amount=0).fingerprint(TNO)
