"""Load an inventory (one YAML file or a folder of them) and report every problem at once."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from inventory.checks import semantic_problems
from inventory.model import BackupJob, Defaults, Device, HaGroup, Inventory, Link, Site
from inventory.problems import InventoryError, Problem, safe_text
from inventory.schema_errors import schema_problems
from inventory.services import ServiceEntry
from inventory.share import share_equal
from inventory.source import Collected, Document, Item, inventory_files, locate, mapping_get, read_document

__all__ = ["InventoryError", "Item", "Problem", "load_inventory"]

M = TypeVar("M", bound=BaseModel)

SECTIONS: dict[str, type[BaseModel]] = {
    "sites": Site,
    "devices": Device,
    "ha_groups": HaGroup,
    "links": Link,
    "backup_jobs": BackupJob,
    "services": ServiceEntry,
}
TOP_LEVEL = ("defaults", *SECTIONS)


def load_inventory(path: Path) -> Inventory:
    """Read, validate and cross-check an inventory; raise InventoryError listing every problem."""
    collected = collect(Path(path))
    collected.problems += semantic_problems(collected)
    if collected.problems:
        raise InventoryError(sorted(collected.problems, key=_order(collected)))
    defaults = collected.defaults.model if collected.defaults else Defaults()
    inventory = Inventory(
        defaults=defaults,
        # `services` entries are a tagged union wrapped in a RootModel: unwrap to the check itself.
        **{
            name: [getattr(item.model, "root", item.model) for item in items]
            for name, items in collected.sections.items()
        },
    )
    return share_equal(inventory)  # equal interface names, credentials... one object each (memory)


def _order(collected: Collected) -> Callable[[Problem], tuple[int, int]]:
    rank = {file: i for i, file in enumerate(collected.files)}
    return lambda p: (rank.get(p.file, -1), p.line)


def collect(path: Path) -> Collected:
    """Parse and schema-validate every file of the inventory, entry by entry."""
    out = Collected([], None, {name: [] for name in SECTIONS}, {name: set() for name in SECTIONS}, [])
    if not path.exists():
        out.problems.append(Problem(str(path), 0, "", None, "no such file or folder"))
        return out
    files = inventory_files(path)
    if not files:
        out.problems.append(Problem(str(path), 0, "", None, "folder holds no *.yaml or *.yml files"))
    out.files = [str(file) for file in files]
    for file in files:
        doc, problems = read_document(file)
        out.problems += problems
        if doc is not None:
            _collect_document(doc, out)
    return out


def _collect_document(doc: Document, out: Collected) -> None:
    if doc.node is None:
        return
    if not isinstance(doc.node, MappingNode) or not isinstance(doc.data, dict):
        out.problems.append(
            Problem(
                doc.file,
                doc.node.start_mark.line + 1,
                "",
                None,
                f"expected a mapping with keys {', '.join(TOP_LEVEL)}",
            )
        )
        return
    for key in doc.data:
        if key in TOP_LEVEL:
            continue
        line, _ = locate(doc.node, [str(key)])
        close = difflib.get_close_matches(str(key), TOP_LEVEL, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        out.problems.append(
            Problem(
                doc.file,
                line,
                safe_text(str(key), 64),
                None,
                f"unknown top-level key{hint}; expected one of: {', '.join(TOP_LEVEL)}",
            )
        )
    if doc.data.get("defaults") is not None:
        _collect_defaults(doc, out)
    for section, model in SECTIONS.items():
        entries = doc.data.get(section)
        if entries is None:
            continue
        pair = mapping_get(doc.node, section)
        section_node = pair[1] if pair else None
        if not isinstance(entries, list) or not isinstance(section_node, SequenceNode):
            line = pair[0].start_mark.line + 1 if pair else 0
            out.problems.append(Problem(doc.file, line, section, None, f"expected a list of {section}"))
            continue
        for index, (entry, node) in enumerate(zip(entries, section_node.value, strict=True)):
            prefix = f"{section}[{index}]"
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                out.raw_names[section].add(entry["name"])
            item = _validate(doc, node, prefix, model, entry, out.problems)
            if item is not None:
                out.sections[section].append(item)


def _collect_defaults(doc: Document, out: Collected) -> None:
    pair = mapping_get(doc.node, "defaults")
    node = pair[1] if pair else None
    if out.defaults is not None:
        out.problems.append(
            Problem(
                doc.file,
                pair[0].start_mark.line + 1 if pair is not None else 0,
                "defaults",
                None,
                f"defaults already set in {out.defaults.where()}; set them in one file only",
            )
        )
        return
    out.defaults = _validate(doc, node, "defaults", Defaults, doc.data["defaults"], out.problems)


def _validate(
    doc: Document, node: Node | None, prefix: str, model: type[M], data: Any, problems: list[Problem]
) -> Item[M] | None:
    try:
        return Item(doc, prefix, node, model.model_validate(data))
    except ValidationError as exc:
        problems.extend(schema_problems(doc, node, prefix, model, exc.errors(include_url=False)))
        return None
