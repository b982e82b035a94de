"""The cancel steps against a model of KCP that may apply a request at any later moment.

Hypothesis drives cancels (full and partial, one or two payments) through decide, send,
reconcile and settle in any order, any number of times, while KCP applies, loses, holds,
declines or never receives each request, applies held ones when it likes, and fails
inquiries. After every step, the money must be right:

- KCP never refunds more than was paid, and no cancellation is refunded twice or sent twice;
- what cancelflow calls SUCCEEDED, KCP applied (for that cancellation, that amount), and what
  it calls FAILED or REJECTED, KCP did not apply;
- the payment's available balance is its balance less every hold, and the send lock belongs to
  the one cancellation that may be at KCP;
- once nothing is in flight and KCP holds nothing back, cancelflow's balance is KCP's.

The store is the in-memory fake (held to DynamoStore by test_store_contract.py); a few
examples run on DynamoStore itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from moto import mock_aws

from cancelflow.adapters.dynamodb.store import DynamoStore
from cancelflow.cancellations import review
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.model import HOLDING, SENT, TERMINAL, Cancellation, CancellationStatus
from cancelflow.cancellations.ports import PaymentBusy
from cancelflow.cancellations.service import CancelRequest
from cancelflow.cancellations.sweep import sweep_payment
from cancelflow.kernel.errors import Problem
from cancelflow.payments.model import Payment, PaymentStatus
from local import moto_fixes
from local.template import REGION, Template
from tests.fakes.examples import SHOP, a_cancellation, a_payment
from tests.fakes.kcp import Fate, KcpModel, RequestState
from tests.fakes.store import MemoryStore
from tests.fakes.workflow import RecordingStarter, SteppingClock, WaitingExecutions

TNOS = ("20261123000001", "20261123000002")
MAX_CANCELS = 4  # a few per example, so that each gets far
MAX_TRIES = 3  # the template's reconcile tries, small: NEEDS_REVIEW is reached often
# What the state machine's Busy state passes to Settle when the send lock stays taken.
BUSY = {"next": "SETTLE", "verdict": {"status": "FAILED", "reasons": ["PAYMENT_BUSY"]}}


amounts = st.sampled_from([1000, 3000, 10000, 30000])
asks = st.none() | st.sampled_from([500, 1000, 2000, 5000, 10000, 30000])
fates = st.lists(st.sampled_from(Fate), min_size=1, max_size=3)


class CancelWorkflow(RuleBasedStateMachine):
    cancels = Bundle("cancels")

    def __init__(self) -> None:
        super().__init__()
        self.store: Any = self.new_store()
        self.kcp = KcpModel()
        self.clock = SteppingClock()
        self.starter = RecordingStarter()
        self.tnos: list[str] = []
        self.routes: dict[str, dict[str, Any]] = {}  # each cancel's last step result ($.step)
        self.opened = 0

    def new_store(self) -> Any:
        return MemoryStore()

    def _payment(self, tno: str) -> Payment:
        raw = getattr(self.store, "raw_payment", None)  # the fake shows what was written
        payment = raw(SHOP, tno) if raw else self.store.get_payment(SHOP, tno)
        assert payment is not None
        return payment

    # --- the world ---------------------------------------------------------------------

    @initialize(paid=st.lists(amounts, min_size=1, max_size=2), checks_rem_mny=st.booleans())
    def payments(self, paid: list[int], checks_rem_mny: bool) -> None:
        self.kcp.checks_rem_mny = checks_rem_mny
        for tno, amount in zip(TNOS, paid, strict=False):
            assert self.store.put_payment(a_payment(tno, amount))
            self.kcp.approve(tno, amount)
            self.tnos.append(tno)

    @precondition(lambda self: self.opened < MAX_CANCELS)
    @rule(target=cancels, which=st.integers(0, 1), amount=asks, key=st.integers(0, 5))
    def request_via_api(self, which: int, amount: int | None, key: int) -> Any:
        tno = self.tnos[which % len(self.tnos)]
        request = CancelRequest("CHANGE_OF_MIND", "단순 변심", amount, requested_by="SHOP")
        self.opened += 1
        try:
            cancellation, _ = cancellations.request_cancellation(
                self.store, self.starter, self.clock, SHOP, tno, request, f"key-{key}"
            )
        except Problem:
            return multiple()  # ineligible now, or the key was used for another request
        return cancellation.cancellation_id

    @precondition(lambda self: self.opened < MAX_CANCELS)
    @rule(target=cancels, which=st.integers(0, 1), amount=asks)
    def request_directly(self, which: int, amount: int | None) -> str:
        """A cancellation written as the API writes it, without the API's early check."""
        self.opened += 1
        cid = f"cnl_direct{self.opened:04d}"
        cancellation = a_cancellation(cid, self.tnos[which % len(self.tnos)], amount)
        self.store.create_cancellation(cancellation, cid, "hash", self.clock.now())
        return cid

    @precondition(lambda self: bool(self.kcp.held()))
    @rule(pick=st.integers(0, 7))
    def kcp_applies_a_held_request(self, pick: int) -> None:
        held = self.kcp.held()
        self.kcp.apply(held[pick % len(held)])

    @rule(count=st.integers(1, 4))
    def inquiries_fail(self, count: int) -> None:
        self.kcp.failing_inquiries += count

    # --- the steps: as the state machine routes them, or any of them at any time ---------

    @rule(cid=cancels, steps=st.integers(1, 6), fate=fates)
    def advance(self, cid: str, steps: int, fate: list[Fate]) -> None:
        """Up to `steps` steps in the state machine's order, from the last step's result."""
        for _ in range(steps):
            route = self.routes.get(cid, {}).get("next")
            if route is None:
                self._decide(cid)
            elif route == "SEND":
                self._send(cid, fate)
            elif route in ("RECONCILE", "WAIT"):
                self._reconcile(cid)
            elif route == "SETTLE":
                self._settle(cid)
            elif route == "REVIEW":  # its execution waits for an operator from here on
                self._review(cid)
            else:  # settled: the execution ended
                return

    @rule(cid=cancels, step=st.sampled_from(["decide", "send", "reconcile", "settle"]), fate=fates)
    def any_step(self, cid: str, step: str, fate: list[Fate]) -> None:
        """A step run again, out of order, or after it already ran (a retry, a redrive)."""
        if step == "send":
            self._send(cid, fate)
        else:
            getattr(self, f"_{step}")(cid)

    def _decide(self, cid: str) -> None:
        self.routes[cid] = cancellations.decide(self.store, self.clock, SHOP, cid)

    def _send(self, cid: str, fate: list[Fate]) -> None:
        self.kcp.next_fates, self.kcp.sending_for = list(fate), cid
        try:
            self.routes[cid] = cancellations.send(self.store, self.kcp, self.clock, SHOP, cid)
        except PaymentBusy:  # the state machine retries, then its Busy state settles FAILED
            self.routes[cid] = BUSY
        finally:
            self.kcp.next_fates, self.kcp.sending_for = [], ""

    def _reconcile(self, cid: str) -> None:
        tries = int(self.routes.get(cid, {}).get("tries", 0))
        self.routes[cid] = cancellations.reconcile(
            self.store, self.kcp, self.clock, SHOP, cid, tries, MAX_TRIES
        )

    def _settle(self, cid: str) -> None:
        route = self.routes.get(cid, {})
        if "verdict" not in route:
            return  # the state machine reaches Settle only with a verdict
        outcome = cancellations.settle(self.store, self.clock, SHOP, cid, route["verdict"])
        assert outcome["cancellation_id"] == cid
        # Every execution ends in a terminal status: Notify tells the customer this one.
        assert CancellationStatus(outcome["status"]) in TERMINAL, (outcome, route)
        self.routes[cid] = {"next": "DONE", "outcome": outcome}

    def _review(self, cid: str) -> None:
        route = self.routes.get(cid, {})
        review.open_review(
            self.store, WaitingExecutions(), self.clock, SHOP, cid, f"token-{cid}", route["verdict"]
        )
        found = self.store.get_cancellation(SHOP, cid)
        # Under review now, or already settled by the sweep's proof (the review step hands that on).
        assert found is not None and found.status in TERMINAL, found
        self.routes[cid] = {"next": "DONE", "outcome": {"status": found.status.value}}

    @rule()
    def sweep(self) -> None:
        since = self.clock.now() - timedelta(days=30)
        for shop_id, tno in self.store.to_sweep(since):
            sweep_payment(self.store, self.kcp, self.clock, shop_id, tno, since)

    # --- what must hold after every step -------------------------------------------------

    def _cancellations(self, tno: str) -> list[Cancellation]:
        return self.store.payment_cancellations(SHOP, tno)

    @invariant()
    def kcp_never_refunds_more_than_was_paid(self) -> None:
        for tno in self.tnos:
            payment = self.kcp.payments[tno]
            assert 0 <= payment.balance <= payment.paid, (tno, payment)

    @invariant()
    def no_cancellation_is_sent_twice_or_refunded_twice(self) -> None:
        for tno in self.tnos:
            for c in self._cancellations(tno):
                sent = [r for r in self.kcp.requests if r.tag == c.cancellation_id]
                assert len(sent) <= 1, (c.cancellation_id, sent)

    @invariant()
    def what_cancelflow_calls_refunded_kcp_refunded(self) -> None:
        for tno in self.tnos:
            succeeded = 0
            for c in self._cancellations(tno):
                applied = self.kcp.applied_for(c.cancellation_id)
                if c.status is CancellationStatus.SUCCEEDED:
                    assert [r.refunded for r in applied] == [c.amount], (c, applied)
                    succeeded += c.amount or 0
                if c.status in (CancellationStatus.FAILED, CancellationStatus.REJECTED):
                    assert applied == [], ("KCP applied a cancel reported as not made", c)
            assert succeeded <= self.kcp.refunded(tno)

    @invariant()
    def holds_and_the_lock_add_up(self) -> None:
        for tno in self.tnos:
            payment = self._payment(tno)
            mine = self._cancellations(tno)
            held = sum(c.amount or 0 for c in mine if c.status in HOLDING)
            assert 0 <= payment.available <= payment.balance, payment
            assert payment.available == payment.balance - held, (payment, mine)
            at_kcp = [c.cancellation_id for c in mine if c.status in SENT]
            assert len(at_kcp) <= 1, at_kcp
            assert payment.in_flight == (at_kcp[0] if at_kcp else ""), (payment, at_kcp)

    @invariant()
    def once_settled_cancelflow_sees_kcps_balance(self) -> None:
        for tno in self.tnos:
            payment = self._payment(tno)
            in_flight = any(c.status in SENT for c in self._cancellations(tno))
            held_at_kcp = any(r.tno == tno for r in self.kcp.held())
            if in_flight or held_at_kcp:
                continue
            assert payment.balance == self.kcp.payments[tno].balance, (payment, self.kcp)
            expected = (
                PaymentStatus.PAID
                if payment.balance == payment.amount
                else PaymentStatus.CANCELLED
                if payment.balance == 0
                else PaymentStatus.PARTIALLY_CANCELLED
            )
            assert payment.status is expected, payment

    @invariant()
    def each_kcp_request_is_applied_at_most_once(self) -> None:
        for request in self.kcp.requests:
            assert request.state in RequestState
            assert request.refunded == 0 or request.state is RequestState.APPLIED


CancelWorkflow.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_cancel_workflow_against_a_kcp_that_may_apply_late = CancelWorkflow.TestCase


class CancelWorkflowOnDynamo(CancelWorkflow):
    """The same machine on DynamoStore (moto, the template's table): fewer, slower examples
    that keep the fake honest where the contract suite's scenarios do not reach."""

    client: Any = None  # set by the test below, inside one moto

    def new_store(self) -> Any:
        self.client.create_table(**LEDGER)
        return DynamoStore(self.client, LEDGER["TableName"])

    def teardown(self) -> None:
        self.client.delete_table(TableName=LEDGER["TableName"])


(_ledger,) = Template().table_definitions()
LEDGER = _ledger["create"]


def test_the_same_workflow_on_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_fixes.install()
    with mock_aws():
        monkeypatch.setattr(
            CancelWorkflowOnDynamo, "client", boto3.client("dynamodb", region_name=REGION)
        )
        run_state_machine_as_test(
            CancelWorkflowOnDynamo,
            settings=settings(
                max_examples=8,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
