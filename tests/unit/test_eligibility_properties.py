"""Properties of the eligibility engine that hold for any payment, request, policy and moment."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cancelflow.cancellations.eligibility import SHOP_FAULT, CancelAsk, CancelReason, decide
from cancelflow.kcp.port import PayMethod
from cancelflow.kernel.clock import KST
from cancelflow.kernel.reasons import BREAKDOWN, REASONS
from cancelflow.payments.model import Fulfillment, Payment, PaymentStatus
from cancelflow.shops.policy import ShopPolicy, policy_from_doc, policy_to_doc, validate_policy

METHOD_RULES = {"MOBILE_PREVIOUS_MONTH", "REFUND_ACCOUNT_REQUIRED"}
CATEGORIES = ["", "CLOTHES", "CUSTOM_MADE", "custom_made", "DIGITAL_USED"]

items = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.just("item"),
            "quantity": st.integers(1, 3),
            "price": st.integers(0, 50_000),
            "category": st.sampled_from(CATEGORIES),
        }
    ),
    max_size=4,
).map(tuple)
moments = st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC))


@st.composite
def payments(draw: st.DrawFn) -> Payment:
    amount = draw(st.integers(1, 2_000_000))
    balance = draw(st.one_of(st.just(amount), st.integers(0, amount)))
    available = draw(st.one_of(st.just(balance), st.integers(0, balance)))
    approved_at = draw(moments)
    fulfillment = draw(st.sampled_from(Fulfillment))
    delivered_at = changed_at = None
    if fulfillment not in (Fulfillment.PROCESSING, Fulfillment.SHIPPED):
        delivered_at = draw(st.none() | st.just(approved_at + timedelta(days=2, hours=5)))
        changed_at = draw(
            st.none() | st.just(approved_at + timedelta(days=draw(st.integers(2, 12))))
        )
    return Payment(
        shop_id="shop_1",
        tno="20261101000001",
        order_id="ORD-1",
        amount=amount,
        method=draw(st.sampled_from(PayMethod)),
        product_name="goods",
        buyer_email="buyer@example.com",
        approved_at=approved_at,
        registered_at=approved_at,
        escrow=draw(st.booleans()),
        items=draw(items),
        balance=balance,
        available=available,
        status=draw(st.sampled_from(PaymentStatus)),
        fulfillment=fulfillment,
        fulfillment_at=changed_at,
        delivered_at=delivered_at,
        removed_items=draw(st.frozensets(st.integers(0, 4), max_size=3)),
    )


asks = st.builds(
    CancelAsk,
    reason_code=st.sampled_from(CancelReason),
    amount=st.none() | st.integers(-1_000, 2_100_000),
    requested_by=st.sampled_from(["CUSTOMER", "SHOP"]),
    has_refund_account=st.booleans(),
    removed_items=st.lists(st.integers(-1, 4), max_size=3).map(tuple),
)
policies = st.builds(
    ShopPolicy,
    version=st.integers(1, 50),
    withdrawal_days=st.integers(7, 60),
    warranty_days=st.integers(92, 400),
    return_shipping_fee=st.sampled_from([0, 2_500, 3_000, 6_000, 1_000_000]),
    non_refundable_categories=st.sampled_from([(), ("CUSTOM_MADE",), ("DIGITAL_USED", "CLOTHES")]),
    allow_cancel_after_shipped=st.booleans(),
    subscription_pro_rata=st.booleans(),
    email_language=st.sampled_from(["ko", "en"]),
)


@st.composite
def situations(draw: st.DrawFn) -> tuple[Payment, CancelAsk, ShopPolicy, datetime]:
    payment = draw(payments())
    # Around the approval: mostly within months of it, sometimes across a month end.
    now = payment.approved_at + draw(st.timedeltas(timedelta(0), timedelta(days=200)))
    return payment, draw(asks), draw(policies), now


@settings(max_examples=500)
@given(situations())
def test_a_decision_is_consistent_and_never_refunds_more_than_is_available(
    situation: tuple[Payment, CancelAsk, ShopPolicy, datetime],
) -> None:
    payment, ask, policy, now = situation
    decision = decide(payment, ask, policy, now)
    assert sum(line.amount for line in decision.breakdown) == decision.amount
    assert decision.policy_version == policy.version
    assert all(code in REASONS for code in decision.reasons)
    assert all(line.code in BREAKDOWN for line in decision.breakdown)
    assert len(set(decision.reasons)) == len(decision.reasons)
    if decision.allowed:
        assert 0 < decision.amount <= payment.available <= payment.balance
        assert not decision.reasons
        assert payment.removed_items.isdisjoint(ask.removed_items)  # never an item twice
        items = [line.item for line in decision.breakdown if line.code == "ITEM"]
        assert items == list(ask.removed_items)
        if ask.amount is not None:
            assert decision.amount <= ask.amount
    else:
        assert decision.reasons
        assert decision.amount == 0
        assert decision.breakdown == ()


@given(situations(), st.sampled_from([UTC, KST, timezone(timedelta(hours=-10))]))
def test_the_same_facts_give_the_same_decision_in_any_time_zone(
    situation: tuple[Payment, CancelAsk, ShopPolicy, datetime], zone: timezone
) -> None:
    payment, ask, policy, now = situation
    decision = decide(payment, ask, policy, now)
    assert decide(payment, ask, policy, now) == decision
    assert decide(payment, ask, policy, now.astimezone(zone)) == decision


@settings(max_examples=300)
@given(situations())
def test_the_shop_asking_never_bypasses_method_or_balance_rules(
    situation: tuple[Payment, CancelAsk, ShopPolicy, datetime],
) -> None:
    payment, ask, policy, now = situation
    by_customer = decide(payment, replace(ask, requested_by="CUSTOMER"), policy, now)
    by_shop = decide(payment, replace(ask, requested_by="SHOP"), policy, now)
    # The shop waives only its own protections: it is refused for nothing the customer is not.
    assert set(by_shop.reasons) <= set(by_customer.reasons)
    assert set(by_shop.reasons) & METHOD_RULES == set(by_customer.reasons) & METHOD_RULES
    assert ("AMOUNT_EXCEEDS_BALANCE" in by_shop.reasons) == (
        "AMOUNT_EXCEEDS_BALANCE" in by_customer.reasons
    )
    if by_customer.allowed:
        assert by_shop.allowed and by_shop.amount >= by_customer.amount


@settings(max_examples=300)
@given(situations(), st.floats(0, 1))
def test_waiting_never_makes_a_refused_request_allowed(
    situation: tuple[Payment, CancelAsk, ShopPolicy, datetime], fraction: float
) -> None:
    payment, ask, policy, later = situation
    earlier = payment.approved_at + (later - payment.approved_at) * fraction
    if decide(payment, ask, policy, later).allowed:
        assert decide(payment, ask, policy, earlier) == decide(payment, ask, policy, later)


@settings(max_examples=300)
@given(situations(), st.integers(0, 300), st.integers(0, 300))
def test_a_more_generous_policy_never_refuses_what_a_stricter_one_allows(
    situation: tuple[Payment, CancelAsk, ShopPolicy, datetime], more_days: int, more_warranty: int
) -> None:
    payment, ask, policy, now = situation
    generous = replace(
        policy,
        withdrawal_days=policy.withdrawal_days + more_days,
        warranty_days=policy.warranty_days + more_warranty,
        allow_cancel_after_shipped=True,
        return_shipping_fee=0,
        non_refundable_categories=(),
    )
    strict = decide(payment, ask, policy, now)
    if strict.allowed:
        assert decide(payment, ask, generous, now).amount >= strict.amount


@settings(max_examples=300)
@given(situations())
def test_rules_that_follow_the_payment_method_and_the_law(
    situation: tuple[Payment, CancelAsk, ShopPolicy, datetime],
) -> None:
    payment, ask, policy, now = situation
    decision = decide(payment, ask, policy, now)
    if not decision.allowed:
        return
    if payment.method is PayMethod.MOBILE:
        paid, today = payment.approved_at.astimezone(KST), now.astimezone(KST)
        assert (paid.year, paid.month) == (today.year, today.month)
    if payment.method in (PayMethod.VIRTUAL_ACCOUNT, PayMethod.BANK_TRANSFER):
        assert ask.has_refund_account
    if payment.escrow:
        assert decision.amount == payment.amount
    fees = [line.amount for line in decision.breakdown if line.code == "RETURN_SHIPPING_FEE"]
    if ask.reason_code in SHOP_FAULT or ask.requested_by == "SHOP":
        assert fees == []  # §18⑩: the shop pays the return of goods it got wrong
    if payment.fulfillment is Fulfillment.PROCESSING:
        assert fees == []  # nothing to send back


@given(policies)
def test_a_policy_round_trips_through_storage_and_the_api(policy: ShopPolicy) -> None:
    doc: dict[str, Any] = policy_to_doc(policy)
    assert policy_from_doc(doc) == policy
    assert validate_policy(doc) == policy
