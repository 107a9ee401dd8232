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
