"""`probes:` section of `govnet run`: the ICMP prober thread and the reachability/redundancy service.

```yaml
probes:
  interval: 10s      # a round: every device's management address, `count` echoes each
  timeout: 1s        # an echo unanswered after this is lost (always < interval)
  count: 3
  window: 100        # probes per target in the sliding window (loss, RTT, jitter)
  rate: 1000         # echoes per second at most
  reachability: {interval: 5s}   # redundancy groups + per-device reachability; `false` to turn off
```
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from pydantic import Field, model_validator

from collectors.base import device_labels
from collectors.icmp.engine import IcmpEngine
from core.config import Duration, Section
from core.latest import LatestStore
from core.pipeline import Service
from core.samples import MetricType, Sample
from inventory.model import Device, Inventory

log = logging.getLogger(__name__)

HELP = {
    "govnet_probe_rtt_seconds": "ICMP echo round-trip time over the probe window (stat=min|avg|max).",
    "govnet_probe_loss_ratio": "Share of ICMP echoes lost over the probe window (0-1).",
    "govnet_probe_jitter_seconds": "Mean absolute difference of consecutive RTTs over the window.",
    "govnet_probe_up": "1 if an echo of the last round was answered, else 0.",
    "govnet_probe_sent_total": "ICMP echoes resolved (answered or timed out) since start.",
    "govnet_probe_lost_total": "ICMP echoes lost since start.",
    "govnet_probe_available": "1 if raw ICMP sockets are open (root / CAP_NET_RAW), else 0.",
    "govnet_probe_rounds_total": "Probe rounds started since start.",
}


class ReachabilityConfig(Section):
    """How often redundancy and reachability are recomputed."""

    interval: Duration = 5.0


class ProbesConfig(Section):
    """The `probes:` section."""

    interval: Duration = 10.0
    timeout: Duration = 1.0
    count: int = Field(3, ge=1, le=100)
    window: int = Field(100, ge=1, le=100_000)
    rate: float = Field(1000.0, gt=0, le=100_000)
    payload_size: int = Field(56, ge=8, le=1400)
    reachability: ReachabilityConfig | bool = True

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> ProbesConfig:
        if self.timeout >= self.interval:
            raise ValueError("timeout must be shorter than interval (an echo must time out within a round)")
        return self


class ProbeService:
    """Runs an IcmpEngine in a thread at the edge of the asyncio core; exposes its windows as samples."""

    name = "probes"

    def __init__(
        self, inventory: Inventory, cfg: ProbesConfig, clock_wall: Callable[[], float] | None = None
    ) -> None:
        self.inventory = inventory
        self.cfg = cfg
        self._devices_of: dict[str, list[Device]] = {}
        for d in inventory.devices:
            self._devices_of.setdefault(d.address, []).append(d)
        self.engine = IcmpEngine(
            list(self._devices_of),
            interval=cfg.interval,
            timeout=cfg.timeout,
            count=cfg.count,
            rate=cfg.rate,
            window=cfg.window,
            payload_size=cfg.payload_size,
        )
        self.crashed = False
        self._wall: Callable[[], float] = clock_wall or time.time

    async def run(self, stop: asyncio.Event) -> None:
        """Probe in a thread until `stop`; without raw-socket privilege log once and stay idle."""
        if not self.engine.open():
            log.warning("ICMP probing unavailable: %s", self.engine.error)
            await stop.wait()
            return
        halt = threading.Event()
        thread = threading.Thread(target=self._body, args=(halt,), name="govnet-icmp", daemon=True)
        thread.start()
        try:
            await stop.wait()
        finally:
            halt.set()
            await asyncio.to_thread(thread.join, 5.0)

    def _body(self, halt: threading.Event) -> None:
        try:
            self.engine.run(halt)
        except Exception:  # the prober must not take govnet down; the metric shows it stopped
            log.exception("ICMP prober stopped")
            self.crashed = True
            self.engine.close()

    def probe_up(self) -> dict[str, bool]:
        """Device -> answered in its last round (only devices with a resolved probe)."""
        out: dict[str, bool] = {}
        for r in self.engine.results():
            if r.up is not None:
                for d in self._devices_of.get(r.address, []):
                    out[d.name] = r.up
        return out

    def internal_samples(self) -> list[Sample]:
        """Per-device probe series plus govnet_probe_available."""
        ts = self._wall()
        ok = self.engine.available and not self.crashed
        out = [
            _sample("govnet_probe_available", (), 1.0 if ok else 0.0, ts),
            _sample("govnet_probe_rounds_total", (), float(self.engine.rounds), ts, "counter"),
        ]
        if not ok:
            return out
        for r in self.engine.results():
            for d in self._devices_of.get(r.address, []):
                labels = (*device_labels(d), ("address", r.address))
                out.append(_sample("govnet_probe_sent_total", labels, float(r.sent_total), ts, "counter"))
                out.append(_sample("govnet_probe_lost_total", labels, float(r.lost_total), ts, "counter"))
                if r.up is None:
                    continue  # nothing resolved yet: no verdict rather than a false one
                st = r.stats
                out.append(_sample("govnet_probe_up", labels, 1.0 if r.up else 0.0, ts))
                out.append(_sample("govnet_probe_loss_ratio", labels, st.loss_ratio, ts))
                for stat, v in (("min", st.rtt_min), ("avg", st.rtt_avg), ("max", st.rtt_max)):
                    if v is not None:
                        out.append(_sample("govnet_probe_rtt_seconds", (*labels, ("stat", stat)), v, ts))
                if st.jitter is not None:
                    out.append(_sample("govnet_probe_jitter_seconds", labels, st.jitter, ts))
        return out


def _sample(
    metric: str, labels: tuple[tuple[str, str], ...], value: float, ts: float, kind: MetricType = "gauge"
) -> Sample:
    return Sample(metric, tuple(sorted(labels)), value, ts, kind, HELP[metric])


def build(section: ProbesConfig, *, inventory: Inventory, latest: LatestStore) -> list[Service]:
    """The prober and (unless `reachability: false`) the reachability/redundancy service."""
    prober = ProbeService(inventory, section)
    services: list[Service] = [prober]
    if section.reachability is not False:
        from collectors.redundancy import ReachabilityService

        every = section.reachability.interval if isinstance(section.reachability, ReachabilityConfig) else 5.0
        services.append(ReachabilityService(inventory, latest, prober.probe_up, every))
    return services
