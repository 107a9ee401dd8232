"""The roof's part of the monthly reports: which stores of a run config a report reads, and its mailer."""

from __future__ import annotations

from pathlib import Path

from alerts.config import EmailChannel, make_notifier, parse_alerting
from alerts.notify.email import EmailNotifier
from govnet.config import Config, load_config
from inventory.load import load_inventory
from inventory.model import Inventory
from reports.collect import ReportSources
from reports.config import ReportsSection, parse_reports


def report_sources(cfg: Config) -> ReportSources:
    """The stores named by a run config's sections, as absolute paths."""
    from collectors.backup.service import parse_section as parse_backups
    from collectors.ssh.service import parse_section as parse_ssh

    base = cfg.base_dir
    alerting = parse_alerting(cfg.alerts, base, "alerts") if cfg.alerts is not None else None
    log_store = None
    if cfg.syslog is not None and cfg.syslog.get("store"):
        root = Path(str(cfg.syslog["store"]))
        log_store = root if root.is_absolute() else base / root
    backup_db = None
    if cfg.backups is not None:
        backup_db = parse_backups(cfg.backups, base).state_dir / "backups.sqlite"
    config_repo = parse_ssh(cfg.ssh, base).state_dir / "configs" if cfg.ssh is not None else None
    return ReportSources(alerting, log_store, backup_db, config_repo)


def report_mailer(cfg: Config, section: ReportsSection) -> EmailNotifier | None:
    """The `email` channel of `alerts:` that `reports.email_channel` names (None when not set)."""
    if section.email_channel is None:
        return None
    alerting = parse_alerting(cfg.alerts or {}, cfg.base_dir, "alerts")
    found = [c for c in alerting.channels if c.name == section.email_channel]
    if not found or not isinstance(found[0], EmailChannel):
        name = section.email_channel
        raise ValueError(f"reports.email_channel: no email channel {name!r} in alerts.channels")
    notifier = make_notifier(found[0])
    assert isinstance(notifier, EmailNotifier)
    return notifier


def load_for_report(config: Path) -> tuple[ReportSources, Inventory, ReportsSection]:
    """Read a run config for `govnet report`: its sources, inventory and `reports:` section."""
    cfg = load_config(config)
    return report_sources(cfg), load_inventory(cfg.inventory), parse_reports(cfg.reports, cfg.base_dir)
