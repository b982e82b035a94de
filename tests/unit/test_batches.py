"""Bulk cancels, the domain's rules: what a batch request may hold, how its items are dealt into
lanes, and that a lane run again (a retry, a redrive) sends nothing twice and counts nothing
twice, hands an unanswered cancel to its own workflow, and skips what a stop left unstarted."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cancelflow.batches import service as batches
from cancelflow.batches.model import BatchStatus, ItemRequest, ItemStatus
from cancelflow.kernel.errors import Problem
from cancelflow.shops.model import Shop
from tests.fakes.batches import MemoryBatches, RecordingBatchStarter
from tests.fakes.examples import SHOP, a_payment
from tests.fakes.kcp import Fate, KcpModel
from tests.fakes.store import MemoryStore
from tests.fakes.webhooks import MailBox
from tests.fakes.workflow import RecordingStarter, SteppingClock

TNOS = [f"2026112300{n:04d}" for n in range(1, 7)]


@dataclass
class World:
    store: MemoryStore = field(default_factory=MemoryStore)
    batches: MemoryBatches = field(default_factory=MemoryBatches)
    kcp: KcpModel = field(default_factory=KcpModel)
    clock: SteppingClock = field(default_factory=SteppingClock)
    mail: MailBox = field(default_factory=MailBox)
    handoff: RecordingStarter = field(default_factory=RecordingStarter)
    turns: list[int] = field(default_factory=list)

    def deps(self) -> batches.LaneDeps:
        return batches.LaneDeps(
            batches=self.batches,
            store=self.store,
            gateway=self.kcp,
            mailer=self.mail,
            clock=self.clock,
            shop=Shop(SHOP, "머그상점", "owner@mug.example"),
            handoff=self.handoff,
        )

    def accept(self, items: list[ItemRequest], key: str = "k1", tps: float | None = None) -> str:
        batch, _ = batches.accept_batch(
            self.batches, RecordingBatchStarter(), self.clock, SHOP, items, key, 5.0, tps
        )
        return batch.batch_id

    def lane(self, batch_id: str, lane: int = 0, lanes: int = 1) -> dict:
        total = len(self.batches.rows[(SHOP, batch_id)])
        [mine] = [d for d in batches.deal(total, lanes) if d["lane"] == lane]

        class CountedTurns:
            def wait(_self) -> None:
                self.turns.append(lane)

        return batches.run_lane(
            self.deps(),
            batch_id,
            lane,
            lanes,
            mine["next"],
            mine["last"],
            "exec:lane",
            turns=CountedTurns(),  # type: ignore[arg-type]
        )

    def counts(self, batch_id: str) -> dict[str, int]:
        batch = self.batches.get_batch(SHOP, batch_id)
        assert batch is not None
        return {k: v for k, v in batch.counts.items() if v}


@pytest.fixture
def world() -> World:
    w = World()
    for tno in TNOS:
        w.store.put_payment(a_payment(tno, 20000))
        w.kcp.approve(tno, 20000)
    return w


def items(*tnos: str, amount: int | None = None) -> list[ItemRequest]:
    return [ItemRequest(tno=t, reason_code="DEFECTIVE", reason="리콜", amount=amount) for t in tnos]


def test_every_item_is_cancelled_once_on_a_turn_and_counted(world: World) -> None:
    batch_id = world.accept(items(*TNOS[:4]))
    world.lane(batch_id)
    assert world.counts(batch_id) == {"SUCCEEDED": 4}
    assert [r.tno for r in world.kcp.requests] == TNOS[:4]
    assert len(world.turns) == 4  # one turn of the budget per KCP call
    assert len(world.mail.sent) == 8  # the customer's and the shop's, per cancellation


def test_a_lane_run_again_sends_nothing_and_counts_nothing_twice(world: World) -> None:
    batch_id = world.accept(items(*TNOS[:3]))
    world.lane(batch_id)
    world.lane(batch_id)  # a retry of the whole lane after its result was lost
    assert len(world.kcp.requests) == 3
    assert world.counts(batch_id) == {"SUCCEEDED": 3}


def test_a_lane_that_died_after_sending_finds_the_same_cancellation_and_never_resends(
    world: World,
) -> None:
    batch_id = world.accept(items(TNOS[0]))
    [item] = world.batches.items(SHOP, batch_id, 1, 1)
    batches.cancel_item(world.deps(), batch_id, item, "exec:lane", lambda: None)  # not recorded
    world.lane(batch_id)  # the retry: the item is still PENDING
    assert len(world.kcp.requests) == 1
    assert world.counts(batch_id) == {"SUCCEEDED": 1}
    assert len(world.store.cancellations) == 1


def test_an_unanswered_cancel_is_open_and_handed_to_its_own_workflow(world: World) -> None:
    world.kcp.next_fates = [Fate.APPLY_LOSE_ANSWER, Fate.DECLINE]
    batch_id = world.accept(items(*TNOS[:3]))
    world.lane(batch_id)
    assert world.counts(batch_id) == {"OPEN": 1, "FAILED": 1, "SUCCEEDED": 1}
    [open_item] = world.batches.item_page(SHOP, batch_id, "OPEN", 0, 10)[0]
    assert world.handoff.started == [open_item.cancellation_id]
    assert len(world.kcp.requests) == 3  # the open one is not sent again


def test_an_ineligible_item_is_rejected_with_why_and_nothing_is_written_for_it(
    world: World,
) -> None:
    batch_id = world.accept(items(TNOS[0], amount=50000) + items("20261123009999"))
    world.lane(batch_id)
    rejected, _ = world.batches.item_page(SHOP, batch_id, "REJECTED", 0, 10)
    assert [i.reasons for i in rejected] == [("AMOUNT_EXCEEDS_BALANCE",), ("PAYMENT_NOT_FOUND",)]
    assert world.kcp.requests == [] and world.store.cancellations == {}


def test_a_stop_skips_the_items_not_yet_started(world: World) -> None:
    batch_id = world.accept(items(*TNOS))
    lanes = batches.deal(6, 2)
    world.lane(batch_id, lane=0, lanes=2)  # lane 0 finishes its three
    batches.cancel_batch(world.batches, world.clock, SHOP, batch_id)
    world.lane(batch_id, lane=1, lanes=2)
    assert world.counts(batch_id) == {"SUCCEEDED": 3, "SKIPPED": 3}
    assert [r.tno for r in world.kcp.requests] == TNOS[lanes[0]["first"] - 1 : lanes[0]["last"]]
    out = batches.finish(world.batches, world.clock, SHOP, batch_id, "exec:batch")
    assert out["status"] == "CANCELLED"


def test_reads_follow_items(world: World) -> None:
    batch_id = world.accept(items(*TNOS))
    world.batches.reads = 0
    world.lane(batch_id)
    assert world.batches.reads == 1 + 6 + 6  # the batch, each item, the batch before each item


def test_a_replayed_key_answers_the_same_batch_and_another_body_is_refused(world: World) -> None:
    first = world.accept(items(*TNOS[:2]), key="same")
    assert world.accept(items(*TNOS[:2]), key="same") == first
    with pytest.raises(Problem) as refused:
        world.accept(items(*TNOS[:3]), key="same")
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize(
    ("batch_items", "key", "tps", "code"),
    [
        (items(TNOS[0], TNOS[0]), "k", None, "BATCH_DUPLICATE_TNO"),
        (items(TNOS[0]), "", None, "IDEMPOTENCY_KEY_REQUIRED"),
        (items(TNOS[0]), "k", 6.0, "VALIDATION_FAILED"),  # faster than the allowance (5)
    ],
)
def test_a_batch_is_refused_before_anything_is_written(
    world: World, batch_items: list[ItemRequest], key: str, tps: float | None, code: str
) -> None:
    with pytest.raises(Problem) as refused:
        world.accept(batch_items, key=key, tps=tps)
    assert refused.value.code == code
    assert world.batches.batches == {}


def test_one_batch_of_a_shop_runs_at_a_time(world: World) -> None:
    first, second = world.accept(items(TNOS[0]), key="a"), world.accept(items(TNOS[1]), key="b")
    running = lambda _: True  # noqa: E731
    began = batches.begin(world.batches, world.clock, SHOP, first, "exec:a", running, 10)
    waits = batches.begin(world.batches, world.clock, SHOP, second, "exec:b", running, 10)
    assert not began["busy"] and waits["busy"] and waits["another_batch"] == "a"
    batches.finish(world.batches, world.clock, SHOP, first, "exec:a")
    assert not batches.begin(world.batches, world.clock, SHOP, second, "exec:b", running, 10)[
        "busy"
    ]
    assert world.batches.get_batch(SHOP, second).status is BatchStatus.RUNNING  # type: ignore[union-attr]


@pytest.mark.parametrize(("total", "lanes"), [(1, 1), (10, 3), (10_000, 10), (7, 7)])
def test_lanes_cover_every_position_once_in_runs(total: int, lanes: int) -> None:
    dealt = batches.deal(total, lanes)
    covered = [n for d in dealt for n in range(d["first"], d["last"] + 1)]
    assert covered == list(range(1, total + 1))
    sizes = [d["last"] - d["first"] + 1 for d in dealt]
    assert max(sizes) - min(sizes) <= 1


def test_csv_rows_become_items_and_bad_rows_are_named_by_line() -> None:
    text = (
        "\ufefftno,amount,reason_code,reason\r\n20261123000001,,DEFECTIVE,리콜\r\n\r\n"
        '20261123000002,"5,000",DEFECTIVE,\r\n'
    )
    assert batches.read_csv(text) == [
        {"tno": "20261123000001", "reason_code": "DEFECTIVE", "reason": "리콜"},
        {"tno": "20261123000002", "reason_code": "DEFECTIVE", "amount": 5000},
    ]
    with pytest.raises(Problem) as bad:
        batches.read_csv("tno,reason_code,amount\n20261123000001,DEFECTIVE,abc\n")
    assert "line 2" in bad.value.detail
    with pytest.raises(Problem):
        batches.read_csv("tno,reason\n1,x\n")


def test_an_item_status_is_shown_as_stored() -> None:
    assert {s.value for s in ItemStatus} == {
        "PENDING",
        "SUCCEEDED",
        "REJECTED",
        "FAILED",
        "OPEN",
        "SKIPPED",
    }


def test_an_item_whose_payment_is_locked_by_another_cancel_is_handed_on_unsent(
    world: World,
) -> None:
    from dataclasses import replace

    locked = replace(world.store.raw_payment(SHOP, TNOS[0]), in_flight="cnl_another")
    world.store.payments[(SHOP, TNOS[0])] = locked  # another cancel of it is at KCP
    batch_id = world.accept(items(TNOS[0], amount=5000))
    world.lane(batch_id)
    assert world.counts(batch_id) == {"OPEN": 1}
    assert world.kcp.requests == []  # its own workflow waits for the lock, then sends
    [cancellation] = world.store.cancellations.values()
    assert world.handoff.started == [cancellation.cancellation_id]


# --- an item handed on follows its cancellation -------------------------------------------


def its_own_workflow_settles(world: World, cancellation_id: str) -> str:
    """What the cancel workflow does for a handed-on item: ask KCP, then settle."""
    from cancelflow.cancellations import service as cancellations

    step = cancellations.reconcile(world.store, world.kcp, world.clock, SHOP, cancellation_id, 0, 1)
    return cancellations.settle(world.store, world.clock, SHOP, cancellation_id, step["verdict"])[
        "status"
    ]


def follow(world: World, cancellation_id: str) -> ItemStatus | None:
    moved = batches.follow(world.batches, world.store, world.clock, SHOP, cancellation_id)
    return moved.status if moved else None


def test_an_open_item_shows_the_outcome_its_own_workflow_reached(world: World) -> None:
    world.kcp.next_fates = [Fate.APPLY_LOSE_ANSWER]
    batch_id = world.accept(items(*TNOS[:2]))
    world.lane(batch_id)
    [open_item] = world.batches.item_page(SHOP, batch_id, "OPEN", 0, 10)[0]
    assert its_own_workflow_settles(world, open_item.cancellation_id) == "SUCCEEDED"
    assert follow(world, open_item.cancellation_id) is ItemStatus.SUCCEEDED
    assert world.counts(batch_id) == {"SUCCEEDED": 2}
    assert world.batches.item_page(SHOP, batch_id, "OPEN", 0, 10)[0] == []
    # The same event again (a stream retry), or a later one: nothing moves, nothing is counted.
    assert follow(world, open_item.cancellation_id) is None
    assert world.counts(batch_id) == {"SUCCEEDED": 2}
    assert len(world.kcp.requests) == 2  # followed, never resent


def test_an_open_item_under_review_stays_open(world: World) -> None:
    world.kcp.next_fates = [Fate.LOSE]  # never applied: KCP's balance proves nothing yet
    batch_id = world.accept(items(TNOS[0]))
    world.lane(batch_id)
    [open_item] = world.batches.item_page(SHOP, batch_id, "OPEN", 0, 10)[0]
    assert its_own_workflow_settles(world, open_item.cancellation_id) == "NEEDS_REVIEW"
    assert follow(world, open_item.cancellation_id) is None
    assert world.counts(batch_id) == {"OPEN": 1}


def test_a_failed_item_follows_a_correction_of_its_cancellation(world: World) -> None:
    from dataclasses import replace

    from cancelflow.cancellations.model import CancellationStatus

    world.kcp.next_fates = [Fate.DECLINE]
    batch_id = world.accept(items(TNOS[0]))
    world.lane(batch_id)
    [failed] = world.batches.item_page(SHOP, batch_id, "FAILED", 0, 10)[0]
    key = (SHOP, failed.cancellation_id)
    corrected = replace(world.store.cancellations[key], status=CancellationStatus.SUCCEEDED)
    world.store.cancellations[key] = corrected  # as the sweep writes it, with its event
    assert follow(world, failed.cancellation_id) is ItemStatus.SUCCEEDED
    assert world.counts(batch_id) == {"SUCCEEDED": 1}


def test_a_workflow_that_ended_before_its_item_was_recorded_is_seen_by_the_lane(
    world: World,
) -> None:
    class SettlesAtOnce(RecordingStarter):
        def start(inner, cancellation):  # type: ignore[no-untyped-def]
            its_own_workflow_settles(world, cancellation.cancellation_id)  # its event: no item
            return super().start(cancellation)

    world.handoff = SettlesAtOnce()
    world.kcp.next_fates = [Fate.APPLY_LOSE_ANSWER]
    batch_id = world.accept(items(TNOS[0]))
    world.lane(batch_id)
    assert world.counts(batch_id) == {"SUCCEEDED": 1}


def test_a_cancellation_of_no_batch_moves_nothing(world: World) -> None:
    batch_id = world.accept(items(TNOS[0]))
    world.lane(batch_id)
    world.batches.reads = 0
    assert follow(world, "cnl_not_from_a_batch") is None
    assert world.batches.reads == 1  # one lookup per outcome event of any cancellation


def test_a_lane_that_died_before_looking_at_its_open_item_looks_when_run_again(
    world: World,
) -> None:
    world.kcp.next_fates = [Fate.APPLY_LOSE_ANSWER]
    batch_id = world.accept(items(TNOS[0]))
    batch = world.batches.get_batch(SHOP, batch_id)
    assert batch is not None
    [item] = world.batches.items(SHOP, batch_id, 1, 1)
    handed_on = batches.cancel_item(world.deps(), batch_id, item, "exec:lane", lambda: None)
    its_own_workflow_settles(world, handed_on.cancellation_id)  # its event found no item yet
    world.batches.record_item(batch, item, handed_on)  # ...and the lane died here
    world.lane(batch_id)  # the retry
    assert world.counts(batch_id) == {"SUCCEEDED": 1}
    assert len(world.kcp.requests) == 1


def test_the_follow_up_hears_each_outcome_of_a_batch_item_and_nothing_else(world: World) -> None:
    """The stream mapping's filter, applied to event items as the ledger writes them: the
    outcomes of a batch's items (which carry their batch), not those of a lone cancellation."""
    from cancelflow.adapters.dynamodb.table import event_item, marshal
    from cancelflow.kernel.events import Event
    from local.event_sources import matches
    from local.template import Template
    from tests.fakes.examples import NOW

    [mapping] = [m for m in Template().event_source_mappings() if "FollowUp" in m["function"]]

    def heard(event: Event) -> bool:
        record = {"eventName": "INSERT", "dynamodb": {"NewImage": marshal(event_item(event))}}
        return any(matches(f, record) for f in mapping["filters"])

    batch_id = world.accept(items(TNOS[0]))
    world.lane(batch_id)
    [recorded] = world.store.events.values()  # the item's cancellation.succeeded
    assert recorded.data["batch_id"] == batch_id and heard(recorded)

    def of_kind(kind: str, data: dict) -> Event:
        return Event(kind, SHOP, "cnl_1", NOW, "cause", {"status": "X"} | data)

    in_batch = {"batch_id": batch_id}
    outcomes = ("succeeded", "rejected", "failed", "corrected")
    assert all(heard(of_kind(f"cancellation.{o}", in_batch)) for o in outcomes)
    assert not any(heard(of_kind(f"cancellation.{o}", {})) for o in outcomes)  # asked alone
    assert not heard(of_kind("cancellation.needs_review", in_batch))  # stays open under review
    assert not heard(of_kind("payment.cancelled_externally", {}))
