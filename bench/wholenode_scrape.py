"""Memory and CPU of one whole-node `/metrics` scrape (issue 20): peak RSS added by the scrape.

Two ways:
- `--synthetic N [N ...]`: in one process, a latest store of N devices shaped like a 48-interface lab
  switch (bench.scrape_cost, ~490 series each) served by a real MetricsServer and scraped over HTTP,
  identity and gzip; the reference is prometheus_client's in-memory rendering (`generate_latest` of the
  same collector: what `/metrics` ran before). Each case runs in a fresh child process; the peak is
  the kernel's high-water mark (VmHWM, reset through /proc/self/clear_refs before the scrape).
- `--lab N`: a real `govnet run` (2 poller workers) polling N lab devices (bench.capacity's Lab), one
  interval to settle, then whole-node scrapes (identity, then gzip) while the supervisor's RSS
  is sampled every 10 ms; its CPU during each scrape from /proc. `--code DIR` runs `govnet run` from
  another tree (an export of main measured the code before this change).

Run: `python -m bench.wholenode_scrape --synthetic 2000 5000` or `--lab 2000`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any


def _status(pid: int | str, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _fetch(host: str, port: int, gzip: bool) -> tuple[int, int, str]:
    conn = http.client.HTTPConnection(host, port, timeout=600)
    conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"} if gzip else {})
    resp = conn.getresponse()
    # Read and drop 64 kB at a time: the client must not hold the page (it shares the process).
    unzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if resp.getheader("Content-Encoding") == "gzip" else None
    wire = size = 0
    while chunk := resp.read(65536):
        wire += len(chunk)
        size += len(unzip.decompress(chunk)) if unzip else len(chunk)
    conn.close()
    return wire, size, resp.getheader("Content-Type") or ""


def synthetic_case(devices: int, mode: str) -> dict[str, Any]:
    """One measurement in this process: fill, reset the peak, scrape once, report."""
    from prometheus_client import generate_latest

    from bench.scrape_cost import device_samples
    from core.latest import LatestStore
    from exporters.prometheus import MetricsServer, SamplesCollector

    store = LatestStore()
    now = time.time()
    for i in range(devices):
        store.publish(f"sw{i:05d}", device_samples(f"sw{i:05d}", now, i))
    server = MetricsServer("127.0.0.1:0", SamplesCollector(store))
    server.start()
    try:
        base = _status("self", "VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        t0 = time.process_time()
        if mode == "prometheus_client":
            text = generate_latest(server.registry)
            wire = size = len(text)
            ctype = "reference"
            del text
        else:
            wire, size, ctype = _fetch("127.0.0.1", server.port, mode == "gzip")
        cpu = time.process_time() - t0
        peak = _status("self", "VmHWM")
        after = _status("self", "VmRSS")
    finally:
        server.stop()
    series = sum(len(s) for s in store.sets())
    return {
        "devices": devices,
        "mode": mode,
        "series": series,
        "store_rss_mb": base,
        "scrape_peak_mb": peak - base,
        "kept_mb": after - base,
        "cpu_s": cpu,
        "page_mb": size / 1e6,
        "wire_mb": wire / 1e6,
        "type": ctype,
    }


def synthetic(sizes: list[int]) -> list[dict[str, Any]]:
    """Each (size, mode) in a fresh child process."""
    rows = []
    for n in sizes:
        for mode in ("prometheus_client", "identity", "gzip"):
            out = subprocess.run(
                [sys.executable, "-m", "bench.wholenode_scrape", "--case", str(n), mode],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rows.append(json.loads(out.splitlines()[-1]))
            print(_row(rows[-1]), flush=True)
    return rows


def _row(r: dict[str, Any]) -> str:
    return (
        f"{r['devices']:>7} {r['mode']:>17} {r.get('series', 0):>9} {r.get('store_rss_mb', 0):>9.0f} "
        f"{r['scrape_peak_mb']:>11.0f} {r.get('kept_mb', float('nan')):>8.0f} {r['cpu_s']:>7.2f} "
        f"{r['page_mb']:>8.1f} {r['wire_mb']:>8.1f}"
    )


HEADER = (
    f"{'devices':>7} {'mode':>17} {'series':>9} {'base MB':>9} {'+peak MB':>11} {'kept MB':>8} "
    f"{'CPU s':>7} {'page MB':>8} {'wire MB':>8}"
)


def lab(devices: int, workers: int, interval: float, code: str | None = None) -> list[dict[str, Any]]:
    """Whole-node scrapes of a real `govnet run` polling the lab; supervisor RSS sampled meanwhile."""
    import yaml

    from bench.capacity import Lab, _proc_cpu_s, free_tcp_port

    rows = []
    with Lab(devices, interval=interval) as lab_, tempfile.TemporaryDirectory(prefix="gvt-wn-") as tmp:
        port = free_tcp_port()
        inv_path = lab_.process.inventory_path.parent / "inventory-polling.yaml"
        inv_path.write_text(yaml.safe_dump({k: v for k, v in lab_.inventory.items() if k != "links"}))
        host = "127.26.0.4"
        cfg = {
            "inventory": str(inv_path),
            "prometheus": {"listen": f"{host}:{port}"},
            "scheduler": {"workers": workers, "max_concurrency": 64},
            "log_level": "error",
        }
        (Path(tmp) / "govnet.yaml").write_text(yaml.safe_dump(cfg))
        with open(Path(tmp) / "govnet.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "govnet", "run", "--config", str(Path(tmp) / "govnet.yaml")],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, **lab_.env, **({"PYTHONPATH": code} if code else {})},
                cwd=code,
            )
        try:
            time.sleep(interval + 5)
            if proc.poll() is not None:
                raise RuntimeError((Path(tmp) / "govnet.log").read_text()[-2000:])
            for mode in ("identity", "gzip", "identity", "gzip"):
                base = _status(proc.pid, "VmRSS")
                peak = [base]
                stop = threading.Event()

                def sample(peak: list[float] = peak, stop: threading.Event = stop) -> None:
                    while not stop.is_set():
                        peak[0] = max(peak[0], _status(proc.pid, "VmRSS"))
                        time.sleep(0.01)

                t = threading.Thread(target=sample)
                t.start()
                cpu0, t0 = _proc_cpu_s(proc.pid), time.monotonic()
                wire, size, ctype = _fetch(host, port, mode == "gzip")
                cpu, wall = _proc_cpu_s(proc.pid) - cpu0, time.monotonic() - t0
                stop.set()
                t.join()
                kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                rows.append(
                    {
                        "devices": devices,
                        "mode": mode,
                        "store_rss_mb": base,
                        "scrape_peak_mb": peak[0] - base,
                        "cpu_s": cpu,
                        "wall_s": wall,
                        "page_mb": size / 1e6,
                        "wire_mb": wire / 1e6,
                        "type": ctype,
                        "workers_rss_mb": sum(_status(k, "VmRSS") for k in kids),
                        "load1": os.getloadavg()[0],
                    }
                )
                print(_row(rows[-1]), f"wall {wall:.1f} s, workers {rows[-1]['workers_rss_mb']:.0f} MB, "
                      f"load {rows[-1]['load1']:.1f}, {ctype}", flush=True)  # fmt: skip
                time.sleep(5)
        finally:
            proc.terminate()
            proc.wait(30)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--synthetic", type=int, nargs="*", default=[], help="store sizes, in-process")
    ap.add_argument("--lab", type=int, nargs="*", default=[], help="lab sizes, real govnet run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--code", help="the tree whose `govnet run` to measure (default: this one)")
    ap.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        print(json.dumps(synthetic_case(int(args.case[0]), args.case[1])))
        return 0
    print(HEADER, flush=True)
    for n in args.lab:
        lab(n, args.workers, args.interval, args.code)
    if args.synthetic:
        synthetic(args.synthetic)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
