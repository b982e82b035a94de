"""The cancel machine and its steps' typed results agree: every route a step may raise is
caught by name and goes where the route says, never retried, and the happy path has no Choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cancelflow.cancellations.steps import (
    HAPPY,
    OFF_PATH,
    ROUTES,
    Next,
    Route,
    RouteToReconcile,
    RouteToSettle,
    Step,
    handed_on,
    received,
)

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "cancel_refund.asl.json"
STATES: dict[str, Any] = json.loads(ASL.read_text())["States"]
# Where each kind of result is taken: the state that acts on it.
TAKEN_BY = {
    Next.SEND: "SendCancel",
    Next.RECONCILE: "WaitForKcp",
    Next.WAIT: "WaitForKcp",
    Next.SETTLE: "Settle",
}


@pytest.mark.parametrize("task", sorted(HAPPY))
def test_a_steps_happy_result_is_its_tasks_next_state(task: str) -> None:
    assert STATES[task]["Next"] == TAKEN_BY[HAPPY[task]]


@pytest.mark.parametrize("task", sorted(OFF_PATH))
def test_every_route_a_step_may_raise_is_caught_where_it_leads_and_never_retried(
    task: str,
) -> None:
    catches = {c["ErrorEquals"][0]: c for c in STATES[task].get("Catch", [])}
    for to in OFF_PATH[task]:
        name = ROUTES[to].__name__
        assert catches[name]["Next"] == TAKEN_BY[to], (task, name)
        assert catches[name]["ResultPath"] == "$.step"  # where the next state reads it
    first_retry = STATES[task]["Retry"][0]
    assert first_retry["MaxAttempts"] == 0
    assert set(first_retry["ErrorEquals"]) == {ROUTES[to].__name__ for to in OFF_PATH[task]}


def test_the_machine_catches_no_route_its_steps_do_not_raise() -> None:
    raised = {ROUTES[to].__name__ for routes in OFF_PATH.values() for to in routes}
    caught = {
        name
        for state in STATES.values()
        for catch in state.get("Catch", [])
        for name in catch["ErrorEquals"]
        if name.startswith("Route")
    }
    assert caught == raised


def test_the_happy_path_enters_four_states_and_no_choice() -> None:
    path, state = [], "Decide"
    while state:
        path.append(state)
        state = STATES[state].get("Next")
    assert path == ["Decide", "SendCancel", "Settle", "Notify"]
    assert STATES["Notify"]["End"] is True
    assert all(s["Type"] != "Choice" for s in STATES.values())


def test_a_routed_result_reaches_the_next_state_as_it_was_raised() -> None:
    step: Step = {"next": Next.RECONCILE, "tries": 0}
    with pytest.raises(RouteToReconcile) as raised:
        handed_on(step, "SendCancel")
    # What Lambda puts in the Catch's Cause, and Step Functions in $.step:
    cause = {"errorMessage": str(raised.value), "errorType": type(raised.value).__name__}
    caught = {"Error": "RouteToReconcile", "Cause": json.dumps(cause)}
    assert received(caught) == {"next": "RECONCILE", "tries": 0}


def test_a_happy_result_is_returned_and_an_impossible_one_fails_the_step() -> None:
    verdict: Step = {"next": Next.SETTLE, "verdict": {"status": "SUCCEEDED"}}
    assert handed_on(verdict, "SendCancel") is verdict
    assert received(verdict) == verdict
    with pytest.raises(RouteToSettle):
        handed_on(verdict, "Decide")
    with pytest.raises(RuntimeError):
        handed_on({"next": Next.SEND}, "Reconcile")  # no way back to sending, by design
    assert all(issubclass(r, Route) for r in ROUTES.values()) and set(ROUTES) == set(Next)
