"""`govnet check-inventory FILE` and `load_or_exit`, so nothing starts on an invalid inventory."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

from inventory.load import load_inventory
from inventory.model import Inventory
from inventory.problems import InventoryError, Problem, safe_text
from inventory.topology import Topology


def print_problems(problems: list[Problem], out: TextIO) -> None:
    """One `FILE:LINE: path: message (got 'value')` line per problem, then a count.

    Plain text on purpose: no rich markup is interpreted and control characters in user text are
    escaped by `Problem.__str__`, so a crafted inventory cannot restyle or rewrite the terminal.
    """
    for problem in problems:
        out.write(f"{problem}\n")
    out.write(f"{_n(len(problems), 'error')} in {_n(len({p.file for p in problems}), 'file')}\n")


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary(inventory: Inventory) -> str:
    """What the inventory holds, in one short paragraph."""
    roles = Counter(d.role.value for d in inventory.devices)
    by_role = ", ".join(f"{n} {role}" for role, n in sorted(roles.items(), key=lambda kv: (-kv[1], kv[0])))
    topology = Topology.from_inventory(inventory)
    return (
        f"{_n(len(inventory.sites), 'site')}, {_n(len(inventory.devices), 'device')} ({by_role or 'none'}), "
        f"{_n(len(inventory.links), 'link')}, {_n(len(topology.redundancy_groups), 'redundancy group')}, "
        f"{_n(len(inventory.ha_groups), 'HA group')}, {_n(len(inventory.backup_jobs), 'backup job')}"
        + (f", {_n(len(inventory.services), 'service check')}" if inventory.services else "")
    )


def check_inventory_command(path: Path) -> int:
    """Validate `path`; print every problem and return 1, or print a summary and return 0."""
    try:
        inventory = load_inventory(path)
    except InventoryError as exc:
        print_problems(exc.problems, sys.stdout)
        return 1
    sys.stdout.write(f"{safe_text(str(path))}: OK\n{summary(inventory)}\n")
    return 0


def load_or_report(path: Path, err: TextIO) -> Inventory | None:
    """The inventory at `path`, or None after writing every problem to `err` (stdout stays for data)."""
    try:
        return load_inventory(path)
    except InventoryError as exc:
        err.write(f"govnet: invalid inventory {safe_text(str(path))}\n")
        print_problems(exc.problems, err)
        return None


def load_or_exit(path: Path) -> Inventory:
    """The inventory at `path`, or its problems on stderr and SystemExit(1)."""
    inventory = load_or_report(path, sys.stderr)
    if inventory is None:
        raise SystemExit(1)
    return inventory
