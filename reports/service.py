"""`govnet run`'s `reports:` section: the monthly report written on schedule and mailed to its readers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from alerts.maintenance import CST, _minutes
from alerts.notify.email import EmailNotifier
from core.pipeline import Service
from core.samples import Sample, labels_of
from inventory.model import Inventory
from reports.collect import ReportSources
from reports.config import ReportsSection

log = logging.getLogger(__name__)


def previous_month(now: float) -> str:
    """`YYYY-MM` of the month before the one `now` falls in (Beijing time)."""
    local = datetime.fromtimestamp(now, CST).replace(day=1)
    return (local - timedelta(days=1)).strftime("%Y-%m")


def next_due(section: ReportsSection, now: float) -> float:
    """The next run: `day` of a month at `time`, Beijing time, strictly after `now`."""
    local = datetime.fromtimestamp(now, CST)
    minutes = _minutes(section.time)
    midnight = local.replace(day=section.day, hour=0, minute=0, second=0, microsecond=0)
    due = midnight + timedelta(minutes=minutes)
    while due.timestamp() <= now:
        month = due.month % 12 + 1
        year = due.year + (1 if due.month == 12 else 0)
        due = due.replace(year=year, month=month)
    return due.timestamp()


class ReportService:
    """Writes last month's report on schedule (once per month: a report already on disk is kept)."""

    name = "reports"

    def __init__(
        self,
        section: ReportsSection,
        sources: ReportSources,
        inventory: Inventory,
        clock: Callable[[], float] = time.time,
        mailer: EmailNotifier | None = None,
    ) -> None:
        self.section, self.sources, self.inventory = section, sources, inventory
        self.clock, self.mailer = clock, mailer
        self.written = 0
        self.failed = 0
        self.last_success = 0.0

    def generate(self, month: str) -> Path | None:
        """Write the report of `month` (blocking; run in a thread); None when it already exists."""
        from rich.console import Console

        from reports.cli import build_report, write_report
        from reports.collect import month_bounds

        folder = self.section.dir / month
        if (folder / "report.pdf").exists() and (folder / "report.xlsx").exists():
            return None
        start, end = month_bounds(month)
        report = build_report(
            self.sources, self.inventory, self.section, start, end, month, None, Console(quiet=True)
        )
        _, pdf = write_report(report, folder)
        if self.mailer is not None:
            self._mail(self.mailer, month, folder)
        return pdf

    def _mail(self, mailer: EmailNotifier, month: str, folder: Path) -> None:
        msg = EmailMessage()
        msg["From"] = mailer.sender
        msg["To"] = ", ".join(self.section.recipients or mailer.to)
        msg["Subject"] = f"电子政务外网运行月报 {month}"
        msg["Date"] = formatdate(self.clock())
        msg["Message-ID"] = make_msgid(domain="govnet")
        msg.set_content(f"附件为 {month} 运行月报（PDF 与 XLSX）。\n", charset="utf-8")
        for name, maintype, subtype in (
            ("report.pdf", "application", "pdf"),
            ("report.xlsx", "application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ):
            msg.add_attachment(
                (folder / name).read_bytes(),
                maintype=maintype,
                subtype=subtype,
                filename=f"govnet-{month}-{name}",
            )
        _, error = mailer.deliver(msg)
        if error:
            log.error("reports: mailing the %s report failed: %s", month, error)

    async def run(self, stop: asyncio.Event) -> None:
        """Sleep until the next due time, write last month's report, repeat; failures are logged."""
        while not stop.is_set():
            wait = max(1.0, next_due(self.section, self.clock()) - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(wait, 3600.0))
            if stop.is_set() or self.clock() < next_due(self.section, self.clock() - 3600.0) - 1:
                continue
            month = previous_month(self.clock())
            try:
                path = await asyncio.to_thread(self.generate, month)
                if path is not None:
                    self.written += 1
                    self.last_success = self.clock()
                    log.info("reports: wrote %s", path)
            except Exception:
                self.failed += 1
                log.exception("reports: the %s report failed", month)

    def internal_samples(self) -> list[Sample]:
        """Reports written and failed since start."""
        now = self.clock()
        return [
            Sample("govnet_reports_written_total", labels_of(), float(self.written), now, "counter",
                   "Monthly reports written since start."),
            Sample("govnet_reports_failed_total", labels_of(), float(self.failed), now, "counter",
                   "Monthly reports that failed since start (see the log)."),
        ]  # fmt: skip


def build(
    section: ReportsSection, sources: ReportSources, inventory: Inventory, mailer: EmailNotifier | None
) -> list[Service]:
    """`govnet run`'s report service for a `reports:` section."""
    return [ReportService(section, sources, inventory, mailer=mailer)]
