"""The lab's shared, mutable picture of each simulated device (read by the SNMP agent and the SSH CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LabInterface:
    """One simulated interface; counters are derived from rates and time, not stored."""

    index: int
    name: str
    alias: str = ""
    speed_mbps: int = 1000
    admin_up: bool = True
    oper_up: bool = True
    in_bps: float = 0.0  # configured traffic rate, bits per second
    out_bps: float = 0.0
    counter_offset: int = 0  # added to octet counters (counter-wrap fault)
    out_counter_offset: int = 0  # the same for the out direction
    # Octet counters are in_base + in_bps/8 * (now - since) while oper up; faults rebase them.
    in_base: float = 0.0
    out_base: float = 0.0
    since: float = 0.0
    peer: tuple[str, str] | None = None  # (device, interface) at the other end of a link
    management: bool = False

    def octets(self, now: float) -> tuple[int, int]:
        """(in, out) octets since boot plus the counter-wrap offset, at time `now`."""
        if not self.oper_up:
            return int(self.in_base) + self.counter_offset, int(self.out_base) + self.out_counter_offset
        dt = max(0.0, now - self.since)
        return (
            int(self.in_base + self.in_bps / 8 * dt) + self.counter_offset,
            int(self.out_base + self.out_bps / 8 * dt) + self.out_counter_offset,
        )

    def in_octets(self, now: float) -> int:
        """`octets(now)[0]` alone (the agent reads one column at a time)."""
        if not self.oper_up:
            return int(self.in_base) + self.counter_offset
        dt = now - self.since
        return int(self.in_base + self.in_bps / 8 * (dt if dt > 0.0 else 0.0)) + self.counter_offset

    def out_octets(self, now: float) -> int:
        """`octets(now)[1]` alone."""
        if not self.oper_up:
            return int(self.out_base) + self.out_counter_offset
        dt = now - self.since
        return int(self.out_base + self.out_bps / 8 * (dt if dt > 0.0 else 0.0)) + self.out_counter_offset

    def rebase(self, now: float) -> None:
        """Freeze the counters at their current value (before a state change)."""
        i, o = self.octets(now)
        self.in_base, self.out_base = float(i - self.counter_offset), float(o - self.out_counter_offset)
        self.since = now


@dataclass
class LabDevice:
    """One simulated device: identity from the inventory plus runtime state changed by faults."""

    name: str
    site: str
    role: str
    vendor: str
    model: str
    address: str  # the 127.x.y.z the lab gave it
    snmp_port: int
    ssh_port: int | None  # None when the device has no SSH CLI in the lab
    boot_time: float  # wall-clock seconds; sysUpTime = now - boot_time
    interfaces: list[LabInterface] = field(default_factory=list)
    dead: bool = False  # answers nothing (SNMP and SSH)
    slow_s: float = 0.0  # extra delay before every answer
    cpu_spike: bool = False
    ha_role: str | None = None  # active/standby (firewall) or primary/standby (database)
    ha_group: str | None = None
    config_revision: int = 0  # bumped by the config-change fault
    config_extra: list[str] = field(default_factory=list)  # lines added by config changes
    engine_boots: int = 1  # SNMPv3 snmpEngineBoots, bumped on reboot
    cpu_base: float = 20.0  # % busy when no fault is active
    mem_base: float = 40.0  # % memory used
    sessions_base: int = 0  # firewall sessions
    faults: dict[str, dict[str, object]] = field(default_factory=dict)  # active faults and their params
    snmprec: str | None = None  # serve this recording instead of synthetic data (tag `snmprec:NAME`)

    def interface(self, name: str) -> LabInterface:
        """The interface called `name` (KeyError if none)."""
        for i in self.interfaces:
            if i.name == name:
                return i
        raise KeyError(name)
