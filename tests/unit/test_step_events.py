"""Each state machine's Lambda task passes the fields its handler's event type names: every
field the handler requires, none it does not know (the types are what mypy checks handlers
against, so they must be what the ASL sends)."""

from __future__ import annotations

import inspect
import json
import re
import types
from typing import Any

import pytest

from local.lambda_runtime import load_module
from local.template import ROOT, Template

TEMPLATE = Template()


def lambda_tasks() -> list[tuple[str, str, set[str]]]:
    """(state machine file:state, function logical id, the keys its Parameters pass)."""
    found = []
    for machine in TEMPLATE.of_type("AWS::Serverless::StateMachine").values():
        props = machine["Properties"]
        arns = {
            name: value["Fn::GetAtt"][0]
            for name, value in props.get("DefinitionSubstitutions", {}).items()
            if isinstance(value, dict) and "Fn::GetAtt" in value
        }
        definition = json.loads((ROOT / props["DefinitionUri"]).read_text())
        for state_name, state in _states(definition["States"]):
            match = re.fullmatch(r"\$\{(\w+)\}", state.get("Resource", ""))
            if state["Type"] == "Task" and match and match.group(1) in arns:
                keys = {key.removesuffix(".$") for key in state.get("Parameters", {})}
                found.append((f"{props['DefinitionUri']}:{state_name}", arns[match.group(1)], keys))
    return found


def _states(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, state in states.items():
        out.append((name, state))
        for inner in ("Iterator", "ItemProcessor"):
            if inner in state:
                out += _states(state[inner]["States"])
        for branch in state.get("Branches", []):
            out += _states(branch["States"])
    return out


def event_types(logical_id: str) -> list[Any]:
    """The TypedDicts the function's handler takes as its event (one, or each of a union)."""
    function = TEMPLATE.functions()[logical_id]
    module = load_module(function.code_dir, function.handler, f"step_events_{logical_id}")
    handler = inspect.unwrap(getattr(module, function.handler.rsplit(".", 1)[1]))
    event = handler.__annotations__["event"]
    return list(event.__args__) if isinstance(event, types.UnionType) else [event]


TASKS = lambda_tasks()


def test_every_lambda_task_of_every_state_machine_is_found() -> None:
    functions = {logical_id for _, logical_id, _ in TASKS}
    assert functions == {
        "BatchRunFunction",
        "BatchLaneFunction",
        "DecideFunction",
        "SendCancelFunction",
        "ReconcileFunction",
        "SettleFunction",
        "NotifyFunction",
        "SweepFunction",
        "BillingFindDueFunction",
        "BillingChargeFunction",
        "BillingTallyFunction",
    }


@pytest.mark.parametrize(("state", "logical_id", "passed"), TASKS, ids=[t[0] for t in TASKS])
def test_a_lambda_task_passes_what_its_handlers_event_type_names(
    state: str, logical_id: str, passed: set[str]
) -> None:
    fits = [
        kind.__name__
        for kind in event_types(logical_id)
        if kind.__required_keys__ <= passed <= kind.__required_keys__ | kind.__optional_keys__
    ]
    assert fits, f"{state} passes {sorted(passed)}: no event type of {logical_id} takes that"
