"""Review: a cancel whose fate KCP never told waits for an operator's decision (or the sweep's
proof), and then settles exactly as decided: the money moves once, the hold is never guessed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from cancelflow.cancellations import review, sweep
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.model import CancellationStatus
from cancelflow.cancellations.ports import ReviewQuery
from cancelflow.cancellations.service import CancelRequest
from cancelflow.kernel.errors import Problem
from tests.fakes.examples import SHOP, a_payment
from tests.fakes.kcp import Fate, KcpModel
from tests.fakes.store import MemoryStore
from tests.fakes.workflow import RecordingStarter, SteppingClock, WaitingExecutions

TNO = "20261123000001"
OPERATOR = "arn:aws:iam::123456789012:user/ops-kim"


@dataclass
class Case:
    store: MemoryStore = field(default_factory=MemoryStore)
    kcp: KcpModel = field(default_factory=KcpModel)
    clock: SteppingClock = field(default_factory=SteppingClock)
    waits: WaitingExecutions = field(default_factory=WaitingExecutions)
    cid: str = ""

    def cancellation(self) -> Any:
        return self.store.get_cancellation(SHOP, self.cid)

    def open(self, token: str = "token-1") -> dict[str, Any]:  # noqa: S107 (a task token)
        """The workflow reaches its review state: a new task token waits."""
        self.waits.waiting.add(token)
        verdict = {"status": "NEEDS_REVIEW", "reasons": ["NOT_CONFIRMED"]}
        return review.open_review(
            self.store, self.waits, self.clock, SHOP, self.cid, token, verdict, "exec-1"
        )

    def decide(self, outcome: str, note: str = "KCP admin shows it cancelled") -> Any:
        return review.decide(
            self.store, self.kcp, self.waits, self.clock, SHOP, self.cid, outcome, note, OPERATOR
        )

    def settle_from(self, token: str) -> dict[str, Any]:
        """What the execution does with the result its token was handed: Settle."""
        verdict = self.waits.results[token]["verdict"]
        return cancellations.settle(self.store, self.clock, SHOP, self.cid, verdict)

    def money(self) -> tuple[int, int, str]:
        p = self.store.get_payment(SHOP, TNO)
        assert p is not None
        return p.balance, p.available, p.in_flight


@pytest.fixture
def case() -> Case:
    """A 10,000 cancel of a 30,000 payment, sent, whose answer and inquiries said nothing."""
    c = Case()
    c.store.put_payment(a_payment(TNO, 30000))
    c.kcp.approve(TNO, 30000)
    cancellation, _ = cancellations.request_cancellation(
        c.store,
        RecordingStarter(),
        c.clock,
        SHOP,
        TNO,
        CancelRequest("CHANGE_OF_MIND", "", 10000),
        "k",
    )
    c.cid = cancellation.cancellation_id
    cancellations.decide(c.store, c.clock, SHOP, c.cid)
    c.kcp.next_fates = [Fate.HOLD]
    route = cancellations.send(c.store, c.kcp, c.clock, SHOP, c.cid)
    while route["next"] != "REVIEW":  # the machine then waits at AwaitOperatorReview
        route = cancellations.reconcile(c.store, c.kcp, c.clock, SHOP, c.cid, route["tries"], 2)
    assert route["verdict"]["status"] == "NEEDS_REVIEW"
    return c


def test_an_open_review_keeps_the_hold_and_the_lock(case: Case) -> None:
    assert case.open()["opened"] is True
    found = case.cancellation()
    assert found.status is CancellationStatus.NEEDS_REVIEW
    assert found.reasons == ("NOT_CONFIRMED",)
    assert case.money() == (30000, 20000, case.cid)
    page = case.store.review_page(ReviewQuery(), None)
    assert [c.cancellation_id for c in page.cancellations] == [case.cid]


def test_applied_decision_settles_succeeded_and_records_who_when_why(case: Case) -> None:
    case.open()
    case.kcp.apply(case.kcp.held()[0])  # the operator saw it in KCP's admin
    decided, how = case.decide("APPLIED")
    assert how == "RESUMED"
    assert decided.status is CancellationStatus.NEEDS_REVIEW  # until the execution settles it
    outcome = case.settle_from("token-1")

    assert outcome["status"] == "SUCCEEDED"
    assert case.money() == (20000, 20000, "")
    found = case.cancellation()
    assert found.confirmed_by == "OPERATOR"
    decision = found.review.decided
    assert (decision.outcome, decision.by, decision.note) == (
        "APPLIED",
        OPERATOR,
        "KCP admin shows it cancelled",
    )
    assert decision.evidence["kcp"]["remaining_balance"] == 20000
    assert decision.evidence["kcp_says"] == "APPLIED"
    assert decision.evidence["ours"] == {
        "balance": 30000,
        "available": 20000,
        "in_flight": case.cid,
    }
    assert case.store.review_page(ReviewQuery(), None).cancellations == ()


def test_not_applied_decision_releases_the_hold(case: Case) -> None:
    case.open()
    case.decide("NOT_APPLIED", "KCP admin shows no cancel; support called the buyer")
    assert case.settle_from("token-1")["status"] == "FAILED"
    assert case.money() == (30000, 30000, "")
    assert case.cancellation().reasons == ("NOT_APPLIED",)


def test_a_decision_needs_a_note(case: Case) -> None:
    case.open()
    with pytest.raises(Problem) as refused:
        case.decide("APPLIED", "  ")
    assert refused.value.code == "VALIDATION_FAILED"
    assert case.cancellation().review.decided is None


def test_an_operator_verdict_without_a_recorded_decision_moves_no_money(case: Case) -> None:
    case.open()
    forged = review.settle_with(CancellationStatus.SUCCEEDED, confirmed_by="OPERATOR")["verdict"]
    assert cancellations.settle(case.store, case.clock, SHOP, case.cid, forged)["status"] == (
        "NEEDS_REVIEW"
    )
    assert case.money() == (30000, 20000, case.cid)


def test_the_other_outcome_once_decided_is_refused(case: Case) -> None:
    case.open()
    case.decide("APPLIED")
    with pytest.raises(Problem) as refused:
        case.decide("NOT_APPLIED")
    assert refused.value.code == "REVIEW_DECIDED"


def test_a_decision_after_the_wait_timed_out_redrives_and_the_rerun_hands_it_on(case: Case) -> None:
    case.open()
    case.waits.waiting.clear()  # the wait timed out: the execution stopped, the case stays open
    assert case.cancellation().status is CancellationStatus.NEEDS_REVIEW
    _, how = case.decide("NOT_APPLIED", "checked with KCP support")
    assert how == "REDRIVEN" and case.waits.redriven == ["exec-1"]

    rerun = case.open("token-2")  # the redriven review state, with a new token
    assert rerun["opened"] is False
    assert case.settle_from("token-2")["status"] == "FAILED"
    assert case.money() == (30000, 30000, "")


def test_the_sweeps_proof_first_settles_it_and_wakes_the_execution(case: Case) -> None:
    case.open()
    case.kcp.apply(case.kcp.held()[0])
    swept = sweep.sweep_payment(
        case.store, case.kcp, case.clock, SHOP, TNO, case.clock.now() - timedelta(days=1)
    )
    assert swept.finding is sweep.Finding.CORRECTED
    assert swept.waiting == "token-1"  # the handler completes it; the execution announces
    assert case.money() == (20000, 20000, "")
    with pytest.raises(Problem) as late:
        case.decide("NOT_APPLIED")
    assert late.value.code == "REVIEW_NOT_OPEN"


def test_the_review_step_rerun_after_the_sweep_settled_it_goes_on(case: Case) -> None:
    case.open()
    case.kcp.apply(case.kcp.held()[0])
    sweep.sweep_payment(case.store, case.kcp, case.clock, SHOP, TNO, case.clock.now())
    assert case.open("token-2")["status"] == "SUCCEEDED"
    assert case.settle_from("token-2")["status"] == "SUCCEEDED"
    assert case.money() == (20000, 20000, "")  # once


def test_keep_alive_heartbeats_open_reviews_and_measures_the_oldest(case: Case) -> None:
    case.open()
    opened = case.cancellation().review.opened_at
    age = review.keep_alive(case.store, case.waits, case.clock)
    assert case.waits.heartbeats == ["token-1"]
    assert age is not None and age >= (case.clock.at - opened).total_seconds() - 1


def test_the_decision_is_read_under_the_contracts_name_or_the_consoles() -> None:
    from cancelflow.http.operator_requests import DecisionIn

    for key in ("decision", "outcome"):
        body = DecisionIn.model_validate({key: "APPLIED", "note": "KCP admin shows it"})
        assert body.outcome == "APPLIED"
    with pytest.raises(ValueError):
        DecisionIn.model_validate({"decision": "MAYBE", "note": "x"})
