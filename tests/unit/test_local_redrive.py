"""Where the local stack's redrive goes on (local/moto_fixes.py): the top-level state that was
entered and never exited, whatever ran inside a Map or Parallel state before it failed."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from local.moto_fixes import _resume_point

EXECUTION = SimpleNamespace(
    state_machine=SimpleNamespace(definition=json.dumps({"StartAt": "Begin", "States": {}})),
    input_data={"billing_date": "2041-01-01"},
)


def entered(kind: str, name: str, state_input: Any = None) -> dict[str, Any]:
    return {
        "type": f"{kind}StateEntered",
        "stateEnteredEventDetails": {"name": name, "input": json.dumps(state_input or {})},
    }


def exited(kind: str, name: str) -> dict[str, Any]:
    return {"type": f"{kind}StateExited", "stateExitedEventDetails": {"name": name}}


def event(kind: str) -> dict[str, Any]:
    return {"type": kind}


def test_a_task_that_failed_is_resumed_with_the_input_it_was_given() -> None:
    events = [
        event("ExecutionStarted"),
        entered("Task", "Decide", {"a": 1}),
        exited("Task", "Decide"),
        entered("Task", "Settle", {"a": 2}),
        event("LambdaFunctionFailed"),
        event("ExecutionFailed"),
    ]
    assert _resume_point(events, EXECUTION) == ("Settle", {"a": 2})


def test_states_inside_a_map_are_not_the_top_level_one_that_failed() -> None:
    events = [
        entered("Task", "FindDue"),
        exited("Task", "FindDue"),
        entered("Map", "ChargePage", {"page": 1}),
        event("MapStateStarted"),
        entered("Task", "ChargeLane"),
        exited("Task", "ChargeLane"),
        entered("Parallel", "Inner"),
        entered("Pass", "Branch"),
        exited("Pass", "Branch"),
        exited("Parallel", "Inner"),
        entered("Task", "ChargeLane"),
        event("MapIterationFailed"),
        event("MapStateFailed"),
        event("ExecutionFailed"),
    ]
    assert _resume_point(events, EXECUTION) == ("ChargePage", {"page": 1})


def test_after_a_map_that_completed_the_next_failed_state_is_the_one() -> None:
    events = [
        entered("Map", "ChargePage"),
        entered("Task", "ChargeLane"),
        exited("Task", "ChargeLane"),
        exited("Map", "ChargePage"),
        entered("Task", "Tally", {"results": []}),
        event("ExecutionFailed"),
        event("ExecutionRedriven"),
        entered("Task", "Tally", {"results": []}),
        exited("Task", "Tally"),
        entered("Task", "Notify", {"n": 1}),
        event("ExecutionFailed"),
    ]
    assert _resume_point(events, EXECUTION) == ("Notify", {"n": 1})


def test_an_execution_that_ended_before_its_first_state_starts_over() -> None:
    events = [event("ExecutionStarted"), event("ExecutionFailed")]
    assert _resume_point(events, EXECUTION) == ("Begin", {"billing_date": "2041-01-01"})


def test_nothing_is_run_again_when_no_state_was_left_unfinished() -> None:
    events = [entered("Task", "Decide"), exited("Task", "Decide"), event("ExecutionAborted")]
    with pytest.raises(Exception, match="nothing to resume from"):
        _resume_point(events, EXECUTION)
