"""`govnet report monthly`: write report.pdf and report.xlsx for a month (or any period)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rich.console import Console

from alerts.maintenance import CST
from inventory.model import Inventory
from reports.collect import ReportSources, collect, month_bounds
from reports.config import ReportsSection
from reports.model import MonthlyReport
from reports.render import write_pdf, write_xlsx


def _instant(text: str, what: str) -> float:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected ISO 8601, e.g. 2026-11-01T00:00+08:00") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=CST)).timestamp()


def period_of(month: str | None, from_: str | None, to: str | None) -> tuple[float, float, str]:
    """[start, end) and a title suffix from `--month` or `--from/--to` (zone-less times are Beijing time)."""
    if month is not None and (from_ is not None or to is not None):
        raise ValueError("give either --month or --from/--to, not both")
    if month is not None:
        start, end = month_bounds(month)
        return start, end, month
    if from_ is None or to is None:
        raise ValueError("give --month YYYY-MM, or both --from and --to")
    start, end = _instant(from_, "--from"), _instant(to, "--to")
    if end <= start:
        raise ValueError("--to must be after --from")
    return start, end, f"{from_} — {to}"


def write_report(report: MonthlyReport, out: Path) -> tuple[Path, Path]:
    """report.xlsx and report.pdf in `out` (created), written atomically (temp name, then rename)."""
    out.mkdir(parents=True, exist_ok=True)
    xlsx, pdf = out / "report.xlsx", out / "report.pdf"
    for path, writer in ((xlsx, write_xlsx), (pdf, write_pdf)):
        tmp = path.with_name(f".{path.name}.tmp")
        writer(report, tmp)
        tmp.replace(path)
    return xlsx, pdf


def build_report(
    sources: ReportSources,
    inventory: Inventory,
    section: ReportsSection,
    start: float,
    end: float,
    title: str,
    lang: str | None,
    err: Console,
) -> MonthlyReport:
    """Collect the report's figures (progress on `err`)."""
    return collect(
        sources, inventory, section, start, end, title=title, lang=lang or section.lang, now=time.time(),
        progress=lambda what: err.print(f"[dim]… {what}[/]"),
    )  # fmt: skip


def monthly_command(
    load: Callable[[], tuple[ReportSources, Inventory, ReportsSection]],
    month: str | None,
    from_: str | None,
    to: str | None,
    out: Path | None,
    lang: str | None,
) -> int:
    """The CLI: 0 written, 2 bad input or config (with the reason on stderr). `load` reads the config."""
    err = Console(stderr=True, highlight=False)
    try:
        start, end, title = period_of(month, from_, to)
        sources, inventory, reports = load()
        report = build_report(sources, inventory, reports, start, end, title, lang, err)
    except (ValueError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        return 2
    folder = out or reports.dir / title.replace(" ", "").replace("—", "_").replace(":", "")
    t0 = time.monotonic()
    xlsx, pdf = write_report(report, folder)
    err.print(f"wrote {xlsx} and {pdf} in {time.monotonic() - t0:.1f} s")
    if report.tsdb_note:
        err.print(f"[yellow]note:[/] {report.tsdb_note}")
    sys.stdout.write(f"{pdf}\n{xlsx}\n")
    return 0
