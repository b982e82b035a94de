"""Can this payment be cancelled, and for how much? Pure: no I/O, no AWS; time comes in as `now`.

The rules, in the order a decision reads them (every rule that fails is reported):

1. Nothing paid yet (a virtual account awaiting its deposit): NOT_DEPOSITED. Nothing left on
   the payment: ALREADY_CANCELLED, and nothing else is checked. Where a cancel made outside
   cancelflow (KCP's notification) took what the request needed, the reason says so instead
   of ALREADY_CANCELLED or AMOUNT_EXCEEDS_BALANCE: CANCELLED_EXTERNALLY.
2. What is asked: an amount, the removed items' price x quantity (one breakdown line each,
   naming the item), or all that is left; more than 0 and at most what is available (the
   balance minus what other cancels hold). An item an earlier cancel removed (or holds) cannot
   be removed again: ITEM_ALREADY_REMOVED.
3. Customer-facing rules (a request by the SHOP skips them: the shop waives its own protection):
   - SHIPPED: the goods must come back first (RETURN_REQUIRED), unless the policy allows it.
   - RETURN_REQUESTED: refund when the return arrives (RETURN_NOT_RECEIVED), §18①.
   - delivered (DELIVERED, RETURN_REQUESTED, RETURNED): any reason within withdrawal_days
     (§17①); after that only DEFECTIVE / WRONG_ITEM, within warranty_days (§17③). A return
     is judged when it was recorded (`fulfillment_at`), not when its refund is processed.
   - non-refundable categories, at every stage (custom-made goods are made before they ship),
     unless the shop is at fault (§17② exceptions).
   - return shipping fee deducted once the goods have left the shop, unless the shop is at
     fault (§18⑨, ⑩).
4. Payment-method rules, for everyone: mobile payments within their KST calendar month, a refund
   account for virtual-account and transfer refunds.
5. The refund (asked minus fee): more than 0, and escrow only in full.
6. Mixed taxation (a payment with a tax-free part): the refund's tax-free part is the one the
   request names, or else split_tax_free's; neither part may exceed what is left of it
   (TAX_FREE_EXCEEDS_BALANCE, TAXABLE_EXCEEDS_BALANCE), nor the named part the refund
   (TAX_FREE_EXCEEDS_REFUND).

Days are KST calendar days counted from `payment.delivered_at`: delivered on 2026-11-01 (any
time, KST), the 7th day after is 2026-11-08, and all of it (to 23:59:59 KST) is inside a 7-day
window; 2026-11-09 00:00 KST is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from cancelflow.cancellations.model import BreakdownLine
from cancelflow.kcp.port import PayMethod
from cancelflow.kernel.clock import KST
from cancelflow.payments.model import Fulfillment, Payment, PaymentStatus
from cancelflow.shops.policy import ShopPolicy

__all__ = ["CancelAsk", "CancelReason", "Decision", "decide", "split_tax_free"]


class CancelReason(StrEnum):
    CHANGE_OF_MIND = "CHANGE_OF_MIND"
    DEFECTIVE = "DEFECTIVE"
    WRONG_ITEM = "WRONG_ITEM"
    LATE_DELIVERY = "LATE_DELIVERY"
    ORDER_CHANGE = "ORDER_CHANGE"
    DUPLICATE_PAYMENT = "DUPLICATE_PAYMENT"
    OTHER = "OTHER"


# Goods unlike their description or contract (§17③): the shop pays the return (§18⑩), the
# longer warranty window applies and no category is exempt. Every other reason a customer
# gives for sending goods back is a withdrawal (§17①) at the customer's cost (§18⑨).
SHOP_FAULT = frozenset({CancelReason.DEFECTIVE, CancelReason.WRONG_ITEM})
DELIVERED = frozenset({Fulfillment.DELIVERED, Fulfillment.RETURN_REQUESTED, Fulfillment.RETURNED})
REFUND_TO_ACCOUNT = frozenset({PayMethod.VIRTUAL_ACCOUNT, PayMethod.BANK_TRANSFER})


@dataclass(frozen=True)
class CancelAsk:
    """One cancel request.

    amount: KRW to cancel; None means all that is left (or the removed items' total).
    removed_items: positions (from 0) in `payment.items` of the lines given back, each line
    whole (price x quantity). With ORDER_CHANGE they are the items removed from the order;
    with any reason they also say which items the non-refundable check looks at (without them,
    every item of the payment counts).
    """

    reason_code: str
    amount: int | None = None
    requested_by: Literal["CUSTOMER", "SHOP"] = "CUSTOMER"
    has_refund_account: bool = False
    removed_items: tuple[int, ...] = ()
    tax_free_amount: int | None = None  # the refund's tax-free part; None: split_tax_free

    def __post_init__(self) -> None:
        CancelReason(self.reason_code)  # an unknown reason is the caller's bug: ValueError
        if self.requested_by not in ("CUSTOMER", "SHOP"):
            raise ValueError(f"requested_by must be CUSTOMER or SHOP, not {self.requested_by!r}")


@dataclass(frozen=True)
class Decision:
    """ALLOWED with the refund and its breakdown, or REJECTED with every reason that applies."""

    allowed: bool
    amount: int = 0  # the refund (what is sent to KCP) when allowed
    reasons: tuple[str, ...] = ()  # stable reason codes (reasons.REASONS) when rejected
    breakdown: tuple[BreakdownLine, ...] = ()  # lines summing to amount
    policy_version: int = 0
    tax_free_amount: int = 0  # the refund's tax-free part (mixed taxation); the rest is taxable

    def __post_init__(self) -> None:
        # Money moves on this value: a contradictory decision is a bug, stop it here.
        if self.allowed:
            consistent = self.amount > 0 and not self.reasons
            consistent = consistent and sum(line.amount for line in self.breakdown) == self.amount
            consistent = consistent and 0 <= self.tax_free_amount <= self.amount
        else:
            consistent = bool(self.reasons) and self.amount == 0 and not self.breakdown
            consistent = consistent and self.tax_free_amount == 0
        if not consistent:
            raise ValueError(f"inconsistent decision: {self}")


def decide(payment: Payment, ask: CancelAsk, policy: ShopPolicy, now: datetime) -> Decision:
    """Judge a cancel request by the payment's facts, the shop's policy and the time `now`."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: time must be timezone-aware")
    if payment.status is PaymentStatus.AWAITING_DEPOSIT:
        return Decision(False, reasons=("NOT_DEPOSITED",), policy_version=policy.version)
    if payment.status is PaymentStatus.CANCELLED or payment.balance == 0:
        nothing_left = (
            "CANCELLED_EXTERNALLY" if payment.externally_cancelled else "ALREADY_CANCELLED"
        )
        return Decision(False, reasons=(nothing_left,), policy_version=policy.version)

    reasons: list[str] = []
    requested = _requested(payment, ask, reasons)
    customer = ask.requested_by == "CUSTOMER"
    shop_fault = ask.reason_code in SHOP_FAULT
    if customer:
        reasons += _fulfillment_rules(payment, ask, policy, now)
        if not shop_fault and _non_refundable(payment, ask, policy):
            reasons.append("NON_REFUNDABLE_ITEM")
    reasons += _method_rules(payment, ask, now)

    lines = list(requested)
    left_the_shop = payment.fulfillment is not Fulfillment.PROCESSING
    if customer and not shop_fault and left_the_shop and policy.return_shipping_fee:
        lines.append(BreakdownLine("RETURN_SHIPPING_FEE", -policy.return_shipping_fee))
    refund = sum(line.amount for line in lines)
    tax_free = 0
    if requested:  # only a valid, positive ask has a refund to judge
        if refund <= 0:
            reasons.append("FEE_EXCEEDS_REFUND")  # never a negative (or zero) refund
        if payment.escrow and refund < payment.amount:
            reasons.append("ESCROW_PARTIAL_NOT_ALLOWED")  # KCP refuses (8742)
        if refund > 0:
            tax_free = _tax_free_part(payment, ask.tax_free_amount, refund, reasons)

    if reasons:
        return Decision(False, reasons=tuple(reasons), policy_version=policy.version)
    return Decision(
        True,
        refund,
        breakdown=tuple(lines),
        policy_version=policy.version,
        tax_free_amount=tax_free,
    )


def split_tax_free(refund: int, taxable_left: int, tax_free_left: int) -> int:
    """The tax-free part of a refund whose request names none: proportional to what is left
    of each part, the tax-free share rounded down.

    Why this is what KCP expects of a mixed-taxation (TG03) partial cancel: KCP refuses a
    cancel whose taxable part (mod_tax_mny + mod_vat_mny) exceeds the taxable balance or whose
    mod_free_mny exceeds the tax-free one, and the cancel of everything left must take exactly
    both. Splitting in the remainder's own proportion never asks more of either part (rounding
    the tax-free share down leaves the taxable part at ceil(refund x taxable / left), at most
    the taxable balance), keeps each refund's VAT in the mix of the receipt it reverses, and
    makes the last cancel exactly both balances. "Taxable first" would also fit, but would
    report VAT refunds out of step with the receipt and leave a tax-free remainder that a later
    taxable-item return cannot draw on. 0 <= result <= min(refund, tax_free_left) whenever
    refund <= taxable_left + tax_free_left.
    """
    left = taxable_left + tax_free_left
    if refund <= 0 or tax_free_left <= 0 or left <= 0:
        return 0
    return min(refund * tax_free_left // left, tax_free_left)


def _tax_free_part(payment: Payment, named: int | None, refund: int, reasons: list[str]) -> int:
    """The refund's tax-free part: as the request names it (checked against what is left of
    each part of the payment), or split_tax_free's; 0 (with a reason) when it cannot be."""
    taxable_left, tax_free_left = payment.taxable_available, payment.tax_free_available
    if named is None:
        return split_tax_free(refund, taxable_left, tax_free_left)
    if named > refund:
        reasons.append("TAX_FREE_EXCEEDS_REFUND")
        return 0
    fits = True
    if named > tax_free_left:
        reasons.append("TAX_FREE_EXCEEDS_BALANCE")
        fits = False
    if refund - named > taxable_left:
        reasons.append("TAXABLE_EXCEEDS_BALANCE")
        fits = False
    return named if fits else 0


def _requested(payment: Payment, ask: CancelAsk, reasons: list[str]) -> list[BreakdownLine]:
    """The gross amount asked for, as breakdown lines; none (with a reason) when it is invalid."""
    if ask.removed_items:
        lines = _item_lines(payment.items, ask.removed_items)
        if lines is None:
            reasons.append("INVALID_ITEMS")
            return []
        if not payment.removed_items.isdisjoint(ask.removed_items):
            reasons.append("ITEM_ALREADY_REMOVED")
            return []
        if ask.amount is not None and ask.amount != sum(line.amount for line in lines):
            reasons.append("ITEMS_AMOUNT_MISMATCH")
            return []
    elif ask.amount is None:
        lines = [BreakdownLine("BALANCE", payment.available)]
    else:
        lines = [BreakdownLine("REQUESTED", ask.amount)]
    total = sum(line.amount for line in lines)
    if payment.available <= 0 or total > payment.available:
        # Had the external cancel not taken it, would it have fitted? Then that is the reason.
        external = 0 < total <= payment.available + payment.externally_cancelled
        reasons.append("CANCELLED_EXTERNALLY" if external else "AMOUNT_EXCEEDS_BALANCE")
        return []
    if total <= 0:
        reasons.append("INVALID_AMOUNT")
        return []
    return lines


def _item_lines(
    items: tuple[dict[str, Any], ...], positions: tuple[int, ...]
) -> list[BreakdownLine] | None:
    """One line per named item (price x quantity); None if a position is unknown or twice."""
    if len(set(positions)) != len(positions):
        return None
    lines = []
    for position in positions:
        if not (_is_count(position) and position < len(items)):
            return None
        item = items[position]
        price, quantity = item.get("price", 0), item.get("quantity", 1)
        if not (_is_count(price) and _is_count(quantity)):
            return None
        name = str(item.get("name", ""))
        lines.append(BreakdownLine("ITEM", price * quantity, position, name, quantity))
    return lines


def _fulfillment_rules(
    payment: Payment, ask: CancelAsk, policy: ShopPolicy, now: datetime
) -> list[str]:
    stage = payment.fulfillment
    reasons = []
    if stage is Fulfillment.SHIPPED and not policy.allow_cancel_after_shipped:
        reasons.append("RETURN_REQUIRED")
    if stage is Fulfillment.RETURN_REQUESTED:
        reasons.append("RETURN_NOT_RECEIVED")  # §18①: refund follows the goods' return
    if stage in DELIVERED and (window := _window_rule(payment, ask, policy, now)):
        reasons.append(window)
    return reasons


def _window_rule(payment: Payment, ask: CancelAsk, policy: ShopPolicy, now: datetime) -> str | None:
    delivered_at = payment.delivered_at
    if delivered_at is None and payment.fulfillment is Fulfillment.DELIVERED:
        delivered_at = payment.fulfillment_at  # while DELIVERED, the last change is the delivery
    if delivered_at is None:
        return "DELIVERY_TIME_UNKNOWN"  # a window we cannot measure is not open
    # §17① asks that the withdrawal be made in time, not refunded in time: a return is judged
    # when it was recorded (an upper bound of when it was asked for), however long it travels.
    judged_at = now
    if payment.fulfillment is not Fulfillment.DELIVERED and payment.fulfillment_at:
        judged_at = min(now, payment.fulfillment_at)
    # The delivery day itself is not counted (민법 §157): day 1 is the day after.
    days = (_kst_day(judged_at) - _kst_day(delivered_at)).days
    if days <= policy.withdrawal_days:
        return None
    if ask.reason_code not in SHOP_FAULT:
        return "WITHDRAWAL_PERIOD_EXPIRED"
    if days <= policy.warranty_days:
        return None
    return "WARRANTY_PERIOD_EXPIRED"


def _non_refundable(payment: Payment, ask: CancelAsk, policy: ShopPolicy) -> bool:
    positions = ask.removed_items or range(len(payment.items))
    # Categories are free text on items: compare them the way the policy writes them.
    categories = {
        str(payment.items[i].get("category", "")).strip().upper()
        for i in positions
        if 0 <= i < len(payment.items)
    }
    return not categories.isdisjoint(policy.non_refundable_categories)


def _method_rules(payment: Payment, ask: CancelAsk, now: datetime) -> list[str]:
    reasons = []
    if payment.method is PayMethod.MOBILE and _kst_month(now) != _kst_month(payment.approved_at):
        reasons.append("MOBILE_PREVIOUS_MONTH")  # carriers bill monthly: same month only
    if payment.method in REFUND_TO_ACCOUNT and not ask.has_refund_account:
        reasons.append("REFUND_ACCOUNT_REQUIRED")
    return reasons


def _kst_day(moment: datetime) -> date:
    return moment.astimezone(KST).date()


def _kst_month(moment: datetime) -> tuple[int, int]:
    day = _kst_day(moment)
    return day.year, day.month


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
