"""Read inventory YAML keeping node marks, so every problem can name its file and line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from inventory.model import Defaults
from inventory.problems import Problem, safe_text

M = TypeVar("M", bound=BaseModel)

# libyaml's C parser composes the district ~10x faster than PyYAML's pure-Python one; both keep marks.
_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# An alias bomb is a small tree that expands to a huge one. A big inventory written out in full
# (~110 nodes per device: 5,000 devices are ~550,000) expands to little more than it holds, so the
# bound grows with the nodes the file itself holds: MAX_NODES, or ALIAS_FACTOR times the distinct
# nodes, whichever is larger (both linear in the file's size, which MAX_BYTES bounds).
MAX_NODES = 500_000
ALIAS_FACTOR = 4
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed YAML file: its composed node tree (for line numbers) and its Python data."""

    file: str
    node: Node | None
    data: Any


def inventory_files(path: Path) -> list[Path]:
    """The YAML files of an inventory: the file itself, or a folder's *.yaml/*.yml sorted by name."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def read_document(path: Path) -> tuple[Document | None, list[Problem]]:
    """Parse one file; YAML syntax errors, duplicate keys and alias bombs become problems."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(file, 0, "", None, f"cannot read file: {exc.strerror}")]
    if len(raw) > MAX_BYTES:
        return None, [Problem(file, 0, "", None, f"file larger than {MAX_BYTES // 1048576} MiB")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(file, line, "", None, "file is not valid UTF-8 text")]
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(file, None, {}), []
        problems = _structure_problems(file, node)
        if problems:
            return None, problems
        problems = _duplicate_keys(file, node)
        return Document(file, node, loader.construct_document(node)), problems
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(file, exc)]
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML raises marked errors for documents
        return None, [Problem(file, 0, "", None, f"invalid YAML: {type(exc).__name__}")]
    finally:
        loader.dispose()


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    # Only the problem/context phrases: PyYAML's str() adds a snippet of the line, which may hold
    # a secret literal.
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 0
    what = exc.problem or "invalid YAML"
    if exc.context:
        what = f"{exc.context}, {what}"
    return Problem(file, line, "", None, f"YAML syntax error: {what}")


def _structure_problems(file: str, root: Node) -> list[Problem]:
    """Recursive aliases and documents expanding past their bound (billion laughs)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    limit = max(MAX_NODES, ALIAS_FACTOR * _distinct_nodes(root))

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Recursive(node)
        active.add(key)
        total = 1
        for child in _children(node):
            total += size(child)
            if total > limit:
                break
        active.discard(key)
        sizes[key] = total
        return total

    try:
        if size(root) > limit:
            return [Problem(file, 1, "", None, f"document expands to more than {limit} nodes")]
    except _Recursive as rec:
        return [Problem(file, rec.node.start_mark.line + 1, "", None, "recursive YAML alias")]
    except RecursionError:
        return [Problem(file, 1, "", None, "document nested too deeply")]
    return []


def _distinct_nodes(root: Node) -> int:
    # Each node once, however many aliases point at it (iterative: a cycle or deep nesting is safe).
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(_children(node))
    return len(seen)


class _Recursive(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _duplicate_keys(file: str, root: Node) -> list[Problem]:
    """PyYAML silently keeps the last of two equal keys; an inventory must not."""
    problems: list[Problem] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    name = key.value
                    if name in first and name != "<<":
                        problems.append(
                            Problem(
                                file,
                                key.start_mark.line + 1,
                                _join(path, name),
                                None,
                                f"duplicate key '{safe_text(name)}' (first at line {first[name]}); "
                                "each key may appear once",
                            )
                        )
                    first.setdefault(name, key.start_mark.line + 1)
                    stack.append((value, _join(path, name)))
        elif isinstance(node, SequenceNode):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node.value))
    return problems


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def mapping_get(node: Node | None, key: str) -> tuple[Node, Node] | None:
    """(key node, value node) for `key` in a mapping node, following `<<` merge keys.

    The last occurrence wins, as in PyYAML's constructor (which also flattens merge keys in place,
    putting merged pairs before the mapping's own).
    """
    if not isinstance(node, MappingNode):
        return None
    merges: list[Node] = []
    for k, v in reversed(node.value):
        if isinstance(k, ScalarNode):
            if k.value == key:
                return k, v
            if k.value == "<<":
                merges.extend(v.value if isinstance(v, SequenceNode) else [v])
    for merged in merges:
        found = mapping_get(merged, key)
        if found is not None:
            return found
    return None


def locate(node: Node | None, loc: Sequence[str | int], keep_last: bool = False) -> tuple[int, list[str]]:
    """Line (1-based, 0 if unknown) and path parts for a pydantic `loc` inside `node`.

    Elements that are not keys of the document (union tags such as '3' for SNMPv3) are skipped;
    with `keep_last`, the final element is kept in the path even when absent (a missing field).
    """
    line = node.start_mark.line + 1 if node is not None else 0
    parts: list[str] = []
    current = node
    for i, element in enumerate(loc):
        if (
            isinstance(element, int)
            and isinstance(current, SequenceNode)
            and 0 <= element < len(current.value)
        ):
            current = current.value[element]
            line = current.start_mark.line + 1
            parts.append(f"[{element}]")
            continue
        found = mapping_get(current, str(element)) if isinstance(element, str) else None
        if found is not None:
            key, current = found
            line = key.start_mark.line + 1
            parts.append(str(element))
        elif keep_last and i == len(loc) - 1:
            parts.append(str(element))
    return line, parts


def render_path(prefix: str, parts: list[str]) -> str:
    """`devices[3]` + ['snmp', 'auth_key'] -> `devices[3].snmp.auth_key`."""
    out = prefix
    for part in parts:
        if part.startswith("["):
            out += part
        else:
            out = f"{out}.{part}" if out else part
    return safe_text(out)


@dataclass(frozen=True, slots=True)
class Item(Generic[M]):
    """A validated entry and where it came from, so semantic checks can point at its lines."""

    doc: Document
    prefix: str  # e.g. `devices[3]` (index within its own file)
    node: Node | None
    model: M

    def problem(self, keys: tuple[str | int, ...], message: str, value: str | None = None) -> Problem:
        """A problem at `keys` inside this entry (the entry's first line when a key is absent)."""
        line, parts = locate(self.node, keys)
        return Problem(self.doc.file, line, render_path(self.prefix, parts), value, message)

    def where(self) -> str:
        """`file:line` of this entry, for 'first defined at' hints."""
        line = self.node.start_mark.line + 1 if self.node is not None else 0
        return f"{self.doc.file}:{line}"


@dataclass(slots=True)
class Collected:
    """Everything read from the files: valid entries per section plus every problem so far."""

    problems: list[Problem]
    defaults: Item[Defaults] | None
    sections: dict[str, list[Item[Any]]]
    raw_names: dict[str, set[str]]  # names declared even by invalid entries (no cascade errors)
    files: list[str]  # in reading order, the order problems are reported in


# Public for other YAML loaders (the run config) that need the same alias-bomb guard.
structure_problems = _structure_problems
