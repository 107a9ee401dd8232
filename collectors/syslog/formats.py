"""Vendor log formats as data: YAML files of regexes and field maps, applied to the syslog message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

FORMATS_DIR = Path(__file__).parent / "formats"

EventType = Literal[
    "policy_deny", "policy_permit", "attack", "vpn_login", "admin_login", "config_change", "other"
]
TARGET_FIELDS = (
    "src_ip", "src_port", "dst_ip", "dst_port", "protocol", "user", "action", "outcome", "rule", "event_type",
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyValues(_Strict):
    """How to split `key=value` pairs out of the message and which keys map to which record fields."""

    pattern: str
    fields: dict[str, str]
    strip: str = Field(' "', description="characters stripped from both ends of each value")

    @field_validator("fields")
    @classmethod
    def _known_targets(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(value.values()) - set(TARGET_FIELDS))
        if bad:
            raise ValueError(f"unknown target fields {bad}; expected one of {list(TARGET_FIELDS)}")
        return value


class Rule(_Strict):
    """First matching rule classifies the message; named groups become fields."""

    match: str
    event_type: EventType = "other"
    action: str | None = None
    outcome: str | None = None


class VendorFormat(_Strict):
    """One vendor log format (one YAML file)."""

    name: str
    vendor: str
    contains: str = Field(
        "", description="literal that must occur before `detect` is tried (a cheap prefilter)"
    )
    detect: str = Field(description="regex searched in the message; the format applies when it matches")
    extract: list[str] = Field(default_factory=list, description="regexes whose named groups become fields")
    kv: list[KeyValues] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="per field: raw -> normalised"
    )
    examples: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(slots=True)
class CompiledFormat:
    """A VendorFormat with its regexes compiled."""

    spec: VendorFormat
    detect: re.Pattern[str]
    extract: list[re.Pattern[str]]
    kv: list[tuple[re.Pattern[str], dict[str, str], str]]
    rules: list[tuple[re.Pattern[str], Rule, dict[str, str]]]  # (match, rule, fields the rule sets)

    def apply(self, msg: str) -> dict[str, Any] | None:
        """Fields extracted from `msg`, or None when this format does not apply."""
        if self.spec.contains not in msg or not self.detect.search(msg):
            return None
        out: dict[str, Any] = {"event_type": "other"}
        for pattern in self.extract:
            em = pattern.search(msg)
            if em:
                for key, value in em.groupdict().items():
                    if value is not None and key in _TARGETS:
                        out.setdefault(key, value)
        for pattern, mapping, strip in self.kv:
            for key, value in pattern.findall(msg):
                target = mapping.get(key)
                if target and target not in out:
                    out[target] = value.strip(strip)
        for pattern, _rule, fixed in self.rules:
            rm = pattern.search(msg)
            if not rm:
                continue
            for key, value in rm.groupdict().items():
                if value is not None and key in _TARGETS:
                    out[key] = value
            out.update(fixed)
            break
        for key, table in self.spec.values.items():
            value = out.get(key)
            if isinstance(value, str) and value in table:
                out[key] = table[value]
        out["src_port"] = _port(out.get("src_port"))
        out["dst_port"] = _port(out.get("dst_port"))
        return {key: value for key, value in out.items() if value not in _EMPTY}


_TARGETS = frozenset(TARGET_FIELDS)
_EMPTY = ("", "-", "(null)", None)


def _port(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit() and int(value) <= 65535:
        return int(value)
    return None


def compile_format(spec: VendorFormat) -> CompiledFormat:
    """Compile regexes (raises re.error naming the bad one)."""
    return CompiledFormat(
        spec,
        re.compile(spec.detect),
        [re.compile(p) for p in spec.extract],
        [(re.compile(kv.pattern), kv.fields, kv.strip) for kv in spec.kv],
        [(re.compile(rule.match), rule, _fixed_fields(rule)) for rule in spec.rules],
    )


def _fixed_fields(rule: Rule) -> dict[str, str]:
    """What a matching rule sets regardless of the message: event type, and action/outcome if given."""
    fixed: dict[str, str] = {"event_type": rule.event_type}
    for key in ("action", "outcome"):
        value = getattr(rule, key)
        if value is not None:
            fixed[key] = value
    return fixed


def load_formats(folder: Path = FORMATS_DIR) -> list[CompiledFormat]:
    """Load every *.yaml vendor format in `folder` (sorted by file name)."""
    out = []
    for path in sorted(folder.glob("*.yaml")):
        spec = VendorFormat.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        out.append(compile_format(spec))
    return out
