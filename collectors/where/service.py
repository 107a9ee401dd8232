"""The `where:` section of `govnet run`: sweep ARP and forwarding tables on their own slow interval,
resolve hosts to edge ports, keep the history and raise address events as alert series."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from collectors.base import device_labels
from collectors.where.events import EventDetector, EventSettings
from collectors.where.history import History
from collectors.where.poll import DeviceTables, TablesPoller
from collectors.where.query import Query, answer
from collectors.where.resolve import Sweep, resolve
from core.config import ConfigPath, Duration, SecretRef, Section
from core.samples import Sample
from inventory.model import Device, Inventory

log = logging.getLogger(__name__)

MIN_RETENTION = 180 * 86400.0  # 网络安全法 Art. 21: network logs kept at least six months

HELP = {
    "govnet_where_sweep_duration_seconds": "Wall time of the last ARP/FDB sweep.",
    "govnet_where_sweep_cpu_seconds": "CPU time of the govnet process during the last ARP/FDB sweep.",
    "govnet_where_sweep_timestamp_seconds": "When the last ARP/FDB sweep ended (Unix time).",
    "govnet_where_rows": "Rows read in the last sweep, by table (arp, fdb).",
    "govnet_where_hosts": "Hosts (ip, mac, port) resolved in the last sweep.",
    "govnet_where_sweeps_total": "ARP/FDB sweeps run.",
    "govnet_where_device_failures_total": "Devices whose tables could not be read, summed over sweeps.",
    "govnet_where_history_rows": "Rows in the address history.",
    "govnet_where_events_total": "Address events detected, by kind.",
    "govnet_where_address_mac_changed": "1 while an address recently changed MAC (ip, previous_mac, mac).",
    "govnet_where_mac_many_ports": "Host-facing ports a MAC was learned on at once (held after the event).",
    "govnet_where_single_host_new_mac": "MACs on a single-host port when a new one appeared (held).",
    "govnet_where_port_mac_jump": "A port's MAC count after a jump (held); `before` is the previous count.",
}


class WhereSection(Section):
    """The `where:` section."""

    interval: Duration = 300.0
    timeout: Duration = 2.0
    retries: int = Field(1, ge=0, le=5)
    max_concurrency: int = Field(8, ge=1, le=256)
    arp_roles: list[str] = Field(
        default_factory=lambda: ["core_switch", "aggregation_switch", "firewall", "vpn_gateway"]
    )
    fdb_roles: list[str] = Field(default_factory=lambda: ["access_switch", "aggregation_switch"])
    state_dir: ConfigPath = Path("state")
    postgres: SecretRef | None = None  # DSN of the HA pair's shared database (then no SQLite file)
    retention: Duration = 400 * 86400.0
    merge_gap: Duration = 3 * 86400.0
    flush_every: Duration = 900.0
    event_hold: Duration = 3600.0
    jump_min: int = Field(10, ge=1)
    jump_factor: float = Field(3.0, ge=1.0)

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: float) -> float:
        if v < MIN_RETENTION:
            raise ValueError("address history must be kept at least 180 days (网络安全法 Art. 21)")
        return v


def history_of(section: WhereSection) -> History:
    """Open the history the section names (PostgreSQL when `postgres` is set, else SQLite in state_dir)."""
    if section.postgres is not None:
        return History(
            dsn=section.postgres.resolve(), merge_gap=section.merge_gap, flush_every=section.flush_every
        )
    return History(
        path=section.state_dir / "where.db", merge_gap=section.merge_gap, flush_every=section.flush_every
    )


class WhereService:
    """Sweeps ARP/FDB tables every `interval`; the latest sweep and the history answer `where` queries."""

    name = "where"

    def __init__(
        self,
        inventory: Inventory,
        section: WhereSection,
        history: History,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inventory = inventory
        self.cfg = section
        self.history = history
        self.clock = clock
        self.poller = TablesPoller(timeout_s=section.timeout, retries=section.retries)
        self.detector = EventDetector(
            EventSettings(
                hold=section.event_hold,
                jump_min=section.jump_min,
                jump_factor=section.jump_factor,
                single_host_ports={
                    d.name: set(d.single_host_ports) for d in inventory.devices if d.single_host_ports
                },
            )
        )
        self.sweep: Sweep | None = None
        self.sweeps = 0
        self.failures = 0
        self.last: dict[str, float] = {}
        self.last_tables: list[DeviceTables] = []
        self.history_rows = 0
        self._pruned_at = 0.0

    def devices(self) -> list[tuple[Device, bool, bool]]:
        """(device, read ARP?, read FDB?) for every device with SNMP credentials and a role that has them."""
        out = []
        for d in self.inventory.devices:
            arp, fdb = d.role.value in self.cfg.arp_roles, d.role.value in self.cfg.fdb_roles
            if (arp or fdb) and self.inventory.snmp_of(d) is not None:
                out.append((d, arp, fdb))
        return out

    async def read_all(self, budget_s: float) -> list[DeviceTables]:
        """Every device's tables, `max_concurrency` at a time."""
        sem = asyncio.Semaphore(self.cfg.max_concurrency)

        async def one(d: Device, arp: bool, fdb: bool) -> DeviceTables:
            async with sem:
                return await self.poller.read(
                    d, self.inventory.snmp_of(d), arp=arp, fdb=fdb, budget_s=budget_s
                )

        return list(await asyncio.gather(*(one(*x) for x in self.devices())))

    async def sweep_once(self) -> Sweep:
        """One sweep: read, resolve, record, detect (the history write runs in a thread)."""
        wall0, cpu0 = time.monotonic(), time.process_time()
        tables = await self.read_all(budget_s=max(5.0, 0.8 * self.cfg.interval))
        now = self.clock()
        sweep = resolve(self.inventory, tables)
        await asyncio.to_thread(self.history.record, sweep.hosts, now)
        for ev in self.detector.observe(sweep, now):
            log.warning("where: %s on %s: %s", ev.kind, ev.device, dict(ev.labels))
        if now - self._pruned_at > 86400.0:
            await asyncio.to_thread(self.history.prune, now, self.cfg.retention)
            self._pruned_at = now
        self.history_rows = await asyncio.to_thread(self.history.count)
        failed = [t for t in tables if not t.ok]
        for t in failed:
            log.info("where: %s: %s", t.device, t.error)
        self.failures += len(failed)
        self.sweeps += 1
        self.sweep, self.last_tables = sweep, tables
        self.last = {
            "duration": time.monotonic() - wall0,
            "cpu": time.process_time() - cpu0,
            "at": now,
        }
        return sweep

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every `interval` until stopped (a failing sweep is logged; the next one retries)."""
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await self.sweep_once()
                except Exception:
                    log.exception("where: sweep failed")
                wait = max(1.0, self.cfg.interval - (time.monotonic() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
        finally:
            self.poller.close()
            await asyncio.to_thread(self.history.close)

    def lookup(self, q: Query) -> dict[str, Any]:
        """The `where` answer for a parsed query (history plus the latest sweep)."""
        return answer(q, self.history, self.inventory, self.sweep)

    def internal_samples(self) -> list[Sample]:
        """Sweep figures and the held address events."""
        ts = time.time()

        def s(metric: str, labels: tuple[tuple[str, str], ...], value: float, kind: str = "gauge") -> Sample:
            return Sample(
                metric, labels, value, ts, "counter" if kind == "counter" else "gauge", HELP[metric]
            )

        out = [
            s("govnet_where_sweeps_total", (), float(self.sweeps), "counter"),
            s("govnet_where_device_failures_total", (), float(self.failures), "counter"),
            s("govnet_where_history_rows", (), float(self.history_rows)),
        ]
        if self.last:
            out += [
                s("govnet_where_sweep_duration_seconds", (), self.last["duration"]),
                s("govnet_where_sweep_cpu_seconds", (), self.last["cpu"]),
                s("govnet_where_sweep_timestamp_seconds", (), self.last["at"]),
            ]
        if self.sweep is not None:
            out += [
                s("govnet_where_rows", (("table", "arp"),), float(self.sweep.arp_rows)),
                s("govnet_where_rows", (("table", "fdb"),), float(self.sweep.fdb_rows)),
                s("govnet_where_hosts", (), float(len(self.sweep.hosts))),
            ]
        for kind in ("address_mac_changed", "mac_many_ports", "single_host_new_mac", "port_mac_jump"):
            out.append(
                s(
                    "govnet_where_events_total",
                    (("kind", kind),),
                    float(self.detector.total.get(kind, 0)),
                    "counter",
                )
            )
        for ev in self.detector.active.values():
            try:
                base = device_labels(self.inventory.device(ev.device))
            except KeyError:
                base = (("device", ev.device),)
            out.append(s(f"govnet_where_{ev.kind}", tuple(sorted((*base, *ev.labels))), ev.value))
        return out


def build(section: WhereSection, *, inventory: Inventory) -> list[WhereService]:
    """The where service for `govnet run` (`govnet/run.py` hands it to the API, which answers from it)."""
    return [WhereService(inventory, section, history_of(section))]
