"""Audit statistics for 等保 reviews, from the segment indexes alone (no record is read): per device
last log time and lines per day, coverage of the security devices, retention held, size and budget."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from logstore.record import iso_utc, parse_iso

CST = timezone(timedelta(hours=8), "CST")
SECURITY_ROLES = frozenset({"firewall", "ips", "vpn_gateway", "isolation_gateway"})
DAY = 86400.0


@dataclass(frozen=True)
class DeviceInfo:
    """An inventory device as the statistics need it."""

    name: str
    role: str
    site: str = ""
    address: str = ""


def _day_cst(hour_utc: str) -> str:
    """The Beijing calendar day of a UTC hour bucket ("2026-03-12T18" -> "2026-03-13")."""
    dt = datetime.strptime(hour_utc, "%Y-%m-%dT%H").replace(tzinfo=UTC).astimezone(CST)
    return dt.strftime("%Y-%m-%d")


def audit_stats(store: Any, devices: Iterable[DeviceInfo], now: float, days: int = 7) -> dict[str, Any]:
    """The statistics as one JSON-ready mapping (times in UTC ISO form; days are Beijing days)."""
    segs = [s for s in store.segments() if s.count]
    last: dict[str, str] = {}
    daily: dict[str, dict[str, int]] = {}
    day_keys = [
        (datetime.fromtimestamp(now, UTC).astimezone(CST) - timedelta(days=n)).strftime("%Y-%m-%d")
        for n in range(days - 1, -1, -1)
    ]
    wanted = set(day_keys)
    first_hour = iso_utc(now - (days + 1) * DAY)[:13]
    cut24 = iso_utc(now - DAY)
    lines_24h: dict[str, int] = {}
    for seg in segs:
        for dev, ts in seg.device_last.items():
            if ts > last.get(dev, ""):
                last[dev] = ts
        if seg.max_ts < first_hour:
            continue
        for hour, counts in seg.hourly.items():
            if hour < first_hour:
                continue
            day = _day_cst(hour)
            recent = hour >= cut24[:13]  # hour granularity: the 24 h window starts at a whole hour
            for dev, n in counts.items():
                if day in wanted:
                    row = daily.setdefault(dev, {})
                    row[day] = row.get(day, 0) + n
                if recent:
                    lines_24h[dev] = lines_24h.get(dev, 0) + n
    known = list(devices)
    rows = []
    for d in known:
        ts = last.get(d.name)
        rows.append(
            {
                "device": d.name, "role": d.role, "site": d.site, "address": d.address,
                "security": d.role in SECURITY_ROLES, "last_log": ts,
                "reporting": ts is not None and ts >= cut24,
                "lines_24h": lines_24h.get(d.name, 0),
                "per_day": [daily.get(d.name, {}).get(day, 0) for day in day_keys],
            }
        )  # fmt: skip
    rows.sort(key=lambda r: not r["security"])  # security devices first (stable: inventory order)
    names = {d.name for d in known}
    unknown = sorted(dev for dev in last if dev not in names)
    security = [r for r in rows if r["security"]]
    reporting = [r for r in security if r["reporting"]]
    oldest = min((s.min_ts for s in segs), default=None)
    settings = store.settings()
    used = store.disk_bytes()
    budget = settings.get("budget_bytes")
    return {
        "generated_at": iso_utc(now),
        "days": day_keys,
        "coverage": {
            "security_devices": len(security),
            "reporting_24h": len(reporting),
            "ratio": (len(reporting) / len(security)) if security else None,
            "silent": [r["device"] for r in security if not r["reporting"]],
        },
        "retention": {
            "oldest_record": oldest,
            "held_days": round((now - parse_iso(oldest)) / DAY, 2) if oldest else 0.0,
            "target_days": settings.get("retention_days"),
        },
        "store": {
            "bytes": used,
            "budget_bytes": budget,
            "budget_ratio": (used / budget) if budget else None,
            "last_seq": store.last_seq,
            "segments": len(segs),
        },
        "devices": rows,
        "unknown_sources": [{"device": dev or "(unmapped)", "last_log": last[dev]} for dev in unknown],
    }
