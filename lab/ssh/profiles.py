"""Vendor CLI profiles: prompts, errors and command -> output templates loaded from lab/ssh/data/*.yaml."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

DATA_DIR = Path(__file__).parent / "data"
_PARAM = re.compile(r"^<(?:(\d+)-(\d+)|([a-z_]+))>$")
_ERROR_KINDS = ("unrecognized", "incomplete", "ambiguous")


class ProfileError(ValueError):
    """A vendor data file is malformed."""


@dataclass(frozen=True)
class Word:
    """One word of a command: a keyword, a numeric range `<0-512>` or free text `<name>`."""

    text: str
    low: int | None = None
    high: int | None = None
    free: bool = False

    @property
    def is_param(self) -> bool:
        """True when the word is a value rather than a keyword."""
        return self.free or self.low is not None

    def accepts(self, token: str) -> bool:
        """Whether a parameter word takes this token as its value."""
        if self.free:
            return True
        if self.low is None or self.high is None or not token.isdigit() or len(token) > 9:
            return False
        return self.low <= int(token) <= self.high


@dataclass(frozen=True)
class Command:
    """One CLI command of a vendor: its words, output template, and who has it."""

    text: str
    words: tuple[Word, ...]
    output: Template
    roles: frozenset[str] | None  # None: every device of the vendor has it
    exits: bool  # the session ends after the output (quit/exit/logout)


@dataclass(frozen=True)
class VendorProfile:
    """Everything that makes one vendor's CLI look like itself; all of it comes from data."""

    vendor: str
    device_type: str  # the netmiko device_type that drives this CLI
    ssh_version: str  # software part of the SSH identification string
    max_sessions: int  # VTY lines: connections beyond this are refused
    max_line: int  # longest command line accepted
    prompt: Template
    banner: Template
    errors: Mapping[str, Template]
    pipe_filters: Mapping[str, str]  # keyword -> include/exclude/begin
    facts: Mapping[str, Any]
    commands: tuple[Command, ...]

    def commands_for(self, role: str) -> list[Command]:
        """The commands a device with this role understands."""
        return [c for c in self.commands if c.roles is None or role in c.roles]


def _abbreviate(name: str, table: Mapping[str, str]) -> str:
    for long, short in table.items():
        if name.startswith(long):
            return short + name[len(long) :]
    return name


def _environment(facts: Mapping[str, Any]) -> SandboxedEnvironment:
    # Sandboxed and strict: templates are our data, values are device state and never template source.
    env = SandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
        autoescape=False,
    )
    table = dict(facts.get("interface_abbreviations", {}))
    env.filters["abbrev"] = lambda name: _abbreviate(str(name), table)
    return env


def _words(text: str) -> tuple[Word, ...]:
    out = []
    for part in text.split():
        m = _PARAM.match(part)
        if m is None:
            out.append(Word(part.lower()))
        elif m.group(3):
            out.append(Word(part, free=True))
        else:
            out.append(Word(part, low=int(m.group(1)), high=int(m.group(2))))
    if not out:
        raise ProfileError("empty command")
    return tuple(out)


def _str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise ProfileError(f"{where}: '{key}' must be a string")
    return value


def parse_profile(raw: Any, where: str) -> VendorProfile:
    """Validate one vendor document and compile its templates."""
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: expected a mapping")
    facts = raw.get("facts", {})
    if not isinstance(facts, dict):
        raise ProfileError(f"{where}: 'facts' must be a mapping")
    env = _environment(facts)
    errors_raw = raw.get("errors")
    if not isinstance(errors_raw, dict) or any(k not in errors_raw for k in _ERROR_KINDS):
        raise ProfileError(f"{where}: 'errors' needs {', '.join(_ERROR_KINDS)}")
    commands = []
    cmds_raw = raw.get("commands")
    if not isinstance(cmds_raw, dict) or not cmds_raw:
        raise ProfileError(f"{where}: 'commands' must be a non-empty mapping")
    for text, spec in cmds_raw.items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ProfileError(f"{where}: command {text!r} must map to a mapping")
        roles = spec.get("roles")
        commands.append(
            Command(
                text=str(text),
                words=_words(str(text)),
                output=env.from_string(str(spec.get("output", ""))),
                roles=frozenset(str(r) for r in roles) if roles else None,
                exits=bool(spec.get("exit", False)),
            )
        )
    pipes = raw.get("pipe_filters", {})
    if not isinstance(pipes, dict) or any(v not in ("include", "exclude", "begin") for v in pipes.values()):
        raise ProfileError(f"{where}: 'pipe_filters' values must be include, exclude or begin")
    return VendorProfile(
        vendor=_str(raw, "vendor", where),
        device_type=_str(raw, "netmiko_device_type", where),
        ssh_version=_str(raw, "ssh_version", where),
        max_sessions=int(raw.get("max_sessions", 5)),
        max_line=int(raw.get("max_line", 510)),
        prompt=env.from_string(_str(raw, "prompt", where)),
        banner=env.from_string(str(raw.get("banner", ""))),
        errors={k: env.from_string(str(errors_raw[k])) for k in _ERROR_KINDS},
        pipe_filters={str(k).lower(): str(v) for k, v in pipes.items()},
        facts=facts,
        commands=tuple(commands),
    )


@cache
def load_profile(vendor: str) -> VendorProfile | None:
    """The profile for a vendor name (lab/ssh/data/<vendor>.yaml), or None when the lab has no CLI for it."""
    if not re.fullmatch(r"[a-z0-9_]+", vendor):
        return None
    path = DATA_DIR / f"{vendor}.yaml"
    if not path.is_file():
        return None
    return parse_profile(yaml.safe_load(path.read_text(encoding="utf-8")), path.name)


def available_vendors() -> list[str]:
    """Vendors that have a CLI profile."""
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml"))
