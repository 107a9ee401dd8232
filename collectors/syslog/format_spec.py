"""The schema of a vendor format file (collectors/syslog/formats/*.yaml), validated with pydantic.

Kept apart from formats.py, which is compiled with mypyc (collectors/syslog/native.py): mypyc does not
compile pydantic models, and the schema is only used when formats are loaded, never per line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Here, not in formats.py: a compiled module's `__file__` names its source as it was compiled.
FORMATS_DIR = Path(__file__).parent / "formats"

EventType = Literal[
    "policy_deny", "policy_permit", "attack_detected", "vpn_login", "vpn_logout", "admin_login",
    "admin_logout", "config_change", "ha_state", "interface_state", "system", "other",
]  # fmt: skip
# Fields a stored record carries (logstore/record.py FIELDS) that formats may set.
TARGET_FIELDS = (
    "src_ip", "src_port", "dst_ip", "dst_port", "protocol", "user", "action", "outcome", "rule", "event_type",
)  # fmt: skip
# Group names with a meaning for the header: the device's own severity and time, host and program.
HEADER_FIELDS = (
    "vendor_severity", "host", "device_host", "app", "dev_date", "dev_time", "dev_tz", "dev_ts_text",
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KvScan(_Strict):
    """The shape of a pair, read by a hand loop instead of a regex (formats.KvScanner): a key of
    `key_first` then `key` characters, a `separator` character, then a value quoted with `quote` (with
    `escape` pairs) or else running up to a `value_end` character (without `value_end`, only quoted
    values, read without their quotes). Classes are regex class bodies (`a-z` ranges, `\\s`, `\\X` for a
    literal X); a key class is ASCII, or negated with `^` (every character but those listed, which may
    be non-ASCII); `value_end` may list non-ASCII characters."""

    key_first: str
    key: str
    value_end: str | None = None  # None: only quoted values, read without their quotes
    quote: str | None = None
    escape: str | None = None
    separator: str = Field("=", description="the characters between a key and its value (any one)")
    between: str | None = Field(
        None, description=r"instead of a separator, this fixed text (ASCII, `\d` one digit) after each key"
    )


class KeyValues(_Strict):
    """How to split `key=value` pairs out of the body and which keys map to which fields."""

    pattern: str = Field(description="regex with two groups: key and value")
    fields: dict[str, str]
    strip: str = Field(' "', description="characters stripped from both ends of each value")
    scan: KvScan | None = Field(
        None,
        description="optional pair shape read without a regex engine; yields exactly the pairs of `pattern` "
        "and is used instead of it",
    )


class Rule(_Strict):
    """First matching rule classifies the message; its named groups become fields."""

    match: str
    event_type: EventType = "other"
    action: str | None = None
    outcome: Literal["success", "failure"] | None = None


class VendorFormat(_Strict):
    """One vendor log format (one YAML file)."""

    name: str
    vendor: str
    order: int = Field(100, description="formats are tried by ascending order, then name")
    contains: list[str] = Field(
        default_factory=list, description="literals of which one must occur before `detect` is tried"
    )
    detect: str = Field(description="regex searched in the body; the format applies when it matches")
    extract: list[str] = Field(default_factory=list, description="regexes whose named groups become fields")
    kv: list[KeyValues] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="per field: raw (case-insensitive) -> normalised"
    )
    examples: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("contains", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value] if value else []
        return value

    @field_validator("kv")
    @classmethod
    def _known_targets(cls, value: list[KeyValues]) -> list[KeyValues]:
        known = set(TARGET_FIELDS) | set(HEADER_FIELDS)
        for kv in value:
            bad = sorted(set(kv.fields.values()) - known)
            if bad:
                raise ValueError(f"unknown target fields {bad}; expected one of {sorted(known)}")
        return value
