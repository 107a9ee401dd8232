"""`python -m bench` (`make bench`): every govnet benchmark, one after the other, tables on stdout."""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import bench.capacity
import bench.snmp_vs_exporter

OTHER_BENCHES = [
    ("Lab cost (bench/lab_cost.py)", "bench.lab_cost"),
    ("Syslog ingest (bench/syslog_ingest.py)", "bench.syslog_ingest"),
    ("Service checks vs blackbox_exporter (bench/services_vs_blackbox.py)", "bench.services_vs_blackbox"),
    ("Monthly report (bench/report_month.py)", "bench.report_month"),
    ("Where is this address (bench/where.py)", "bench.where"),
    ("Security-log search, 10M records (bench/log_search.py)", "bench.log_search"),
]


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
    # The other areas' benchmarks, each as its own process with its defaults (their own CLIs).
    for title, module in OTHER_BENCHES:
        if (Path(__file__).parent / f"{module.split('.')[-1]}.py").exists():
            print(f"\n## {title}\n", flush=True)
            rc = subprocess.run([sys.executable, "-m", module], cwd=Path(__file__).parent.parent).returncode
            if rc != 0:
                print(f"# {module} exited with {rc}")
                failed += 1
    return 1 if failed else 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    raise SystemExit(main())
