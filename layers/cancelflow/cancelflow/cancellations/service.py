"""The cancel use cases: accept a request (API), then the workflow's steps.

Each workflow step returns a typed Step (cancellations/steps.py) that says where the state
machine goes next: SEND, RECONCILE, WAIT or SETTLE (with a `verdict`). Every step is safe to run
twice: it reads the stored status first and routes on it, and every write is conditional on it.

Why no refund is made twice and none is reported as not made:

- Once a cancel may have reached KCP (journaled, then SENDING), it is never sent again. There
  is no resend path, so nothing rests on KCP refusing a stale `rem_mny` (unconfirmed).
- One cancel per payment is at KCP at a time (the send lock), so KCP's balance before it is
  known, and an inquiry can tell "applied" (balance lowered by the amount) from "not yet".
- Only definitive signals close a cancel: KCP's well-formed answer (SUCCEEDED or DECLINED),
  "never sent" (the client refused it, or could not connect), a balance lowered by exactly the
  amount, or an operator. An unchanged balance is *not* one: KCP may apply a cancel long after
  it was sent (a late answer). Such a cancel ends its execution NEEDS_REVIEW, still open: the
  amount held and the lock kept, shown to the shop as pending, re-inquired by the sweep
  (cancellations.sweep) for as long as it stays open, and closed by it, by KCP's notification or
  by an operator. A customer is told "we are checking", never "not refunded".
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from cancelflow.cancellations.model import (
    DECIDED_STATUS,
    TERMINAL,
    Attempt,
    Cancellation,
    CancellationStatus,
    effect_of,
    events_of,
)
from cancelflow.cancellations.ports import (
    CancellationPage,
    CancellationQuery,
    CancellationStore,
    InsufficientBalance,
)
from cancelflow.cancellations.steps import Next, Step, Verdict
from cancelflow.kcp.port import (
    CancelAnswer,
    CancelOrder,
    Gateway,
    InquiryAnswer,
    Outcome,
    RefundAccount,
)
from cancelflow.kernel.clock import Clock, from_utc_text, to_utc_text
from cancelflow.kernel.errors import Conflict, Problem
from cancelflow.kernel.reasons import explain

if TYPE_CHECKING:  # eligibility, codes and cursors are imported where used: see _ask
    from cancelflow.cancellations.eligibility import CancelAsk

IDEMPOTENCY_TTL = timedelta(hours=48)  # promised: at least 24 hours


class WorkflowStarter(Protocol):
    def start(self, cancellation: Cancellation) -> str:
        """Start (or find) the execution named by the cancellation id; returns its id."""
        ...


@dataclass(frozen=True)
class CancelRequest:
    reason_code: str
    reason: str = ""
    amount: int | None = None  # None: everything that is left
    refund_account: RefundAccount | None = None
    requested_by: str = "CUSTOMER"  # or SHOP
    removed_items: tuple[int, ...] = ()
    tax_free_amount: int | None = None  # mixed taxation; None: eligibility.split_tax_free
    batch_id: str = ""  # asked as an item of this batch (its key names the item)

    def ask(self) -> CancelAsk:
        return _ask(
            self.reason_code,
            self.amount,
            self.requested_by,
            self.refund_account,
            self.removed_items,
            self.tax_free_amount,
        )

    def fingerprint(self, tno: str) -> str:
        """Same request, same fingerprint: how a replayed Idempotency-Key is recognised."""
        account = self.refund_account
        doc = {
            "tno": tno,
            "amount": self.amount,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "refund_account": [account.bank_code, account.number, account.holder]
            if account
            else None,
            "requested_by": self.requested_by,
            "removed_items": list(self.removed_items),
        }
        if self.tax_free_amount is not None:  # absent: the same hash as before it existed
            doc["tax_free_amount"] = self.tax_free_amount
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _ask(
    reason_code: str,
    amount: int | None,
    requested_by: str,
    account: RefundAccount | None,
    removed_items: tuple[int, ...],
    tax_free_amount: int | None = None,
) -> CancelAsk:
    # Imported here: only Decide and the API judge eligibility, the other steps never do.
    from cancelflow.cancellations.eligibility import CancelAsk

    return CancelAsk(
        reason_code=reason_code,
        amount=amount,
        requested_by="SHOP" if requested_by == "SHOP" else "CUSTOMER",
        has_refund_account=account is not None,
        removed_items=removed_items,
        tax_free_amount=tax_free_amount,
    )


def new_cancellation_id() -> str:
    # Also the execution name: letters, digits, underscore; sortable by time is not needed.
    return "cnl_" + secrets.token_hex(12)


# --- API side ----------------------------------------------------------------------------


def request_cancellation(
    store: CancellationStore,
    starter: WorkflowStarter,
    clock: Clock,
    shop_id: str,
    tno: str,
    request: CancelRequest,
    idempotency_key: str,
) -> tuple[Cancellation, bool]:
    """Accept a cancel and start its workflow. Returns (cancellation, created)."""
    if not idempotency_key:
        raise Problem(
            "IDEMPOTENCY_KEY_REQUIRED",
            "Send an Idempotency-Key header with every cancellation request: a retry with the "
            "same key answers with the same cancellation instead of cancelling twice.",
        )
    fingerprint = request.fingerprint(tno)
    replay = _replay(store, starter, shop_id, idempotency_key, fingerprint)
    if replay:
        return replay, False
    payment = store.get_payment(shop_id, tno)
    if payment is None:
        raise Problem("PAYMENT_NOT_FOUND", f"No payment {tno} for this shop.")
    # Answer what is clearly ineligible now; the workflow decides again, authoritatively.
    from cancelflow.cancellations import eligibility  # see _ask

    now = clock.now()
    decision = eligibility.decide(payment, request.ask(), store.get_policy(shop_id), now)
    if not decision.allowed and payment.in_flight and "AMOUNT_EXCEEDS_BALANCE" in decision.reasons:
        # The balance is held by a cancel whose fate at KCP is not known yet: say so.
        raise Problem(
            "REVIEW_PENDING",
            f"Cancellation {payment.in_flight} of this payment is still open: KCP has not yet "
            "confirmed whether it was applied, so its amount stays held. It is re-checked on a "
            "schedule; ask again once it is settled.",
            open_cancellation_id=payment.in_flight,
        )
    if not decision.allowed:
        extra: dict[str, Any] = {}
        if "ITEM_ALREADY_REMOVED" in decision.reasons:
            extra["already_removed"] = sorted(payment.removed_items & set(request.removed_items))
        raise Problem(
            decision.reasons[0],
            reasons=[
                explain(code, "en") | {"message_ko": explain(code, "ko")["message"]}
                for code in decision.reasons
            ],
            policy_version=decision.policy_version,
            **extra,
        )
    cancellation = Cancellation(
        shop_id=shop_id,
        cancellation_id=new_cancellation_id(),
        tno=tno,
        status=CancellationStatus.REQUESTED,
        reason_code=request.reason_code,
        reason=request.reason,
        created_at=now,
        updated_at=now,
        requested_amount=request.amount,
        refund_account=request.refund_account,
        requested_by=request.requested_by,
        removed_items=request.removed_items,
        requested_tax_free_amount=request.tax_free_amount,
        batch_id=request.batch_id,
    )
    try:
        store.create_cancellation(cancellation, idempotency_key, fingerprint, now + IDEMPOTENCY_TTL)
    except Conflict:
        # The same key raced us; answer as its replay.
        replay = _replay(store, starter, shop_id, idempotency_key, fingerprint)
        if replay:
            return replay, False
        raise
    _start(starter, cancellation)
    return cancellation, True


def _replay(
    store: CancellationStore, starter: WorkflowStarter, shop_id: str, key: str, fingerprint: str
) -> Cancellation | None:
    record = store.get_idempotency(shop_id, key)
    if record is None:
        return None
    if record.body_hash != fingerprint:
        raise Problem("IDEMPOTENCY_KEY_REUSED")
    cancellation = store.get_cancellation(shop_id, record.cancellation_id)
    if cancellation is None:  # the record outlived its cancellation: never expected
        raise Problem("SERVICE_UNAVAILABLE", "Retry later.")
    if cancellation.status is CancellationStatus.REQUESTED:
        # The first call may have died between writing and starting: start again.
        # Standard workflows start once per name, so this never runs it twice.
        _start(starter, cancellation)
    return cancellation


def _start(starter: WorkflowStarter, cancellation: Cancellation) -> None:
    try:
        starter.start(cancellation)
    except Exception as error:  # the cancel is recorded; the same key will start it
        raise Problem("SERVICE_UNAVAILABLE", "Retry with the same Idempotency-Key.") from error


def get_cancellation(store: CancellationStore, shop_id: str, cancellation_id: str) -> Cancellation:
    cancellation = store.get_cancellation(shop_id, cancellation_id)
    if cancellation is None:
        raise Problem("CANCELLATION_NOT_FOUND")
    return cancellation


def list_cancellations(
    store: CancellationStore, shop_id: str, query: CancellationQuery, cursor: str | None, key: bytes
) -> tuple[CancellationPage, str | None]:
    """One page of the shop's cancellations, newest first, and the cursor to the next page."""

    def read(position: dict[str, Any] | None) -> tuple[CancellationPage, dict[str, Any] | None]:
        page = store.cancellation_page(shop_id, query, position)
        return page, page.next_position

    from cancelflow.kernel import cursor as cursor_codec  # only the API lists: not the steps

    return cursor_codec.page_through(cursor, query.scope(shop_id), key, read)


# --- workflow steps ------------------------------------------------------------------------


def _load(store: CancellationStore, shop_id: str, cancellation_id: str) -> Cancellation:
    cancellation = store.get_cancellation(shop_id, cancellation_id)
    if cancellation is None:
        raise LookupError(f"cancellation {cancellation_id} not found")
    return cancellation


def settle_with(status: CancellationStatus, *reasons: str, **fields: Any) -> Step:
    """The verdict to write; one KCP never settled waits for its review instead (REVIEW)."""
    verdict = cast(Verdict, {"status": status.value, "reasons": list(reasons)} | fields)
    to = Next.REVIEW if status is CancellationStatus.NEEDS_REVIEW else Next.SETTLE
    return {"next": to, "verdict": verdict}


def _route_existing(cancellation: Cancellation) -> Step | None:
    """Where a re-run step goes when an earlier run already moved the cancellation on."""
    status = cancellation.status
    if status in TERMINAL:
        return settle_with(status)  # settling a settled cancellation does nothing
    if status is CancellationStatus.RESERVED:
        return {"next": Next.SEND}
    if status in (CancellationStatus.SENDING, CancellationStatus.RECONCILING):
        return {"next": Next.RECONCILE, "tries": 0}
    return None


def decide(store: CancellationStore, clock: Clock, shop_id: str, cancellation_id: str) -> Step:
    """Judge eligibility and hold the amount against the payment's balance."""
    cancellation = _load(store, shop_id, cancellation_id)
    if cancellation.status is not CancellationStatus.REQUESTED:
        return _route_existing(cancellation) or {"next": Next.SEND}
    payment = store.get_payment(shop_id, cancellation.tno)
    if payment is None:
        return settle_with(CancellationStatus.REJECTED, "PAYMENT_NOT_FOUND")
    now = clock.now()
    ask = _ask(
        cancellation.reason_code,
        cancellation.requested_amount,
        cancellation.requested_by,
        cancellation.refund_account,
        cancellation.removed_items,
        cancellation.requested_tax_free_amount,
    )
    policy = store.get_policy(shop_id)
    from cancelflow.cancellations import eligibility  # see _ask

    decision = eligibility.decide(payment, ask, policy, now)
    for tries_left in reversed(range(RESERVE_TRIES)):
        if not decision.allowed:
            return settle_with(
                CancellationStatus.REJECTED,
                *decision.reasons,
                policy_version=decision.policy_version,
            )
        decided = replace(
            cancellation,
            updated_at=now,
            breakdown=decision.breakdown,
            policy_version=decision.policy_version,
            tax_free_amount=decision.tax_free_amount,
        )
        try:
            # A mixed-tax hold is conditional on the payment as decided from (both parts).
            store.reserve(decided, decision.amount, seen=payment)
            break
        except InsufficientBalance:
            # A concurrent cancel took the balance or one of the items first: say which.
            fresh = store.get_payment(shop_id, cancellation.tno)
            again = eligibility.decide(fresh, ask, policy, now) if fresh else None
            if fresh and again and again.allowed and fresh.mixed_tax and tries_left:
                payment, decision = fresh, again  # only the parts' balances moved: decide again
                continue
            reasons = again.reasons if again and not again.allowed else ("AMOUNT_EXCEEDS_BALANCE",)
            return settle_with(CancellationStatus.REJECTED, *reasons)
        except Conflict:
            return _route_existing(_load(store, shop_id, cancellation_id)) or {"next": Next.SEND}
    step: Step = {"next": Next.SEND, "amount": decision.amount}
    if payment.mixed_tax:  # the execution's history shows both parts of what is sent
        step["tax_free_amount"] = decision.tax_free_amount
    return step


RESERVE_TRIES = 3  # a mixed-tax hold decided from a payment another cancel changed meanwhile


NOT_SENT_TRIES = 3  # a cancel that never left is safe to try again at once


def send(
    store: CancellationStore, gateway: Gateway, clock: Clock, shop_id: str, cancellation_id: str
) -> Step:
    """Journal the cancel, send it once, classify the answer."""
    cancellation = _load(store, shop_id, cancellation_id)
    if cancellation.status is CancellationStatus.SENDING:
        return _resume(store, gateway, clock, cancellation)  # a re-run: its result was lost
    if cancellation.status is not CancellationStatus.RESERVED:
        return _route_existing(cancellation) or {"next": Next.RECONCILE, "tries": 0}
    payment = store.get_payment(shop_id, cancellation.tno)
    if payment and payment.externally_cancelled and payment.balance < (cancellation.amount or 0):
        # KCP's notification of a cancel made outside cancelflow came after the hold: what is
        # left cannot cover it, so nothing is sent (KCP would refuse it).
        return settle_with(CancellationStatus.REJECTED, "CANCELLED_EXTERNALLY")
    attempt = Attempt(
        seq=len(cancellation.attempts) + 1, kind="CANCEL", sent_at=clock.now(), dispatched=PENDING
    )
    try:
        balance_before = store.begin_send(cancellation, attempt)
    except Conflict:  # a twin run of this step began it: whichever dispatches it sends it
        return _resume(store, gateway, clock, _load(store, shop_id, cancellation_id))
    sending = replace(
        cancellation,
        status=CancellationStatus.SENDING,
        balance_before=balance_before,
        attempts=(*cancellation.attempts, attempt),
    )
    return _dispatch(store, gateway, clock, sending, attempt)


def _resume(
    store: CancellationStore, gateway: Gateway, clock: Clock, cancellation: Cancellation
) -> Step:
    """A send step run again: settle what the journal already knows, send an attempt no run
    dispatched (provably never sent), and ask KCP about one that was dispatched."""
    if cancellation.status is not CancellationStatus.SENDING:
        return _route_existing(cancellation) or {"next": Next.RECONCILE, "tries": 0}
    verdict = _journaled_verdict(cancellation)
    if verdict is not None:
        return verdict
    last = _last_send(cancellation)
    if last is None or last.dispatched != PENDING:
        return {"next": Next.RECONCILE, "tries": 0}
    return _dispatch(store, gateway, clock, cancellation, last)


def _last_send(cancellation: Cancellation) -> Attempt | None:
    sends = [a for a in cancellation.attempts if a.kind == "CANCEL"]
    return sends[-1] if sends else None


def _dispatch(
    store: CancellationStore,
    gateway: Gateway,
    clock: Clock,
    cancellation: Cancellation,
    attempt: Attempt,
) -> Step:
    """Claim the journaled attempt for sending (one run wins), then send it and classify.

    The claim is the last write before the request leaves: an attempt nobody claimed was never
    sent, so a re-run may send it, and the sweep may void it (then nobody can)."""
    payment = store.get_payment(cancellation.shop_id, cancellation.tno)
    if payment is None:
        raise LookupError(f"payment {cancellation.tno} not found")
    amount, before = cancellation.amount or 0, cancellation.balance_before or 0
    # KCP's full cancel (STSC) only while nothing was cancelled before; the rest of a
    # partly cancelled payment is a partial cancel of the whole remaining balance.
    full = amount == payment.amount == before
    order = CancelOrder(
        tno=cancellation.tno,
        method=payment.method,
        reason=cancellation.reason or cancellation.reason_code,
        amount=None if full else amount,
        balance_before=before,
        # A full cancel (STSC) takes both parts whole; a partial one names them (TG03).
        tax_free_amount=0 if full else cancellation.tax_free_amount,
        mixed_tax=payment.mixed_tax,
        refund_account=cancellation.refund_account,
    )
    for n in range(NOT_SENT_TRIES):
        if not store.dispatch(cancellation, attempt, DISPATCHED):
            return {"next": Next.RECONCILE, "tries": 0}  # another run sent it, or it was voided
        attempt = replace(attempt, dispatched=DISPATCHED)
        answer = _call(gateway, order)
        store.journal(cancellation, _completed(attempt, answer, clock))
        if answer.outcome is not Outcome.NOT_SENT or n == NOT_SENT_TRIES - 1:
            break
        attempt = Attempt(
            seq=attempt.seq + 1, kind="CANCEL", sent_at=clock.now(), dispatched=PENDING
        )
        store.journal(cancellation, attempt)
    verdict = _verdict(
        answer.outcome,
        answer.res_cd,
        answer.res_msg,
        answer.detail,
        answer.cancelled_at or clock.now(),
        answer.partial_seq,
    )
    if verdict is not None:
        return verdict
    try:
        store.mark(replace(cancellation, updated_at=clock.now()), CancellationStatus.RECONCILING)
    except Conflict:  # the sweep saw KCP apply it meanwhile and settled it
        fresh = _load(store, cancellation.shop_id, cancellation.cancellation_id)
        return _route_existing(fresh) or {"next": Next.RECONCILE, "tries": 0}
    return {"next": Next.RECONCILE, "tries": 0}


# An attempt's dispatch claim: journaled PENDING, then SENT by the one run that sends it, or
# VOID (never to be sent). One without a claim (journaled before claims existed) may be sent.
PENDING, DISPATCHED, VOIDED = "PENDING", "SENT", "VOID"
# Longer than any run of the send step (its Lambda's timeout): an attempt still unclaimed this
# long after it was journaled belongs to a run that died before sending.
DISPATCH_DEADLINE = timedelta(minutes=15)


def void_undispatched(store: CancellationStore, clock: Clock, cancellation: Cancellation) -> bool:
    """Make a dead run's never-sent attempt unsendable; True if its last attempt is provably
    unsent (voided now, or by an earlier run of this step that then died)."""
    last = _last_send(cancellation)
    if last is None:
        return False
    if last.dispatched == VOIDED:
        return True
    if last.dispatched != PENDING or clock.now() - last.sent_at < DISPATCH_DEADLINE:
        return False
    return store.dispatch(cancellation, last, VOIDED)


def _verdict(
    outcome: Outcome,
    res_cd: str,
    res_msg: str,
    detail: str,
    cancelled_at: datetime,
    partial_seq: str = "",
) -> Step | None:
    """What a definitive answer (or "never sent") settles; None for an unknown fate."""
    from cancelflow.kcp import codes  # only the steps that hear KCP read its codes

    gateway_fields = {"res_cd": res_cd, "res_msg": res_msg}
    if outcome is Outcome.SUCCEEDED:
        return settle_with(
            CancellationStatus.SUCCEEDED,
            cancelled_at=to_utc_text(cancelled_at),
            partial_seq=partial_seq,
            **gateway_fields,
        )
    if outcome is Outcome.DECLINED and codes.taken_elsewhere(res_cd):
        # KCP's balance was already cancelled outside cancelflow (its notification may not
        # have come yet): nothing of ours moved, and asking again cannot help.
        return settle_with(CancellationStatus.REJECTED, "CANCELLED_EXTERNALLY", **gateway_fields)
    if outcome is Outcome.DECLINED:
        return settle_with(CancellationStatus.FAILED, "GATEWAY_DECLINED", **gateway_fields)
    if outcome is Outcome.NOT_SENT:
        reason = "INVALID_REQUEST" if detail.startswith("invalid") else "GATEWAY_UNREACHABLE"
        return settle_with(CancellationStatus.FAILED, reason)
    return None


def _journaled_verdict(cancellation: Cancellation) -> Step | None:
    """The verdict of the journal's last cancel attempt, if KCP's answer to it was recorded
    (a NOT_SENT last attempt means none was sent: each is completed before the next)."""
    sends = [a for a in cancellation.attempts if a.kind == "CANCEL"]
    if not sends or not sends[-1].outcome:
        return None  # sent (maybe) and unanswered: only an inquiry can tell
    last = sends[-1]
    return _verdict(
        Outcome(last.outcome),
        last.res_cd,
        last.res_msg,
        last.detail,
        last.completed_at or last.sent_at,
    )


def _call(gateway: Gateway, order: CancelOrder) -> CancelAnswer:
    try:
        return gateway.cancel(order)
    except ValueError as invalid:  # refused by the client's own checks: nothing left
        return CancelAnswer(Outcome.NOT_SENT, detail=f"invalid: {invalid}")
    except Exception as error:  # after begin_send, anything unexpected may have reached KCP
        return CancelAnswer(Outcome.UNKNOWN, detail=f"{type(error).__name__}")


def _completed(attempt: Attempt, answer: Any, clock: Clock) -> Attempt:
    return replace(
        attempt,
        outcome=answer.outcome.value,
        res_cd=answer.res_cd,
        res_msg=answer.res_msg,
        detail=answer.detail,
        completed_at=clock.now(),
    )


def reconcile(
    store: CancellationStore,
    gateway: Gateway,
    clock: Clock,
    shop_id: str,
    cancellation_id: str,
    tries: int,
    max_tries: int,
) -> Step:
    """Ask KCP whether a cancel of unknown fate was applied, by its balance. Never resend.

    Lowered by the amount: SUCCEEDED. Unchanged: not applied *yet* (KCP may still apply it), so
    ask again, and after `max_tries` leave it open (NEEDS_REVIEW, hold kept) for the sweep.
    """
    cancellation = _load(store, shop_id, cancellation_id)
    if cancellation.status is CancellationStatus.RESERVED:
        return settle_with(CancellationStatus.FAILED, "GATEWAY_UNREACHABLE")  # never sent
    if cancellation.status in TERMINAL or cancellation.status is CancellationStatus.REQUESTED:
        return _route_existing(cancellation) or settle_with(
            CancellationStatus.FAILED, "INTERNAL_ERROR"
        )
    if void_undispatched(store, clock, cancellation):
        return settle_with(CancellationStatus.FAILED, "GATEWAY_UNREACHABLE")  # never sent
    payment = store.get_payment(shop_id, cancellation.tno)
    if payment is None:
        raise LookupError(f"payment {cancellation.tno} not found")
    tries += 1
    last = tries >= max_tries
    attempt = Attempt(seq=len(cancellation.attempts) + 1, kind="INQUIRY", sent_at=clock.now())
    store.journal(cancellation, attempt)
    try:
        answer = gateway.inquire(cancellation.tno, payment.method)
    except Exception as error:
        answer = InquiryAnswer(Outcome.UNKNOWN, detail=type(error).__name__)
    store.journal(cancellation, _completed(attempt, answer, clock))
    verdict = judge_inquiry(cancellation, answer, clock)
    if verdict is not None:
        return verdict
    if last:
        reason = "NOT_CONFIRMED" if answer.outcome is Outcome.SUCCEEDED else "INQUIRY_FAILED"
        return settle_with(CancellationStatus.NEEDS_REVIEW, reason)
    return {"next": Next.WAIT, "tries": tries}


def judge_inquiry(cancellation: Cancellation, answer: InquiryAnswer, clock: Clock) -> Step | None:
    """What KCP's balance proves about a sent cancel, or None while it proves nothing."""
    before = cancellation.balance_before
    if answer.outcome is not Outcome.SUCCEEDED or before is None:
        return None
    if answer.remaining_balance == before - (cancellation.amount or 0):
        return settle_with(
            CancellationStatus.SUCCEEDED,
            res_cd=answer.res_cd,
            res_msg=answer.res_msg,
            cancelled_at=to_utc_text(clock.now()),
            confirmed_by="INQUIRY",
        )
    if answer.remaining_balance == before:
        return None  # not applied *yet*: only a definitive signal may say "never"
    return settle_with(CancellationStatus.NEEDS_REVIEW, "BALANCE_MISMATCH")


def settle(
    store: CancellationStore,
    clock: Clock,
    shop_id: str,
    cancellation_id: str,
    verdict: Verdict,
    execution_id: str = "",
) -> dict[str, Any]:
    """Write the terminal outcome and its effect on the payment. A settled one stays as is."""
    cancellation = _load(store, shop_id, cancellation_id)
    if cancellation.status not in TERMINAL or _decided(cancellation, verdict):
        outcome = _outcome(cancellation, verdict, clock)
        outcome = replace(outcome, execution_id=execution_id or cancellation.execution_id)
        # KCP's balance before this cancel: known once sent (under the lock), unused before.
        balance = cancellation.balance_before or 0
        try:
            store.settle(
                cancellation,
                outcome,
                effect_of(cancellation, outcome.status, balance),
                events_of(cancellation, outcome),
            )
        except Conflict:
            pass  # settled by an earlier run of this step, or by the sweep: read it again
        cancellation = _load(store, shop_id, cancellation_id)
        if cancellation.status not in TERMINAL:  # the payment moved under it: fail, visibly
            raise Conflict(f"cancellation {cancellation_id} could not be settled")
    return {
        "cancellation_id": cancellation_id,
        "status": cancellation.status.value,
        "reasons": list(cancellation.reasons),
    }


def _decided(cancellation: Cancellation, verdict: Verdict) -> bool:
    """A review's end: an open review settles only as its recorded decision says."""
    review = cancellation.review
    decision = review.decided if review else None
    return (
        cancellation.status is CancellationStatus.NEEDS_REVIEW
        and decision is not None
        and verdict.get("confirmed_by") == "OPERATOR"
        and verdict.get("status") == DECIDED_STATUS[decision.outcome].value
    )


def _outcome(cancellation: Cancellation, verdict: Verdict, clock: Clock) -> Cancellation:
    cancelled_at = verdict.get("cancelled_at")
    status = CancellationStatus(verdict["status"])
    return cancellation.with_status(
        status,
        reasons=tuple(verdict.get("reasons", ())),
        res_cd=verdict.get("res_cd", cancellation.res_cd),
        res_msg=verdict.get("res_msg", cancellation.res_msg),
        cancelled_at=from_utc_text(cancelled_at) if cancelled_at else None,
        partial_seq=verdict.get("partial_seq", ""),
        policy_version=verdict.get("policy_version", cancellation.policy_version),
        confirmed_by=verdict.get(
            "confirmed_by", "ANSWER" if status is CancellationStatus.SUCCEEDED else ""
        ),
        # A review's token is spent once it settles: nothing waits on it any more.
        review=replace(cancellation.review, token="") if cancellation.review else None,
        updated_at=clock.now(),
    )
