"""The console's state machine graph (Graphviz's dot over the real ASL) and its masking."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from local.console import graph
from local.console.mask import pretty

MACHINES = sorted(p.name.removesuffix(".asl.json") for p in graph.MACHINES.glob("*.asl.json"))
HAPPY_CANCEL = ["Decide", "SendCancel", "Settle", "Notify"]


def _groups(svg: str, cls: str) -> dict[str, str]:
    """Each SVG group of a class: its <title> (a state's name, or `a->b` for an edge) → classes."""
    found = {}
    for match in re.finditer(r'<g id="[^"]*" class="([^"]*)">\s*<title>([^<]*)</title>', svg):
        classes, title = match.groups()
        if cls in classes.split():
            found[title.replace("&#45;", "-").replace("&gt;", ">")] = classes
    return found


def _svg(stem: str, entered: list[str], waiting: str = "", failed: str = "") -> str:
    machine = graph.machine_for(stem)
    path = list(graph.path_edges(entered, machine))
    return graph.render_svg(graph.dot_source(machine, entered, path, waiting, failed))


@pytest.mark.parametrize("stem", MACHINES)
def test_every_state_of_every_machine_is_drawn(stem: str) -> None:
    definition = json.loads((graph.MACHINES / f"{stem}.asl.json").read_text(encoding="utf-8"))
    names = set(definition["States"])
    for state in definition["States"].values():
        names |= set((state.get("ItemProcessor") or state.get("Iterator") or {}).get("States", {}))
    svg = _svg(stem, [])
    drawn = set(_groups(svg, "state"))
    maps = {n for n, s in graph.machine_for(stem).states.items() if s["Type"] == "Map"}
    assert names - maps <= drawn, names - drawn
    for name in maps:  # a Map is a frame around its item states, labelled with its name
        assert f'id="state&#45;{name}"' in svg and name in svg


def test_the_happy_cancel_path_is_highlighted_and_the_reconcile_loop_is_not() -> None:
    svg = _svg("cancel_refund", HAPPY_CANCEL)
    states, edges = _groups(svg, "state"), _groups(svg, "taken")
    assert all("taken" in states[name] for name in HAPPY_CANCEL)
    assert "taken" not in states["WaitForKcp"] and "taken" not in states["Reconcile"]
    taken_edges = {e for e, classes in edges.items() if "->" in e}
    assert taken_edges == {
        "__start->Decide",
        "Decide->SendCancel",
        "SendCancel->Settle",
        "Settle->Notify",
    }


def test_a_route_a_step_raises_is_drawn_as_a_way_on_and_a_real_error_as_a_catch() -> None:
    svg = _svg("cancel_refund", ["Decide", "SendCancel", "WaitForKcp", "Reconcile", "Settle"])
    edges = _groups(svg, "edge")
    assert "route" in edges["SendCancel->WaitForKcp"].split()
    assert "taken" in edges["SendCancel->WaitForKcp"].split()
    assert "catch" in edges["SendCancel->Busy"].split()


def test_the_state_an_execution_waits_in_is_marked_and_a_failed_one_too() -> None:
    entered = ["Decide", "SendCancel", "WaitForKcp"]
    states = _groups(_svg("cancel_refund", entered, waiting="WaitForKcp"), "state")
    assert "waiting" in states["WaitForKcp"].split()
    assert not [n for n, c in states.items() if "waiting" in c.split() and n != "WaitForKcp"]
    states = _groups(_svg("cancel_refund", ["Decide"], failed="Decide"), "state")
    assert "failed" in states["Decide"].split()


def test_the_billing_maps_lanes_are_drawn_inside_the_map_and_the_run_goes_through_it() -> None:
    entered = ["Begin", "Busy?", "FindDue", "ChargePage", "Tally", "MorePages?", "Done"]
    svg = _svg("subscription_billing", entered)
    cluster = re.search(r'<g id="state&#45;ChargePage" class="([^"]*)">(.*?)</g>', svg, re.S)
    assert cluster and "taken" in cluster.group(1)
    lanes = _groups(svg, "state")
    assert {"ChargeLane", "MoreToDo?", "WaitForKcp", "LaneDone", "LaneFailed"} <= set(lanes)
    taken = {e for e in _groups(svg, "taken") if "->" in e}
    # Into the Map and out of it: drawn to and from its item states, clipped at the frame.
    assert "FindDue->ChargeLane" in taken and any(e.endswith("->Tally") for e in taken)


def test_a_states_input_is_shown_with_secrets_and_account_numbers_masked() -> None:
    shown = pretty(
        json.dumps(
            {
                "tno": "20261203139372",
                "refund_account": {"bank_code": "BK04", "number": "110-123-456789"},
                "batch_key": "bk_live_9f8e7d",
                "note": "환불 계좌 110-123-456789, 2026-12-03",
                "card": "4111 1111 1111 1111",
            }
        )
    )
    assert "456789" not in shown and "bk_live" not in shown and "4111 1111" not in shown
    assert "6789" in shown and "1111" in shown  # the last four digits stay, to tell them apart
    assert "20261203139372" in shown and "2026-12-03" in shown  # a tno and a date are no secret


def test_graphviz_is_installed_where_the_console_looks() -> None:
    assert Path(graph.DOT).is_file(), "no dot: make setup installs Debian's graphviz"
