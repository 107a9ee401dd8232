"""`python -m bench` (`make bench`): every govnet benchmark, one after the other, tables on stdout."""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench.capacity
import bench.scrape_cost
import bench.snmp_vs_exporter

OTHER_BENCHES = [
    ("Lab cost (bench/lab_cost.py)", "bench.lab_cost"),
    ("Alert storm on the supervisor loop (bench/alert_storm.py)", "bench.alert_storm"),
    ("Syslog ingest (bench/syslog_ingest.py)", "bench.syslog_ingest"),
    ("Service checks vs blackbox_exporter (bench/services_vs_blackbox.py)", "bench.services_vs_blackbox"),
    ("Monthly report (bench/report_month.py)", "bench.report_month"),
    ("Where is this address (bench/where.py)", "bench.where"),
    ("Security-log search, 10M records (bench/log_search.py)", "bench.log_search"),
]
SYSLOG_RATIO = re.compile(
    r"^ratio govnet parse_workers=(\d+) / rsyslog sync=on ioBufferSize=256k: "
    r"([\d.]+ \(median; runs [^)]*\))$",
    re.M,
)


def main(argv: list[str] | None = None) -> int:
    """Run the SNMP cost comparison, the capacity measurement, then the other areas' benchmarks."""
    ap = argparse.ArgumentParser(description="govnet benchmarks (root: network namespaces)")
    ap.add_argument("--quick", action="store_true", help="small numbers, for a quick look")
    args = ap.parse_args(argv)
    failed = 0
    print(
        f"# govnet benchmarks {time.strftime('%Y-%m-%d %H:%M %Z')} on {platform.node()} "
        f"({platform.machine()}, {_cores()} cores, Python {platform.python_version()})"
    )
    print("\n## SNMP poller CPU per 1000 varbinds\n")
    snmp_args = ["--links", "50", "--polls", "5"] if args.quick else []
    bench.snmp_vs_exporter.main(snmp_args)
    print("\n## Capacity: lab devices at a 60 s interval\n")
    cap_args = ["--quick"] if args.quick else []
    bench.capacity.main(cap_args)
    print("\n## Scrape cost per device (bench/scrape_cost.py)\n")
    bench.scrape_cost.main(["--devices", "200" if args.quick else "1000"])
    # The other areas' benchmarks, each as its own process with its defaults (their own CLIs).
    outputs: dict[str, str] = {}
    for title, module in OTHER_BENCHES:
        if (Path(__file__).parent / f"{module.split('.')[-1]}.py").exists():
            print(f"\n## {title}\n", flush=True)
            proc = subprocess.run(
                [sys.executable, "-m", module],
                cwd=Path(__file__).parent.parent,
                stdout=subprocess.PIPE,
                text=True,
            )
            print(proc.stdout, end="", flush=True)
            outputs[module] = proc.stdout
            if proc.returncode != 0:
                print(f"# {module} exited with {proc.returncode}")
                failed += 1
    print("\n## Issue 20: each figure next to its goal (this run)\n")
    print(summary(outputs.get("bench.syslog_ingest", "")))
    return 1 if failed else 0


def summary(syslog_out: str) -> str:
    """The goals of issue 20 and what this run measured (figures from the benches above)."""
    cores = _cores()
    rows: list[tuple[str, str, str]] = []
    ratios = bench.snmp_vs_exporter.end_to_end_ratios(bench.snmp_vs_exporter.LAST)
    if ratios:
        got = f"{statistics.median(ratios):.2f} (runs {', '.join(f'{x:.2f}' for x in ratios)})"
    else:
        got = "n/a"
    rows.append(("SNMP CPU/varbind vs snmp_exporter, end to end, median", "<= 0.5", got))
    cal = bench.capacity.LAST.get("calibration")
    interval = float(bench.capacity.LAST.get("interval", 60.0))
    if cal is not None:
        rows.append(("CPU per 48-interface v3 device poll", "<= 12 ms", f"{cal.cpu_per_poll_ms:.1f} ms"))
        per_core = interval / (cal.cpu_s / cal.polls)
        rows.append(
            (
                f"devices at {interval:g} s, {cores} poller workers (CPU-bound ceiling, extrapolated)",
                ">= 5000",
                f"{int(per_core * cores)} (50 % headroom: {int(per_core * cores / 2)})",
            )
        )
    for r in bench.capacity.LAST.get("rows", []):
        rows.append(
            (
                f"verified {r['devices']} devices, one process: polls / missed / late p99",
                "all / 0 / < 1 s",
                f"{r['polls']}/{r['expected_polls']} / {r['missed']} / {r['lateness_p99']:.2f} s",
            )
        )
    for r in bench.capacity.LAST.get("workers", []):
        verdict = "sustained" if bench.capacity.sustained(r) else "NOT sustained"
        load = f"load {r['load_start'][0]:.1f}-{r['load_end'][0]:.1f}"
        rows.append(
            (
                f"verified {r['devices']} devices, govnet run, {r['workers']} workers, lab beside it "
                f"({r['lab_procs']} procs): polls/failed/missed/late p99",
                "all / 0 / 0 / < 1 s",
                f"{r['polls']}/{r['expected_polls']} / {r['failures']} / {r['missed']} / "
                f"{r['lateness_p99']:.2f} s: {verdict} ({load})",
            )
        )
        rows.append(
            (
                f"  lab CPU per device poll at {r['devices']} (every lab process)",
                "measured",
                f"{r['lab_ms_per_poll']:.1f} ms ({100 * r['lab_cpu_s'] / r['wall_s']:.0f} % of a core)",
            )
        )
        rows.append(
            (
                f"  node CPU per device poll at {r['devices']} (supervisor + workers)",
                "<= 12 ms",
                f"{r['cpu_ms_per_poll']:.1f} ms",
            )
        )
        kind = "supervisor + workers + alerts + API" if r.get("full_node") else "supervisor + workers"
        rows.append(
            (
                f"  RSS of the node ({kind}) at {r['devices']} devices",
                "<= 1 GiB at 5000",
                f"{r['rss_mb']:.0f} MB; {r['rss_scraped_mb']:.0f} MB with every render plan built",
            )
        )
    sc = bench.scrape_cost.LAST
    if sc:
        rows.append(
            (
                "scrape CPU per device: /metrics?device= (whole node /metrics)",
                "measured; no scrape of all",
                f"{sc['device_ms_fresh']:.2f} ms ({sc['whole_ms_per_device']:.2f} ms)",
            )
        )
    for workers, ratio in SYSLOG_RATIO.findall(syslog_out):
        rows.append((f"syslog vs rsyslog sync=on 256k, parse_workers={workers}", ">= 0.25", ratio))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    width = max(len(r[0]) for r in rows)
    out = [f"{'figure':<{width}}  {'goal':<26}  measured", "-" * (width + 40)]
    out += [f"{a:<{width}}  {b:<26}  {c}" for a, b, c in rows]
    out.append(f"load average at the end: {load} on {cores} cores (shared machine: ratios in one run count)")
    return "\n".join(out)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    raise SystemExit(main())
