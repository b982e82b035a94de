"""What KCP's notifications do to a payment: the domain decides, the store only executes.

- A deposit (TX00) into an AWAITING_DEPOSIT virtual account of exactly its amount makes it PAID:
  balance and available become the amount. Any other deposit (a different amount, a payment
  already paid) changes nothing: kept for an operator.
- A cancel or refund made outside cancelflow (TX05, TX06, TX01) lowers both balances by the
  amount reported (mod_mny / refund_mny), else to KCP's remaining balance (rem_mny), else (no
  amount either) to nothing, and is written as an external cancellation in the payment's
  history. A report our balance already shows, or one of a cancel of ours (same partial-cancel
  sequence, or same amount at KCP's same time), changes nothing; an amount more than our
  balance is kept for an operator, never applied.
- While a cancel of ours is at KCP (the send lock), or holds what the external one took, the
  notification is answered "not now" and KCP sends it again: by then ours has settled.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cancelflow.cancellations.model import Cancellation, CancellationStatus, PaymentEffect
from cancelflow.kcp.notifications import Notice, TxKind
from cancelflow.kernel.events import Event
from cancelflow.payments.model import Payment, PaymentStatus


class Verdict(StrEnum):
    """What a notification did: each one received is kept with its verdict."""

    DEPOSITED = "DEPOSITED"  # the payment became paid
    CANCELLED_EXTERNALLY = "CANCELLED_EXTERNALLY"  # an external cancel was recorded
    ALREADY_REFLECTED = "ALREADY_REFLECTED"  # our records already show it
    MISMATCH = "MISMATCH"  # it contradicts our records: kept, logged, for an operator
    UNKNOWN_PAYMENT = "UNKNOWN_PAYMENT"  # no such payment registered (yet)
    KEPT = "KEPT"  # a kind cancelflow does not act on
    BUSY = "BUSY"  # a cancel of ours is at KCP: not now (KCP sends it again), nothing kept


@dataclass(frozen=True)
class Change:
    """A notification's effect: the payment's new facts, and what is written with them."""

    verdict: Verdict
    effect: PaymentEffect | None = None
    cancellation: Cancellation | None = None  # the external cancel, in the payment's history
    event: Event | None = None
    deposit: bool = False  # the effect is a deposit (only while AWAITING_DEPOSIT)
    note: str = ""  # why nothing changed (logged)


def judge(
    notice: Notice, payment: Payment | None, ours: list[Cancellation], now: datetime
) -> Change:
    """The change one notification makes to its payment (None: it is not registered), given
    the payment's cancellations (`ours`: a report of one of them changes nothing)."""
    if payment is None:
        return Change(Verdict.UNKNOWN_PAYMENT, note="no payment with this tno for the shop")
    if notice.kind is TxKind.DEPOSIT:
        return _deposit(notice, payment, now)
    if notice.kind in (TxKind.CANCEL, TxKind.REFUND):
        if payment.in_flight:
            return Change(Verdict.BUSY, note=f"cancel {payment.in_flight} is at KCP")
        if any(_reports(notice, c) for c in ours):
            return Change(Verdict.ALREADY_REFLECTED, note="it reports a cancel of ours")
        return _external_cancel(notice, payment, now)
    return Change(Verdict.KEPT, note=f"tx_cd {notice.tx_cd} is kept, not acted on")


def _deposit(notice: Notice, payment: Payment, now: datetime) -> Change:
    if payment.status is not PaymentStatus.AWAITING_DEPOSIT:
        return Change(Verdict.ALREADY_REFLECTED, note=f"payment is {payment.status.value}")
    if notice.amount() != payment.amount:
        return Change(
            Verdict.MISMATCH, note=f"deposit of {notice.amount()} for an amount {payment.amount}"
        )
    effect = PaymentEffect(payment.amount, payment.amount, status=PaymentStatus.PAID)
    event = Event(
        type="payment.deposited",
        shop_id=payment.shop_id,
        resource=payment.tno,
        occurred_at=notice.at or now,
        cause=notice.notice_id,
        data={"tno": payment.tno, "amount": payment.amount, "status": "PAID"},
    )
    return Change(Verdict.DEPOSITED, effect, event=event, deposit=True)


def _external_cancel(notice: Notice, payment: Payment, now: datetime) -> Change:
    if payment.status is PaymentStatus.AWAITING_DEPOSIT:
        return Change(Verdict.MISMATCH, note="a cancel of a payment never paid into")
    balance, reported, amount = payment.balance, notice.remaining(), notice.amount()
    if reported == balance:
        return Change(Verdict.ALREADY_REFLECTED, note="our balance already shows it")
    if amount is not None:
        after = balance - amount  # what was cancelled, whatever happened at KCP since
    elif reported is not None:
        after = reported
    else:
        after = 0  # a cancel notice with no amount: a full cancel (unconfirmed)
    if after < 0 or after >= balance:
        return Change(Verdict.MISMATCH, note=f"KCP reports {amount} of {balance} cancelled")
    taken = balance - after
    if payment.available < taken:
        # A cancel of ours holds part of it: it goes to KCP first (and is refused, or fits),
        # and KCP's resend then finds the hold gone.
        return Change(Verdict.BUSY, note="a cancel of ours holds the amount")
    status = PaymentStatus.CANCELLED if after == 0 else PaymentStatus.PARTIALLY_CANCELLED
    effect = PaymentEffect(-taken, -taken, status=status, expect_balance=balance, idle=True)
    at = notice.at or now
    cancellation = Cancellation(
        shop_id=payment.shop_id,
        cancellation_id=external_cancellation_id(payment.shop_id, notice.notice_id),
        tno=payment.tno,
        status=CancellationStatus.SUCCEEDED,
        reason_code="CANCELLED_AT_KCP",
        reason=f"KCP {notice.tx_cd}",
        created_at=now,
        updated_at=now,
        requested_amount=taken,
        requested_by="KCP",  # made outside cancelflow, e.g. in KCP's merchant admin
        amount=taken,
        reasons=("CANCELLED_AT_KCP",),
        cancelled_at=at,
        partial_seq=notice.partial_seq,
        balance_before=balance,
        confirmed_by="KCP_NOTIFICATION",
    )
    event = Event(
        type="payment.cancelled_externally",
        shop_id=payment.shop_id,
        resource=payment.tno,
        occurred_at=at,
        cause=notice.notice_id,
        data={
            "tno": payment.tno,
            "cancellation_id": cancellation.cancellation_id,
            "amount": taken,
            "balance": after,
            "status": status.value,
            "tx_cd": notice.tx_cd,
        },
    )
    return Change(Verdict.CANCELLED_EXTERNALLY, effect, cancellation, event)


def _reports(notice: Notice, cancellation: Cancellation) -> bool:
    """Whether a notification reports this (succeeded) cancel of ours: KCP's partial-cancel
    sequence number, or its amount and KCP's time, match."""
    if cancellation.status is not CancellationStatus.SUCCEEDED:
        return False
    if notice.partial_seq and cancellation.partial_seq:
        return notice.partial_seq == cancellation.partial_seq
    same_time = notice.at is not None and notice.at == cancellation.cancelled_at
    return same_time and notice.amount() in (None, cancellation.amount)


def external_cancellation_id(shop_id: str, notice_id: str) -> str:
    """The external cancel's id, derived from its notification: a resend names the same one."""
    return "cnl_" + hashlib.sha256(f"{shop_id}|{notice_id}".encode()).hexdigest()[:24]
