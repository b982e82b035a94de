"""The billing run: find what is due, charge it in lanes that share the merchant's KCP budget,
reconcile what is unknown, add it up. These are the steps of one execution of
statemachine/subscription_billing.asl.json:

- begin_run: the billing date (default: today in KST) and the run's settings;
- find_due: one page of due subscriptions from the sparse due index, dealt into lanes;
- charge_lane: a lane's subscriptions charged one after another, each KCP call on one of the
  lane's own turns (billing/pacing.py), so the lanes together keep to the TPS budget;
- tally: a page's results added to the run's summary.

Charging once: an attempt is claimed in the ledger before KCP is called, and its ordr_idxx is
derived from subscription + period + attempt. An attempt whose fate is unknown is only ever
resent with the same ordr_idxx, which KCP refuses as a duplicate (8338) if the first one went
through: never a new charge with a new order id.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from cancelflow.kcp.port import ChargeAnswer, ChargeOrder, Gateway, Outcome
from cancelflow.kernel.clock import Clock
from cancelflow.kernel.errors import Conflict
from cancelflow.payments.model import Payment
from cancelflow.subscriptions import schedule
from cancelflow.subscriptions.model import (
    OPEN_CHARGE,
    Charge,
    ChargeStatus,
    PaidPeriod,
    Status,
    Subscription,
    events_of,
)
from cancelflow.subscriptions.pacing import Turns
from cancelflow.subscriptions.service import charge_payment

if TYPE_CHECKING:  # names for annotations only: the run's find-due and tally never mail
    from cancelflow.kernel.email import Mailer
    from cancelflow.shops.model import Shop
    from cancelflow.subscriptions.ports import BatchKeyVault, BillingStore

logger = logging.getLogger(__name__)

SUMMARY_KEYS = ("charged", "declined", "suspended", "skipped", "unknown", "failed")
# Also counted, not a separate outcome: charged, but KCP's tno is not known (a duplicate-order
# answer). It cannot be refunded until linked (subscriptions.link_charge_tno): an alarm watches.
AWAITING_TNO = "awaiting_tno"
# KCP's "duplicate order number": on a charge it means this ordr_idxx was already approved.
DUPLICATE_ORDER_CODES = frozenset({"8338", "8739"})
NOT_SENT_TRIES = 3  # a charge that never left is safe to try again at once
IN_FLIGHT = timedelta(minutes=2)  # longer than any KCP call (read timeout) plus its recording
# Step Functions carries at most 256 KB per state: a page's refs (~70 bytes each) and a lane's
# results (~250 bytes each) must fit, and the Map gathers only each lane's counts and one short
# line per charge. A page is charged in about page_size / tps seconds: well inside the charge
# function's 15 minutes.
MAX_PAGE = 1000
MAX_LANE_ITEMS = 400
LANE_SECONDS = 600
# A lane starts no charge with less time left than one charge can take: its turn, three quick
# resends of a call that never left, KCP's read timeout, the recording; the rest goes on in the
# lane's next invocation.
LANE_RESERVE_SECONDS = 60

Ref = dict[str, str]  # {"shop_id", "subscription_id"}: a due subscription, as pages carry it


@dataclass(frozen=True)
class RunSettings:
    max_concurrency: int  # lanes charging at once (the Map's MaxConcurrency)
    tps: float  # KCP transactions per second the merchant is allowed
    retry_days: tuple[int, ...]
    reconcile_wait_seconds: int
    reconcile_max_tries: int
    page_size: int
    days_back: int  # also charge what was due this many days before (a missed run)


def begin_run(
    clock: Clock,
    run_input: dict[str, Any],
    defaults: RunSettings,
    store: BillingStore,
    execution_id: str,
    still_running: Callable[[str], bool],
) -> dict[str, Any]:
    """The run's billing date (default: today in KST), settings and an empty summary; or
    busy, when another run is charging: runs one at a time, so they never add up to more
    than the TPS budget (a schedule that fires twice, a manual run during the daily one)."""
    text = run_input.get("billing_date")
    try:
        billing_date = date.fromisoformat(text) if text else schedule.today_kst(clock.now())
    except (TypeError, ValueError) as error:
        raise ValueError("billing_date must be YYYY-MM-DD") from error
    overrides = run_input.get("config") or {}
    try:
        settings = replace(
            defaults,
            max_concurrency=int(overrides.get("max_concurrency", defaults.max_concurrency)),
            tps=float(overrides.get("tps", defaults.tps)),
            page_size=int(overrides.get("page_size", defaults.page_size)),
        )
    except (TypeError, ValueError) as error:
        raise ValueError(
            "config: max_concurrency and page_size are integers, tps a number"
        ) from error
    if settings.max_concurrency < 1 or settings.tps <= 0 or settings.page_size < 1:
        raise ValueError("config: max_concurrency and page_size must be >= 1, tps > 0")
    if settings.tps > defaults.tps:  # a run may go slower than the merchant's allowance, not faster
        raise ValueError(f"config: tps may not exceed BillingKcpTps ({defaults.tps:g})")
    config = {
        "max_concurrency": settings.max_concurrency,
        "tps": settings.tps,
        "retry_days": list(settings.retry_days),
        "reconcile_wait_seconds": settings.reconcile_wait_seconds,
        "reconcile_max_tries": settings.reconcile_max_tries,
        "page_size": max(
            1,
            min(
                settings.page_size,
                MAX_PAGE,
                MAX_LANE_ITEMS * settings.max_concurrency,
                int(settings.tps * LANE_SECONDS),
            ),
        ),
        "days_back": settings.days_back,
    }
    summary = {"billing_date": billing_date.isoformat()} | dict.fromkeys(SUMMARY_KEYS, 0)
    holder = store.take_run_lease(execution_id, clock.now(), still_running)
    if holder:
        summary["another_run"] = holder  # it charges what is due; nothing is left undone
    return {
        "billing_date": billing_date.isoformat(),
        "config": config,
        "summary": summary,
        "cursor": None,
        "busy": holder is not None,
    }


def find_due(
    store: BillingStore,
    clock: Clock,
    billing_date: date,
    config: dict[str, Any],
    cursor: dict[str, Any] | None,
    execution_id: str,
    still_running: Callable[[str], bool],
) -> dict[str, Any]:
    """One page of due subscriptions (Query on the sparse due index: cost follows the due),
    dealt into lanes; none if another run has taken the lease meanwhile (this one was redriven
    after failing, say)."""
    holder = store.take_run_lease(execution_id, clock.now(), still_running)
    if holder:
        logger.warning("another run holds the lease", extra={"holder": holder})
        return {"due": 0, "lanes": [], "cursor": None, "more": False, "another_run": holder}
    items, next_cursor = store.due_page(
        billing_date, int(config["days_back"]), cursor, int(config["page_size"])
    )
    return {
        "due": len(items),
        "lanes": deal(items, int(config["max_concurrency"])),
        "cursor": next_cursor,
        "more": next_cursor is not None,
    }


def deal(items: Sequence[Ref], max_lanes: int) -> list[dict[str, Any]]:
    """Deal items round-robin into as many lanes as allowed (never an empty lane)."""
    lanes = min(max_lanes, len(items))
    return [{"lane": i, "lanes": lanes, "items": list(items[i::lanes])} for i in range(lanes)]


def outcome_key(result: dict[str, Any]) -> str:
    """The summary key a charge's result counts under (charged, declined, ...)."""
    key = str(result.get("result", "failed")).lower()
    return key if key in SUMMARY_KEYS else "failed"


def line(result: dict[str, Any]) -> str:
    """One charge as an operator searches for it in the execution history:
    "sub_…-2026-12-1 CHARGED 20261201000123" (ordr_idxx, result, tno or code or why)."""
    who = result.get("order_id") or result["subscription_id"]
    why = result.get("tno") or result.get("res_cd") or result.get("why") or result.get("error")
    return f"{who} {result['result']} {why or ''}".rstrip()


def tally(summary: dict[str, Any], lanes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add a page's lanes to the run's summary: each lane's counts, and for a lane that failed
    as a whole its unfinished subscriptions as failed (they stay due; a later run tries again)."""
    out = dict(summary)
    for lane in lanes:
        for key, n in (lane.get("counts") or {}).items():
            out[key] = out.get(key, 0) + int(n)
        out["failed"] += len(lane.get("unfinished", []))
    return out


@dataclass(frozen=True)
class ChargeDeps:
    store: BillingStore
    vault: BatchKeyVault
    gateway: Gateway
    mailer: Mailer
    clock: Clock
    shop: Shop
    language: str = "ko"  # of the emails (the shop's policy)


def charge_lane(
    deps_for: Callable[[str], ChargeDeps],
    billing_date: date,
    config: dict[str, Any],
    lane: int,
    lanes: int,
    items: Sequence[Ref],
    tries: int = 0,
    done: dict[str, Any] | None = None,
    time_left: Callable[[], float] = lambda: math.inf,
    turns: Turns | None = None,
) -> dict[str, Any]:
    """Charge a lane's subscriptions one after another, each KCP call on one of the lane's turns.

    `done` holds the counts and charges (a line each) of the lane's earlier passes. Returns them
    with this pass's added, and `again`: the subscriptions whose charge is unknown (to resend
    after a wait) or that this invocation had no time left to start.
    """
    turns = turns or Turns(float(config["tps"]), lanes, lane)
    counts = dict.fromkeys(SUMMARY_KEYS, 0) | dict((done or {}).get("counts") or {})
    lines = list((done or {}).get("charges") or [])
    again: list[Ref] = []
    for n, ref in enumerate(items):
        if n and time_left() < LANE_RESERVE_SECONDS:
            again += items[n:]  # the lane's next invocation goes on from here
            logger.warning("lane out of time", extra={"lane": lane, "left": len(items) - n})
            break
        shop_id, subscription_id = ref["shop_id"], ref["subscription_id"]
        try:
            result = charge(
                deps_for(shop_id), shop_id, subscription_id, billing_date, config, tries, turns.wait
            )
        except Exception as error:  # one subscription's trouble must not stop the others
            logger.exception("charge failed", extra={"subscription_id": subscription_id})
            result = dict(ref) | {"result": "FAILED", "error": type(error).__name__}
        logger.info("charge", extra=result)
        if result.pop("next", "DONE") == "RECONCILE":
            again.append(ref)
            continue
        counts[outcome_key(result)] += 1
        if result.get("result") == "CHARGED" and not result.get("tno"):
            counts[AWAITING_TNO] = counts.get(AWAITING_TNO, 0) + 1
        lines.append(line(result))
    return {
        "counts": counts,
        "charges": lines,
        "again": again,
        "tries": tries + 1,
        "more": bool(again),
    }


def charge(
    deps: ChargeDeps,
    shop_id: str,
    subscription_id: str,
    billing_date: date,
    config: dict[str, Any],
    tries: int = 0,
    turn: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Charge one due subscription once for its period, or resend an earlier unknown attempt.

    `turn` returns when this charge may call KCP (the TPS budget); it is called before each send.
    Returns {result: CHARGED|DECLINED|SUSPENDED|SKIPPED|UNKNOWN, next: DONE|RECONCILE, ...}.
    """
    store, clock = deps.store, deps.clock
    base: dict[str, Any] = {"shop_id": shop_id, "subscription_id": subscription_id}
    sub = store.get(shop_id, subscription_id)
    if sub is None or sub.status is not Status.ACTIVE or sub.due_on is None:
        return base | {"result": "SKIPPED", "why": "not active"}
    if sub.due_on > billing_date:
        return base | {"result": "SKIPPED", "why": "not due"}
    batch_key = deps.vault.open(shop_id, subscription_id, sub.batch_key_ref)  # before any claim
    now = clock.now()
    fresh = sub.pending_charge(billing_date, now, claim_token=secrets.token_hex(8))
    try:
        existing = store.claim(sub, fresh)
    except Conflict:
        return base | {"result": "SKIPPED", "why": "changed"}
    item = existing or fresh
    if item.status not in OPEN_CHARGE:
        return base | {"result": "SKIPPED", "why": "settled"}
    if item.status is ChargeStatus.PENDING and existing and now - item.updated_at < IN_FLIGHT:
        # Another run claimed it moments ago and may be waiting for KCP right now: let it
        # finish. A claim left behind by a crash is resent by a later run (days_back).
        return base | {"result": "SKIPPED", "why": "in flight"}
    base |= {"period": item.period, "order_id": item.order_id}
    order = ChargeOrder(
        batch_key=batch_key,
        order_id=item.order_id,
        amount=item.amount,
        product_name=sub.product_name,
        buyer_name=sub.customer_name,
        buyer_email=sub.customer_email,
    )
    sends = 0
    if item.tno:  # approved and journaled by an earlier try whose recording failed: no resend
        answer = ChargeAnswer(Outcome.SUCCEEDED, tno=item.tno, approved_at=item.approved_at)
    for _ in range(0 if item.tno else NOT_SENT_TRIES):
        turn()
        answer = _send(deps.gateway, order)
        sends += 1
        item = replace(item, sends=item.sends + 1, updated_at=clock.now())
        if answer.outcome is not Outcome.NOT_SENT:
            break
    base["sends"] = sends
    if answer.outcome is Outcome.SUCCEEDED or (
        answer.outcome is Outcome.DECLINED and answer.res_cd in DUPLICATE_ORDER_CODES
    ):
        if answer.tno and not item.tno:  # KCP's tno first, then its effects (which may fail)
            item = replace(item, tno=answer.tno, approved_at=answer.approved_at or clock.now())
            store.journal(item)
        return base | _charged(deps, sub, item, answer)
    if answer.outcome is Outcome.DECLINED:
        retry_days = tuple(int(d) for d in config["retry_days"])
        return base | _declined(deps, sub, item, answer, retry_days)
    # UNKNOWN (or never sent): the same ordr_idxx is resent later, never a new one.
    status = ChargeStatus.NOT_SENT if answer.outcome is Outcome.NOT_SENT else ChargeStatus.UNKNOWN
    if item.status is ChargeStatus.UNKNOWN:
        status = ChargeStatus.UNKNOWN  # once it may have reached KCP, it stays "may have"
    item = replace(item, status=status, detail=answer.detail, res_cd=answer.res_cd)
    store.journal(item)
    if tries + 1 < int(config["reconcile_max_tries"]):
        return base | {"result": "UNKNOWN", "next": "RECONCILE"}
    # Still unknown: look again in tomorrow's run (the same ordr_idxx; safe to resend).
    _settle(deps, sub, item, lambda s: s.retried_on(billing_date + timedelta(days=1)))
    logger.warning("charge still unknown", extra={"subscription_id": subscription_id})
    return base | {"result": "UNKNOWN"}


def _send(gateway: Gateway, order: ChargeOrder) -> ChargeAnswer:
    try:
        return gateway.charge(order)
    except ValueError as invalid:  # refused by the client's own checks: nothing left
        return ChargeAnswer(Outcome.NOT_SENT, detail=f"invalid: {invalid}")
    except Exception as error:  # after the claim, anything unexpected may have reached KCP
        return ChargeAnswer(Outcome.UNKNOWN, detail=type(error).__name__)


def _settle(
    deps: ChargeDeps,
    sub: Subscription,
    charge_after: Charge,
    change: Callable[[Subscription], Subscription],
    payment: Payment | None = None,
) -> bool:
    """Record a charge outcome with its effect on the subscription. A money record is never
    dropped: a subscription changed meanwhile (paused, say) is re-read and changed again."""
    for _ in range(5):
        after = change(sub).recorded(deps.clock.now())
        try:
            return deps.store.record(
                after, charge_after, payment, events_of(sub, after, charge_after)
            )
        except Conflict:
            fresh = deps.store.get(sub.shop_id, sub.subscription_id)
            if fresh is None:
                raise
            sub = fresh
    raise RuntimeError("could not record the charge outcome")  # a later run resends


def _charged(
    deps: ChargeDeps, sub: Subscription, item: Charge, answer: ChargeAnswer
) -> dict[str, Any]:
    now = deps.clock.now()
    duplicate = answer.outcome is Outcome.DECLINED
    done = replace(
        item,
        status=ChargeStatus.SUCCEEDED,
        tno=answer.tno or item.tno,  # a duplicate-order answer has none; a journaled one may
        approved_at=answer.approved_at or item.approved_at or now,
        res_cd=answer.res_cd,
        res_msg=answer.res_msg,
        detail=answer.detail,
        confirmed_by="DUPLICATE_ORDER" if duplicate else "KCP_ANSWER",
        updated_at=now,
    )
    paid = PaidPeriod(
        done.period, done.tno, done.amount, sub.period_date, sub.next_period_date, now
    )

    # The ledger's Payment, so the cancel workflow can refund it. Without a tno (a duplicate
    # order answer) the charge stays an open case until an operator links it (link_charge_tno).
    payment = charge_payment(sub, done, None, now) if done.tno else None
    if _settle(deps, sub, done, lambda s: s.charged(paid), payment):
        _mail(deps, sub, done, None)
    if not done.tno:
        logger.warning(
            "charged, tno unknown: link it from KCP's admin",
            extra={"subscription_id": sub.subscription_id, "order_id": done.order_id},
        )
    return {"result": "CHARGED", "tno": done.tno, "by": done.confirmed_by}


def _declined(
    deps: ChargeDeps,
    sub: Subscription,
    item: Charge,
    answer: ChargeAnswer,
    retry_days: tuple[int, ...],
) -> dict[str, Any]:
    now = deps.clock.now()
    done = replace(
        item,
        status=ChargeStatus.DECLINED,
        res_cd=answer.res_cd,
        res_msg=answer.res_msg,
        detail=answer.detail,
        updated_at=now,
    )
    retry_on = schedule.dunning_date(
        sub.period_date, item.attempt, retry_days, sub.next_period_date
    )

    def dun(s: Subscription) -> Subscription:
        return s.declined(done.period, done.attempt, retry_on, now)

    if _settle(deps, sub, done, dun):
        _mail(deps, sub, done, retry_on)
    result = "SUSPENDED" if retry_on is None else "DECLINED"
    return {"result": result, "res_cd": done.res_cd}


def _mail(deps: ChargeDeps, sub: Subscription, item: Charge, retry_on: date | None) -> None:
    """Receipts and dunning mail never change the money outcome: a failure is logged."""
    try:
        # Imported here: finding due subscriptions and tallying a run never mail.
        from cancelflow.subscriptions import emails

        for email in emails.for_charge(deps.shop, deps.language, sub, item, retry_on):
            deps.mailer.send(email)
    except Exception:
        logger.exception("billing email failed", extra={"subscription_id": sub.subscription_id})
