"""Turn a live LabDevice into the values vendor templates print (read fresh for every command)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from lab.ssh.profiles import VendorProfile
from lab.state import LabDevice, LabInterface

# The extranet runs on China Standard Time; devices print local time with this offset.
LAB_TZ = timezone(timedelta(hours=8), "CST")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HASH_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def clean(text: str) -> str:
    """Device and fault text with control characters replaced, so it cannot add lines or move the cursor."""
    return _CONTROL.sub("?", text)


def token(seed: str, label: str, length: int) -> str:
    """A stable pseudo-random string (fake password hashes, serials): same device and label, same value."""
    out: list[str] = []
    counter = 0
    while len(out) < length:
        digest = hashlib.sha256(f"{seed}\x00{label}\x00{counter}".encode()).digest()
        out.extend(_HASH_CHARS[b % 64] for b in digest)
        counter += 1
    return "".join(out[:length])


@dataclass
class ChangeClock:
    """Remembers when a device's config revision and HA role were last seen to change."""

    revision: int
    ha_role: str | None
    config_changed_at: float
    ha_changed_at: float

    @classmethod
    def start(cls, device: LabDevice) -> ChangeClock:
        """Both clocks start at boot."""
        return cls(device.config_revision, device.ha_role, device.boot_time, device.boot_time)

    def observe(self, device: LabDevice, now: float) -> None:
        """Stamp a change with the time it was first seen."""
        if device.config_revision != self.revision:
            self.revision = device.config_revision
            self.config_changed_at = now
        if device.ha_role != self.ha_role:
            self.ha_role = device.ha_role
            self.ha_changed_at = now


def _duration(seconds: float) -> dict[str, int]:
    total = max(0, int(seconds))
    return {
        "seconds": total,
        "weeks": total // 604800,
        "days": total % 604800 // 86400,
        "total_days": total // 86400,
        "hours": total % 86400 // 3600,
        "minutes": total % 3600 // 60,
    }


def _interface(iface: LabInterface) -> dict[str, Any]:
    speed_bps = max(1, iface.speed_mbps) * 1_000_000

    def util(bps: float) -> int:
        return 0 if not iface.oper_up else min(100, round(100 * bps / speed_bps))

    return {
        "index": iface.index,
        "name": clean(iface.name),
        "alias": clean(iface.alias),
        "speed_mbps": iface.speed_mbps,
        "admin_up": iface.admin_up,
        "oper_up": iface.oper_up and iface.admin_up,
        "in_util": util(iface.in_bps),
        "out_util": util(iface.out_bps),
    }


def _peer_role(role: str | None) -> str | None:
    pairs = {"active": "standby", "standby": "active", "primary": "secondary", "secondary": "primary"}
    return pairs.get(role or "")


def context(
    device: LabDevice, profile: VendorProfile, clock: ChangeClock, now: float, sessions: int
) -> dict[str, Any]:
    """All values a template may use, computed from the device as it is right now."""
    clock.observe(device, now)
    name = clean(device.name)

    def tok(label: str, length: int) -> str:
        return token(device.name, label, length)

    def hex_tok(label: str, length: int) -> str:
        return hashlib.sha256(f"{device.name}\x00{label}".encode()).hexdigest()[:length].upper()

    return {
        "name": name,
        "sysname": name,
        "vendor": device.vendor,
        "model": clean(device.model) or str(profile.facts.get("default_model", "")),
        "role": device.role,
        "site": clean(device.site),
        "address": device.address,
        "interfaces": [_interface(i) for i in device.interfaces],
        "ha_role": device.ha_role,
        "peer_role": _peer_role(device.ha_role),
        "ha_group": clean(device.ha_group or ""),
        "config_revision": device.config_revision,
        "config_extra": [clean(line) for line in device.config_extra],
        "now": datetime.fromtimestamp(now, LAB_TZ),
        "boot": datetime.fromtimestamp(device.boot_time, LAB_TZ),
        "uptime": _duration(now - device.boot_time),
        "config_changed": datetime.fromtimestamp(clock.config_changed_at, LAB_TZ),
        "ha_changed": datetime.fromtimestamp(clock.ha_changed_at, LAB_TZ),
        "ha_stable": _duration(now - clock.ha_changed_at),
        "sessions": sessions,
        "max_sessions": profile.max_sessions,
        "facts": profile.facts,
        "token": tok,
        "hex_token": hex_tok,
    }
