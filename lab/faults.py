"""Faults the lab can inject at runtime, and their clearing; time is passed in."""

from __future__ import annotations

import contextlib
from typing import Any

from lab import hardware, lldp
from lab.state import LabDevice, LabInterface

KINDS = (
    "link_down", "dead", "slow", "ha_failover", "reboot", "counter_wrap", "cpu_spike", "config_change",
    "optic_degrade", "miswire",
)  # fmt: skip
WRAP = 2**64
_SWAP = {"active": "standby", "standby": "active", "primary": "secondary", "secondary": "primary"}


class FaultError(ValueError):
    """A fault request names an unknown device, kind or interface."""


class Faults:
    """Applies faults to a set of lab devices (links and HA groups are followed to the peers)."""

    def __init__(self, devices: list[LabDevice]) -> None:
        self.devices = {d.name: d for d in devices}

    def device(self, name: str) -> LabDevice:
        """The device called `name` (FaultError if none)."""
        try:
            return self.devices[name]
        except KeyError:
            raise FaultError(f"no lab device {name!r}") from None

    def _link_ends(self, d: LabDevice, interface: str | None) -> list[LabInterface]:
        if interface is None:
            linked = [i for i in d.interfaces if i.peer and not i.management]
            if not linked:
                raise FaultError(f"{d.name} has no linked interface: name one with --interface")
            iface = linked[0]
        else:
            try:
                iface = d.interface(interface)
            except KeyError:
                raise FaultError(f"{d.name} has no interface {interface!r}") from None
        ends = [iface]
        if iface.peer and iface.peer[0] in self.devices:
            with contextlib.suppress(KeyError):
                ends.append(self.devices[iface.peer[0]].interface(iface.peer[1]))
        return ends

    def _ha_swap(self, d: LabDevice) -> list[str]:
        group = [x for x in self.devices.values() if d.ha_group and x.ha_group == d.ha_group]
        if len(group) < 2:
            d.ha_role = _SWAP.get(d.ha_role or "active", "standby")
            return [f"{d.name}={d.ha_role}"]
        # The members exchange roles (a pair swaps; larger groups rotate).
        roles = [x.ha_role for x in group]
        for x, role in zip(group, roles[1:] + roles[:1], strict=True):
            x.ha_role = role
        return [f"{x.name}={x.ha_role}" for x in group]

    def apply(self, name: str, kind: str, now: float, **params: Any) -> dict[str, Any]:
        """Inject `kind` on device `name`; returns what changed."""
        d = self.device(name)
        if kind not in KINDS:
            raise FaultError(f"unknown fault {kind!r}; one of {', '.join(KINDS)}")
        result: dict[str, Any] = {"device": name, "kind": kind}
        if kind == "link_down":
            ends = self._link_ends(d, params.get("interface"))
            for i in ends:
                i.rebase(now)
                i.oper_up = False
            downs = d.faults.setdefault("link_down", {"interfaces": []})["interfaces"]
            assert isinstance(downs, list)
            downs.append(ends[0].name)
            result["interfaces"] = [i.name for i in ends]
        elif kind == "dead":
            d.dead = True
            d.faults["dead"] = {}
        elif kind == "slow":
            d.slow_s = float(params.get("seconds") or 5.0)
            d.faults["slow"] = {"seconds": d.slow_s}
        elif kind == "ha_failover":
            result["roles"] = self._ha_swap(d)
            d.faults["ha_failover"] = {}
        elif kind == "reboot":
            d.boot_time = now
            d.engine_boots += 1
            for i in d.interfaces:
                i.in_base = i.out_base = 0.0
                i.counter_offset = i.out_counter_offset = 0
                i.since = now
            result["engine_boots"] = d.engine_boots
        elif kind == "counter_wrap":
            seconds = float(params.get("seconds") or 20.0)
            for i in d.interfaces:
                i.rebase(now)
                # Put both 64-bit totals `seconds` of traffic below 2**64 (hence also below 2**32).
                i.counter_offset = WRAP - int(i.in_base) - int(i.in_bps / 8 * seconds) - 1
                i.out_counter_offset = WRAP - int(i.out_base) - int(i.out_bps / 8 * seconds) - 1
            d.faults["counter_wrap"] = {"seconds": seconds}
        elif kind == "cpu_spike":
            d.cpu_spike = True
            d.faults["cpu_spike"] = {}
        elif kind == "config_change":
            d.config_revision += 1
            line = str(params.get("line") or f"description govnet-lab change {d.config_revision}")
            d.config_extra.append(line)
            result["config_revision"] = d.config_revision
        elif kind == "optic_degrade":
            # Rx power of one optic falls by 2 dB every `seconds` (default 10 s) until it is dark.
            every = float(params["seconds"]) if params.get("seconds") else None
            try:
                result.update(hardware.apply_degrade(d, now, params.get("interface"), every))
            except ValueError as exc:
                raise FaultError(str(exc)) from None
        elif kind == "miswire":
            # An uplink's LLDP neighbour port changes (the cable moved to a free port of the peer).
            ends = self._link_ends(d, params.get("interface"))
            peer = self.devices.get(ends[0].peer[0]) if ends[0].peer else None
            try:
                result.update(lldp.apply_miswire(d, peer, ends[0].name))
            except ValueError as exc:
                raise FaultError(str(exc)) from None
        return result

    def clear(self, name: str, kind: str | None, now: float) -> list[str]:
        """Clear one fault kind (or all) on device `name`; returns the kinds cleared."""
        d = self.device(name)
        kinds = [kind] if kind else list(d.faults)
        cleared: list[str] = []
        for k in kinds:
            if k not in KINDS:
                raise FaultError(f"unknown fault {k!r}")
            if k == "link_down":
                for iname in list(d.faults.get("link_down", {}).get("interfaces", [])):  # type: ignore[call-overload]
                    for i in self._link_ends(d, str(iname)):
                        i.rebase(now)
                        i.oper_up = True
            elif k == "dead":
                d.dead = False
            elif k == "slow":
                d.slow_s = 0.0
            elif k == "ha_failover" and "ha_failover" in d.faults:
                self._ha_swap(d)
            elif k == "counter_wrap":
                for i in d.interfaces:
                    i.rebase(now)
                    i.in_base += i.counter_offset % WRAP
                    i.out_base += i.out_counter_offset % WRAP
                    i.counter_offset = i.out_counter_offset = 0
            elif k == "cpu_spike":
                d.cpu_spike = False
            elif k == "config_change" and d.config_extra:
                d.config_extra.clear()
                d.config_revision += 1
            if d.faults.pop(k, None) is not None or k in ("config_change",):
                cleared.append(k)
        return cleared
