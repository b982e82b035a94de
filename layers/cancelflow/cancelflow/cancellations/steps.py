"""What each workflow step hands the state machine, typed: where it goes next, and with what.

A step returns its result; its handler returns the happy one and raises any other as a Route
error that the state machine Catches by name. So a happy-path cancel enters no Choice state —
Decide, SendCancel, Settle, Notify and nothing else (Standard workflows bill every transition) —
and every other path still goes where the result says. tests/unit/test_steps_and_machine.py
ties each route here to statemachine/cancel_refund.asl.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, Required, TypedDict, cast


class Next(StrEnum):
    SEND = "SEND"  # eligible and held: send it to KCP
    RECONCILE = "RECONCILE"  # may have reached KCP, answer unknown: wait, then ask KCP
    WAIT = "WAIT"  # asked, still unknown: wait and ask again
    SETTLE = "SETTLE"  # the verdict is known: write it
    REVIEW = "REVIEW"  # KCP never told its fate: wait for an operator (or the sweep's proof)


class Verdict(TypedDict, total=False):
    """The outcome Settle writes; absent fields keep what the cancellation has."""

    status: Required[str]  # a CancellationStatus
    reasons: list[str]
    res_cd: str
    res_msg: str
    cancelled_at: str
    partial_seq: str
    policy_version: int | None
    confirmed_by: str


class Step(TypedDict, total=False):
    next: Required[Next]
    verdict: Verdict  # with SETTLE and REVIEW
    tries: int  # with RECONCILE and WAIT: the inquiries made so far
    amount: int  # with SEND: the amount held
    tax_free_amount: int  # with SEND: its tax-free part (mixed taxation; the rest is taxable)


class Route(Exception):
    """A step's result off its happy path, raised for the state machine's Catch to route."""

    to: ClassVar[Next]

    def __init__(self, step: Step) -> None:
        super().__init__(json.dumps(step))
        self.step = step


class RouteToSend(Route):
    to = Next.SEND


class RouteToReconcile(Route):
    to = Next.RECONCILE


class RouteToWait(Route):
    to = Next.WAIT


class RouteToSettle(Route):
    to = Next.SETTLE


class RouteToReview(Route):
    to = Next.REVIEW


ROUTES: dict[Next, type[Route]] = {r.to: r for r in Route.__subclasses__()}

# Each step's Task state: its happy result (the Task's Next), and the routes it may raise.
HAPPY: dict[str, Next] = {"Decide": Next.SEND, "SendCancel": Next.SETTLE, "Reconcile": Next.SETTLE}
# REVIEW from any step: a re-run finds the cancel already waiting for its review.
OFF_PATH: dict[str, frozenset[Next]] = {
    "Decide": frozenset({Next.SETTLE, Next.RECONCILE, Next.REVIEW}),  # rejected; or a re-run
    "SendCancel": frozenset({Next.RECONCILE, Next.REVIEW}),  # KCP's answer is unknown
    "Reconcile": frozenset({Next.WAIT, Next.REVIEW}),  # still unknown: ask again, or review
}


def handed_on(step: Step, task: str) -> Step:
    """The step's result for its Task state: returned when happy, raised as its Route if not."""
    to = Next(step["next"])
    if to is HAPPY[task]:
        return step
    if to not in OFF_PATH[task]:  # the machine has no way there: fail here, visibly
        raise RuntimeError(f"{task} cannot route to {to}")
    raise ROUTES[to](step)


def received(state: Mapping[str, Any]) -> Step:
    """A step's result as the next state gets it: returned, or caught as {"Error", "Cause"}
    (Lambda's error document in Cause, the step in its errorMessage)."""
    if "Error" in state:
        document = json.loads(state["Cause"])
        return cast(Step, json.loads(document["errorMessage"]))
    return cast(Step, dict(state))
