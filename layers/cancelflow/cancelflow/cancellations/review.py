"""Review: a cancel whose fate at KCP is unknown waits, in its own execution, for a decision.

The workflow opens the review (NEEDS_REVIEW, the amount held and the send lock kept) with its
execution's task token, then waits. Two things end the wait, and nothing else does:

- an operator's decision, APPLIED or NOT_APPLIED with a note, kept on the cancellation with who
  decided, when, and the evidence shown (every attempt, KCP's answer to a fresh inquiry, both
  sides' balances); the same execution then settles it as decided (`effect_of` moves the money:
  the hold leaves the balance, or is given back) and emails the outcome;
- the sweep's proof (KCP's balance lowered by exactly the amount): the sweep settles it and
  hands the execution its result, so that execution still emails the outcome.

A wait that times out ends its execution (FAILED at the review state, alarmed) but never the
case: it stays NEEDS_REVIEW, held, in the queue; a decision then redrives the execution, whose
review step finds the decision and goes on. Nothing is ever guessed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from cancelflow.cancellations.model import (
    DECIDED_STATUS,
    Cancellation,
    CancellationStatus,
    Decision,
    Review,
    effect_of,
    events_of,
)
from cancelflow.cancellations.ports import (
    CancellationPage,
    CancellationStore,
    ReviewQuery,
    ReviewWaits,
)
from cancelflow.cancellations.service import settle_with
from cancelflow.cancellations.steps import Step
from cancelflow.kcp.port import Gateway, InquiryAnswer, Outcome
from cancelflow.kernel.clock import Clock, to_utc_text
from cancelflow.kernel.errors import Conflict, Problem

OUTCOMES = tuple(DECIDED_STATUS)  # APPLIED, NOT_APPLIED
_SETTLED = (CancellationStatus.SUCCEEDED, CancellationStatus.FAILED, CancellationStatus.REJECTED)


def verdict_of(decision: Decision) -> Step:
    """What the waiting execution settles: the decided status, confirmed by an operator."""
    if decision.outcome == "APPLIED":
        return settle_with(
            CancellationStatus.SUCCEEDED,
            confirmed_by="OPERATOR",
            cancelled_at=to_utc_text(decision.at),
        )
    return settle_with(CancellationStatus.FAILED, "NOT_APPLIED", confirmed_by="OPERATOR")


def open_review(
    store: CancellationStore,
    waits: ReviewWaits,
    clock: Clock,
    shop_id: str,
    cancellation_id: str,
    token: str,
    verdict: dict[str, Any],
    execution_id: str = "",
) -> dict[str, Any]:
    """The workflow's review step: open the review with this run's token (or hand it on).

    Safe to run again (a retry or a redrive gets a new token): a review already open takes the
    new token; one already decided, or a case the sweep already settled, completes the token at
    once so the execution goes on. `opened` is True only for the run that opened it (the one
    that tells customer and shop "we are checking")."""
    cancellation = _load(store, shop_id, cancellation_id)
    now = clock.now()
    if cancellation.status in (CancellationStatus.SENDING, CancellationStatus.RECONCILING):
        outcome = cancellation.with_status(
            CancellationStatus.NEEDS_REVIEW,
            reasons=tuple(verdict.get("reasons", ())),
            review=Review(opened_at=now, token=token, version=1),
            execution_id=execution_id or cancellation.execution_id,
            updated_at=now,
        )
        effect = effect_of(cancellation, outcome.status, cancellation.balance_before or 0)
        try:
            # Keeps the hold and the lock; the shop is told it is under review (its event).
            store.settle(cancellation, outcome, effect, events_of(cancellation, outcome))
            return _opened(cancellation_id, True, outcome.status)
        except Conflict:  # the sweep settled it, or a twin run opened it: look again
            cancellation = _load(store, shop_id, cancellation_id)
    if cancellation.status in _SETTLED:
        # Settled meanwhile (the sweep's proof): the execution goes on to announce it.
        waits.succeed(token, settle_with(cancellation.status))
        return _opened(cancellation_id, False, cancellation.status)
    if cancellation.status is not CancellationStatus.NEEDS_REVIEW:  # never sent: not a review
        raise Conflict(f"cancellation {cancellation_id} is {cancellation.status.value}")
    review = cancellation.review or Review(opened_at=cancellation.updated_at)
    if review.decided is not None:  # decided while no execution waited (a redrive)
        waits.succeed(token, verdict_of(review.decided))
        return _opened(cancellation_id, False, cancellation.status) | {"decided": True}
    fresh = cancellation.review is None  # opened before reviews waited: open it now
    try:
        store.update_review(cancellation, replace(review, token=token, version=review.version + 1))
    except Conflict:  # decided or settled this very moment: run again to hand it on
        return open_review(
            store, waits, clock, shop_id, cancellation_id, token, verdict, execution_id
        )
    return _opened(cancellation_id, fresh, cancellation.status)


def _opened(cancellation_id: str, opened: bool, status: CancellationStatus) -> dict[str, Any]:
    return {"cancellation_id": cancellation_id, "opened": opened, "status": status.value}


def evidence(store: CancellationStore, gateway: Gateway, cancellation: Cancellation) -> dict:
    """What an operator decides from: KCP's answer to a fresh inquiry and both sides' balances
    (the attempts are on the cancellation itself)."""
    payment = store.get_payment(cancellation.shop_id, cancellation.tno)
    method = payment.method if payment else None
    answer: InquiryAnswer
    if method is None:
        answer = InquiryAnswer(Outcome.UNKNOWN, detail="payment not found")
    else:
        try:
            answer = gateway.inquire(cancellation.tno, method)
        except Exception as error:  # the case must still show; the answer says it failed
            answer = InquiryAnswer(Outcome.UNKNOWN, detail=type(error).__name__)
    before, amount = cancellation.balance_before, cancellation.amount or 0
    kcp = answer.remaining_balance if answer.outcome is Outcome.SUCCEEDED else None
    return {
        "kcp": {
            "answered": answer.outcome is Outcome.SUCCEEDED,
            "remaining_balance": kcp,
            "status": answer.status or None,
            "res_cd": answer.res_cd or None,
            "res_msg": answer.res_msg or None,
            "detail": answer.detail or None,
        },
        "ours": {
            "balance": payment.balance if payment else None,
            "available": payment.available if payment else None,
            "in_flight": (payment.in_flight or None) if payment else None,
        },
        "balance_before": before,
        "amount": amount,
        # What KCP's balance shows if it took this cancel, and if it did not.
        "balance_if_applied": before - amount if before is not None else None,
        "balance_if_not_applied": before,
        "kcp_says": _reading(kcp, before, amount),
    }


def _reading(kcp: int | None, before: int | None, amount: int) -> str:
    if kcp is None or before is None:
        return "UNKNOWN"
    if kcp == before - amount:
        return "APPLIED"
    if kcp == before:
        return "NOT_APPLIED_YET"  # KCP may still apply it late: not proof that it never will
    return "MISMATCH"


def decide(
    store: CancellationStore,
    gateway: Gateway,
    waits: ReviewWaits,
    clock: Clock,
    shop_id: str,
    cancellation_id: str,
    outcome: str,
    note: str,
    by: str,
) -> tuple[Cancellation, str]:
    """Record an operator's decision and hand it to the waiting execution, which settles it.

    Returns the cancellation (decision recorded) and how the decision reached the workflow:
    RESUMED (the waiting execution took it) or REDRIVEN (its wait had ended: redriven).
    The same decision again re-sends it; a different one once decided is REVIEW_DECIDED."""
    if outcome not in OUTCOMES:
        raise Problem("VALIDATION_FAILED", "outcome must be APPLIED or NOT_APPLIED.")
    if not note.strip():
        raise Problem("VALIDATION_FAILED", "A decision needs a note: what was checked, where.")
    cancellation = _load(store, shop_id, cancellation_id)
    if cancellation.status is not CancellationStatus.NEEDS_REVIEW:
        raise Problem(
            "REVIEW_NOT_OPEN",
            f"Cancellation {cancellation_id} is {cancellation.status.value}, not under review.",
        )
    review = cancellation.review or Review(opened_at=cancellation.updated_at)
    earlier = review.decided
    if earlier is not None and earlier.outcome != outcome:
        raise Problem(
            "REVIEW_DECIDED",
            f"Decided {earlier.outcome} by {earlier.by}; the workflow is settling it.",
        )
    if earlier is None:
        decision = Decision(
            outcome=outcome,
            note=note.strip(),
            by=by,
            at=clock.now(),
            evidence=evidence(store, gateway, cancellation),
        )
        review = replace(
            review, decisions=(*review.decisions, decision), version=review.version + 1
        )
        try:
            store.update_review(cancellation, review)
        except Conflict as lost:
            raise Problem(
                "REVIEW_CHANGED", "The review changed meanwhile; read it again."
            ) from lost
        cancellation = replace(cancellation, review=review)
        earlier = decision
    return cancellation, wake(waits, cancellation, earlier)


def wake(waits: ReviewWaits, cancellation: Cancellation, decision: Decision) -> str:
    """Hand a recorded decision to the execution: through its token while it waits, else by
    redriving it (its review step then finds the decision)."""
    token = cancellation.review.token if cancellation.review else ""
    if token and waits.succeed(token, verdict_of(decision)):
        return "RESUMED"
    if cancellation.execution_id and waits.redrive(cancellation.execution_id):
        return "REDRIVEN"
    raise Problem(
        "SERVICE_UNAVAILABLE",
        "The decision is recorded but its workflow could not be resumed; send it again.",
    )


def list_reviews(
    store: CancellationStore, query: ReviewQuery, cursor: str | None, key: bytes
) -> tuple[CancellationPage, str | None]:
    """One page of the open review queue across shops, oldest first, and the signed cursor."""

    def read(position: dict[str, Any] | None) -> tuple[CancellationPage, dict[str, Any] | None]:
        page = store.review_page(query, position)
        return page, page.next_position

    from cancelflow.kernel import cursor as cursor_codec  # only the operator API lists reviews

    return cursor_codec.page_through(cursor, query.scope(), key, read)


def keep_alive(store: CancellationStore, waits: ReviewWaits, clock: Clock) -> float | None:
    """Heartbeat every open review's waiting execution; the oldest review's age in seconds
    (None when none is open). The sweep calls it on each run."""
    oldest: datetime | None = None
    position: dict[str, Any] | None = None
    while True:
        page = store.review_page(ReviewQuery(limit=100), position)
        for cancellation in page.cancellations:
            review = cancellation.review
            if review is None:
                continue
            if oldest is None or review.opened_at < oldest:
                oldest = review.opened_at
            if review.token and review.decided is None:
                waits.heartbeat(review.token)
        position = page.next_position
        if position is None:
            break
    return (clock.now() - oldest).total_seconds() if oldest else None


def _load(store: CancellationStore, shop_id: str, cancellation_id: str) -> Cancellation:
    found = store.get_cancellation(shop_id, cancellation_id)
    if found is None:
        raise Problem("CANCELLATION_NOT_FOUND", f"No cancellation {cancellation_id}.")
    return found


def as_queued(cancellation: Cancellation) -> Cancellation:
    """The record as the review queue needs it: a case left NEEDS_REVIEW before reviews were
    kept gets one, opened when it was last changed (its age in the queue counts from there);
    any other record is returned as it is (`make reindex`)."""
    if cancellation.status is not CancellationStatus.NEEDS_REVIEW or cancellation.review:
        return cancellation
    return replace(cancellation, review=Review(opened_at=cancellation.updated_at))
