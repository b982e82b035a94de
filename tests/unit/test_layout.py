"""The layer's one shape: domain slices over a small kernel, adapters that execute, an HTTP edge.

Each package may import only packages at its own rank or below, so nothing imports upward and
the domain never sees an adapter or HTTP; and no module imports itself back through another.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "cancelflow" / "cancelflow"

# Lowest first. A slice may use the kernel, KCP's port and the slices before it.
RANKS = {
    "kernel": 0,
    "kcp": 1,
    "shops": 2,
    "payments": 3,
    "cancellations": 4,
    "subscriptions": 5,
    "batches": 6,  # bulk cancels: ordinary cancellations, paced by billing's clock
    "notifications": 6,  # KCP's notifications: act on payments and record external cancels
    "webhooks": 7,
    "adapters": 8,
    "http": 9,
    "runtime": 10,
}


def _module(path: Path) -> str:
    parts = path.relative_to(LAYER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cancelflow"):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cancelflow")}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in LAYER.rglob("*.py")}
    return {
        name: {i for i in _imports(path) if i in modules and i != name and i != "cancelflow"}
        for name, path in modules.items()
    }


def _package(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_package_has_a_rank() -> None:
    packages = {_package(m) for m in _graph()} - {""}
    assert packages == set(RANKS)


def test_nothing_imports_upward() -> None:
    upward = [
        f"{source} -> {target}"
        for source, targets in _graph().items()
        for target in targets
        if _package(source) and RANKS[_package(target)] > RANKS[_package(source)]
    ]
    assert upward == []


def test_the_domain_imports_neither_adapters_nor_http() -> None:
    domain = {p for p, rank in RANKS.items() if rank < RANKS["adapters"]}
    leaks = [
        f"{source} -> {target}"
        for source, targets in _graph().items()
        for target in targets
        if _package(source) in domain and _package(target) not in domain
    ]
    assert leaks == []


def test_there_is_no_import_circle() -> None:
    graph = _graph()
    circles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    assert circles == []
