"""Per-vendor SSH platform profiles, loaded from collectors/ssh/platforms/*.yaml (data, not code)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PLATFORM_DIR = Path(__file__).parent / "platforms"
MAX_LINE = 4096  # device text is untrusted: longer lines are cut before any regex sees them


class PlatformError(ValueError):
    """A platform file is malformed."""


@dataclass(frozen=True)
class HaPatterns:
    """How to read this unit's (and optionally the peer's) HA role out of the `ha` command output."""

    role: re.Pattern[str]
    peer: re.Pattern[str] | None
    roles: dict[str, str]


@dataclass(frozen=True)
class Platform:
    """What govnet needs to talk to one vendor's CLI: netmiko type, commands, volatile and secret patterns."""

    name: str
    vendors: tuple[str, ...]
    device_type: str
    commands: dict[str, str]
    volatile: tuple[re.Pattern[str], ...]
    secrets: tuple[re.Pattern[str], ...]
    ha: HaPatterns | None = None
    config_complete: re.Pattern[str] | None = None
    prompt: re.Pattern[str] | None = None
    source: Path | None = field(default=None, compare=False)

    def config_is_complete(self, text: str) -> bool:
        """Whether a fetched configuration has the platform's closing line (always true without a rule)."""
        if self.config_complete is None:
            return True
        return any(self.config_complete.search(line.strip()) for line in text.splitlines()[-20:])

    def command(self, purpose: str) -> str | None:
        """The CLI command for `purpose` (config, version, ha), or None when the platform has none."""
        return self.commands.get(purpose)


def _compile(value: Any, where: str, need_secret: bool = False) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise PlatformError(f"{where}: expected a regular expression string")
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise PlatformError(f"{where}: bad regular expression: {exc}") from None
    if need_secret and "secret" not in pattern.groupindex:
        raise PlatformError(f"{where}: a secret pattern needs a (?P<secret>...) group")
    return pattern


def parse_platform(data: Any, source: Path | None = None) -> Platform:
    """Validate one platform mapping (as read from YAML)."""
    where = str(source or "<platform>")
    if not isinstance(data, dict):
        raise PlatformError(f"{where}: expected a mapping")
    known = {
        "name",
        "vendors",
        "device_type",
        "commands",
        "volatile",
        "secrets",
        "ha",
        "config_complete",
        "prompt",
    }
    unknown = set(data) - known
    if unknown:
        raise PlatformError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        name, device_type, commands = str(data["name"]), str(data["device_type"]), data["commands"]
    except KeyError as exc:
        raise PlatformError(f"{where}: missing key {exc.args[0]}") from None
    if not isinstance(commands, dict) or not all(isinstance(v, str) for v in commands.values()):
        raise PlatformError(f"{where}: commands must map purposes to command strings")
    ha = None
    if (ha_data := data.get("ha")) is not None:
        if not isinstance(ha_data, dict) or "role" not in ha_data:
            raise PlatformError(f"{where}: ha needs a role pattern")
        roles = {str(k).lower(): str(v) for k, v in (ha_data.get("roles") or {}).items()}
        peer = _compile(ha_data["peer"], f"{where}: ha.peer") if "peer" in ha_data else None
        ha = HaPatterns(_compile(ha_data["role"], f"{where}: ha.role"), peer, roles)
    return Platform(
        name=name,
        vendors=tuple(str(v) for v in data.get("vendors") or [name]),
        device_type=device_type,
        commands={str(k): v for k, v in commands.items()},
        volatile=tuple(
            _compile(p, f"{where}: volatile[{i}]") for i, p in enumerate(data.get("volatile") or [])
        ),
        secrets=tuple(
            _compile(p, f"{where}: secrets[{i}]", need_secret=True)
            for i, p in enumerate(data.get("secrets") or [])
        ),
        ha=ha,
        config_complete=(
            _compile(data["config_complete"], f"{where}: config_complete")
            if "config_complete" in data
            else None
        ),
        prompt=_compile(data["prompt"], f"{where}: prompt") if "prompt" in data else None,
        source=source,
    )


def load_platforms(directory: Path = PLATFORM_DIR) -> dict[str, Platform]:
    """Every platform file in `directory`, by platform name."""
    out: dict[str, Platform] = {}
    for path in sorted(directory.glob("*.yaml")):
        platform = parse_platform(yaml.safe_load(path.read_text(encoding="utf-8")), path)
        out[platform.name] = platform
    return out


@cache
def _builtin() -> dict[str, Platform]:
    return load_platforms()


def platform_for(vendor: str, platform: str | None = None) -> Platform | None:
    """The platform for a device: its explicit `ssh.platform` (name or netmiko type), else its vendor."""
    platforms = _builtin()
    if platform:
        for p in platforms.values():
            if platform in (p.name, p.device_type):
                return p
        return None
    for p in platforms.values():
        if vendor in p.vendors:
            return p
    return None
