"""The sweep: keep cancelflow's records true to KCP's balance, on a schedule.

It re-inquires KCP for every payment with a cancel that is still open (any age) or FAILED in the
last `days`, and acts only on positive proof, like the workflow (cancelflow.cancellations):

- the payment's in-flight cancel (SENDING, RECONCILING or NEEDS_REVIEW, holding the send lock):
  KCP's balance lowered by exactly its amount from the balance it was sent against → SUCCEEDED;
  its attempt never claimed for sending by a run that has since died → voided, FAILED (never
  sent, safe to ask again); unchanged → still open (KCP may yet apply it); anything else → left
  open, counted as a mismatch;
- no cancel in flight: KCP's balance lower than ours by exactly the amount of a recent FAILED
  cancel that was sent → that cancel is corrected to SUCCEEDED; any other difference is counted as
  a mismatch for an operator (e.g. a cancel made in KCP's admin), never guessed at.

A correction is journaled on the cancellation (attempt kind SWEEP) and written with the same
conditional settle as the workflow's, so a sweep racing the workflow (or another sweep) changes a
record at most once. The customer and the shop are told only when they had been told something
else (NEEDS_REVIEW or FAILED); an execution still running announces the outcome itself, and so
does one waiting on the case's review (`waiting`: its task token, which the sweep completes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from cancelflow.cancellations.model import (
    SENT,
    Attempt,
    Cancellation,
    CancellationStatus,
    effect_of,
    events_of,
)
from cancelflow.cancellations.ports import CancellationStore
from cancelflow.cancellations.service import PENDING, VOIDED, judge_inquiry, void_undispatched
from cancelflow.kcp.port import Gateway, InquiryAnswer, Outcome
from cancelflow.kernel.clock import Clock
from cancelflow.kernel.errors import Conflict
from cancelflow.payments.model import Payment


class Finding(StrEnum):
    AGREES = "AGREES"  # KCP and cancelflow show the same balance, nothing in flight
    OPEN = "OPEN"  # a cancel is in flight and KCP has not applied it (yet)
    CORRECTED = "CORRECTED"  # a record was changed to match KCP
    MISMATCH = "MISMATCH"  # KCP's balance is not explained by any cancel we know of
    INQUIRY_FAILED = "INQUIRY_FAILED"  # KCP could not be asked; next sweep tries again
    GONE = "GONE"  # the payment is not registered (nothing to compare)


@dataclass(frozen=True)
class Swept:
    tno: str
    finding: Finding
    corrected: Cancellation | None = None  # the record after a correction
    announce: bool = False  # the customer was told something else: email the corrected outcome
    kcp_balance: int | None = None
    our_balance: int | None = None
    waiting: str = ""  # the task token of an execution waiting on the corrected case's review


def sweep_payment(
    store: CancellationStore,
    gateway: Gateway,
    clock: Clock,
    shop_id: str,
    tno: str,
    since: datetime,
) -> Swept:
    """Compare one payment with KCP and correct what KCP's balance proves."""
    payment = store.get_payment(shop_id, tno)
    if payment is None:
        return Swept(tno, Finding.GONE)
    try:
        answer = gateway.inquire(tno, payment.method)
    except Exception as error:  # the gateway classifies; anything else is "could not ask"
        answer = InquiryAnswer(Outcome.UNKNOWN, detail=type(error).__name__)
    if answer.outcome is not Outcome.SUCCEEDED or answer.remaining_balance is None:
        return Swept(tno, Finding.INQUIRY_FAILED, our_balance=payment.balance)
    kcp = answer.remaining_balance
    seen = Swept(tno, Finding.AGREES, kcp_balance=kcp, our_balance=payment.balance)
    cancellations = store.payment_cancellations(shop_id, tno)
    if payment.in_flight:
        return _sweep_in_flight(store, clock, payment, cancellations, answer, seen)
    if kcp == payment.balance:
        return seen
    candidate = _failed_matching(cancellations, payment.balance - kcp, since)
    if candidate is None:
        return replace(seen, finding=Finding.MISMATCH)
    return _correct(store, clock, candidate, answer, payment.balance, seen)


def _sweep_in_flight(
    store: CancellationStore,
    clock: Clock,
    payment: Payment,
    cancellations: Iterable[Cancellation],
    answer: InquiryAnswer,
    seen: Swept,
) -> Swept:
    held = next((c for c in cancellations if c.cancellation_id == payment.in_flight), None)
    if held is None or held.status not in SENT:
        return replace(seen, finding=Finding.MISMATCH)  # a lock without its cancel: an operator
    if void_undispatched(store, clock, held):  # its run died before sending: provably unsent
        return _close_unsent(store, clock, held, seen)
    verdict = judge_inquiry(held, answer, clock)
    if verdict is None:
        return replace(seen, finding=Finding.OPEN)
    if verdict["verdict"]["status"] != CancellationStatus.SUCCEEDED:
        return replace(seen, finding=Finding.MISMATCH)
    return _correct(store, clock, held, answer, held.balance_before or 0, seen)


def _close_unsent(store: CancellationStore, clock: Clock, held: Cancellation, seen: Swept) -> Swept:
    """FAILED, never sent (its attempt is void now): the hold and the lock are given back."""
    announced = held.status is CancellationStatus.NEEDS_REVIEW
    outcome = held.with_status(
        CancellationStatus.FAILED,
        reasons=("GATEWAY_UNREACHABLE",),
        corrected_from=held.status.value if announced else "",
        updated_at=clock.now(),
    )
    effect = effect_of(held, CancellationStatus.FAILED, held.balance_before or 0)
    try:
        store.settle(held, outcome, effect, events_of(held, outcome))
    except Conflict:
        return replace(seen, finding=Finding.OPEN)
    return replace(
        seen,
        finding=Finding.CORRECTED,
        corrected=outcome,
        announce=announced,
        waiting=_waiting(held),
    )


def _waiting(cancellation: Cancellation) -> str:
    """The token of the execution waiting on this case's review, if one does."""
    review = cancellation.review
    return review.token if review and cancellation.status is CancellationStatus.NEEDS_REVIEW else ""


def _failed_matching(
    cancellations: Iterable[Cancellation], missing: int, since: datetime
) -> Cancellation | None:
    """The most recent FAILED cancel that reached KCP and whose amount explains the gap."""
    sent = [
        c
        for c in cancellations
        if c.status is CancellationStatus.FAILED
        and c.updated_at >= since
        and c.amount == missing
        and any(_reached_kcp(a) for a in c.attempts)
    ]
    return max(sent, key=lambda c: c.updated_at) if sent else None


def _reached_kcp(attempt: Attempt) -> bool:
    """A cancel attempt that may have been sent: not refused locally, not voided or unclaimed."""
    return (
        attempt.kind == "CANCEL"
        and attempt.outcome != Outcome.NOT_SENT
        and attempt.dispatched not in (VOIDED, PENDING)
    )


def _correct(
    store: CancellationStore,
    clock: Clock,
    cancellation: Cancellation,
    answer: InquiryAnswer,
    balance: int,
    seen: Swept,
) -> Swept:
    now = clock.now()
    attempt = Attempt(
        seq=len(cancellation.attempts) + 1,
        kind="SWEEP",
        sent_at=now,
        outcome=Outcome.SUCCEEDED.value,
        res_cd=answer.res_cd,
        res_msg=answer.res_msg,
        detail=f"KCP balance {answer.remaining_balance}",
        completed_at=now,
    )
    store.journal(cancellation, attempt)
    announced = cancellation.status in (
        CancellationStatus.NEEDS_REVIEW,
        CancellationStatus.FAILED,
    )
    outcome = cancellation.with_status(
        CancellationStatus.SUCCEEDED,
        reasons=(),
        cancelled_at=now,
        confirmed_by="SWEEP",
        corrected_from=cancellation.status.value if announced else "",
        updated_at=now,
    )
    try:
        store.settle(
            cancellation,
            outcome,
            effect_of(cancellation, CancellationStatus.SUCCEEDED, balance),
            events_of(cancellation, outcome),
        )
    except Conflict:  # the workflow or another sweep moved it first: look again next time
        return replace(seen, finding=Finding.OPEN)
    return replace(
        seen,
        finding=Finding.CORRECTED,
        corrected=outcome,
        announce=announced,
        waiting=_waiting(cancellation),
    )
