"""What lab devices tell a collector on their own: syslog continually, traps and log lines when faults hit.

The lab server calls `on_fault`/`on_clear` after a fault changed its devices; `request` answers the
control ops `syslog_burst` (a brute-force run, for the tour) and `signals` (counters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lab.faults import Faults
from lab.state import LabDevice
from lab.syslog_gen import SyslogEmitter
from lab.traps import TrapSender

log = logging.getLogger("lab.signals")


def parse_target(text: str) -> tuple[str, int]:
    """`HOST:PORT` -> (host, port) (ValueError otherwise)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


class LabSignals:
    """Syslog emitter and trap sender of one lab (either may be absent)."""

    def __init__(
        self,
        faults: Faults,
        syslog: str | None,
        traps: str | None,
        community: bytes,
        syslog_rate: float = 6.0,
    ) -> None:
        self.faults = faults
        devices = list(faults.devices.values())
        self.emitter = SyslogEmitter(devices, *parse_target(syslog), rate=syslog_rate) if syslog else None
        self.traps = TrapSender(*parse_target(traps), community) if traps else None
        self.tasks: set[asyncio.Task[Any]] = set()

    def start(self, stop: asyncio.Event) -> None:
        """Start the steady syslog mix."""
        if self.emitter is not None:
            self._spawn(self.emitter.run(stop))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _log(self, dev: LabDevice, kind: str, **kw: Any) -> None:
        if self.emitter is not None:
            self._spawn(self.emitter.send(dev, kind, **kw))

    def on_fault(self, device: str, kind: str, result: dict[str, Any]) -> None:
        """A fault was applied: the traps and log lines the devices would send."""
        dev = self.faults.device(device)
        if kind == "link_down":
            for end, name in zip(self._ends(dev, result), result.get("interfaces", []), strict=False):
                if self.traps is not None:
                    self.traps.link(end, name, up=False)
                self._log(end, "link", iface=name, up=False)
        elif kind == "ha_failover":
            for member in self._ha_members(dev):
                if member.ha_role in ("active", "primary") and self.traps is not None:
                    self.traps.new_master(member)
        elif kind == "config_change":
            self._log(dev, "config")
        elif kind == "reboot" and self.traps is not None:
            self.traps.cold_start(dev)

    def before_clear(self, device: str, kind: str | None) -> list[tuple[LabDevice, str]]:
        """The link ends a clear will bring up (read before the fault state is gone)."""
        dev = self.faults.device(device)
        if kind not in (None, "link_down"):
            return []
        names = dev.faults.get("link_down", {}).get("interfaces", [])
        out: list[tuple[LabDevice, str]] = []
        for name in names if isinstance(names, list) else []:
            iface = dev.interface(str(name))
            out.append((dev, iface.name))
            if iface.peer and iface.peer[0] in self.faults.devices:
                out.append((self.faults.devices[iface.peer[0]], iface.peer[1]))
        return out

    def on_clear(self, device: str, cleared: list[str], ups: list[tuple[LabDevice, str]]) -> None:
        """A fault was cleared: linkUp for links back up, a new master for a swapped-back pair."""
        for dev, name in ups:
            if self.traps is not None:
                self.traps.link(dev, name, up=True)
            self._log(dev, "link", iface=name, up=True)
        if "ha_failover" in cleared:
            for member in self._ha_members(self.faults.device(device)):
                if member.ha_role in ("active", "primary") and self.traps is not None:
                    self.traps.new_master(member)

    def _ends(self, dev: LabDevice, result: dict[str, Any]) -> list[LabDevice]:
        names = result.get("interfaces", [])
        ends = [dev]
        if len(names) > 1:
            iface = dev.interface(names[0])
            if iface.peer and iface.peer[0] in self.faults.devices:
                ends.append(self.faults.devices[iface.peer[0]])
        return ends

    def _ha_members(self, dev: LabDevice) -> list[LabDevice]:
        if not dev.ha_group:
            return [dev]
        return [d for d in self.faults.devices.values() if d.ha_group == dev.ha_group]

    async def request(self, req: dict[str, Any]) -> dict[str, Any]:
        """Control ops: `syslog_burst` {device, kind, count, src, user}; `signals` (counters)."""
        if req.get("op") == "signals":
            e, t = self.emitter, self.traps
            return {
                "ok": True,
                "syslog_sent": e.sent if e else None,
                "syslog_dropped": e.dropped if e else None,
                "traps_sent": t.sent if t else None,
            }
        if self.emitter is None:
            return {"ok": False, "error": "the lab was started without --syslog"}
        dev = self.faults.device(str(req["device"]))
        count = max(1, min(int(req.get("count") or 10), 1000))
        sent = await self.emitter.burst(
            dev,
            str(req.get("kind") or "login_failed"),
            count,
            str(req.get("src") or "203.0.113.66"),
            str(req.get("user") or "admin"),
        )
        return {"ok": True, "sent": sent}

    async def close(self) -> None:
        """Cancel pending sends and close sockets."""
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task
        if self.emitter is not None:
            self.emitter.close()
