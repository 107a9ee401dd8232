"""The house has floors: each room imports only the rooms below it, no module imports itself back through
others, and govnet/ (the roof) is imported by nothing. Read from the source, so a new arrow fails here."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.paths import ROOT

# Lowest first: a room may import the rooms before it in this list, never those after it.
FLOORS = ["core", "inventory", "logstore", "exporters", "collectors", "alerts", "api", "reports", "govnet"]
BESIDE = {"lab": {"core", "inventory"}}  # the lab simulates devices from the inventory, nothing more


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    # Every import, at module level or inside a function (a late import still ties the two together).
    ours = set(FLOORS) | set(BESIDE)
    out: dict[str, set[str]] = defaultdict(set)
    for room in ours:
        for path in (ROOT / room).rglob("*.py"):
            module = _module_of(path)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                out[module] |= {n for n in names if n.split(".")[0] in ours}
    return out


IMPORTS = _imports()


@pytest.mark.parametrize("room", FLOORS + sorted(BESIDE))
def test_room_imports_only_rooms_below(room: str) -> None:
    allowed = BESIDE.get(room) or set(FLOORS[: FLOORS.index(room)])
    if room == "govnet":
        allowed |= set(BESIDE)  # the roof starts the lab (`govnet lab`, `govnet demo`)
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in IMPORTS.items()
        if module.split(".")[0] == room
        for target in targets
        if target.split(".")[0] not in allowed | {room}
    )
    assert not wrong, "\n".join(wrong)


def test_no_import_circle_between_modules() -> None:
    modules = set(IMPORTS)
    graph = {m: {t for t in IMPORTS[m] if t in modules and t != m} for m in modules}
    # Depth-first search with colours; report the first circle found.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return [*stack[stack.index(t) :], t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(modules):
        if m not in state:
            circle = visit(m)
            assert circle is None, " -> ".join(circle)
