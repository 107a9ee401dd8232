"""Write a MonthlyReport as XLSX (xlsxwriter, one sheet per section, native charts) and PDF (weasyprint)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import xlsxwriter  # type: ignore[import-untyped]

from alerts.maintenance import CST
from reports.i18n import texts
from reports.model import MonthlyReport

TEMPLATES = Path(__file__).parent / "templates"


def when(ts: float | None) -> str:
    """Beijing time, to the second."""
    return "" if ts is None else datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """`1 h 02 min 05 s` style."""
    if seconds is None:
        return ""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min {sec:02d} s" if h else f"{m} min {sec:02d} s"


def mbps(bps: float | None) -> float | None:
    """Bits per second as Mbit/s, rounded to 0.001."""
    return None if bps is None else round(bps / 1e6, 3)


def _sheet_name(text: str) -> str:
    for ch in "[]:*?/\\":
        text = text.replace(ch, " ")
    return text[:31]


class _Sheet:
    """Writes rows of typed cells: text is always written as text (never a formula)."""

    def __init__(self, book: Any, title: str, fmt: dict[str, Any]) -> None:
        self.ws = book.add_worksheet(_sheet_name(title))
        self.fmt = fmt
        self.row = 0

    def header(self, cells: Sequence[str]) -> None:
        for col, text in enumerate(cells):
            self.ws.write_string(self.row, col, text, self.fmt["head"])
            self.ws.set_column(col, col, max(12, min(48, len(text) * 2 + 4)))
        self.row += 1

    def line(self, cells: Sequence[object], formats: Sequence[str | None] = ()) -> None:
        for col, value in enumerate(cells):
            name = formats[col] if col < len(formats) else None
            f = self.fmt.get(name) if name else None
            if value is None:
                self.ws.write_blank(self.row, col, None, f)
            elif isinstance(value, bool):
                self.ws.write_boolean(self.row, col, value, f)
            elif isinstance(value, int | float):
                self.ws.write_number(self.row, col, value, f)
            else:
                self.ws.write_string(self.row, col, str(value), f)
        self.row += 1

    def gap(self) -> None:
        self.row += 1


def write_xlsx(report: MonthlyReport, path: Path) -> None:
    """One sheet per section with real numbers; charts for availability, incidents and uplinks."""
    t = texts(report.lang)
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    fmt = {
        "head": book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1}),
        "pct": book.add_format({"num_format": "0.000%"}),
        "num": book.add_format({"num_format": "0.000"}),
        "title": book.add_format({"bold": True, "font_size": 14}),
    }
    yes_no = {True: t["yes"], False: t["no"]}

    s = _Sheet(book, t["summary"], fmt)
    s.ws.write_string(0, 0, t["title"], fmt["title"])
    s.row = 2
    s.line([t["period"], f"{when(report.start)} — {when(report.end)}"])
    s.line([t["generated"], when(report.generated)])
    s.line([t["devices"], len(report.devices)])
    s.line([t["incidents_total"], report.incidents.total])
    s.line([t["outage_count"], len(report.outages)])
    unknown = sum(b - a for a, b in report.govnet_unknown)
    s.line([t["unknown"], duration(unknown)])
    for a, b in report.govnet_unknown:
        s.line(["", f"{when(a)} — {when(b)}"])
    s.line([t["availability_note"]])
    s.ws.set_column(0, 0, 28)
    s.ws.set_column(1, 1, 44)

    s = _Sheet(book, t["sites"], fmt)
    s.header([t["site"], t["kind"], t["devices"], t["available"], t["up"], t["degraded"], t["unknown_h"],
              t["outage_count"]])  # fmt: skip
    for site in report.sites:
        s.line(
            [site.site, site.kind, site.devices, site.available, site.up, site.degraded,
             round(site.unknown_seconds / 3600, 3), site.outages],
            [None, None, None, "pct", "pct", "pct", "num", None],
        )  # fmt: skip
    if report.sites:
        chart = book.add_chart({"type": "bar"})
        chart.add_series(
            {
                "name": t["available"],
                "categories": [s.ws.name, 1, 0, len(report.sites), 0],
                "values": [s.ws.name, 1, 3, len(report.sites), 3],
            }
        )
        chart.set_title({"name": t["sites"]})
        chart.set_x_axis({"num_format": "0%", "max": 1})
        chart.set_legend({"none": True})
        s.ws.insert_chart(1, 10, chart, {"y_scale": max(1.0, len(report.sites) / 12)})

    s = _Sheet(book, t["devices"], fmt)
    s.header([t["device"], t["site"], t["available"], t["up"], t["degraded"], t["down"], t["unreachable"],
              t["unknown_h"], t["maintenance_h"], t["outage_count"]])  # fmt: skip
    for av in report.devices:
        s.line(
            [av.device, report.device_site.get(av.device, ""), av.available, av.ratio("up"),
             av.ratio("degraded"), av.ratio("down"), av.ratio("unreachable"), round(av.unknown / 3600, 3),
             round(av.maintenance / 3600, 3), len(av.outages)],
            [None, None, "pct", "pct", "pct", "pct", "pct", "num", "num", None],
        )  # fmt: skip

    s = _Sheet(book, t["outages"], fmt)
    s.header([t["device"], t["site"], t["start"], t["end"], t["duration"], "s", t["state"], t["cause"],
              t["in_maintenance"]])  # fmt: skip
    for o in report.outages:
        s.line([o.device, o.site, when(o.start), when(o.end), duration(o.end - o.start),
                round(o.end - o.start, 1), o.state, o.cause, yes_no[o.in_maintenance]])  # fmt: skip

    s = _Sheet(book, t["windows"], fmt)
    s.header([t["name"], t["start"], t["end"], t["duration"], t["devices"]])
    for w in report.windows:
        s.line([w.name, when(w.start), when(w.end), duration(w.end - w.start), ", ".join(w.devices)])

    s = _Sheet(book, t["uplinks"], fmt)
    if report.tsdb_note:
        s.line([report.tsdb_note])
    s.header([t["uplink"], t["site"], t["upstream"], t["direction"], t["p95"], t["peak"], t["utilisation"],
              t["samples"]])  # fmt: skip
    first = s.row
    for u in report.uplinks:
        s.line(
            [f"{u.uplink.device} {u.uplink.interface}", u.uplink.site, u.uplink.upstream, t[u.direction],
             mbps(u.p95_bps), mbps(u.peak_bps), u.p95_utilisation, u.samples],
            [None, None, None, None, "num", "num", "pct", None],
        )  # fmt: skip
    if report.uplinks:
        chart = book.add_chart({"type": "column"})
        for col, name in ((4, t["p95"]), (5, t["peak"])):
            chart.add_series(
                {
                    "name": name,
                    "categories": [s.ws.name, first, 0, s.row - 1, 0],
                    "values": [s.ws.name, first, col, s.row - 1, col],
                }
            )
        chart.set_title({"name": t["uplinks"]})
        s.ws.insert_chart(first, 10, chart)

    inc = report.incidents
    s = _Sheet(book, t["incidents"], fmt)
    s.line([t["incidents_total"], inc.total])
    for key in ("ack_median", "ack_p90", "resolve_median", "resolve_p90"):
        s.line([t[key], duration(getattr(inc, key))])
    s.line([t["deadlines_met"], inc.deadlines_met])
    s.line([t["deadlines_missed"], inc.deadlines_missed])
    s.line([t["deadlines_open"], inc.deadlines_open])
    s.gap()
    s.header([t["level"], t["count"]])
    level_first = s.row
    for level in ("I", "II", "III", "IV"):
        s.line([level, inc.by_level.get(level, 0)])
    chart = book.add_chart({"type": "pie"})
    chart.add_series(
        {
            "name": t["level"],
            "categories": [s.ws.name, level_first, 0, s.row - 1, 0],
            "values": [s.ws.name, level_first, 1, s.row - 1, 1],
            "points": [{"fill": {"color": c}} for c in ("#C00000", "#ED7D31", "#FFC000", "#4472C4")],
        }
    )
    chart.set_title({"name": t["level"]})
    s.ws.insert_chart(0, 6, chart)
    s.gap()
    s.header([t["top_devices"], t["count"]])
    for dev, n in inc.top_devices:
        s.line([dev, n])
    s.gap()
    s.header(["#", t["level"], t["name"], t["opened"], t["acked"], t["resolved"], t["deadline"],
              t["reported"], t["verdict"]])  # fmt: skip
    for row in inc.rows:
        verdict = str(row["deadline_verdict"])
        s.line([str(row["id"]), str(row["level"]), str(row["name"]), when(_f(row["opened_at"])),
                when(_f(row["acked_at"])), when(_f(row["resolved_at"])), when(_f(row["deadline"])),
                when(_f(row["reported_at"])), t.get(verdict, verdict)])  # fmt: skip

    sec = report.security
    s = _Sheet(book, t["security"], fmt)
    if not sec.configured:
        s.line([t["security"], t["not_configured"]])
    s.line([t["coverage"], sec.coverage], [None, "pct"])
    s.line([t["silent"], ", ".join(sec.silent_security_devices) or t["none"]])
    s.line([t["retention"], None if sec.oldest_record_days is None else round(sec.oldest_record_days, 2)])
    s.line([t["failed_logins"], sec.failed_logins])
    s.gap()
    s.header([t["device"], t["lines"]])
    for dev, n in sec.lines_by_device.items():
        s.line([dev, n])
    s.gap()
    s.header([t["top_denied"], t["count"]])
    for ip, n in sec.top_denied_sources:
        s.line([ip, n])
    s.gap()
    s.header([t["events_by_type"], t["count"]])
    for kind, n in sec.events_by_type.items():
        s.line([kind, n])

    bk = report.backups
    s = _Sheet(book, t["backups"], fmt)
    if not bk.configured:
        s.line([t["backups"], t["not_configured"]])
    s.header([t["job"], t["runs"]])
    for job, n in bk.runs_by_job.items():
        s.line([job, n])
    s.line([t["verified_ok"], bk.verified_ok])
    s.line([t["verified_failed"], bk.verified_failed])
    s.gap()
    s.header([t["device"], t["config_changes"]])
    for dev, n in bk.config_changes.items():
        s.line([dev, n])
    s.gap()
    s.header([t["outside_maintenance"], t["time"], t["author"]])
    for dev, ts, author in bk.changes_outside_maintenance:
        s.line([dev, when(ts), author])
    book.close()


def _f(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def render_html(report: MonthlyReport) -> str:
    """The report as one HTML page (autoescaped: device and log text is never markup)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters.update(when=when, duration=duration, mbps=mbps, pct=_pct)
    return env.get_template("monthly.html.j2").render(r=report, t=texts(report.lang), f=_f)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.3f}%"


def write_pdf(report: MonthlyReport, path: Path) -> None:
    """HTML through weasyprint, with the CJK font the system deps install."""
    import weasyprint  # type: ignore[import-untyped]

    weasyprint.HTML(string=render_html(report), base_url=str(TEMPLATES)).write_pdf(str(path))
