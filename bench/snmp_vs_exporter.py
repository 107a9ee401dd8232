"""Poller CPU per 1000 varbinds: govnet's SnmpCollector vs prometheus-snmp-exporter 0.21 (vs pysnmp 7.1).

All pollers walk the IF-MIB of the same real net-snmp snmpd, which runs in a network namespace with
~200 veth interfaces (tests/support/netns.py).  Each poller runs in its own process and only its own CPU is
counted: govnet and pysnmp measure `time.process_time()` around the polls in a child process; the Go
exporter's utime+stime come from /proc/PID/stat before and after N scrapes (the HTTP client is this
process, not counted).  Varbinds are counted from what came back: PollResult.varbinds for govnet,
the exporter's own `snmp_scrape_pdus_returned`, and the number of var-binds pysnmp decoded.

Run: `python -m bench.snmp_vs_exporter [--links 200] [--polls 20] [--no-pysnmp]` (root: namespaces).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.netns import SnmpAgentNetns  # noqa: E402  (the shared namespace fixture library)

EXPORTER = "/usr/bin/prometheus-snmp-exporter"
BIND = "127.26.0.1"
COMMUNITY_ENV = "GVT6_BENCH_COMMUNITY"

# The IF-MIB columns an interface poll needs: name, status, speed, 64-bit octets, errors, discards.
IF_COLUMNS: dict[str, tuple[str, str]] = {
    "ifName": ("1.3.6.1.2.1.31.1.1.1.1", "DisplayString"),
    "ifAdminStatus": ("1.3.6.1.2.1.2.2.1.7", "gauge"),
    "ifOperStatus": ("1.3.6.1.2.1.2.2.1.8", "gauge"),
    "ifHighSpeed": ("1.3.6.1.2.1.31.1.1.1.15", "gauge"),
    "ifHCInOctets": ("1.3.6.1.2.1.31.1.1.1.6", "counter"),
    "ifHCOutOctets": ("1.3.6.1.2.1.31.1.1.1.10", "counter"),
    "ifInErrors": ("1.3.6.1.2.1.2.2.1.14", "counter"),
    "ifOutErrors": ("1.3.6.1.2.1.2.2.1.20", "counter"),
    "ifInDiscards": ("1.3.6.1.2.1.2.2.1.13", "counter"),
    "ifOutDiscards": ("1.3.6.1.2.1.2.2.1.19", "counter"),
}


@dataclass
class Result:
    """One poller's measurement."""

    tool: str
    polls: int
    varbinds: int
    cpu_s: float
    wall_s: float
    note: str = ""

    @property
    def ms_per_1000(self) -> float:
        """Poller CPU milliseconds per 1000 varbinds."""
        return 1e6 * self.cpu_s / self.varbinds if self.varbinds else float("nan")


def free_port(host: str = BIND) -> int:
    """A TCP port free on `host` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def exporter_config(community: str) -> str:
    """A snmp_exporter 0.21 config (top-level map of modules, auth inline) walking IF_COLUMNS."""
    lines = ["if_bench:", "  walk:"]
    lines += [f"  - {oid}" for oid, _ in IF_COLUMNS.values()]
    lines += ["  metrics:"]
    for name, (oid, kind) in IF_COLUMNS.items():
        lines += [
            f"  - name: {name}",
            f"    oid: {oid}",
            f"    type: {kind}",
            f"    help: IF-MIB {name}",
            "    indexes:",
            "    - labelname: ifIndex",
            "      type: gauge",
        ]
        if name != "ifName":
            lines += [
                "    lookups:",
                "    - labels: [ifIndex]",
                "      labelname: ifName",
                f"      oid: {IF_COLUMNS['ifName'][0]}",
                "      type: DisplayString",
            ]
    lines += [
        "  version: 2",
        "  max_repetitions: 25",
        "  retries: 1",
        "  timeout: 5s",
        "  auth:",
        f"    community: {json.dumps(community)}",
    ]
    return "\n".join(lines) + "\n"


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), counted after ')'
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def _get(url: str, timeout: float = 30.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body.decode()


def measure_exporter(lab: SnmpAgentNetns, polls: int) -> Result:
    """Scrape prometheus-snmp-exporter `polls` times (after one warm-up) and count its CPU."""
    with tempfile.TemporaryDirectory(prefix="gvt6-exp-") as tmp:
        cfg = Path(tmp) / "snmp.yml"
        cfg.write_text(exporter_config(lab.community))
        cfg.chmod(0o600)
        port = free_port()
        proc = subprocess.Popen(
            [EXPORTER, f"--config.file={cfg}", f"--web.listen-address={BIND}:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            base = f"http://{BIND}:{port}"
            deadline = time.monotonic() + 15
            while True:
                try:
                    _get(base + "/metrics", 2)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        err = proc.stderr.read().decode() if proc.stderr else ""
                        raise RuntimeError(f"snmp_exporter did not start: {err[-500:]}") from None
                    time.sleep(0.1)
            url = f"{base}/snmp?module=if_bench&target={lab.address}"
            _check_scrape(_get(url))  # warm-up, and proof the module works
            varbinds = 0
            cpu0, wall0 = _proc_cpu_s(proc.pid), time.perf_counter()
            for _ in range(polls):
                varbinds += _check_scrape(_get(url))
            cpu, wall = _proc_cpu_s(proc.pid) - cpu0, time.perf_counter() - wall0
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return Result("snmp_exporter 0.21", polls, varbinds, cpu, wall, "Go; /proc utime+stime, 10 ms ticks")


def _check_scrape(body: str) -> int:
    m = re.search(r"^snmp_scrape_pdus_returned (\d+(?:\.\d+)?(?:e\+\d+)?)$", body, re.M)
    if m is None or "ifHCOutOctets{" not in body:
        raise RuntimeError(f"snmp_exporter scrape failed: {body[-400:]}")
    return int(float(m.group(1)))


def govnet_inventory(lab: SnmpAgentNetns) -> dict[str, object]:
    """An inventory (as plain data) with the lab agent as one v2c device."""
    return {
        "sites": [{"name": "bench", "kind": "datacentre"}],
        "devices": [
            {
                "name": "agent",
                "site": "bench",
                "role": "core_switch",
                "vendor": "linux",
                "address": lab.address,
                "snmp": {"version": "2c", "community": f"env:{COMMUNITY_ENV}"},
            }
        ],
    }


def run_child(module: str, spec: dict[str, Any], env_extra: dict[str, str]) -> dict[str, Any]:
    """Run `python -m module` with `spec` as JSON on stdin; return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-m", module],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env_extra},
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed rc={proc.returncode}: {proc.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure_govnet(lab: SnmpAgentNetns, polls: int, exposition: bool = False) -> Result:
    """Poll the agent `polls` times with govnet's SnmpCollector in a child process (with `exposition`:
    end to end, each poll's samples served as `/metrics?device=` by a real MetricsServer and fetched)."""
    spec = {"inventory": govnet_inventory(lab), "polls": polls, "warmup": 1, "exposition": exposition}
    r = run_child("bench._poll_child", spec, {COMMUNITY_ENV: lab.community})
    if r["ok"] != r["polls"]:
        raise RuntimeError(f"govnet polls failed: {r['errors']}")
    return Result(
        "govnet poll+/metrics" if exposition else "govnet poll only",
        int(r["polls"]),
        int(r["varbinds"]),
        float(r["cpu_s"]),
        float(r["wall_s"]),
        "process_time in a child",
    )


def measure_pysnmp(lab: SnmpAgentNetns, polls: int) -> Result:
    """Walk the same columns with pysnmp 7.1 (v1arch, lookupMib=False, all columns per GETBULK)."""
    spec = {"address": lab.address, "columns": [oid for oid, _ in IF_COLUMNS.values()], "polls": polls}
    r = run_child("bench._pysnmp_child", spec, {COMMUNITY_ENV: lab.community})
    return Result(
        "pysnmp 7.1 (v1arch)",
        int(r["polls"]),
        int(r["varbinds"]),
        float(r["cpu_s"]),
        float(r["wall_s"]),
        "process_time in a child",
    )


def run(links: int = 200, polls: int = 20, pysnmp: bool = True, repeat: int = 3) -> list[Result]:
    """Start the namespace agent with `links` interfaces and measure every poller against it: govnet
    end to end and the exporter `repeat` times in turn (same-run pairs), govnet poll-only once."""
    results: list[Result] = []
    with SnmpAgentNetns(n_links=links) as lab:
        results.append(measure_govnet(lab, polls))
        for _ in range(repeat):
            results.append(measure_govnet(lab, polls, exposition=True))
            results.append(measure_exporter(lab, polls))
        if pysnmp:
            results.append(measure_pysnmp(lab, max(1, polls // 4)))
    return results


def end_to_end_ratios(results: list[Result]) -> list[float]:
    """govnet end to end / snmp_exporter CPU per varbind, one per same-run pair."""
    gov = [r for r in results if r.tool == "govnet poll+/metrics"]
    exp = [r for r in results if r.tool.startswith("snmp_exporter")]
    return [g.ms_per_1000 / e.ms_per_1000 for g, e in zip(gov, exp, strict=False) if e.ms_per_1000 > 0]


def format_table(results: list[Result]) -> str:
    """A plain-text table plus the govnet/exporter ratio."""
    head = f"{'tool':<24} {'polls':>6} {'varbinds':>9} {'CPU s':>8} {'wall s':>8} {'CPU ms/1000 vb':>15}"
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r.tool:<24} {r.polls:>6} {r.varbinds:>9} {r.cpu_s:>8.3f} {r.wall_s:>8.2f} "
            f"{r.ms_per_1000:>15.2f}"
        )
    ratios = end_to_end_ratios(results)
    if ratios:
        rows.append(
            "ratio govnet end to end / snmp_exporter (CPU per varbind): median "
            f"{statistics.median(ratios):.2f} of {', '.join(f'{x:.2f}' for x in ratios)} (goal <= 0.5)"
        )
    elif any(r.tool.startswith("snmp_exporter") for r in results):
        rows.append(
            "ratio govnet end to end / snmp_exporter: n/a (exporter CPU below the /proc tick: more polls)"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--links", type=int, default=200, help="veth interfaces on the agent")
    ap.add_argument("--polls", type=int, default=20, help="measured polls per tool")
    ap.add_argument("--repeat", type=int, default=3, help="same-run govnet/exporter pairs (median)")
    ap.add_argument("--no-pysnmp", action="store_true", help="skip the (slow) pysnmp measurement")
    args = ap.parse_args(argv)
    print(
        f"# net-snmp snmpd in a netns with {args.links} veth interfaces; snmp_exporter and pysnmp walk "
        f"{len(IF_COLUMNS)} IF-MIB columns, govnet polls its whole vendor profile (more IF-MIB columns, "
        "CPU, memory, sensors: more varbinds per poll), so compare CPU per 1000 varbinds"
    )
    global LAST
    LAST = run(args.links, args.polls, not args.no_pysnmp, args.repeat)
    print(format_table(LAST))
    return 0


LAST: list[Result] = []  # the last main() run's results, for the summary of `python -m bench`


if __name__ == "__main__":
    raise SystemExit(main())
