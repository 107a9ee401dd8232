"""Gather one report's figures from govnet's own stores (read only) and the TSDB."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alerts.config import AlertingConfig, open_store
from alerts.incidents import Incident
from alerts.journal import Journal
from alerts.maintenance import MaintenanceWindow
from collectors.base import device_labels
from inventory.model import Inventory
from reports.availability import Availability, device_availability, normalise, subtract
from reports.config import ReportsSection
from reports.model import (
    BackupStats,
    IncidentStats,
    MonthlyReport,
    OutageRow,
    SecurityLogStats,
    SiteAvailability,
    WindowRow,
)
from reports.tsdb import Tsdb, TsdbError, quantile, uplinks
from reports.windows import device_maintenance

log = logging.getLogger(__name__)

# Devices whose logs 等保 reviews expect to be collected centrally.
SECURITY_ROLES = frozenset({"firewall", "ips", "vpn_gateway", "isolation_gateway", "load_balancer"})

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReportSources:
    """Where a report reads from: the parts of the run config it needs, resolved by the caller."""

    alerting: AlertingConfig | None  # the `alerts:` section: journal, incidents, maintenance windows
    log_store: Path | None = None  # the `syslog:` section's store folder
    backup_db: Path | None = None  # the `backups:` section's backups.sqlite
    config_repo: Path | None = None  # the `ssh:` section's configuration repository


def _quiet(_: str) -> None:
    pass


def _windows(journal: Journal, cfg: AlertingConfig) -> list[MaintenanceWindow]:
    seen: dict[str, MaintenanceWindow] = {}
    for _, doc in journal.windows():
        try:
            seen[doc] = MaintenanceWindow.model_validate_json(doc)
        except ValueError:
            log.warning("journal holds a maintenance window this version cannot read; ignored")
    for w in cfg.maintenance:
        seen.setdefault(w.model_dump_json(), w)
    return list(seen.values())


def _quantile(values: list[float], q: float) -> float | None:
    return quantile(values, q) if values else None


def _incident_devices(inc: Incident) -> set[str]:
    out = {v for k, v in inc.key if k == "device"}
    for st in inc.alerts.values():
        out.update(v for k, v in st.labels if k == "device")
    return out


def _incident_name(inc: Incident) -> str:
    rules = sorted({st.rule for st in inc.alerts.values()})
    devices = sorted(_incident_devices(inc))
    return f"#{inc.id} {'/'.join(rules) or '-'} ({', '.join(devices) or '-'})"


def _cause(device: str, start: float, end: float, incidents: Iterable[Incident], until: float) -> str:
    """The incident that covered this outage: the device's own, else the one that named it affected."""
    own, upstream = [], []
    for inc in incidents:
        closes = inc.resolved_at if inc.resolved_at is not None else until
        if inc.opened_at > end or closes < start:
            continue
        if device in _incident_devices(inc):
            own.append(inc)
        elif device in inc.affected:
            upstream.append(inc)
    for found in (upstream, own):  # an upstream cause explains an unreachable device best
        if found:
            return _incident_name(min(found, key=lambda i: i.opened_at))
    return ""


def incident_stats(incidents: list[Incident], start: float, end: float) -> IncidentStats:
    """Counts, time to acknowledge and resolve, reporting deadlines of incidents opened in [start, end)."""
    stats = IncidentStats()
    opened = sorted((i for i in incidents if start <= i.opened_at < end), key=lambda i: i.opened_at)
    stats.total = len(opened)
    stats.by_level = dict(Counter(i.level.value for i in opened))
    acks = [i.acked_at - i.opened_at for i in opened if i.acked_at is not None]
    fixes = [i.resolved_at - i.opened_at for i in opened if i.resolved_at is not None]
    stats.ack_median, stats.ack_p90 = _quantile(acks, 0.5), _quantile(acks, 0.9)
    stats.resolve_median, stats.resolve_p90 = _quantile(fixes, 0.5), _quantile(fixes, 0.9)
    per_device: Counter[str] = Counter()
    for inc in opened:
        per_device.update(_incident_devices(inc))
        deadline = inc.report_deadline
        verdict = ""
        if deadline is not None:
            if inc.reported_at is not None and inc.reported_at <= deadline:
                stats.deadlines_met += 1
                verdict = "met"
            elif inc.reported_at is not None or deadline <= end:
                stats.deadlines_missed += 1
                verdict = "missed"
            else:
                stats.deadlines_open += 1
                verdict = "open"
        stats.rows.append(
            {
                "id": inc.id,
                "level": inc.level.value,
                "name": _incident_name(inc),
                "opened_at": inc.opened_at,
                "acked_at": inc.acked_at,
                "acked_by": inc.acked_by or "",
                "resolved_at": inc.resolved_at,
                "deadline": deadline,
                "reported_at": inc.reported_at,
                "deadline_verdict": verdict,
            }
        )
    stats.top_devices = per_device.most_common(10)
    return stats


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def security_stats(
    store_root: Path | None, inventory: Inventory, start: float, end: float
) -> SecurityLogStats:
    """Lines per device, coverage of security devices, retention held, top denied sources, read only."""
    from logstore.segment import entries

    stats = SecurityLogStats(configured=store_root is not None)
    stats.security_devices = sorted(d.name for d in inventory.devices if d.role.value in SECURITY_ROLES)
    if store_root is None:
        stats.silent_security_devices = list(stats.security_devices)
        return stats
    lo, hi = _iso(start), _iso(end)
    lines: Counter[str] = Counter()
    denied: Counter[str] = Counter()
    events: Counter[str] = Counter()
    oldest: str | None = None
    seg_dir = store_root / "segments"
    files = sorted(seg_dir.iterdir()) if seg_dir.is_dir() else []
    for path in files:
        if not path.is_file() or path.name.endswith(".json"):
            continue
        for _, rec in entries(path):
            if rec is None:
                continue
            ts = str(rec.get("recv_ts") or "")
            if oldest is None or ts < oldest:
                oldest = ts
            if not (lo <= ts < hi) or rec.get("event_type") in ("audit", "store"):
                continue
            lines[str(rec.get("device") or rec.get("source") or "?")] += 1
            kind = str(rec.get("event_type") or "other")
            events[kind] += 1
            if kind == "policy_deny" and rec.get("src_ip"):
                denied[str(rec["src_ip"])] += 1
            if kind in ("admin_login", "vpn_login") and rec.get("outcome") == "failure":
                stats.failed_logins += 1
    stats.lines_by_device = dict(sorted(lines.items()))
    stats.silent_security_devices = [d for d in stats.security_devices if lines.get(d, 0) == 0]
    stats.top_denied_sources = denied.most_common(10)
    stats.events_by_type = dict(sorted(events.items()))
    if oldest:
        try:
            first = datetime.fromisoformat(oldest.replace("Z", "+00:00"))
            first = first if first.tzinfo else first.replace(tzinfo=UTC)
            stats.oldest_record_days = max(0.0, (end - first.timestamp()) / 86400.0)
        except ValueError:
            stats.oldest_record_days = None
    return stats


def backup_stats(
    sources: ReportSources, inventory: Inventory, windows: list[MaintenanceWindow], start: float, end: float
) -> BackupStats:
    """Backup files first seen in the period and their verification; config versions captured."""
    stats = BackupStats()
    if sources.backup_db is not None and sources.backup_db.exists():
        from collectors.backup.store import BackupStore

        stats.configured = True
        store = BackupStore(sources.backup_db)
        try:
            for job in inventory.backup_jobs:
                files = [f for f in store.files(job.name) if start <= f.first_seen < end]
                stats.runs_by_job[job.name] = len(files)
                stats.verified_ok += sum(1 for f in files if f.verify_ok)
                stats.verified_failed += sum(1 for f in files if not f.verify_ok)
        finally:
            store.close()
    if sources.config_repo is not None:
        from collectors.ssh.configrepo import ConfigRepo

        repo = ConfigRepo(sources.config_repo)
        stats.configured = True
        for dev in inventory.devices:
            all_versions = repo.history(dev.name)
            # The first version of a device is its first backup, not a change.
            first = all_versions[-1].commit if all_versions else None
            changes = [v for v in all_versions if start <= v.timestamp < end and v.commit != first]
            if not changes:
                continue
            stats.config_changes[dev.name] = len(changes)
            labels = dict(device_labels(dev))
            for v in changes:
                if not any(w.covers(labels, v.timestamp) for w in windows):
                    stats.changes_outside_maintenance.append((dev.name, v.timestamp, v.author))
    return stats


def collect(
    sources: ReportSources,
    inventory: Inventory,
    reports: ReportsSection,
    start: float,
    end: float,
    *,
    title: str,
    lang: str,
    now: float,
    progress: Progress = _quiet,
) -> MonthlyReport:
    """The whole report for [start, end); every store is opened read only."""
    acfg = sources.alerting
    if acfg is None:
        raise ValueError("the config has no `alerts:` section: the report reads its state journal")
    if not acfg.state_db.exists():
        raise ValueError(f"no state journal at {acfg.state_db}: has `govnet run` run with this config?")
    report = MonthlyReport(title=title, start=start, end=end, generated=now, lang=lang)
    journal = Journal(acfg.state_db, readonly=True)
    store = open_store(acfg, create=False)
    try:
        progress("availability")
        windows = _windows(journal, acfg)
        coverage = journal.coverage(start, end)
        report.govnet_unknown = subtract([(start, end)], normalise(coverage))
        changes = journal.changes(start, end)
        incidents = store.incidents(open_only=False, limit=1_000_000)
        window_devices: dict[tuple[str, float, float], list[str]] = defaultdict(list)
        for dev in inventory.devices:
            report.device_site[dev.name] = dev.site
            labels = dict(device_labels(dev))
            maint = device_maintenance(windows, labels, start, end)
            for (a, b), name in maint:
                window_devices[(name, a, b)].append(dev.name)
            av = device_availability(
                dev.name, changes.get(dev.name, []), coverage, [s for s, _ in maint], start, end
            )
            report.devices.append(av)
            for o in av.outages:
                report.outages.append(
                    OutageRow(
                        dev.name, dev.site, o.start, o.end, o.state,
                        _cause(dev.name, o.start, o.end, incidents, end), o.in_maintenance,
                    )
                )  # fmt: skip
        report.windows = [
            WindowRow(n, a, b, tuple(sorted(d))) for (n, a, b), d in sorted(window_devices.items())
        ]
        report.sites = _sites(inventory, report.devices)
        report.outages.sort(key=lambda o: (o.start, o.device))
        progress("incidents")
        report.incidents = incident_stats(incidents, start, end)
    finally:
        store.close()
        journal.close()
    progress("uplinks")
    if reports.tsdb is None:
        report.tsdb_note = "no TSDB configured (reports.tsdb): uplink percentiles not computed"
    else:
        tsdb = Tsdb(reports.tsdb.url, timeout=reports.tsdb.timeout)
        try:
            for up in uplinks(inventory):
                for direction in ("in", "out"):
                    report.uplinks.append(
                        tsdb.uplink_load(up, direction, start, end, reports.tsdb.step, reports.tsdb.window)
                    )
        except TsdbError as exc:
            report.uplinks = []
            report.tsdb_note = f"TSDB ({reports.tsdb.kind}) could not be queried: {exc}"
    progress("security logs")
    report.security = security_stats(sources.log_store, inventory, start, end)
    progress("backups")
    report.backups = backup_stats(sources, inventory, windows, start, end)
    return report


def _sites(inventory: Inventory, devices: list[Availability]) -> list[SiteAvailability]:
    by_site: dict[str, list[Availability]] = defaultdict(list)
    site_of = {d.name: d.site for d in inventory.devices}
    for av in devices:
        by_site[site_of[av.device]].append(av)
    kinds = {s.name: s.kind for s in inventory.sites}
    out = []
    for site, avs in sorted(by_site.items()):
        known = sum(a.known for a in avs)

        def share(*states: str, avs: list[Availability] = avs, known: float = known) -> float | None:
            return sum(a.seconds.get(s, 0.0) for a in avs for s in states) / known if known > 0 else None

        out.append(
            SiteAvailability(
                site, kinds.get(site, "other"), len(avs), share("up", "degraded"), share("up"),
                share("degraded"), sum(a.unknown for a in avs) / max(1, len(avs)),
                sum(len(a.outages) for a in avs),
            )
        )  # fmt: skip
    return out


def month_bounds(month: str) -> tuple[float, float]:
    """[first instant, first instant of the next month) of `YYYY-MM`, Beijing time."""
    from alerts.maintenance import CST

    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=CST)
    except ValueError:
        raise ValueError(f"--month {month!r}: expected YYYY-MM, e.g. 2026-11") from None
    if first.month == 12:
        nxt = first.replace(year=first.year + 1, month=1)
    else:
        nxt = first.replace(month=first.month + 1)
    return first.timestamp(), nxt.timestamp()
