"""Can this payment be cancelled, and for how much? Pure: no I/O, no AWS.

A minimal rule set for now (the payment exists and still has a balance, the amount fits);
the full policy engine (windows, shipping, method rules, shop policy) grows here.
"""

from __future__ import annotations

from dataclasses import dataclass

from cancelflow.models import Payment, PaymentStatus


@dataclass(frozen=True)
class Decision:
    allowed: bool
    amount: int = 0  # the refundable amount when allowed
    reasons: tuple[str, ...] = ()  # stable reason codes when rejected


def decide(payment: Payment, requested_amount: int | None) -> Decision:
    """Judge a cancel request against what is still available on the payment."""
    if payment.status is PaymentStatus.CANCELLED or payment.balance == 0:
        return Decision(False, reasons=("ALREADY_CANCELLED",))
    amount = payment.available if requested_amount is None else requested_amount
    if amount <= 0:
        # Everything left is held by cancels still in progress.
        return Decision(False, reasons=("AMOUNT_EXCEEDS_BALANCE",))
    if amount > payment.available:
        return Decision(False, reasons=("AMOUNT_EXCEEDS_BALANCE",))
    return Decision(True, amount=amount)
