"""A state machine's graph, laid out by Graphviz's `dot` from the real ASL and drawn as SVG.

Each state is a node whose SVG group carries `id="state-<name>"` and the classes `state`,
`taken` (the execution entered it), `waiting` (it is in it now) or `failed`; each transition
the execution followed is an edge of class `taken`. A Map's item states sit in a frame of their
own, so the billing run's lanes read as one box inside the run.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ROOT / "statemachine"
DOT = shutil.which("dot") or "/usr/bin/dot"
FONT = "NanumGothic, DejaVu Sans, sans-serif"

# Fill colours by what the state does (a person tells a Lambda from a decision at a glance).
KIND_FILL = {"Task": "#eef4ff", "Choice": "#fff7e6", "Wait": "#f3ecff", "Map": "#ffffff"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""
    kind: str = "next"  # next, choice, default, catch


@dataclass
class Machine:
    """The states and transitions of one ASL document, Map item states included."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)  # an item state -> its Map
    starts: dict[str, str] = field(default_factory=dict)  # a Map -> its first item state
    start: str = ""
    edges: list[Edge] = field(default_factory=list)


def is_route(error: str) -> bool:
    """An error a step raises to say where the workflow goes next (RouteToSettle), not a fault."""
    return error.startswith("RouteTo")


def _condition(rule: dict[str, Any]) -> str:
    """A Choice rule as a short label: `$.status == "UNKNOWN"`."""
    for key, value in rule.items():
        if key in ("Next", "Variable"):
            continue
        if key in ("And", "Or"):
            return f" {key.lower()} ".join(_condition(r) for r in value)
        if key == "Not":
            return "not " + _condition(value)
        op = re.sub(r"(String|Numeric|Boolean|Timestamp)", "", key).removesuffix("Path")
        ops = {
            "Equals": "==",
            "LessThan": "<",
            "GreaterThan": ">",
            "LessThanEquals": "<=",
            "GreaterThanEquals": ">=",
        }
        shown = (
            json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else f'"{value}"'
        )
        variable = rule.get("Variable", "").removeprefix("$.")
        if key == "IsPresent":
            return f"{variable} present" if value else f"{variable} absent"
        return f"{variable} {ops.get(op, op)} {shown}".strip()
    return ""


def parse(definition: dict[str, Any]) -> Machine:
    machine = Machine(start=definition["StartAt"])

    def walk(states: dict[str, Any], parent: str | None) -> None:
        for name, state in states.items():
            machine.states[name] = state
            if parent:
                machine.parent[name] = parent
            if state.get("Next"):
                machine.edges.append(Edge(name, state["Next"]))
            for rule in state.get("Choices", []):
                machine.edges.append(Edge(name, rule["Next"], _condition(rule), "choice"))
            if state.get("Default"):
                machine.edges.append(Edge(name, state["Default"], "otherwise", "default"))
            for catch in state.get("Catch", []):
                names = catch.get("ErrorEquals", [])
                errors = ", ".join(e.removeprefix("States.") for e in names)
                if names and all(is_route(e) for e in names):  # a step's chosen way on
                    machine.edges.append(Edge(name, catch["Next"], errors, "route"))
                else:
                    machine.edges.append(Edge(name, catch["Next"], f"catch {errors}", "catch"))
            if state.get("Type") == "Map":
                inner = state.get("ItemProcessor") or state.get("Iterator") or {}
                machine.starts[name] = inner.get("StartAt", "")
                walk(inner.get("States", {}), name)

    walk(definition["States"], None)
    return machine


@functools.cache
def machine_for(file_stem: str) -> Machine:
    return parse(json.loads((MACHINES / f"{file_stem}.asl.json").read_text(encoding="utf-8")))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def node_id(name: str) -> str:
    return "state-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


def dot_source(
    machine: Machine,
    taken: Iterable[str] = (),
    path: Iterable[tuple[str, str]] = (),
    waiting: str = "",
    failed: str = "",
) -> str:
    taken, path = set(taken), set(path)
    lines = [
        "digraph machine {",
        '  graph [rankdir=TB, nodesep=0.35, ranksep=0.42, bgcolor="transparent", '
        f'fontname="{FONT}", fontsize=11, pad=0.15];',
        f'  node [shape=box, style="rounded,filled", fontname="{FONT}", fontsize=12, '
        'color="#9aa5b1", fillcolor="#f4f6f8", fontcolor="#1f2933", margin="0.18,0.06", '
        "height=0.38];",
        f'  edge [fontname="{FONT}", fontsize=9, color="#9aa5b1", fontcolor="#52606d", '
        "arrowsize=0.7];",
        '  "__start" [id="state-__start", label="", shape=circle, width=0.16, height=0.16, '
        'style=filled, fillcolor="#52606d", color="#52606d"];',
    ]

    def node(name: str) -> str:
        state = machine.states[name]
        kind = state["Type"]
        classes = ["state", f"kind-{kind.lower()}"]
        fill, border, pen, font = KIND_FILL.get(kind, "#f4f6f8"), "#9aa5b1", 1.0, "#1f2933"
        if name in taken:
            classes.append("taken")
            fill, border, pen = "#d9f2e3", "#1f8a4c", 2.2
        if name == waiting:
            classes.append("waiting")
            fill, border, pen = "#fff0c2", "#c07d00", 3.0
        if name == failed:
            classes.append("failed")
            fill, border, pen = "#fde2e1", "#c62828", 3.0
        if name not in taken and name != waiting:
            font = "#52606d"
        shape = "box"
        if kind == "Choice":
            shape = "hexagon"
        elif kind in ("Succeed", "Fail"):
            shape = "box"
            fill = fill if name in taken else ("#e3f5ea" if kind == "Succeed" else "#fde2e1")
        caption = {
            "Task": "Lambda",
            "Choice": "Choice",
            "Wait": "Wait",
            "Pass": "Pass",
            "Succeed": "Succeed",
            "Fail": "Fail",
        }.get(kind, kind)
        label = f'<<b>{_html(name)}</b><br/><font point-size="8" color="#7b8794">{caption}</font>>'
        return (
            f'  {_quote(name)} [id="{node_id(name)}", class="{" ".join(classes)}", '
            f'shape={shape}, label={label}, fillcolor="{fill}", color="{border}", '
            f'penwidth={pen}, fontcolor="{font}"];'
        )

    for name in machine.states:
        if machine.states[name]["Type"] != "Map" and name not in machine.parent:
            lines.append(node(name))
    for map_name in machine.starts:
        state = machine.states[map_name]
        mode = ((state.get("ItemProcessor") or {}).get("ProcessorConfig") or {}).get("Mode", "")
        classes = "state kind-map" + (" taken" if map_name in taken else "")
        classes += " waiting" if map_name == waiting else ""
        border = "#1f8a4c" if map_name in taken else "#7b8794"
        border = "#c07d00" if map_name == waiting else border
        caption = f"Map ({mode.lower()})" if mode else "Map"
        lines += [
            f"  subgraph cluster_{re.sub(r'[^A-Za-z0-9_]', '_', map_name)} {{",
            f'    id="{node_id(map_name)}"; class="{classes}";',
            f'    label=<<b>{_html(map_name)}</b> <font point-size="8" color="#7b8794">'
            f"{_html(caption)}: one iteration per item</font>>;",
            f'    style="rounded,dashed"; color="{border}"; '
            f"penwidth={2.2 if map_name in taken else 1.2}; fontsize=12; labeljust=l; margin=12;",
        ]
        lines += ["  " + node(n) for n, p in machine.parent.items() if p == map_name]
        lines.append("  }")

    def anchor(name: str) -> tuple[str, str]:
        """Edges to or from a Map meet its first item state, ending at the frame (compound)."""
        if name in machine.starts:
            return machine.starts[name], f"cluster_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"
        return name, ""

    first = machine.start
    target, head = anchor(first)
    start_taken = first in taken
    lines.append(
        f'  "__start" -> {_quote(target)} [class="start{" taken" if start_taken else ""}"'
        + (f", lhead={head}" if head else "")
        + (', color="#1f8a4c", penwidth=2.4' if start_taken else "")
        + "];"
    )
    exits: dict[str, str] = {}  # a Map's last item states -> the Map's own Next (drawn below)
    for edge in machine.edges:
        source, tail = anchor(edge.source)
        target, head = anchor(edge.target)
        if edge.source in machine.starts:
            # Leave a Map from its frame's bottom: from its last item state, clipped at the frame.
            inner = [n for n, p in machine.parent.items() if p == edge.source]
            source = exits.setdefault(edge.source, inner[-1] if inner else source)
        on_path = (edge.source, edge.target) in path
        attrs = [f'class="{edge.kind}{" taken" if on_path else ""}"']
        if edge.label:
            attrs.append(f"label={_quote(_wrap(edge.label))}")
        if edge.kind == "catch":
            attrs.append('style=dashed, color="#c62828", fontcolor="#c62828"')
        if on_path:
            attrs.append('color="#1f8a4c", penwidth=2.6, fontcolor="#1f6e3f"')
        if tail:
            attrs.append(f"ltail={tail}")
        if head:
            attrs.append(f"lhead={head}")
        if edge.target == edge.source or _back_edge(machine, edge):
            attrs.append("constraint=false")
        lines.append(f"  {_quote(source)} -> {_quote(target)} [{', '.join(attrs)}];")
    lines.append("  graph [compound=true];")
    lines.append("}")
    return "\n".join(lines)


def _back_edge(machine: Machine, edge: Edge) -> bool:
    """A loop back (Settled? → WaitForKcp, MorePages? → NextPage → FindDue) keeps the ranks
    of the forward path, so the graph reads top to bottom."""
    order = list(machine.states)
    try:
        return order.index(edge.target) < order.index(edge.source) and edge.kind != "catch"
    except ValueError:
        return False


def _wrap(text: str, width: int = 28) -> str:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_svg(source: str) -> str:
    """The SVG element dot draws (no XML prolog, so it sits inside the page)."""
    answer = subprocess.run(  # noqa: S603 (our own dot source, a fixed binary)
        [DOT, "-Tsvg"], input=source.encode(), capture_output=True, timeout=20, check=True
    )
    svg = answer.stdout.decode()
    return svg[svg.index("<svg") :]


def path_edges(entered: Iterable[str], machine: Machine) -> Iterator[tuple[str, str]]:
    """The transitions an execution took: consecutive states entered that an edge joins."""
    joined = {(e.source, e.target) for e in machine.edges}
    previous = None
    for name in entered:
        if previous is not None and (previous, name) in joined:
            yield previous, name
        elif previous is not None:
            # An item state's exit into the Map's next state counts as the Map's transition.
            outer = machine.parent.get(previous)
            if outer and (outer, name) in joined:
                yield outer, name
        previous = name
