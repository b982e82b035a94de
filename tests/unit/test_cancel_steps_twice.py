"""Every workflow step run twice (a retry after a lost result, a redrive): the second run moves
no money, sends nothing to KCP, and routes the execution to the same outcome."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from cancelflow.cancellations import review
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.model import CancellationStatus
from cancelflow.cancellations.service import CancelRequest
from cancelflow.payments.model import PaymentStatus
from tests.fakes.examples import SHOP, a_payment
from tests.fakes.kcp import Fate, KcpModel
from tests.fakes.store import MemoryStore
from tests.fakes.workflow import RecordingStarter, SteppingClock, WaitingExecutions

TNO = "20261123000001"
MAX_TRIES = 3


@dataclass
class World:
    store: MemoryStore = field(default_factory=MemoryStore)
    kcp: KcpModel = field(default_factory=KcpModel)
    clock: SteppingClock = field(default_factory=SteppingClock)
    cid: str = ""

    def snapshot(self, journal: bool = True) -> Any:
        state = copy.deepcopy(
            (self.store.payments, self.store.cancellations, set(self.store.idempotency))
        )
        return (state, copy.deepcopy(self.store.attempts)) if journal else state

    def status(self) -> CancellationStatus:
        found = self.store.get_cancellation(SHOP, self.cid)
        assert found is not None
        return found.status

    def decide(self) -> dict[str, Any]:
        return cancellations.decide(self.store, self.clock, SHOP, self.cid)

    def send(self, *fates: Fate) -> dict[str, Any]:
        self.kcp.next_fates = list(fates)
        return cancellations.send(self.store, self.kcp, self.clock, SHOP, self.cid)

    def reconcile(self, tries: int = 0) -> dict[str, Any]:
        return cancellations.reconcile(
            self.store, self.kcp, self.clock, SHOP, self.cid, tries, MAX_TRIES
        )

    def settle(self, route: dict[str, Any]) -> dict[str, Any]:
        """The state that takes a verdict: Settle, or for REVIEW the review step (its execution
        then waits for an operator); what it answers, as the next state would read it."""
        if route["next"] == "REVIEW":
            review.open_review(
                self.store,
                WaitingExecutions(),
                self.clock,
                SHOP,
                self.cid,
                "token",
                route["verdict"],
            )
            found = self.store.get_cancellation(SHOP, self.cid)
            assert found is not None
            return {"cancellation_id": self.cid, "status": found.status.value}
        return cancellations.settle(self.store, self.clock, SHOP, self.cid, route["verdict"])

    def run_on(self, route: dict[str, Any]) -> dict[str, Any]:
        """Follow a route to the end, as the state machine would (KCP answers inquiries)."""
        while route["next"] not in ("SETTLE", "REVIEW"):
            route = self.reconcile(int(route.get("tries", 0)))
        return self.settle(route)


@pytest.fixture
def world() -> World:
    w = World()
    w.store.put_payment(a_payment(TNO, 30000))
    w.kcp.approve(TNO, 30000)
    cancellation, _ = cancellations.request_cancellation(
        w.store,
        RecordingStarter(),
        w.clock,
        SHOP,
        TNO,
        CancelRequest("CHANGE_OF_MIND", "단순 변심", 10000),
        "key-1",
    )
    w.cid = cancellation.cancellation_id
    return w


def _money(w: World) -> tuple[int, int, str, PaymentStatus]:
    p = w.store.raw_payment(SHOP, TNO)
    return p.balance, p.available, p.in_flight, p.status


# --- decide --------------------------------------------------------------------------------


def test_deciding_twice_holds_the_amount_once_and_still_sends(world: World) -> None:
    first = world.decide()
    after_first = world.snapshot()
    second = world.decide()

    assert first == {"next": "SEND", "amount": 10000}
    assert second["next"] == first["next"] == "SEND"
    assert world.snapshot() == after_first
    assert _money(world) == (30000, 20000, "", PaymentStatus.PAID)


def test_deciding_a_rejected_cancel_twice_rejects_it_the_same_way(world: World) -> None:
    key = (SHOP, world.cid)  # more than the payment: the API would have refused it at once
    world.store.cancellations[key] = replace(world.store.cancellations[key], requested_amount=40000)
    first = world.decide()
    after_first = world.snapshot()
    second = world.decide()

    assert first["verdict"]["status"] == "REJECTED"
    assert second == first
    assert world.snapshot() == after_first


def test_deciding_after_the_cancel_was_sent_routes_on_without_deciding_again(
    world: World,
) -> None:
    world.decide()
    world.send(Fate.HOLD)
    before = world.snapshot()
    assert world.decide() == {"next": "RECONCILE", "tries": 0}
    assert world.snapshot() == before


# --- send ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fate", "outcome"),
    [
        (Fate.APPLY, CancellationStatus.SUCCEEDED),
        (Fate.APPLY_LOSE_ANSWER, CancellationStatus.SUCCEEDED),
        (Fate.HOLD, CancellationStatus.NEEDS_REVIEW),
    ],
)
def test_sending_twice_sends_once_and_ends_the_same(
    world: World, fate: Fate, outcome: CancellationStatus
) -> None:
    world.decide()
    world.send(fate)
    requests, after_first = len(world.kcp.requests), world.snapshot()

    second = world.send(Fate.APPLY)

    assert len(world.kcp.requests) == requests == 1  # never sent again
    assert world.snapshot() == after_first
    # A journaled answer settles as it said; an unanswered one is asked about, never resent.
    if fate is Fate.APPLY:
        assert second["next"] == "SETTLE"
    else:
        assert second == {"next": "RECONCILE", "tries": 0}
    assert world.run_on(second)["status"] == outcome.value


@pytest.mark.parametrize("fates", [(Fate.DECLINE,), (Fate.UNREACHABLE,) * 3])
def test_a_resent_send_after_a_definitive_answer_still_ends_as_that_answer_said(
    world: World, fates: tuple[Fate, ...]
) -> None:
    world.decide()
    world.send(*fates)  # the Lambda wrote the answer, then timed out before returning
    second = world.send()
    outcome = world.run_on(second)
    assert outcome["status"] == "FAILED"
    assert _money(world) == (30000, 30000, "", PaymentStatus.PAID)


# --- reconcile -----------------------------------------------------------------------------


def test_reconciling_twice_asks_again_and_routes_the_same(world: World) -> None:
    world.decide()
    world.send(Fate.APPLY_LOSE_ANSWER)
    first = world.reconcile()
    money, inquiries = _money(world), world.kcp.inquiries
    second = world.reconcile()

    assert first["verdict"] | {"cancelled_at": ""} == second["verdict"] | {"cancelled_at": ""}
    assert (first["next"], first["verdict"]["status"]) == ("SETTLE", "SUCCEEDED")
    assert _money(world) == money  # nothing moves until Settle
    assert world.kcp.inquiries == inquiries + 1  # each run asks (and journals its inquiry)
    assert len(world.kcp.requests) == 1


def test_reconciling_an_unconfirmed_cancel_twice_waits_the_same(world: World) -> None:
    world.decide()
    world.send(Fate.HOLD)
    assert world.reconcile(1) == world.reconcile(1) == {"next": "WAIT", "tries": 2}
    assert world.status() is CancellationStatus.RECONCILING


def test_reconciling_after_it_was_settled_changes_nothing(world: World) -> None:
    world.decide()
    never_sent = world.reconcile()  # still RESERVED: nothing reached KCP
    assert never_sent["verdict"] == {"status": "FAILED", "reasons": ["GATEWAY_UNREACHABLE"]}
    world.settle(never_sent)
    before = world.snapshot()
    route = world.reconcile()
    assert route["verdict"]["status"] == "FAILED"
    assert world.snapshot() == before


# --- settle --------------------------------------------------------------------------------


@pytest.mark.parametrize("fate", [Fate.APPLY, Fate.DECLINE])
def test_settling_twice_writes_the_outcome_once(world: World, fate: Fate) -> None:
    world.decide()
    route = world.send(fate)
    first = world.settle(route)
    after_first = world.snapshot()
    second = world.settle(route)

    assert second == first
    assert world.snapshot() == after_first
    expected = (20000, 20000) if fate is Fate.APPLY else (30000, 30000)
    assert _money(world)[:3] == (*expected, "")


def test_settling_an_unconfirmed_cancel_twice_keeps_one_hold(world: World) -> None:
    world.decide()
    route = world.send(Fate.HOLD)
    while route["next"] != "REVIEW":  # never confirmed: an operator's case
        route = world.reconcile(int(route["tries"]))
    first = world.settle(route)  # opens its review (a re-run hands the review its new token)
    assert world.settle(route) == first
    assert first["status"] == "NEEDS_REVIEW"
    assert _money(world) == (30000, 20000, world.cid, PaymentStatus.PAID)  # one hold, the lock


# --- a run that died between journaling and sending ------------------------------------------


def _die_after_begin_send(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def dead(*_: object, **__: object) -> None:
        raise RuntimeError("the Lambda died")

    with monkeypatch.context() as patch:
        patch.setattr(cancellations, "_dispatch", dead)
        with pytest.raises(RuntimeError):
            world.send(Fate.APPLY)


def test_a_send_that_died_before_sending_is_sent_by_its_rerun_exactly_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.decide()
    _die_after_begin_send(world, monkeypatch)
    assert world.status() is CancellationStatus.SENDING and world.kcp.requests == []

    route = world.send(Fate.APPLY)  # the retry: the attempt was never claimed, so it is sent

    assert len(world.kcp.requests) == 1
    assert world.run_on(route)["status"] == "SUCCEEDED"
    assert world.send(Fate.APPLY)["next"] == "SETTLE" and len(world.kcp.requests) == 1


def test_the_sweep_voids_an_attempt_a_dead_run_never_sent_and_gives_the_hold_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from cancelflow.cancellations import sweep

    world.decide()
    _die_after_begin_send(world, monkeypatch)
    assert _money(world)[1:3] == (20000, world.cid)
    since = world.clock.now() - timedelta(days=30)
    too_soon = sweep.sweep_payment(world.store, world.kcp, world.clock, SHOP, TNO, since)
    assert too_soon.finding is sweep.Finding.OPEN  # its run may still be alive: wait

    world.clock.at += cancellations.DISPATCH_DEADLINE
    closed = sweep.sweep_payment(world.store, world.kcp, world.clock, SHOP, TNO, since)

    assert closed.finding is sweep.Finding.CORRECTED
    assert world.status() is CancellationStatus.FAILED
    assert _money(world) == (30000, 30000, "", PaymentStatus.PAID)
    assert world.send(Fate.APPLY)["verdict"]["status"] == "FAILED"  # a late rerun sends nothing
    assert world.kcp.requests == []


def test_the_sweep_corrects_a_failed_cancel_that_kcp_applied_after_all_and_only_once(
    world: World,
) -> None:
    from datetime import timedelta

    from cancelflow.cancellations import sweep

    world.decide()
    world.run_on(world.send(Fate.DECLINE))
    assert world.status() is CancellationStatus.FAILED
    assert _money(world) == (30000, 30000, "", PaymentStatus.PAID)
    world.kcp.payments[TNO].balance -= 10000  # KCP applied it after all (its answer was wrong)
    since = world.clock.now() - timedelta(days=30)

    first = sweep.sweep_payment(world.store, world.kcp, world.clock, SHOP, TNO, since)
    again = sweep.sweep_payment(world.store, world.kcp, world.clock, SHOP, TNO, since)

    assert (first.finding, first.announce) == (sweep.Finding.CORRECTED, True)
    assert again.finding is sweep.Finding.AGREES
    assert world.status() is CancellationStatus.SUCCEEDED
    assert _money(world) == (20000, 20000, "", PaymentStatus.PARTIALLY_CANCELLED)
    corrected = world.store.get_cancellation(SHOP, world.cid)
    assert corrected is not None and corrected.corrected_from == "FAILED"
    assert corrected.attempts[-1].kind == "SWEEP"
    # The shop is told twice, once per change: it failed, then it was corrected.
    told = sorted((e.type, e.data["status"]) for e in world.store.events.values())
    assert told == [("cancellation.corrected", "SUCCEEDED"), ("cancellation.failed", "FAILED")]


def test_the_sweep_counts_a_gap_no_cancel_explains_and_changes_nothing(world: World) -> None:
    from datetime import timedelta

    from cancelflow.cancellations import sweep

    world.kcp.payments[TNO].balance -= 7000  # e.g. a cancel made in KCP's merchant admin
    before = world.snapshot()
    since = world.clock.now() - timedelta(days=30)

    swept = sweep.sweep_payment(world.store, world.kcp, world.clock, SHOP, TNO, since)

    assert (swept.finding, swept.kcp_balance, swept.our_balance) == (
        sweep.Finding.MISMATCH,
        23000,
        30000,
    )
    assert world.snapshot() == before


def test_reconcile_run_again_after_voiding_a_dead_runs_attempt_still_says_never_sent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.decide()
    _die_after_begin_send(world, monkeypatch)
    world.clock.at += cancellations.DISPATCH_DEADLINE

    first = world.reconcile()
    second = world.reconcile()  # its first run's result was lost after it voided the attempt

    assert first == second
    assert first["verdict"] == {"status": "FAILED", "reasons": ["GATEWAY_UNREACHABLE"]}
    assert world.settle(first)["status"] == "FAILED"
    assert _money(world) == (30000, 30000, "", PaymentStatus.PAID)
    assert world.kcp.requests == []
