"""Scenarios of the eligibility policy engine: can this payment be cancelled, and for how much?

Every case reads: the payment's facts, the request, the shop's policy, the moment (KST) and the
outcome a shop sees (refund and breakdown, or every reason code of a rejection).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from cancelflow.cancellations.eligibility import CancelAsk, Decision, decide
from cancelflow.cancellations.model import BreakdownLine
from cancelflow.kcp.port import PayMethod
from cancelflow.kernel.clock import KST
from cancelflow.kernel.reasons import BREAKDOWN, REASONS
from cancelflow.payments.model import Fulfillment, Payment, PaymentStatus
from cancelflow.shops.policy import (
    PolicyError,
    ShopPolicy,
    default_policy,
    policy_from_doc,
    policy_to_doc,
    validate_policy,
)

ITEMS = (
    {"name": "셔츠", "quantity": 2, "price": 10_000, "category": "CLOTHES"},
    {"name": "양말", "quantity": 1, "price": 5_000, "category": "CLOTHES"},
    {"name": "모자", "quantity": 1, "price": 5_000, "category": "clothes"},
)
MIXED = (
    *ITEMS[:2],
    {"name": "각인 머그컵", "quantity": 1, "price": 5_000, "category": "CUSTOM_MADE"},
)


def kst(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=KST)


def a_payment(**changes: Any) -> Payment:
    """A 30,000 KRW card payment approved 2026-11-01 10:00 KST, not shipped yet."""
    facts: dict[str, Any] = {
        "shop_id": "shop_1",
        "tno": "20261101000001",
        "order_id": "ORD-1",
        "amount": 30_000,
        "method": PayMethod.CARD,
        "product_name": "셔츠 외 2건",
        "buyer_email": "buyer@example.com",
        "approved_at": kst(2026, 11, 1, 10),
        "registered_at": kst(2026, 11, 1, 10, 1),
        "items": ITEMS,
    }
    return Payment(**(facts | changes))


SHOP = ShopPolicy(
    version=4, return_shipping_fee=3_000, non_refundable_categories=("CUSTOM_MADE", "DIGITAL_USED")
)
DELIVERED_1ST: dict[str, Any] = {
    "fulfillment": Fulfillment.DELIVERED,
    "fulfillment_at": kst(2026, 11, 1, 14),
    "delivered_at": kst(2026, 11, 1, 14),
}
NOW = kst(2026, 11, 3, 10)  # two days after delivery, in the month of payment


def allowed(amount: int, *lines: tuple[Any, ...]) -> Decision:
    breakdown = tuple(BreakdownLine(*line) for line in lines)
    return Decision(True, amount, breakdown=breakdown, policy_version=SHOP.version)


def rejected(*reasons: str) -> Decision:
    return Decision(False, reasons=reasons, policy_version=SHOP.version)


def case(
    name: str,
    expected: Decision,
    *,
    now: datetime = NOW,
    policy: dict[str, Any] | None = None,
    **facts: Any,
) -> Any:
    """One scenario: payment fields and CancelAsk fields mixed in `facts` (ask fields win)."""
    ask_fields = {"reason_code", "amount", "requested_by", "has_refund_account", "removed_items"}
    ask = CancelAsk(
        **({"reason_code": "CHANGE_OF_MIND"} | {k: v for k, v in facts.items() if k in ask_fields})
    )
    payment_facts = {k: v for k, v in facts.items() if k not in ask_fields}
    if "removed_items_before" in payment_facts:  # the payment's own removed_items
        payment_facts["removed_items"] = payment_facts.pop("removed_items_before")
    payment = a_payment(**payment_facts)
    return pytest.param(payment, ask, replace(SHOP, **(policy or {})), now, expected, id=name)


SCENARIOS = [
    # --- before shipping -----------------------------------------------------------------
    case("processing_full_cancel_refunds_all_that_is_left", allowed(30_000, ("BALANCE", 30_000))),
    case("processing_partial_cancel", allowed(10_000, ("REQUESTED", 10_000)), amount=10_000),
    case(
        "processing_change_of_mind_deducts_no_shipping",
        allowed(30_000, ("BALANCE", 30_000)),
        reason_code="CHANGE_OF_MIND",
    ),
    case(
        "order_change_while_processing_cancels_removed_items_price_times_quantity",
        allowed(25_000, ("ITEM", 20_000, 0, "셔츠", 2), ("ITEM", 5_000, 1, "양말", 1)),
        reason_code="ORDER_CHANGE",
        removed_items=(0, 1),
    ),
    case(
        "order_change_with_the_items_total_as_amount",
        allowed(5_000, ("ITEM", 5_000, 1, "양말", 1)),
        reason_code="ORDER_CHANGE",
        removed_items=(1,),
        amount=5_000,
    ),
    case(
        "order_change_with_another_amount_is_refused",
        rejected("ITEMS_AMOUNT_MISMATCH"),
        reason_code="ORDER_CHANGE",
        removed_items=(1,),
        amount=6_000,
    ),
    case(
        "removed_item_not_on_the_payment",
        rejected("INVALID_ITEMS"),
        reason_code="ORDER_CHANGE",
        removed_items=(3,),
    ),
    case(
        "removed_item_named_twice",
        rejected("INVALID_ITEMS"),
        reason_code="ORDER_CHANGE",
        removed_items=(1, 1),
    ),
    case(
        "an_item_an_earlier_cancel_removed_cannot_be_removed_again",
        rejected("ITEM_ALREADY_REMOVED"),
        reason_code="ORDER_CHANGE",
        removed_items=(1, 2),
        removed_items_before=frozenset({0, 1}),
        balance=10_000,
    ),
    case(
        "the_items_left_can_still_be_removed_after_another_was",
        allowed(5_000, ("ITEM", 5_000, 2, "모자", 1)),
        reason_code="ORDER_CHANGE",
        removed_items=(2,),
        removed_items_before=frozenset({0, 1}),
        balance=10_000,
    ),
    case(
        "removed_free_gift_has_nothing_to_refund",
        rejected("INVALID_AMOUNT"),
        reason_code="ORDER_CHANGE",
        removed_items=(0,),
        items=({"name": "사은품", "quantity": 1, "price": 0},),
    ),
    # --- amount and balance --------------------------------------------------------------
    case("zero_amount", rejected("INVALID_AMOUNT"), amount=0),
    case("amount_over_balance", rejected("AMOUNT_EXCEEDS_BALANCE"), amount=30_001),
    case(
        "amount_over_what_other_cancels_leave",
        rejected("AMOUNT_EXCEEDS_BALANCE"),
        amount=20_000,
        available=10_000,
    ),
    case(
        "everything_held_by_cancels_in_progress",
        rejected("AMOUNT_EXCEEDS_BALANCE"),
        available=0,
    ),
    case(
        "rest_of_a_partly_cancelled_payment",
        allowed(12_000, ("BALANCE", 12_000)),
        balance=12_000,
        status=PaymentStatus.PARTIALLY_CANCELLED,
    ),
    case("nothing_left", rejected("ALREADY_CANCELLED"), balance=0),
    case(
        "cancelled_payment_says_only_already_cancelled",
        rejected("ALREADY_CANCELLED"),
        status=PaymentStatus.CANCELLED,
        method=PayMethod.MOBILE,
        now=kst(2027, 1, 5),
    ),
    # --- shipped, returns ----------------------------------------------------------------
    case("shipped_needs_a_return", rejected("RETURN_REQUIRED"), fulfillment=Fulfillment.SHIPPED),
    case(
        "shipped_when_the_shop_allows_it_deducts_return_shipping",
        allowed(27_000, ("BALANCE", 30_000), ("RETURN_SHIPPING_FEE", -3_000)),
        fulfillment=Fulfillment.SHIPPED,
        policy={"allow_cancel_after_shipped": True},
    ),
    case(
        "shipped_cancelled_by_the_shop_itself",
        allowed(30_000, ("BALANCE", 30_000)),
        fulfillment=Fulfillment.SHIPPED,
        requested_by="SHOP",
    ),
    case(
        "return_on_its_way_back",
        rejected("RETURN_NOT_RECEIVED"),
        fulfillment=Fulfillment.RETURN_REQUESTED,
        fulfillment_at=kst(2026, 11, 2, 9),
        delivered_at=kst(2026, 11, 1, 14),
    ),
    case(
        "return_on_its_way_back_refunded_early_by_the_shop",
        allowed(30_000, ("BALANCE", 30_000)),
        requested_by="SHOP",
        fulfillment=Fulfillment.RETURN_REQUESTED,
        fulfillment_at=kst(2026, 11, 2, 9),
        delivered_at=kst(2026, 11, 1, 14),
    ),
    case(
        "returned_change_of_mind_deducts_return_shipping",
        allowed(17_000, ("REQUESTED", 20_000), ("RETURN_SHIPPING_FEE", -3_000)),
        amount=20_000,
        fulfillment=Fulfillment.RETURNED,
        fulfillment_at=kst(2026, 11, 2, 18),
        delivered_at=kst(2026, 11, 1, 14),
    ),
    case(
        "return_recorded_on_the_7th_day_is_refunded_days_later",
        allowed(27_000, ("BALANCE", 30_000), ("RETURN_SHIPPING_FEE", -3_000)),
        fulfillment=Fulfillment.RETURNED,
        fulfillment_at=kst(2026, 11, 8, 23, 59),
        delivered_at=kst(2026, 11, 1, 14),
        now=kst(2026, 11, 12, 10),
    ),
    case(
        "return_recorded_after_the_window",
        rejected("WITHDRAWAL_PERIOD_EXPIRED"),
        fulfillment=Fulfillment.RETURNED,
        fulfillment_at=kst(2026, 11, 9, 0, 0),
        delivered_at=kst(2026, 11, 1, 14),
        now=kst(2026, 11, 10),
    ),
    case(
        "returned_without_its_delivery_time",
        rejected("DELIVERY_TIME_UNKNOWN"),
        fulfillment=Fulfillment.RETURNED,
        fulfillment_at=kst(2026, 11, 2, 18),
    ),
    # --- withdrawal window (§17①): KST calendar days after the delivery day -------------
    case(
        "change_of_mind_on_the_7th_day_after_delivery_at_23_59_59_kst",
        allowed(27_000, ("BALANCE", 30_000), ("RETURN_SHIPPING_FEE", -3_000)),
        now=kst(2026, 11, 8, 23, 59, 59),
        **DELIVERED_1ST,
    ),
    case(
        "change_of_mind_on_the_8th_day_at_00_00_kst",
        rejected("WITHDRAWAL_PERIOD_EXPIRED"),
        now=kst(2026, 11, 9),
        **DELIVERED_1ST,
    ),
    case(
        "delivered_at_00_30_kst_counts_from_that_kst_day_not_the_utc_day_before",
        allowed(27_000, ("BALANCE", 30_000), ("RETURN_SHIPPING_FEE", -3_000)),
        fulfillment=Fulfillment.DELIVERED,
        delivered_at=datetime(2026, 11, 1, 15, 30, tzinfo=UTC),  # 2026-11-02 00:30 KST
        now=kst(2026, 11, 9, 23, 59, 59),  # UTC 11-09 14:59: 8 UTC days, 7 KST days
    ),
    case(
        "delivered_at_00_30_kst_window_closes_at_kst_midnight_while_delivered",
        rejected("WITHDRAWAL_PERIOD_EXPIRED"),
        fulfillment=Fulfillment.DELIVERED,
        fulfillment_at=datetime(2026, 11, 1, 15, 30, tzinfo=UTC),  # the delivery, as last change
        now=kst(2026, 11, 10),
    ),
    case(
        "a_longer_shop_window",
        allowed(30_000, ("BALANCE", 30_000)),
        now=kst(2026, 11, 15, 23, 59),
        policy={"withdrawal_days": 14, "return_shipping_fee": 0},
        **DELIVERED_1ST,
    ),
    case(
        "delivered_without_a_delivery_time",
        rejected("DELIVERY_TIME_UNKNOWN"),
        fulfillment=Fulfillment.DELIVERED,
    ),
    case(
        "late_delivery_claim_after_the_window_is_a_withdrawal",
        rejected("WITHDRAWAL_PERIOD_EXPIRED"),
        reason_code="LATE_DELIVERY",
        now=kst(2026, 11, 20),
        **DELIVERED_1ST,
    ),
    # --- defects and wrong items (§17③): warranty window, never a fee --------------------
    case(
        "defective_within_withdrawal_deducts_nothing",
        allowed(30_000, ("BALANCE", 30_000)),
        reason_code="DEFECTIVE",
        **DELIVERED_1ST,
    ),
    case(
        "defective_after_withdrawal_within_warranty",
        allowed(30_000, ("BALANCE", 30_000)),
        reason_code="DEFECTIVE",
        now=kst(2026, 12, 20),
        **DELIVERED_1ST,
    ),
    case(
        "wrong_item_on_the_last_warranty_day",
        allowed(30_000, ("BALANCE", 30_000)),
        reason_code="WRONG_ITEM",
        now=kst(2027, 2, 1, 23, 59, 59),  # 92 days after 2026-11-01
        **DELIVERED_1ST,
    ),
    case(
        "wrong_item_after_warranty",
        rejected("WARRANTY_PERIOD_EXPIRED"),
        reason_code="WRONG_ITEM",
        now=kst(2027, 2, 2),
        **DELIVERED_1ST,
    ),
    case(
        "shop_refunds_after_every_window_without_fee",
        allowed(30_000, ("BALANCE", 30_000)),
        requested_by="SHOP",
        now=kst(2027, 6, 1),
        **DELIVERED_1ST,
    ),
    # --- return shipping fee ------------------------------------------------------------
    case(
        "fee_as_large_as_the_refund",
        rejected("FEE_EXCEEDS_REFUND"),
        amount=3_000,
        **DELIVERED_1ST,
    ),
    case(
        "fee_one_won_below_the_refund",
        allowed(1, ("REQUESTED", 3_001), ("RETURN_SHIPPING_FEE", -3_000)),
        amount=3_001,
        **DELIVERED_1ST,
    ),
    case(
        "default_policy_deducts_no_fee",
        allowed(30_000, ("BALANCE", 30_000)),
        policy={"return_shipping_fee": 0},
        **DELIVERED_1ST,
    ),
    # --- non-refundable categories (§17②) -------------------------------------------------
    case(
        "custom_made_goods_are_not_withdrawn_for_a_change_of_mind",
        rejected("NON_REFUNDABLE_ITEM"),
        items=MIXED[2:],
        amount=5_000,
    ),
    case(
        "a_partial_amount_of_a_mixed_order_could_be_the_custom_item",
        rejected("NON_REFUNDABLE_ITEM"),
        amount=5_000,
        items=MIXED,
        **DELIVERED_1ST,
    ),
    case(
        "returning_only_the_ordinary_items_of_a_mixed_order",
        allowed(17_000, ("ITEM", 20_000, 0, "셔츠", 2), ("RETURN_SHIPPING_FEE", -3_000)),
        removed_items=(0,),
        items=MIXED,
        **DELIVERED_1ST,
    ),
    case(
        "category_matches_whatever_its_case",
        rejected("NON_REFUNDABLE_ITEM"),
        items=({"name": "e-book", "quantity": 1, "price": 30_000, "category": " digital_used"},),
    ),
    case(
        "defective_custom_made_goods_are_refunded",
        allowed(30_000, ("BALANCE", 30_000)),
        reason_code="DEFECTIVE",
        items=MIXED,
        **DELIVERED_1ST,
    ),
    case(
        "shop_refunds_custom_made_goods",
        allowed(30_000, ("BALANCE", 30_000)),
        requested_by="SHOP",
        items=MIXED,
        **DELIVERED_1ST,
    ),
    # --- payment methods: for everyone ----------------------------------------------------
    case(
        "mobile_at_23_59_kst_on_the_last_day_of_the_month",
        allowed(30_000, ("BALANCE", 30_000)),
        method=PayMethod.MOBILE,
        now=kst(2026, 11, 30, 23, 59, 59),
    ),
    case(
        "mobile_at_00_00_kst_on_the_next_month",
        rejected("MOBILE_PREVIOUS_MONTH"),
        method=PayMethod.MOBILE,
        now=kst(2026, 12, 1),
    ),
    case(
        "mobile_paid_00_30_kst_on_the_1st_is_that_kst_month_not_the_utc_one",
        allowed(30_000, ("BALANCE", 30_000)),
        method=PayMethod.MOBILE,
        approved_at=datetime(2026, 11, 30, 15, 30, tzinfo=UTC),  # 2026-12-01 00:30 KST
        now=kst(2026, 12, 31, 23, 59),
    ),
    case(
        "mobile_month_binds_the_shop_too",
        rejected("MOBILE_PREVIOUS_MONTH"),
        method=PayMethod.MOBILE,
        requested_by="SHOP",
        now=kst(2026, 12, 1),
    ),
    case(
        "virtual_account_without_refund_account",
        rejected("REFUND_ACCOUNT_REQUIRED"),
        method=PayMethod.VIRTUAL_ACCOUNT,
        requested_by="SHOP",
    ),
    case(
        "bank_transfer_without_refund_account",
        rejected("REFUND_ACCOUNT_REQUIRED"),
        method=PayMethod.BANK_TRANSFER,
    ),
    case(
        "virtual_account_with_refund_account",
        allowed(30_000, ("BALANCE", 30_000)),
        method=PayMethod.VIRTUAL_ACCOUNT,
        has_refund_account=True,
    ),
    case("escrow_in_full", allowed(30_000, ("BALANCE", 30_000)), escrow=True),
    case(
        "escrow_partial",
        rejected("ESCROW_PARTIAL_NOT_ALLOWED"),
        escrow=True,
        amount=10_000,
        requested_by="SHOP",
    ),
    case(
        "escrow_change_of_mind_with_a_fee_would_be_partial",
        rejected("ESCROW_PARTIAL_NOT_ALLOWED"),
        escrow=True,
        **DELIVERED_1ST,
    ),
    # --- every reason at once -------------------------------------------------------------
    case(
        "every_reason_that_applies_is_given",
        rejected(
            "WITHDRAWAL_PERIOD_EXPIRED",
            "NON_REFUNDABLE_ITEM",
            "MOBILE_PREVIOUS_MONTH",
            "FEE_EXCEEDS_REFUND",
        ),
        method=PayMethod.MOBILE,
        items=MIXED,
        amount=2_000,
        now=kst(2026, 12, 1),
        **DELIVERED_1ST,
    ),
    case(
        "a_virtual_account_refund_after_the_window_without_account",
        rejected("WITHDRAWAL_PERIOD_EXPIRED", "REFUND_ACCOUNT_REQUIRED"),
        method=PayMethod.VIRTUAL_ACCOUNT,
        now=kst(2026, 11, 30),
        **DELIVERED_1ST,
    ),
]


@pytest.mark.parametrize(("payment", "ask", "policy", "now", "expected"), SCENARIOS)
def test_scenario(
    payment: Payment, ask: CancelAsk, policy: ShopPolicy, now: datetime, expected: Decision
) -> None:
    assert decide(payment, ask, policy, now) == expected


def test_every_reason_and_breakdown_label_has_korean_and_english_text() -> None:
    codes = {code for param in SCENARIOS for code in param.values[-1].reasons}
    labels = {line.code for param in SCENARIOS for line in param.values[-1].breakdown}
    for code in codes:
        assert REASONS[code]["ko"] and REASONS[code]["en"]
    for label in labels:
        assert BREAKDOWN[label]["ko"] and BREAKDOWN[label]["en"]


def test_decision_records_the_policy_version_it_used() -> None:
    decision = decide(a_payment(), CancelAsk("OTHER"), replace(SHOP, version=9), NOW)
    assert decision.policy_version == 9


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        decide(a_payment(), CancelAsk("OTHER"), SHOP, datetime(2026, 11, 3, 10))


@pytest.mark.parametrize(
    "fields",
    [{"reason_code": "BORED"}, {"reason_code": "OTHER", "requested_by": "ADMIN"}],
    ids=["unknown_reason", "unknown_requester"],
)
def test_an_ask_outside_the_contract_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CancelAsk(**fields)


# --- subscriptions ----------------------------------------------------------------------


# --- the shop's policy ------------------------------------------------------------------


def test_default_policy_is_the_laws_minimum() -> None:
    policy = default_policy()
    assert (policy.version, policy.withdrawal_days, policy.warranty_days) == (1, 7, 92)
    assert policy.return_shipping_fee == 0
    assert policy.non_refundable_categories == ()
    assert not policy.allow_cancel_after_shipped
    assert policy.subscription_pro_rata
    assert policy.email_language == "ko"


def test_a_shop_document_becomes_a_policy_and_round_trips_through_storage() -> None:
    doc = {
        "withdrawal_days": 14,
        "warranty_days": 180,
        "return_shipping_fee": 3_000,
        "non_refundable_categories": ["CUSTOM_MADE", "DIGITAL_USED"],
        "allow_cancel_after_shipped": True,
        "subscription_pro_rata": False,
        "email_language": "en",
    }
    policy = validate_policy(doc)
    assert policy.non_refundable_categories == ("CUSTOM_MADE", "DIGITAL_USED")
    assert policy_to_doc(policy) == doc | {"version": 1}
    assert policy_from_doc(policy_to_doc(policy)) == policy


def test_absent_fields_take_the_default() -> None:
    assert validate_policy({"return_shipping_fee": 2_500}) == replace(
        default_policy(), return_shipping_fee=2_500
    )


@pytest.mark.parametrize(
    ("doc", "fields"),
    [
        pytest.param({"withdrawal_days": 6}, ["withdrawal_days"], id="withdrawal_below_the_law"),
        pytest.param({"warranty_days": 90}, ["warranty_days"], id="warranty_below_three_months"),
        pytest.param({"withdrawal_days": 3651}, ["withdrawal_days"], id="window_over_ten_years"),
        pytest.param({"withdrawal_days": "7"}, ["withdrawal_days"], id="days_as_text"),
        pytest.param({"withdrawal_days": 7.5}, ["withdrawal_days"], id="days_fractional"),
        pytest.param({"return_shipping_fee": True}, ["return_shipping_fee"], id="fee_as_boolean"),
        pytest.param({"return_shipping_fee": -1}, ["return_shipping_fee"], id="negative_fee"),
        pytest.param({"return_shipping_fee": 1_000_001}, ["return_shipping_fee"], id="huge_fee"),
        pytest.param(
            {"non_refundable_categories": ["CUSTOM_MADE", "custom-made"]},
            ["non_refundable_categories[1]"],
            id="category_spelling",
        ),
        pytest.param(
            {"non_refundable_categories": "CUSTOM_MADE"},
            ["non_refundable_categories"],
            id="categories_not_a_list",
        ),
        pytest.param(
            {"non_refundable_categories": [f"C_{'A' * i}" for i in range(51)]},
            ["non_refundable_categories"],
            id="too_many_categories",
        ),
        pytest.param(
            {"non_refundable_categories": ["A", "A"]},
            ["non_refundable_categories"],
            id="category_twice",
        ),
        pytest.param({"email_language": "ja"}, ["email_language"], id="unknown_language"),
        pytest.param(
            {"allow_cancel_after_shipped": "yes"}, ["allow_cancel_after_shipped"], id="flag_text"
        ),
        pytest.param({"version": 0}, ["version"], id="version_zero"),
        pytest.param({"withdrawl_days": 14}, ["withdrawl_days"], id="unknown_field"),
        pytest.param(
            {"withdrawal_days": 1, "email_language": "", "return_shipping_fee": None},
            ["return_shipping_fee", "withdrawal_days", "email_language"],
            id="every_error_at_once",
        ),
    ],
)
def test_invalid_policy_documents_name_every_bad_field(
    doc: dict[str, Any], fields: list[str]
) -> None:
    with pytest.raises(PolicyError) as raised:
        validate_policy(doc)
    assert sorted(error.field for error in raised.value.errors) == sorted(fields)
    assert isinstance(raised.value, ValueError)
    assert all(detail["message"] for detail in raised.value.details())


def test_the_law_cannot_be_shortened_even_in_code() -> None:
    with pytest.raises(PolicyError, match="withdrawal_days"):
        ShopPolicy(withdrawal_days=3)
