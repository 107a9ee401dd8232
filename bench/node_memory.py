"""Where the memory of a whole node goes (issue 20): RSS per process of a real `govnet run` beside the
lab, and with `--trace` a tracemalloc breakdown per process by the line of govnet code that allocated.

The node is what goal 1 sizes: `govnet run` with N poller workers (default: the cores), the supervisor,
the alert engine (default rules) and the API, polling `--devices` lab devices (bench.capacity's Lab:
48 interfaces, SNMPv3 authPriv, full profiles). After `--settle` intervals (every device polled at
least twice: layouts and counter blocks in their steady state) it prints each process's RSS; then one
whole-node `/metrics` scrape builds the render plans and the RSS is printed again.

`--trace` starts tracemalloc in every process of the node (bench/_memprobe/sitecustomize.py, 10 frames;
it slows allocation ~2x and adds its own tables to the RSS, so traced and untraced runs are not
compared by RSS) and prints, per process, the bytes alive by the innermost frame in this repository.

Run: `python -m bench.node_memory --devices 1000 [--interval 60] [--trace] [--no-alerts] [--no-api]`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections import defaultdict
from pathlib import Path

from bench.capacity import SECRET_ENV, Lab, _proc_cpu_s, _rss_mb, _tree, free_tcp_port, node_config

REPO = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).resolve().parent / "_memprobe"


def _label(pid: int, root: int) -> str:
    if pid == root:
        return "supervisor"
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if b"collectors.worker" in cmd:
        return f"worker {cmd[cmd.index(b'--index') + 1].decode()}"
    return " ".join(c.decode() for c in cmd[1:4])


def rss_table(root: int) -> list[tuple[str, int, float]]:
    """(name, pid, RSS MB) of every process of the node."""
    return [(_label(p, root), p, _rss_mb([p])) for p in _tree(root)]


def _ours(filename: str) -> bool:
    return filename.startswith(str(REPO)) and "/.venv/" not in filename and "/_memprobe/" not in filename


def breakdown(path: Path, top: int) -> tuple[int, list[tuple[str, int, int]]]:
    """Total traced bytes and the top (innermost repo frame, bytes, blocks) of a snapshot."""
    snap = tracemalloc.Snapshot.load(str(path))
    by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    total = 0
    for trace in snap.traces:
        tb = trace.traceback
        where = None
        for frame in reversed(tb):  # innermost first
            if _ours(frame.filename):
                where = f"{os.path.relpath(frame.filename, REPO)}:{frame.lineno}"
                break
        if where is None:
            inner = tb[-1] if len(tb) else None
            where = f"(outside) {Path(inner.filename).name}:{inner.lineno}" if inner else "(unknown)"
        row = by[where]
        row[0] += trace.size
        row[1] += 1
        total += trace.size
    rows = sorted(((k, v[0], v[1]) for k, v in by.items()), key=lambda r: -r[1])
    return total, rows[:top]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.26.0.3:{port}/healthz", timeout=5):
            return True
    except OSError:
        return False


def scrape_whole(port: int) -> float:
    """One whole-node /metrics, read and dropped; returns the page size in MB."""
    size = 0
    with urllib.request.urlopen(f"http://127.26.0.3:{port}/metrics", timeout=600) as r:
        while chunk := r.read(1 << 16):
            size += len(chunk)
    return size / 1e6


def snapshots(root: int, out: Path, label: str, top: int, only: str) -> None:
    """SIGUSR2 to every process of the node, wait for the snapshots, print each one's breakdown."""
    pids = [p for p in _tree(root) if only.encode() in Path(f"/proc/{p}/cmdline").read_bytes()]
    for p in pids:
        (out / f"{p}.snap").unlink(missing_ok=True)
        os.kill(p, signal.SIGUSR2)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not all((out / f"{p}.snap").exists() for p in pids):
        time.sleep(0.5)
    for p in pids:
        f = out / f"{p}.snap"
        if not f.exists():
            print(f"# {label}: no snapshot from {p}")
            continue
        total, rows = breakdown(f, top)
        print(f"\n# {label}: {_label(p, root)} (pid {p}): {total / 1e6:.1f} MB traced, top {top}")
        for where, size, blocks in rows:
            print(f"{size / 1e6:>9.2f} MB {blocks:>9} blocks  {where}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=2.5, help="intervals before measuring")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--lab-procs", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--no-alerts", dest="alerts", action="store_false")
    ap.add_argument("--no-api", dest="api", action="store_false")
    ap.add_argument("--no-scrape", dest="scrape", action="store_false", help="skip the whole-node scrape")
    ap.add_argument("--trace", action="store_true", help="tracemalloc breakdown per process")
    ap.add_argument("--trace-only", default="", help="trace only processes whose command has this text")
    ap.add_argument("--frames", type=int, default=6, help="frames kept per traced allocation")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    t0 = time.time()
    with (
        Lab(args.devices, interval=args.interval, procs=args.lab_procs) as lab,
        tempfile.TemporaryDirectory(prefix="gvt6-mem-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        port = free_tcp_port()
        config = node_config(tmp, lab.process.inventory_path, port, args.workers, args.alerts, args.api)
        env = {**os.environ, **lab.env, SECRET_ENV: os.urandom(16).hex()}
        if args.trace:
            env["PYTHONPATH"] = os.pathsep.join([str(PROBE), str(REPO), env.get("PYTHONPATH", "")])
            env["GOVNET_MEMPROBE"] = str(tmp)
            env["GOVNET_MEMPROBE_ONLY"] = args.trace_only
            env["GOVNET_MEMPROBE_FRAMES"] = str(args.frames)
        print(
            f"# node_memory: {args.devices} lab devices, {args.interval:g} s, {args.workers} workers, "
            f"alerts {'on' if args.alerts else 'off'}, api {'on' if args.api else 'off'}, "
            f"trace {'on' if args.trace else 'off'}; lab up after {time.time() - t0:.0f} s",
            flush=True,
        )
        log = open(tmp / "govnet.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "govnet", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            cwd=REPO,
        )
        try:
            started = time.monotonic()
            while not _answers(port):
                if proc.poll() is not None or time.monotonic() - started > 600:
                    raise RuntimeError((tmp / "govnet.log").read_text()[-3000:])
                time.sleep(1)
            print(f"# node answering after {time.monotonic() - started:.0f} s", flush=True)
            time.sleep(args.settle * args.interval)
            if proc.poll() is not None:
                raise RuntimeError((tmp / "govnet.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"http://127.26.0.3:{port}/metrics?scope=node", timeout=60) as r:
                    node = r.read().decode()
            except OSError:
                print((tmp / "govnet.log").read_text()[-3000:], file=sys.stderr)
                raise
            polls = [ln for ln in node.splitlines() if ln.startswith("govnet_scheduler_polls_total ")]
            fails = [ln for ln in node.splitlines() if ln.startswith("govnet_scheduler_poll_failures_total ")]
            print(f"# after {args.settle:g} intervals: {' '.join(polls + fails)}; load {os.getloadavg()}")
            rows = rss_table(proc.pid)
            for name, pid, mb in rows:
                cpu = _proc_cpu_s(pid)
                print(f"{name:>12} pid {pid:>7}  RSS {mb:>7.1f} MB  CPU {cpu:>7.1f} s")
            print(f"{'node':>12}              RSS {sum(r[2] for r in rows):>7.1f} MB")
            print(f"{'lab':>12}              RSS {lab.rss_mb():>7.1f} MB", flush=True)
            if args.trace:
                snapshots(proc.pid, tmp, "steady", args.top, args.trace_only)
            if args.scrape:
                t1 = time.monotonic()
                page = scrape_whole(port)
                print(f"\n# whole-node /metrics: {page:.0f} MB in {time.monotonic() - t1:.1f} s")
                rows = rss_table(proc.pid)
                for name, pid, mb in rows:
                    print(f"{name:>12} pid {pid:>7}  RSS {mb:>7.1f} MB")
                print(f"{'node':>12}              RSS {sum(r[2] for r in rows):>7.1f} MB", flush=True)
                if args.trace:
                    snapshots(proc.pid, tmp, "after scrape", args.top, args.trace_only)
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()
    print(f"# node_memory took {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
