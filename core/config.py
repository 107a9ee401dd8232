"""Typed config sections: file:line for every problem, paths and secrets relative to the config file.

One YAML loader and one error format serve the whole `govnet run` file and any room that reads only its
own section (the alert and backup commands): `load_document(path).validate(Model)` or `.section(...)`.
Relative paths (`ConfigPath`, `InputFile`) and `file:` secrets (`SecretRef`) are resolved against the
config file's folder while validating, so no section carries a base directory around.
`check_inputs` proves, before anything starts, that every secret resolves and every input file is
readable; `govnet run` and `govnet doctor` both call it.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)

from core.secrets import Secret, SecretError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

# Nesting and size bounds for a config file: a YAML alias bomb is refused before it is expanded.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000


class ConfigError(ValueError):
    """A config file cannot be read or is invalid; the message lists every problem (file:line: path: what)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class SectionError(ValueError):
    """A well-formed section that is wrong for this deployment (an unknown device, an unreadable rule file).

    Raised by a room's `build()` with the field path inside its section; the caller adds file:line.
    """

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


# --- field types ---------------------------------------------------------------------------------


def _base_dir(info: ValidationInfo) -> Path | None:
    ctx = info.context
    base = ctx.get("base_dir") if isinstance(ctx, dict) else None
    return base if isinstance(base, Path) else None


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    base = _base_dir(info)
    return value if value.is_absolute() or base is None else base / value


class _MustExist:
    """Marks a path field whose file must exist and be readable when govnet starts."""

    def __repr__(self) -> str:
        return "MUST_EXIST"


MUST_EXIST = _MustExist()

# A path relative to the config file (a folder or file govnet creates: state, spool, store).
ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]
# A file govnet only reads (certificates, rule files): checked by `check_inputs` at start.
InputFile = Annotated[Path, AfterValidator(_relative_to_config), MUST_EXIST]


def _to_secret(value: Any, info: ValidationInfo) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a secret reference 'env:NAME' or 'file:PATH'")
    try:
        return Secret(value, _base_dir(info))
    except SecretError as exc:
        # The literal itself must not reach the error message.
        raise ValueError(str(exc)) from None


# A secret by reference (`env:NAME`, `file:PATH` relative to the config file); never a literal.
SecretRef = Annotated[
    Secret,
    BeforeValidator(_to_secret),
    PlainSerializer(lambda s: s.ref, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^(env|file):.+$"}),
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from `30`, `30s`, `5m`, `26h`, `1d` or `250ms`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m, 26h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError("expected a duration like 30s, 5m, 26h or 1d")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT, for example 127.0.0.1:9810 or [::1]:9810 (port 1-65535)")
    return value


# `HOST:PORT` (IPv6 in brackets).
HostPort = Annotated[str, AfterValidator(_host_port)]


def split_host_port(value: str) -> tuple[str, int]:
    """(host without brackets, port) of a validated HostPort."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class Section(BaseModel):
    """A config section: strict (unknown keys refused), frozen, defaults validated like given values.

    `problems(inventory)` is the hook for checks beyond types: against the files a section names (a
    rule file that does not load) or the inventory (a device it does not have); `check_inputs` calls it.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, validate_default=True
    )

    def problems(self, inventory: Any) -> list[tuple[Loc, str]]:
        """Further problems, field path within the section and message (none by default).

        `inventory` is the deployment's inventory.model.Inventory (None when unknown); typed Any because
        the ground floor does not import the rooms above it.
        """
        return []


# --- loading with file:line ----------------------------------------------------------------------


def _line_index(node: yaml.Node, path: Loc, out: dict[Loc, int]) -> None:
    # Each mapping key and sequence item -> the line it starts on (1-based).
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value if isinstance(key, yaml.ScalarNode) else str(key.value))
            out[child] = key.start_mark.line + 1
            _line_index(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _line_index(item, (*path, i), out)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_size(node: yaml.Node) -> None:
    # Aliases share node objects: walking through them measures the expanded size, iteratively (no
    # recursion to exhaust), and an alias inside its own anchor is a loop, refused as such.
    count = 0
    stack: list[tuple[yaml.Node, Iterator[yaml.Node]]] = [(node, iter(_children(node)))]
    on_path = {id(node)}
    while stack:
        parent, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            on_path.discard(id(parent))
            continue
        if id(child) in on_path:
            raise ConfigError(["a YAML alias refers to itself (its anchor contains it)"])
        count += 1
        if count > MAX_NODES:
            raise ConfigError(
                [f"config too large: it expands to more than {MAX_NODES} YAML nodes through aliases"]
            )
        on_path.add(id(child))
        stack.append((child, iter(_children(child))))


@dataclass
class Document:
    """A parsed config file: its data and the line of every key, to report problems as file:line."""

    path: Path
    data: dict[str, Any]
    lines: dict[Loc, int] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """The config file's folder: relative paths and `file:` secrets are relative to it."""
        return self.path.parent

    def where(self, loc: Loc) -> str:
        """`file:line` of the deepest part of `loc` present in the file (a missing key -> its parent)."""
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.lines:
                return f"{self.path}:{self.lines[loc[:n]]}"
        return str(self.path)

    def problem(self, loc: Loc, message: str) -> str:
        """One problem line: `file:line: field.path: message`."""
        name = ".".join(str(p) for p in loc) or "(top)"
        return f"{self.where(loc)}: {name}: {message}"

    def validate(self, model: type[M], loc: Loc = (), data: Any = None) -> M:
        """Validate the whole document (or `data` found at `loc`) as `model`; ConfigError lists file:line."""
        value = self.data if data is None and not loc else data
        try:
            return model.model_validate(value, context={"base_dir": self.base_dir})
        except ValidationError as exc:
            # Values are never echoed (include_input=False): a misplaced secret must not land in a log.
            raise ConfigError(
                [
                    self.problem((*loc, *err["loc"]), err["msg"])
                    for err in exc.errors(include_input=False, include_url=False)
                ]
            ) from None

    def section(self, name: str, model: type[M]) -> M | None:
        """One top-level section validated alone (None when absent), for commands that need only it."""
        if self.data.get(name) is None:
            return None
        return self.validate(model, (name,), self.data[name])


class _RunFile(BaseModel):
    """The top-level key every command needs: where the inventory is (other keys are not looked at)."""

    model_config = ConfigDict(extra="ignore")
    inventory: ConfigPath


def inventory_path(doc: Document) -> Path:
    """The `inventory:` path of a run config (ConfigError with file:line when missing or wrong)."""
    return doc.validate(_RunFile).inventory


def load_document(path: Path) -> Document:
    """Read a YAML config file (a mapping) with the line of every key; ConfigError names file:line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: config larger than {MAX_CONFIG_BYTES // 2**20} MiB"])
    try:
        text = raw.decode("utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_size(node)
        data: Any = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ConfigError([f"{path}:1: not UTF-8 text"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError([f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    except ConfigError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: the config must be a mapping (inventory:, prometheus:, ...)"])
    lines: dict[Loc, int] = {}
    if node is not None:
        _line_index(node, (), lines)
    return Document(path, data, lines)


def validate_section(model: type[M], data: Any, base_dir: Path, name: str) -> M:
    """Validate one section given as data (tests, a section file of its own); ConfigError like a file's."""
    return Document(base_dir / "(config)", {name: data}).section(name, model) or model.model_validate(
        {}, context={"base_dir": base_dir}
    )


# --- start-up checks -----------------------------------------------------------------------------


def _mentions_must_exist(annotation: Any) -> bool:
    # Does MUST_EXIST appear anywhere in a (possibly nested: list[...], X | None) annotation?
    if annotation is MUST_EXIST:
        return True
    return any(_mentions_must_exist(a) for a in typing.get_args(annotation))


def iter_secrets(model: BaseModel, loc: Loc = ()) -> Iterator[tuple[Loc, Secret]]:
    """Every secret reference in a validated model, with its field path."""
    for name in type(model).model_fields:
        yield from _secrets_in(getattr(model, name), (*loc, name))


def _secrets_in(value: Any, loc: Loc) -> Iterator[tuple[Loc, Secret]]:
    if isinstance(value, BaseModel):
        yield from iter_secrets(value, loc)
    elif isinstance(value, Secret):
        yield loc, value
    else:
        for item, sub in _items(value, loc):
            yield from _secrets_in(item, sub)


def check_inputs(
    model: BaseModel, inventory: Any = None, loc: Loc = (), secrets: bool = True
) -> list[tuple[Loc, str]]:
    """Every secret of `model` resolves to a non-empty value, every InputFile is a readable file, and
    every Section's own `problems(inventory)`; each problem with its field path (values never shown).

    `govnet run` refuses to start on any of them; `govnet doctor` reports the same list (its secrets
    check, `secrets=False` here, also says which secret files are readable by everyone).
    """
    out: list[tuple[Loc, str]] = []
    for name, info in type(model).model_fields.items():
        must = any(m is MUST_EXIST for m in info.metadata) or _mentions_must_exist(info.annotation)
        out += _check_value(getattr(model, name), (*loc, name), must, inventory, secrets)
    if isinstance(model, Section) and not out:  # its own checks read inputs found sound above
        out += [((*loc, *sub), msg) for sub, msg in model.problems(inventory)]
    return out


def _items(value: Any, loc: Loc) -> Iterator[tuple[Any, Loc]]:
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield item, (*loc, i)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield item, (*loc, str(getattr(key, "value", key)))


def _check_value(
    value: Any, loc: Loc, must_exist: bool, inventory: Any, secrets: bool
) -> list[tuple[Loc, str]]:
    if isinstance(value, BaseModel):
        return check_inputs(value, inventory, loc, secrets)
    if isinstance(value, Secret) and not secrets:
        return []
    if isinstance(value, Secret):
        try:
            if value.resolve() == "":  # the value itself goes nowhere
                return [(loc, f"secret {value.ref} is empty")]
        except SecretError as exc:
            return [(loc, f"secret {value.ref}: {exc}")]
        return []
    if isinstance(value, Path):
        if must_exist and not value.is_file():
            return [(loc, f"no such file {value}")]
        if must_exist:
            try:
                with value.open("rb"):
                    pass
            except OSError as exc:
                return [(loc, f"cannot read {value}: {exc.strerror}")]
        return []
    out: list[tuple[Loc, str]] = []
    for item, sub in _items(value, loc):
        out += _check_value(item, sub, must_exist, inventory, secrets)
    return out
