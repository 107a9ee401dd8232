"""The roof's part of the monthly reports: which stores of a run config a report reads, and its mailer."""

from __future__ import annotations

from pathlib import Path

from alerts.config import EmailChannel, make_notifier
from alerts.notify.email import EmailNotifier
from core.config import SectionError
from govnet.config import Config, load_config
from inventory.load import load_inventory
from inventory.model import Inventory
from reports.collect import ReportSources
from reports.config import ReportsSection


def report_sources(cfg: Config) -> ReportSources:
    """The stores named by a run config's sections (paths already relative to the config file)."""
    log_store = cfg.syslog.store if cfg.syslog is not None else None
    backup_db = cfg.backups.state_dir / "backups.sqlite" if cfg.backups is not None else None
    config_repo = cfg.ssh.state_dir / "configs" if cfg.ssh is not None else None
    return ReportSources(cfg.alerts, log_store, backup_db, config_repo)


def report_mailer(cfg: Config, section: ReportsSection) -> EmailNotifier | None:
    """The `email` channel of `alerts:` that `reports.email_channel` names (None when not set)."""
    if section.email_channel is None:
        return None
    found = [c for c in (cfg.alerts.channels if cfg.alerts else []) if c.name == section.email_channel]
    if not found or not isinstance(found[0], EmailChannel):
        name = section.email_channel
        raise SectionError(("email_channel",), f"no email channel {name!r} in alerts.channels")
    notifier = make_notifier(found[0])
    assert isinstance(notifier, EmailNotifier)
    return notifier


def load_for_report(config: Path) -> tuple[ReportSources, Inventory, ReportsSection]:
    """Read a run config for `govnet report`: its sources, inventory and `reports:` section."""
    cfg = load_config(config)
    section = cfg.reports or ReportsSection.model_validate({}, context={"base_dir": cfg.base_dir})
    return report_sources(cfg), load_inventory(cfg.inventory), section
