"""The inventory: sites, devices, HA groups, links and backup jobs, as validated pydantic models."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from core.config import SecretRef

# Re-exported: the other rooms import these from here (the field types live in core.config).
from inventory.fields import Duration as Duration
from inventory.fields import Name as Name
from inventory.fields import parse_duration as parse_duration
from inventory.services import ServiceCheck


class Role(StrEnum):
    """What a device does in the extranet."""

    core_switch = "core_switch"
    aggregation_switch = "aggregation_switch"
    access_switch = "access_switch"
    firewall = "firewall"
    isolation_gateway = "isolation_gateway"
    vpn_gateway = "vpn_gateway"
    ips = "ips"
    load_balancer = "load_balancer"
    db_server = "db_server"
    server = "server"
    ups = "ups"


class Vendor(StrEnum):
    """Who made it (selects SNMP profiles and SSH platforms)."""

    huawei = "huawei"
    h3c = "h3c"
    ruijie = "ruijie"
    cisco = "cisco"
    hillstone = "hillstone"
    sangfor = "sangfor"
    topsec = "topsec"
    fortinet = "fortinet"
    apc = "apc"
    linux = "linux"
    generic = "generic"


def _zone_name(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_zone_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


AuthProtocol = Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"]
PrivProtocol = Literal["des", "aes", "aes128", "aes192", "aes256"]
WEAK_AUTH = {"md5"}
WEAK_PRIV = {"des"}


class SnmpV2c(_Strict):
    """SNMP v2c credentials: a community, by reference."""

    version: Literal["2c"] = "2c"
    community: SecretRef
    port: int = Field(161, ge=1, le=65535)


class SnmpV3(_Strict):
    """SNMP v3 USM credentials; authPriv with SHA-2 and AES unless weak algorithms are allowed."""

    version: Literal["3"] = "3"
    user: str = Field(min_length=1, max_length=32)
    auth_protocol: AuthProtocol = "sha256"
    auth_key: SecretRef | None = None
    priv_protocol: PrivProtocol | None = "aes128"
    priv_key: SecretRef | None = None
    port: int = Field(161, ge=1, le=65535)
    allow_weak_crypto: bool = False
    context: str = ""

    @model_validator(mode="after")
    def _keys_and_strength(self) -> SnmpV3:
        if self.auth_key is None:
            raise ValueError("SNMPv3 without auth_key: govnet requires authPriv")
        if self.priv_protocol is None or self.priv_key is None:
            raise ValueError("SNMPv3 without priv_protocol/priv_key: govnet requires authPriv")
        weak = [p for p in (self.auth_protocol, self.priv_protocol) if p in WEAK_AUTH | WEAK_PRIV]
        if weak and not self.allow_weak_crypto:
            raise ValueError(
                f"weak SNMPv3 algorithm {'/'.join(weak)}: use sha256+aes128 or set "
                "allow_weak_crypto: true for this device"
            )
        return self


SnmpCredentials = Annotated[SnmpV2c | SnmpV3, Field(discriminator="version")]


def _snmp_version_to_str(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("version"), int):
        return {**value, "version": str(value["version"])}
    return value


class SshCredentials(_Strict):
    """SSH login for a device; password or key file by reference, host key verified."""

    username: str = Field(min_length=1)
    password: SecretRef | None = None
    key_file: SecretRef | None = None
    port: int = Field(22, ge=1, le=65535)
    platform: str | None = None  # netmiko device_type; derived from vendor when absent

    @model_validator(mode="after")
    def _one_auth(self) -> SshCredentials:
        if self.password is None and self.key_file is None:
            raise ValueError("SSH credentials need password or key_file (as env:/file: reference)")
        return self


class Site(_Strict):
    """A place: the network control centre, an aggregation point, a community, a data centre."""

    name: Name
    kind: Literal["control_centre", "aggregation", "access", "unit", "datacentre", "other"] = "other"
    parent: str | None = None
    description: str = ""


class Device(_Strict):
    """One managed device."""

    name: Name
    site: str
    role: Role
    vendor: Vendor
    model: str = ""
    address: str
    snmp: Annotated[SnmpCredentials | None, BeforeValidator(_snmp_version_to_str)] = None
    ssh: SshCredentials | None = None
    poll_interval: Duration | None = None
    interfaces: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    timezone: TimeZoneName | None = None  # of the device clock (syslog times without a zone); else defaults
    # Ports with one host behind them (a government unit's PC): a new MAC there raises an alert.
    single_host_ports: list[str] = Field(default_factory=list)

    @field_validator("address")
    @classmethod
    def _ip(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            raise ValueError("expected an IPv4 or IPv6 management address") from None


class HaMember(_Strict):
    """A member of an HA group and the role it is expected to hold when all is well."""

    device: str
    expected_role: Literal["active", "standby", "primary", "secondary"]


class HaGroup(_Strict):
    """A firewall pair or a dual-node database (双机热备)."""

    name: Name
    kind: Literal["firewall", "database", "other"]
    members: list[HaMember]


class LinkEnd(_Strict):
    """One end of a link: a device and one of its interfaces."""

    device: str
    interface: str


class Link(_Strict):
    """A cable between two devices; for `uplink`, `b` is upstream of `a`."""

    a: LinkEnd
    b: LinkEnd
    kind: Literal["uplink", "peer"] = "uplink"
    redundancy_group: str | None = None
    speed_mbps: int | None = Field(None, gt=0)


class BackupJob(_Strict):
    """A backup that must exist, be recent, and look like its predecessors."""

    name: Name
    host: str
    path: str
    every: Duration = 86400.0
    mode: Literal["automatic", "manual"] = "automatic"
    max_age: Duration = 93600.0  # 26 h: a daily job plus slack


class Defaults(_Strict):
    """Values a device inherits unless it sets its own."""

    poll_interval: Duration = 30.0
    snmp: Annotated[SnmpCredentials | None, BeforeValidator(_snmp_version_to_str)] = None
    ssh: SshCredentials | None = None
    timezone: TimeZoneName = "Asia/Shanghai"  # device clocks on this network run on Beijing time


class Inventory(_Strict):
    """Everything govnet watches."""

    defaults: Defaults = Field(default_factory=Defaults)
    sites: list[Site] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    ha_groups: list[HaGroup] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    backup_jobs: list[BackupJob] = Field(default_factory=list)
    services: list[Annotated[ServiceCheck, Field(discriminator="type")]] = Field(default_factory=list)

    def device(self, name: str) -> Device:
        """The device called `name` (KeyError if none)."""
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    def interval_of(self, device: Device) -> float:
        """Poll interval in seconds for a device."""
        return device.poll_interval or self.defaults.poll_interval

    def snmp_of(self, device: Device) -> SnmpV2c | SnmpV3 | None:
        """SNMP credentials for a device (its own, else the defaults)."""
        return device.snmp or self.defaults.snmp

    def ssh_of(self, device: Device) -> SshCredentials | None:
        """SSH credentials for a device (its own, else the defaults)."""
        return device.ssh or self.defaults.ssh
