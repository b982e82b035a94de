"""Bulk cancels: accept a batch (API), then the steps of its execution
(statemachine/cancellation_batch.asl.json):

- begin: take the shop's batch lease (one batch of a shop at a time, so two never add up beyond
  the TPS budget) and deal the items into lanes;
- run_lane: a lane's items one after another, each an ordinary cancellation whose KCP call waits
  for one of the lane's turns of the budget (subscriptions/pacing.py);
- finish: the batch's end, and the lease given back;
- follow: after the lane, an OPEN or FAILED item follows its cancellation's later outcome
  (functions/batch_follow_up, on the ledger's cancellation events).

Why no item is refunded twice, and none is lost:

- An item's cancellation is requested with an Idempotency-Key made of the batch id and the
  item's position: a retried batch, a re-run lane or a redriven execution finds the same
  cancellation, and every step after it (decide, send, settle) routes on its stored status.
- An item is recorded (PENDING -> its outcome, with the batch's counts) in one conditional
  write: a re-run counts nothing twice.
- A cancel whose answer is unknown is never sent again here: the item is OPEN and the
  cancellation's own workflow (named by its id) waits, asks KCP and settles it, as for any cancel;
  the item then shows that outcome (each move of an item is the same conditional write).
- Cancelling a batch stops items that have not started; one that has started runs to its end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cancelflow.batches.model import (
    ACTIVE,
    FOLLOWED,
    MAX_ITEMS,
    Batch,
    BatchItem,
    BatchStatus,
    ItemRequest,
    ItemStatus,
    idempotency_key,
    item_status_of,
)
from cancelflow.batches.ports import BatchStarter, BatchStore
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.model import CancellationStatus
from cancelflow.cancellations.ports import CancellationStore, PaymentBusy
from cancelflow.cancellations.steps import Next
from cancelflow.kcp.port import (
    CancelAnswer,
    CancelOrder,
    ChargeAnswer,
    ChargeOrder,
    Gateway,
    InquiryAnswer,
    PayMethod,
)
from cancelflow.kernel.clock import Clock
from cancelflow.kernel.email import Mailer
from cancelflow.kernel.errors import Conflict, Problem
from cancelflow.shops.model import Shop
from cancelflow.subscriptions.pacing import Turns

logger = logging.getLogger(__name__)

# A lane starts no item with less time left than one can take (its turn, KCP's read timeout,
# the records and emails); its next invocation goes on from there.
LANE_RESERVE_SECONDS = 60
LEASE_WAIT = 30  # seconds a queued batch waits before asking for the shop's lease again
CSV_COLUMNS = ("tno", "amount", "reason_code", "reason")


def new_batch_id() -> str:
    return "cbt_" + secrets.token_hex(12)  # also the execution's name


def fingerprint(items: Sequence[ItemRequest], tps: float | None) -> str:
    """Same request, same fingerprint: how a replayed Idempotency-Key is recognised."""
    doc = {"items": [[i.tno, i.amount, i.reason_code, i.reason] for i in items], "tps": tps}
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()


# --- API side ----------------------------------------------------------------------------


def read_csv(text: str) -> list[dict[str, Any]]:
    """A CSV upload as the JSON items it stands for: a header row naming tno, reason_code and
    optionally amount and reason; an empty amount is the whole balance. Rows are checked by
    the same model as JSON items (http/requests.py); only the shape is checked here."""
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))  # Excel writes a BOM
    try:
        header = [h.strip().lower() for h in next(rows)]
    except StopIteration:
        raise _csv_problem("the file is empty: send a header row and one row per payment") from None
    except csv.Error as error:
        raise _csv_problem(f"line 1: {error}") from error
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    if unknown or not {"tno", "reason_code"} <= set(header) or len(set(header)) != len(header):
        raise _csv_problem(
            f"the header row must name tno and reason_code, and may name amount and reason "
            f"(got {', '.join(header) or 'nothing'})"
        )
    items: list[dict[str, Any]] = []
    try:
        for line, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue  # a blank line (a trailing newline in a spreadsheet export)
            if len(row) != len(header):
                raise _csv_problem(f"line {line}: {len(row)} cells, the header has {len(header)}")
            cells = dict(zip(header, (c.strip() for c in row), strict=True))
            item: dict[str, Any] = {"tno": cells["tno"], "reason_code": cells["reason_code"]}
            if cells.get("reason"):
                item["reason"] = cells["reason"]
            if cells.get("amount"):
                try:
                    item["amount"] = int(cells["amount"].replace(",", ""))
                except ValueError:
                    raise _csv_problem(f"line {line}: amount must be whole won") from None
            items.append(item)
            if len(items) > MAX_ITEMS:
                break  # the model says how many are allowed
    except csv.Error as error:
        raise _csv_problem(str(error)) from error
    return items


def _csv_problem(detail: str) -> Problem:
    return Problem(
        "VALIDATION_FAILED", f"CSV: {detail}", errors=[{"field": "body", "message": detail}]
    )


def accept_batch(
    store: BatchStore,
    starter: BatchStarter,
    clock: Clock,
    shop_id: str,
    items: Sequence[ItemRequest],
    key: str,
    allowance: float,
    tps: float | None = None,
) -> tuple[Batch, bool]:
    """Record a batch with all its items and start its execution. Returns (batch, created).

    `allowance` is the stack's KCP budget for batches; `tps` may only slow a batch below it."""
    if not key:
        raise Problem(
            "IDEMPOTENCY_KEY_REQUIRED",
            "Send an Idempotency-Key header with every batch: a retry with the same key answers "
            "with the same batch instead of cancelling its payments again.",
        )
    if tps is not None and tps > allowance:
        raise Problem(
            "VALIDATION_FAILED",
            f"tps: at most the stack's KCP allowance for batches ({allowance:g})",
            errors=[{"field": "tps", "message": f"at most {allowance:g}"}],
        )
    seen: dict[str, int] = {}
    for n, item in enumerate(items, start=1):
        if item.tno in seen:  # two cancels of one payment in one batch: surely a mistake
            raise Problem(
                "BATCH_DUPLICATE_TNO",
                f"items {seen[item.tno]} and {n} both name payment {item.tno}.",
                duplicate_items=[seen[item.tno], n],
            )
        seen[item.tno] = n
    print_ = fingerprint(items, tps)
    replay = _replay(store, starter, shop_id, key, print_)
    if replay:
        return replay, False
    now = clock.now()
    batch = Batch(
        shop_id=shop_id,
        batch_id=new_batch_id(),
        status=BatchStatus.QUEUED,
        total=len(items),
        tps=tps or allowance,
        created_at=now,
        updated_at=now,
        counts={ItemStatus.PENDING.value: len(items)},
    )
    rows = [BatchItem(seq=n, request=item) for n, item in enumerate(items, start=1)]
    try:
        store.create_batch(batch, rows, key, print_, batch.expires_at)
    except Conflict:  # the same key raced us: answer as its replay
        replay = _replay(store, starter, shop_id, key, print_)
        if replay:
            return replay, False
        raise
    _start(starter, batch)
    return batch, True


def _replay(
    store: BatchStore, starter: BatchStarter, shop_id: str, key: str, print_: str
) -> Batch | None:
    found = store.batch_for_key(shop_id, key)
    if found is None:
        return None
    if found[0] != print_:
        raise Problem("IDEMPOTENCY_KEY_REUSED")
    batch = store.get_batch(shop_id, found[1])
    if batch is None:  # the key outlived its batch (both expire together): never expected
        raise Problem("SERVICE_UNAVAILABLE", "Retry later.")
    if batch.status is BatchStatus.QUEUED:
        # The first call may have died between writing and starting: start again. Standard
        # workflows start once per name, so this never runs a batch twice.
        _start(starter, batch)
    return batch


def _start(starter: BatchStarter, batch: Batch) -> None:
    try:
        starter.start(batch)
    except Exception as error:  # the batch is recorded; the same key will start it
        raise Problem("SERVICE_UNAVAILABLE", "Retry with the same Idempotency-Key.") from error


def get_batch(store: BatchStore, shop_id: str, batch_id: str) -> Batch:
    batch = store.get_batch(shop_id, batch_id)
    if batch is None:
        raise Problem("BATCH_NOT_FOUND")
    return batch


def cancel_batch(store: BatchStore, clock: Clock, shop_id: str, batch_id: str) -> Batch:
    """Stop a batch: its items not yet started are skipped; what was sent settles as usual.
    Cancelling a stopping or cancelled batch changes nothing; a completed one cannot be."""
    batch = get_batch(store, shop_id, batch_id)
    if batch.status in ACTIVE:
        stopped = store.set_status(batch, BatchStatus.STOPPING, ACTIVE, clock.now())
        batch = stopped or get_batch(store, shop_id, batch_id)
    if batch.status is BatchStatus.COMPLETED:
        raise Problem("BATCH_ENDED", "Every item of this batch was already started.")
    return batch


def failed_items(store: BatchStore, shop_id: str, batch: Batch, limit: int) -> list[BatchItem]:
    """A few of the items that did not succeed, first by position: what GET shows with why."""
    found: list[BatchItem] = []
    for status in (ItemStatus.REJECTED, ItemStatus.FAILED, ItemStatus.OPEN):
        if batch.count(status) and len(found) < limit:
            page, _ = store.item_page(shop_id, batch.batch_id, status.value, 0, limit - len(found))
            found += page
    return sorted(found, key=lambda i: i.seq)


def list_items(
    store: BatchStore,
    shop_id: str,
    batch_id: str,
    status: ItemStatus | None,
    limit: int,
    cursor: str | None,
    key: bytes,
) -> tuple[list[BatchItem], str | None]:
    """A page of the batch's items by position (with one status), and the cursor to the next."""
    get_batch(store, shop_id, batch_id)  # 404 for another shop's batch, as for a missing one

    def read(position: dict[str, Any] | None) -> tuple[list[BatchItem], dict[str, Any] | None]:
        after = int((position or {}).get("after", 0))
        page, last = store.item_page(
            shop_id, batch_id, status.value if status else None, after, limit
        )
        return page, ({"after": last} if last is not None else None)

    from cancelflow.kernel import cursor as cursor_codec  # only the API lists

    scope = f"batch-items:{shop_id}:{batch_id}:{status.value if status else ''}"
    return cursor_codec.page_through(cursor, scope, key, read)


# --- the execution's steps ---------------------------------------------------------------


def begin(
    store: BatchStore,
    clock: Clock,
    shop_id: str,
    batch_id: str,
    execution_id: str,
    still_running: Callable[[str], bool],
    max_lanes: int,
) -> dict[str, Any]:
    """Take the shop's lease and deal the batch into lanes; busy while another batch runs."""
    batch = store.get_batch(shop_id, batch_id)
    if batch is None:
        raise LookupError(f"batch {batch_id} not found")
    holder = store.take_lease(shop_id, execution_id, clock.now(), still_running)
    if holder:
        return {
            "busy": True,
            "another_batch": holder.rsplit(":", 1)[-1],
            "wait_seconds": LEASE_WAIT,
        }
    store.set_status(
        batch, BatchStatus.RUNNING, frozenset({BatchStatus.QUEUED}), clock.now(), execution_id
    )
    return {
        "busy": False,
        "tps": batch.tps,
        "lanes": deal(batch.total, lanes_for(batch, max_lanes)),
    }


def lanes_for(batch: Batch, max_lanes: int) -> int:
    """Enough lanes that each has about four seconds per item between its turns (an item is
    KCP's answer time plus its records and emails; a lane still busy at its tick loses it:
    with three seconds, one tick in nine was lost on the local stack), never more than
    allowed or than items."""
    return max(1, min(max_lanes, batch.total, math.ceil(batch.tps * 4)))


def deal(total: int, lanes: int) -> list[dict[str, int]]:
    """Positions 1..total cut into `lanes` runs of consecutive items (each read by one Query)."""
    size, extra = divmod(total, lanes)
    out, first = [], 1
    for lane in range(lanes):
        last = first + size + (1 if lane < extra else 0) - 1
        out.append({"lane": lane, "lanes": lanes, "first": first, "last": last, "next": first})
        first = last + 1
    return out


@dataclass(frozen=True)
class LaneDeps:
    batches: BatchStore
    store: CancellationStore
    gateway: Gateway
    mailer: Mailer
    clock: Clock
    shop: Shop
    handoff: cancellations.WorkflowStarter  # the ordinary cancel workflow, for an OPEN item
    language: str = "ko"


class _RunByTheLane:
    """The lane runs an item's steps itself (so its KCP call waits for the lane's turn): no
    workflow is started when its cancellation is accepted."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id

    def start(self, cancellation: Any) -> str:
        return self.execution_id


def run_lane(
    deps: LaneDeps,
    batch_id: str,
    lane: int,
    lanes: int,
    next_seq: int,
    last: int,
    execution_id: str,
    time_left: Callable[[], float] = lambda: math.inf,
    turns: Turns | None = None,
) -> dict[str, Any]:
    """The lane's items from `next_seq` to `last`, one after another. Returns where the next
    invocation goes on (`more`, `next`) when this one runs short of time."""
    shop_id = deps.shop.shop_id
    batch = deps.batches.get_batch(shop_id, batch_id)
    if batch is None:
        raise LookupError(f"batch {batch_id} not found")
    turns = turns or Turns(batch.tps, lanes, lane)
    done = 0
    for item in deps.batches.items(shop_id, batch_id, next_seq, last):
        if done and time_left() < LANE_RESERVE_SECONDS:
            logger.warning("lane out of time", extra={"lane": lane, "next": item.seq})
            return {"more": True, "next": item.seq, "done": done}
        if item.status is not ItemStatus.PENDING:  # recorded by an earlier run of this lane,
            if item.status in FOLLOWED:  # which may have died before it looked (below)
                _catch_up(deps, item)
            continue
        # Read before each item (reads follow items): a cancel asked stops the next one.
        batch = deps.batches.get_batch(shop_id, batch_id) or batch
        if batch.status is BatchStatus.STOPPING:
            after = replace(item, status=ItemStatus.SKIPPED, updated_at=deps.clock.now())
        else:
            after = cancel_item(deps, batch_id, item, execution_id, turns.wait)
        deps.batches.record_item(batch, item, after)
        if after.status in FOLLOWED:
            after = _catch_up(deps, after) or after
        logger.info(
            "batch item",
            extra={
                "seq": item.seq,
                "status": after.status.value,
                "cancellation_id": after.cancellation_id,
            },
        )
        done += 1
    return {"more": False, "next": None, "done": done}


class OnTurn:
    """The shop's KCP client, each call made at the start of one of the lane's turns: the wait
    is the last thing before the request leaves (the records before it take a varying time,
    which would bunch calls up if the turn were taken earlier)."""

    def __init__(self, gateway: Gateway, turn: Callable[[], None]) -> None:
        self._gateway = gateway
        self._turn = turn

    def cancel(self, order: CancelOrder) -> CancelAnswer:
        self._turn()
        return self._gateway.cancel(order)

    def inquire(self, tno: str, method: PayMethod) -> InquiryAnswer:
        self._turn()
        return self._gateway.inquire(tno, method)

    def charge(self, order: ChargeOrder) -> ChargeAnswer:
        self._turn()
        return self._gateway.charge(order)


def cancel_item(
    deps: LaneDeps, batch_id: str, item: BatchItem, execution_id: str, turn: Callable[[], None]
) -> BatchItem:
    """One item as an ordinary cancellation: accepted (the API's checks), decided, sent on the
    lane's turn, settled and mailed; or handed to its own workflow when KCP's answer is unknown."""
    shop_id, clock, store = deps.shop.shop_id, deps.clock, deps.store
    ask = item.request
    request = cancellations.CancelRequest(
        reason_code=ask.reason_code,
        reason=ask.reason,
        amount=ask.amount,
        requested_by="SHOP",
        batch_id=batch_id,
    )
    try:
        cancellation, _ = cancellations.request_cancellation(
            store,
            _RunByTheLane(execution_id),
            clock,
            shop_id,
            ask.tno,
            request,
            idempotency_key(batch_id, item.seq),
        )
    except Problem as refused:  # not eligible (or no such payment): nothing was sent
        return replace(
            item,
            status=ItemStatus.REJECTED,
            reasons=(refused.code,),
            detail=refused.detail,
            updated_at=clock.now(),
        )
    cid = cancellation.cancellation_id
    step = cancellations.decide(store, clock, shop_id, cid)
    if step["next"] is Next.SEND:
        try:
            step = cancellations.send(store, OnTurn(deps.gateway, turn), clock, shop_id, cid)
        except PaymentBusy:  # another cancel of this payment is at KCP: nothing was sent
            step = {"next": Next.SEND}  # its own workflow waits for the lock, then sends
    if step["next"] is not Next.SETTLE:
        # Sent and unanswered (or answered "unknown"), or waiting for the payment's lock:
        # never resent here. Its own workflow, named by the cancellation id, goes on from its
        # stored status (waits, asks KCP, settles) like any other cancel.
        deps.handoff.start(cancellation)
        return replace(item, status=ItemStatus.OPEN, cancellation_id=cid, updated_at=clock.now())
    outcome = cancellations.settle(store, clock, shop_id, cid, step["verdict"], execution_id)
    _mail(deps, cid)
    return replace(
        item,
        status=item_status_of(CancellationStatus(outcome["status"])),
        cancellation_id=cid,
        reasons=tuple(outcome["reasons"]),
        updated_at=clock.now(),
    )


def _mail(deps: LaneDeps, cancellation_id: str) -> None:
    """The outcome emails never change the money outcome: a failure is logged."""
    from cancelflow.cancellations.emails import send_outcome  # only item lanes mail

    try:
        send_outcome(deps.store, deps.mailer, deps.shop, cancellation_id, deps.language)
    except Exception:
        logger.exception("batch item email failed", extra={"cancellation_id": cancellation_id})


def follow(
    batches: BatchStore,
    cancellations_store: CancellationStore,
    clock: Clock,
    shop_id: str,
    cancellation_id: str,
) -> BatchItem | None:
    """A batch item follows its cancellation's later outcome (KCP's late answer, the sweep's
    correction, an operator's review), the batch's counts with it. Called for each outcome
    event of a cancellation (most are no batch's: one read), and by the lane right after it
    recorded an OPEN or FAILED item. Returns the item moved, or None if nothing moved.

    The cancellation as stored decides, not the event: events of one cancellation arriving
    late or twice move the item once, to where the cancellation is now.
    """
    found = batches.item_for_cancellation(shop_id, cancellation_id)
    if found is None:
        return None
    batch_id, seq = found
    batch, item = batches.get_batch(shop_id, batch_id), batches.get_item(shop_id, batch_id, seq)
    cancellation = cancellations_store.get_cancellation(shop_id, cancellation_id)
    if batch is None or item is None or cancellation is None:
        return None
    to = item_status_of(cancellation.status)
    if item.status not in FOLLOWED or item.cancellation_id != cancellation_id or to is item.status:
        return None
    after = replace(
        item, status=to, reasons=cancellation.reasons, detail="", updated_at=clock.now()
    )
    if not batches.record_item(batch, item, after):
        return None  # moved meanwhile (the lane, or another event): that one counted
    logger.info(
        "batch item followed its cancellation",
        extra={"batch_id": batch_id, "seq": seq, "from": item.status.value, "to": to.value},
    )
    return after


def _catch_up(deps: LaneDeps, item: BatchItem) -> BatchItem | None:
    """Follow an item the lane left OPEN or FAILED once: its own workflow may have settled it
    before the item was recorded, and then no later event comes for the item to follow. The
    batch's view never stops the refunds: a failure is logged, the item shows OPEN."""
    if not item.cancellation_id:
        return None
    try:
        return follow(deps.batches, deps.store, deps.clock, deps.shop.shop_id, item.cancellation_id)
    except Exception:
        logger.exception("batch item not followed", extra={"seq": item.seq})
        return None


def finish(
    store: BatchStore, clock: Clock, shop_id: str, batch_id: str, execution_id: str
) -> dict[str, Any]:
    """The batch's end (COMPLETED, or CANCELLED when a cancel was asked) and the lease back."""
    batch = store.get_batch(shop_id, batch_id)
    if batch is None:
        raise LookupError(f"batch {batch_id} not found")
    now = clock.now()
    if batch.status is BatchStatus.STOPPING:
        batch = (
            store.set_status(batch, BatchStatus.CANCELLED, frozenset({BatchStatus.STOPPING}), now)
            or batch
        )
    elif batch.status is BatchStatus.RUNNING:
        batch = (
            store.set_status(batch, BatchStatus.COMPLETED, frozenset({BatchStatus.RUNNING}), now)
            or batch
        )
    store.release_lease(shop_id, execution_id)
    return {"batch_id": batch_id, "status": batch.status.value} | dict(batch.counts)
