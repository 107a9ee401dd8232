"""How many lab devices (48 interfaces each) one govnet poller sustains at a 60 s interval on this machine.

The lab is lab.synth's inventory (4 access-switch vendors, dual uplinks to 2 cores) served by
lab.runner.LabProcess in its own process on 127.26.1.x, polled over SNMPv3 authPriv (SHA-256/AES-128).

1. Calibrate: poll a synthetic lab of `--calibrate` devices a few rounds with govnet's SnmpCollector in
   a child process (64 concurrent polls, like the scheduler's default cap) and measure the poller's CPU
   per device-poll.  The lab's own CPU is read from /proc for information (it shares the machine).
2. Extrapolate: one poller process is one asyncio loop, so at most one core: sustainable devices =
   interval / CPU per poll at 100 % of a core (ceiling) and at the recommended 50 % (headroom for the
   exporter, alert engine, bursts after an outage).
3. Verify: run the real Scheduler at each `--verify` size for `--cycles` intervals against the lab and
   check every poll is done within its interval: polls, failures, missed slots, lateness, duration.

Run: `python -m bench.capacity [--verify 500 1000] [--cycles 2] [--interval 60]` (or `--quick`).
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.snmp_vs_exporter import run_child

INTERFACES = 48


@dataclass
class Calibration:
    """CPU cost of one device-poll, measured."""

    devices: int
    polls: int
    varbinds: int
    cpu_s: float
    wall_s: float
    lab_cpu_s: float

    @property
    def cpu_per_poll_ms(self) -> float:
        """Poller CPU milliseconds per device-poll."""
        return 1000 * self.cpu_s / self.polls

    def sustainable(self, interval: float, core_share: float) -> int:
        """Devices one poller sustains at `interval` using `core_share` of one core."""
        return int(interval * core_share / (self.cpu_s / self.polls))


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LAB_BASE = "127.26.1.0"  # this bench's loopback range: 127.26.0.0/16


class Lab:
    """lab.synth's synthetic inventory served by lab.runner.LabProcess (its own processes, SNMP only)."""

    def __init__(
        self, devices: int, interfaces: int = INTERFACES, interval: float = 60.0, procs: int = 1
    ) -> None:
        from lab.synth import synth_inventory

        self.procs = procs
        # The lab adds each device's management port to the listed ones.
        self.source = synth_inventory(devices, interfaces - 1)
        self.source["defaults"] = {"poll_interval": f"{interval:g}s"}
        self.inventory: dict[str, Any] = {}
        self.env: dict[str, str] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="gvt6-lab-")
        self.process: Any = None

    def __enter__(self) -> Lab:
        from lab.runner import LabProcess

        run_dir = Path(self._tmp.name)
        src = run_dir / "source.yaml"
        src.write_text(yaml.safe_dump(self.source))
        try:
            self.process = LabProcess(
                src,
                run_dir / "run",
                base=LAB_BASE,
                snmp_port=free_udp_port(),
                ssh_port=0,
                progress=None,
                procs=self.procs,
                start_timeout=300.0,
            ).start()
            self.inventory = yaml.safe_load(self.process.inventory_path.read_text())
        except BaseException:
            self._tmp.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.stop()
        self._tmp.cleanup()

    @property
    def pid(self) -> int:
        """The lab process id."""
        pid: int = self.process.pid
        return pid

    def cpu_s(self) -> float:
        """CPU seconds of every lab process (the lab process and its shards)."""
        return sum(_proc_cpu_s(p) for p in self.process.pids())

    def rss_mb(self) -> float:
        """Resident memory of every lab process."""
        return _rss_mb(self.process.pids())


def free_udp_port() -> int:
    """A UDP port free on the lab's first address right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.26.1.1", 0))
        port: int = s.getsockname()[1]
        return port


def calibrate(devices: int, rounds: int, interval: float, lab_procs: int = 1) -> Calibration:
    """Measure poller CPU per device-poll against a lab of `devices`."""
    with Lab(devices, interval=interval, procs=lab_procs) as lab:
        spec = {"inventory": lab.inventory, "polls": rounds, "warmup": 1, "concurrency": 64}
        lab0 = lab.cpu_s()
        r = run_child("bench._poll_child", spec, lab.env)
        lab_cpu = lab.cpu_s() - lab0
    if r["ok"] != r["polls"]:
        raise RuntimeError(f"calibration polls failed: {r['ok']}/{r['polls']} ok: {r['errors']}")
    return Calibration(
        devices, int(r["polls"]), int(r["varbinds"]), float(r["cpu_s"]), float(r["wall_s"]), lab_cpu
    )


def verify(devices: int, cycles: int, interval: float, lab_procs: int = 1) -> dict[str, Any]:
    """Run the real scheduler over `devices` lab devices for `cycles` intervals."""
    with Lab(devices, interval=interval, procs=lab_procs) as lab:
        spec = {
            "inventory": lab.inventory,
            "duration_s": cycles * interval,
            "max_concurrency": 64,
            "grace_s": interval,
        }
        lab0 = lab.cpu_s()
        r = run_child("bench._capacity_child", spec, lab.env)
        r["lab_cpu_s"] = lab.cpu_s() - lab0
    r["expected_polls"] = devices * cycles
    return r


def _tree(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(k) for k in kids)]


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def _series(text: str, name: str) -> list[float]:
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")]


SECRET_ENV = "GVT6_BENCH_SESSION_SECRET"


def node_config(tmp: Path, inventory: Path, port: int, workers: int, alerts: bool, api: bool) -> Path:
    """A `govnet run` config: /metrics, the poller workers, and (as goal 1's node has them) the alert
    engine with the default rules and the API."""
    cfg: dict[str, Any] = {
        "inventory": str(inventory),
        "prometheus": {"listen": f"127.26.0.3:{port}"},
        "scheduler": {"workers": workers, "max_concurrency": 64},
        "log_level": "error",
    }
    if alerts:
        cfg["alerts"] = {"state_db": str(tmp / "alerts.db")}
    if api:
        cfg["api"] = {
            "listen": f"127.26.0.3:{free_tcp_port()}",
            "state_dir": str(tmp / "api"),
            "session_secret": f"env:{SECRET_ENV}",
        }
    path = tmp / "govnet.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def verify_workers(
    devices: int, cycles: int, interval: float, workers: int, lab_procs: int = 1, full: bool = True
) -> dict[str, Any]:
    """Run a real `govnet run` with `workers` poller processes over `devices` lab devices (served by
    `lab_procs` lab processes): one interval to settle (the first polls spread over it), then
    `cycles` intervals measured from /metrics, with the load average (`os.getloadavg`) on both
    sides of the measured window. `full`: with the alert engine and the API (goal 1's node). The
    node's RSS is read at the end of the window and again after the per-shard scrapes of every
    device (which build every device's render plan)."""
    import subprocess
    import sys
    import urllib.request

    from core.latest import LatestStore  # noqa: F401  (fail early if the tree is broken)

    with (
        Lab(devices, interval=interval, procs=lab_procs) as lab,
        tempfile.TemporaryDirectory(prefix="gvt6-run-") as tmp,
    ):
        port = free_tcp_port()
        # The inventory keeps its links: lab.synth's tree is valid.
        config = node_config(Path(tmp), lab.process.inventory_path, port, workers, full, full)
        proc = subprocess.Popen(
            [sys.executable, "-m", "govnet", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / "govnet.log", "wb"),  # noqa: SIM115
            env={**os.environ, **lab.env, SECRET_ENV: os.urandom(16).hex()},
        )

        def scrape(query: str = "?scope=node") -> str:
            with urllib.request.urlopen(f"http://127.26.0.3:{port}/metrics{query}", timeout=120) as r:
                return str(r.read().decode())

        try:
            time.sleep(interval + 5)
            if proc.poll() is not None:
                raise RuntimeError((Path(tmp) / "govnet.log").read_text()[-2000:])
            # Only the node's own totals while measuring (a whole-node page of every device would
            # cost more than the polls); the per-device lateness gauges are read once at the end.
            start_text, t_start = scrape(), time.monotonic()
            load_start = os.getloadavg()
            pids = _tree(proc.pid)
            cpu0 = sum(_proc_cpu_s(p) for p in pids)
            lab0 = lab.cpu_s()
            time.sleep(cycles * interval)
            pids = _tree(proc.pid)
            cpu = sum(_proc_cpu_s(p) for p in pids) - cpu0
            lab_cpu = lab.cpu_s() - lab0
            load_end = os.getloadavg()
            lab_rss = lab.rss_mb()
            end_text, t_end = scrape(), time.monotonic()
            wall = t_end - t_start
            rss = _rss_mb(pids)
            # Per shard of ~200 devices: one page of every device (1.4 million series at 3 000) took
            # more than the 120 s timeout at load 12.
            shards = max(1, devices // 200)
            lateness = [
                x
                for i in range(shards)
                for x in _series(scrape(f"?shard={i}&shards={shards}"), "govnet_poll_lateness_seconds")
            ]
            rss_scraped = _rss_mb(pids)
            rss_parts = {_part(p, proc.pid): _rss_mb([p]) for p in pids}
        finally:
            proc.terminate()
            proc.wait(30)

    def total(text: str, name: str) -> float:
        found = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")]
        return found[0] if found else 0.0

    lateness.sort()
    polls = total(end_text, "govnet_scheduler_polls_total") - total(
        start_text, "govnet_scheduler_polls_total"
    )
    return {
        "devices": devices,
        "workers": workers,
        "polls": int(polls),
        "expected_polls": int(devices * wall / interval),
        "failures": int(
            total(end_text, "govnet_scheduler_poll_failures_total")
            - total(start_text, "govnet_scheduler_poll_failures_total")
        ),
        "missed": int(
            total(end_text, "govnet_scheduler_missed_polls_total")
            - total(start_text, "govnet_scheduler_missed_polls_total")
        ),
        "lateness_p50": lateness[int(0.5 * (len(lateness) - 1))] if lateness else float("nan"),
        "lateness_p99": lateness[int(0.99 * (len(lateness) - 1))] if lateness else float("nan"),
        "lateness_max": lateness[-1] if lateness else float("nan"),
        "cpu_s": cpu,
        "cpu_ms_per_poll": 1000 * cpu / polls if polls else float("nan"),
        "wall_s": wall,
        "lab_cpu_s": lab_cpu,
        "lab_ms_per_poll": 1000 * lab_cpu / polls if polls else float("nan"),
        "lab_procs": lab_procs,
        "lab_rss_mb": lab_rss,
        "rss_mb": rss,
        "rss_scraped_mb": rss_scraped,
        "rss_parts": rss_parts,
        "full_node": full,
        "load1": load_end[0],
        "load_start": load_start,
        "load_end": load_end,
    }


def _part(pid: int, root: int) -> str:
    if pid == root:
        return "supervisor"
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return f"worker {cmd[cmd.index(b'--index') + 1].decode()}" if b"--index" in cmd else str(pid)


def sustained(r: dict[str, Any]) -> bool:
    """Every poll done, none failed or missed, lateness p99 < 1 s.

    "Every poll" allows 1 % below devices x window / interval: polls running across the window's
    edges fall on either side; the scheduler's missed-slot counter is the strict check."""
    return bool(
        r["polls"] >= 0.99 * r["expected_polls"]
        and r["failures"] == 0
        and r["missed"] == 0
        and r["lateness_p99"] < 1.0
    )


def format_workers(rows: list[dict[str, Any]]) -> str:
    """The `govnet run` with workers verification table."""
    out = [
        f"{'devices':>8} {'workers':>7} {'polls':>6} {'expect':>6} {'fail':>5} {'missed':>6} {'late p50':>9} "
        f"{'late p99':>9} {'late max':>9} {'CPU ms/poll':>11} {'node CPU %':>10} {'RSS MB':>7} "
        f"{'scraped':>7} "
        f"{'lab procs':>9} {'lab ms/poll':>11} {'lab CPU %':>9} {'lab RSS':>7} "
        f"{'load start':>15} {'load end':>15}"
    ]
    for r in rows:
        load = [" ".join(f"{x:.1f}" for x in r[k]) for k in ("load_start", "load_end")]
        out.append(
            f"{r['devices']:>8} {r['workers']:>7} {r['polls']:>6} {r['expected_polls']:>6} "
            f"{r['failures']:>5} {r['missed']:>6} {r['lateness_p50']:>9.3f} {r['lateness_p99']:>9.3f} "
            f"{r['lateness_max']:>9.3f} {r['cpu_ms_per_poll']:>11.1f} "
            f"{100 * r['cpu_s'] / r['wall_s']:>10.1f} {r['rss_mb']:>7.0f} {r['rss_scraped_mb']:>7.0f} "
            f"{r['lab_procs']:>9} {r['lab_ms_per_poll']:>11.1f} {100 * r['lab_cpu_s'] / r['wall_s']:>9.1f} "
            f"{r['lab_rss_mb']:>7.0f} "
            f"{load[0]:>15} {load[1]:>15}  {'OK' if sustained(r) else 'NOT SUSTAINED'}"
        )
    return "\n".join(out)


def free_tcp_port() -> int:
    """A TCP port free on 127.26.0.3."""
    with socket.socket() as s:
        s.bind(("127.26.0.3", 0))
        port: int = s.getsockname()[1]
        return port


def format_calibration(c: Calibration, interval: float) -> str:
    """The calibration table and the extrapolation with its assumptions."""
    return "\n".join(
        [
            f"{'devices':>8} {'polls':>6} {'varbinds':>9} {'poller CPU s':>13} {'wall s':>7} "
            f"{'CPU ms/poll':>12} {'lab CPU s':>10}",
            f"{c.devices:>8} {c.polls:>6} {c.varbinds:>9} {c.cpu_s:>13.2f} {c.wall_s:>7.1f} "
            f"{c.cpu_per_poll_ms:>12.2f} {c.lab_cpu_s:>10.2f}",
            "",
            f"sustainable at {interval:g} s, one poller process (one asyncio loop = at most one core):",
            f"  ceiling (100 % of a core): {c.sustainable(interval, 1.0)} devices",
            f"  recommended (50 % of a core, headroom for exporter/alerts/bursts): "
            f"{c.sustainable(interval, 0.5)} devices",
        ]
    )


def format_verify(rows: list[dict[str, Any]], interval: float) -> str:
    """The verification table: were all polls done within the interval?"""
    head = (
        f"{'devices':>8} {'polls':>6} {'expect':>6} {'fail':>5} {'missed':>6} {'late p50':>9} "
        f"{'late p99':>9} {'late max':>9} {'dur p99':>8} {'dur max':>8} {'CPU s':>7} {'CPU %':>6} "
        f"{'lab CPU%':>8} {'load1':>5}"
    )
    out = [head]
    for r in rows:
        # Sustained: every slot polled, none failed or skipped, each done before its next slot.
        ok = (
            r["polls"] == r["expected_polls"]
            and r["failures"] == 0
            and r["missed"] == 0
            and r["lateness_max"] + r["duration_max"] < interval
        )
        out.append(
            f"{r['devices']:>8} {r['polls']:>6} {r['expected_polls']:>6} {r['failures']:>5} {r['missed']:>6} "
            f"{r['lateness_p50']:>9.3f} {r['lateness_p99']:>9.3f} {r['lateness_max']:>9.3f} "
            f"{r['duration_p99']:>8.2f} {r['duration_max']:>8.2f} {r['cpu_s']:>7.1f} "
            f"{100 * r['cpu_s'] / r['wall_s']:>6.1f} {100 * r['lab_cpu_s'] / r['wall_s']:>8.1f} "
            f"{r['load1']:>5.1f}"
            f"  {'OK' if ok else 'NOT SUSTAINED'}"
        )
    return "\n".join(out)


LAST: dict[str, Any] = {}  # the last main() run's figures, for the summary of `python -m bench`


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--interval", type=float, default=60.0, help="poll interval, seconds")
    ap.add_argument("--calibrate", type=int, default=200, help="lab devices for the calibration")
    ap.add_argument("--rounds", type=int, default=3, help="measured calibration rounds")
    ap.add_argument("--verify", type=int, nargs="*", default=[1000], help="sizes to run for real")
    ap.add_argument("--cycles", type=int, default=2, help="intervals to run each verification")
    ap.add_argument(
        "--verify-workers",
        type=int,
        nargs="*",
        default=[2000],
        help="sizes to run as `govnet run` with workers",
    )
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="poller workers")
    ap.add_argument(
        "--lab-procs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="processes serving the lab's agents (lab.server --procs)",
    )
    ap.add_argument(
        "--bare-node", dest="full", action="store_false", help="`govnet run` without alerts and API"
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes and a 10 s interval")
    args = ap.parse_args(argv)
    if args.quick:
        args.interval, args.calibrate, args.rounds, args.verify, args.cycles = 10.0, 30, 2, [50], 1
        args.verify_workers = [60]
    t0 = time.time()
    cal = calibrate(args.calibrate, args.rounds, args.interval, args.lab_procs)
    print(f"# calibration: {INTERFACES} interfaces per device, 64 concurrent polls")
    print(format_calibration(cal, args.interval))
    LAST["calibration"] = cal
    LAST["interval"] = args.interval
    rows: list[dict[str, Any]] = []
    LAST["rows"] = rows
    for n in args.verify:
        rows.append(verify(n, args.cycles, args.interval, args.lab_procs))
        print(f"# verified {n} devices for {args.cycles} x {args.interval:g} s", flush=True)
    if rows:
        print(format_verify(rows, args.interval))
    wrows: list[dict[str, Any]] = []
    LAST["workers"] = wrows
    for n in args.verify_workers:
        wrows.append(verify_workers(n, args.cycles, args.interval, args.workers, args.lab_procs, args.full))
        parts = ", ".join(f"{k} {v:.0f} MB" for k, v in wrows[-1]["rss_parts"].items())
        kind = "alerts + API" if args.full else "bare"
        print(f"# verified {n} devices with govnet run ({kind}), {args.workers} workers; {parts}", flush=True)
        print(format_workers(wrows[-1:]), flush=True)
    if wrows:
        print(format_workers(wrows))
    print(f"# capacity bench took {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
