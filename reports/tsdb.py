"""Uplink load from the TSDB's Prometheus query API (Prometheus or VictoriaMetrics): 95th percentile
and peak per uplink and direction."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from inventory.model import Inventory


@dataclass(frozen=True, slots=True)
class Uplink:
    """One declared uplink, measured at its lower end (`device`, `interface`) towards `upstream`."""

    device: str
    interface: str
    upstream: str
    site: str
    speed_bps: float | None


@dataclass(frozen=True, slots=True)
class UplinkLoad:
    """Bits per second of one uplink in one direction over the period."""

    uplink: Uplink
    direction: str  # "in" (towards the device) or "out"
    p95_bps: float | None  # None: no data in the TSDB for the period
    peak_bps: float | None
    samples: int

    @property
    def p95_utilisation(self) -> float | None:
        """The 95th percentile as a share of the link speed, when the speed is known."""
        if self.p95_bps is None or not self.uplink.speed_bps:
            return None
        return self.p95_bps / self.uplink.speed_bps


class TsdbError(RuntimeError):
    """The TSDB could not be queried (unreachable, bad answer)."""


def uplinks(inventory: Inventory) -> list[Uplink]:
    """Every `kind: uplink` link of the inventory, measured at its `a` end (the lower device)."""
    sites = {d.name: d.site for d in inventory.devices}
    out = []
    for link in inventory.links:
        if link.kind != "uplink":
            continue
        speed = float(link.speed_mbps) * 1e6 if link.speed_mbps else None
        site = sites.get(link.a.device, "")
        out.append(Uplink(link.a.device, link.a.interface, link.b.device, site, speed))
    return out


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation between closest ranks (as PromQL `quantile_over_time`)."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def rate_query(uplink: Uplink, direction: str, window: str) -> str:
    """PromQL for the uplink's bits per second in one direction."""
    metric = "govnet_if_in_octets_total" if direction == "in" else "govnet_if_out_octets_total"
    sel = f'{metric}{{device="{_label(uplink.device)}",ifname="{_label(uplink.interface)}"}}'
    return f"sum(rate({sel}[{window}])) * 8"


class Tsdb:
    """A Prometheus-compatible query API (`/api/v1/query_range`)."""

    def __init__(self, url: str, timeout: float = 30.0, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = client or httpx.Client(timeout=timeout)

    def range(self, query: str, start: float, end: float, step: float) -> list[float]:
        """The values of a single-series range query (NaN and missing points dropped)."""
        try:
            resp = self.client.get(
                f"{self.url}/api/v1/query_range",
                params={"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}s"},
            )
        except httpx.HTTPError as exc:
            raise TsdbError(f"{self.url}: {exc.__class__.__name__}: {exc}") from None
        if resp.status_code != 200:
            raise TsdbError(f"{self.url}: HTTP {resp.status_code}: {resp.text[:200]}")
        body = resp.json()
        if body.get("status") != "success":
            raise TsdbError(f"{self.url}: {body.get('error', 'query failed')}")
        values: list[float] = []
        for series in body["data"]["result"]:
            for _, v in series.get("values", []):
                f = float(v)
                if not math.isnan(f):
                    values.append(f)
        return values

    def uplink_load(
        self,
        uplink: Uplink,
        direction: str,
        start: float,
        end: float,
        step: float = 300.0,
        window: str = "5m",
    ) -> UplinkLoad:
        """95th percentile and peak of one uplink direction (points at `step` from an aligned start)."""
        aligned = math.ceil(start / step) * step
        values = self.range(rate_query(uplink, direction, window), aligned, end, step)
        if not values:
            return UplinkLoad(uplink, direction, None, None, 0)
        return UplinkLoad(uplink, direction, quantile(values, 0.95), max(values), len(values))
