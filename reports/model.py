"""What a monthly report holds: plain data, filled by `collect`, drawn by the XLSX and PDF writers."""

from __future__ import annotations

from dataclasses import dataclass, field

from reports.availability import Availability
from reports.tsdb import UplinkLoad


@dataclass(frozen=True, slots=True)
class OutageRow:
    """One outage of one device, with its cause from the incident that covered it."""

    device: str
    site: str
    start: float
    end: float
    state: str
    cause: str  # "incident #12 CoreDeviceDown (core-1)" or "" when no incident covered it
    in_maintenance: bool


@dataclass(frozen=True, slots=True)
class SiteAvailability:
    """A site (unit) over the period: device-time weighted."""

    site: str
    kind: str
    devices: int
    available: float | None  # share of known, non-maintenance device-time up or degraded
    up: float | None
    degraded: float | None
    unknown_seconds: float
    outages: int


@dataclass(frozen=True, slots=True)
class WindowRow:
    """A declared maintenance window in force during the period."""

    name: str
    start: float
    end: float
    devices: tuple[str, ...]


@dataclass(slots=True)
class IncidentStats:
    """Incidents opened in the period."""

    total: int = 0
    by_level: dict[str, int] = field(default_factory=dict)
    ack_median: float | None = None
    ack_p90: float | None = None
    resolve_median: float | None = None
    resolve_p90: float | None = None
    deadlines_met: int = 0
    deadlines_missed: int = 0
    deadlines_open: int = 0  # due later than the period's end, not reported yet
    top_devices: list[tuple[str, int]] = field(default_factory=list)
    rows: list[dict[str, object]] = field(default_factory=list)


@dataclass(slots=True)
class SecurityLogStats:
    """Security-log collection over the period (from the log store, read only)."""

    configured: bool = False
    lines_by_device: dict[str, int] = field(default_factory=dict)
    security_devices: list[str] = field(default_factory=list)
    silent_security_devices: list[str] = field(default_factory=list)
    oldest_record_days: float | None = None  # retention actually held at the period's end
    top_denied_sources: list[tuple[str, int]] = field(default_factory=list)
    events_by_type: dict[str, int] = field(default_factory=dict)
    failed_logins: int = 0

    @property
    def coverage(self) -> float | None:
        """Security devices that sent logs in the period over all of them."""
        if not self.security_devices:
            return None
        return 1 - len(self.silent_security_devices) / len(self.security_devices)


@dataclass(slots=True)
class BackupStats:
    """Backup files seen and verified, config changes captured."""

    configured: bool = False
    runs_by_job: dict[str, int] = field(default_factory=dict)
    verified_ok: int = 0
    verified_failed: int = 0
    config_changes: dict[str, int] = field(default_factory=dict)
    # (device, time, author) of config changes no maintenance window covered
    changes_outside_maintenance: list[tuple[str, float, str]] = field(default_factory=list)


@dataclass(slots=True)
class MonthlyReport:
    """Everything one report shows."""

    title: str
    start: float
    end: float
    generated: float
    lang: str
    devices: list[Availability] = field(default_factory=list)
    device_site: dict[str, str] = field(default_factory=dict)
    sites: list[SiteAvailability] = field(default_factory=list)
    outages: list[OutageRow] = field(default_factory=list)
    windows: list[WindowRow] = field(default_factory=list)
    govnet_unknown: list[tuple[float, float]] = field(default_factory=list)  # spans govnet was not watching
    uplinks: list[UplinkLoad] = field(default_factory=list)
    tsdb_note: str = ""  # why there are no uplink figures (no TSDB configured, TSDB unreachable)
    incidents: IncidentStats = field(default_factory=IncidentStats)
    security: SecurityLogStats = field(default_factory=SecurityLogStats)
    backups: BackupStats = field(default_factory=BackupStats)
