"""`make demo`: the example district simulated on loopback, monitored by govnet, scraped by Prometheus.

Everything started here is a child process we own; Ctrl-C (or SIGTERM) stops each by PID.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".govnet-lab" / "demo"
INVENTORY = ROOT / "examples" / "district.yaml"
GOVNET_LISTEN = ("127.0.0.1", 9810)
PROM_LISTEN = ("127.0.0.1", 9090)
VM_LISTEN = ("127.0.0.1", 8428)

console = Console(stderr=True, highlight=False)


def _wait_http(url: str, timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback URL we built)
                if resp.status < 500:
                    return True
        except OSError:
            time.sleep(0.3)
    console.print(f"[yellow]! {what} did not answer at {url} within {timeout:.0f} s[/]")
    return False


def _start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("wb")
    # A new session so a terminal Ctrl-C reaches only us; we stop children ourselves, in order.
    return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes], name: str) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        console.print(f"[yellow]! {name} (pid {proc.pid}) ignored SIGTERM; killing[/]")
        proc.kill()
        proc.wait(timeout=5)


def main() -> int:
    """Run the demo until interrupted."""
    from inventory.cli import load_or_exit
    from lab.runner import LabProcess

    load_or_exit(INVENTORY)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    console.print(f"[bold]govnet demo[/]: simulating {INVENTORY.relative_to(ROOT)} on loopback")
    with LabProcess(INVENTORY, RUN_DIR / "lab") as lab:
        config = {
            "inventory": str(lab.inventory_path),
            "prometheus": {"listen": f"{GOVNET_LISTEN[0]}:{GOVNET_LISTEN[1]}"},
            "links": {"interval": "30s"},  # declared links checked against the lab's LLDP
        }
        vm = shutil.which("victoria-metrics")
        if vm:
            vm_dir = RUN_DIR / "victoria-metrics"
            vm_dir.mkdir(exist_ok=True)
            procs.append(
                (
                    "victoria-metrics",
                    _start(
                        [
                            vm,
                            f"-storageDataPath={vm_dir}",
                            f"-httpListenAddr={VM_LISTEN[0]}:{VM_LISTEN[1]}",
                            "-search.latencyOffset=0s",
                        ],
                        RUN_DIR / "victoria-metrics.log",
                    ),
                )
            )
            # VictoriaMetrics ignores the token, but govnet never runs with a default secret:
            # the demo makes a random one, by reference like any deployment would.
            token = RUN_DIR / "influx_token"
            if not token.exists():
                token.write_text(secrets.token_urlsafe(24), encoding="utf-8")
                token.chmod(0o600)
            config["influx"] = {
                "url": f"http://{VM_LISTEN[0]}:{VM_LISTEN[1]}",
                "org": "govnet",
                "bucket": "govnet",
                "token": f"file:{token}",
                "spool_dir": str(RUN_DIR / "spool"),
            }
        cfg_path = RUN_DIR / "govnet.yaml"
        cfg_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        govnet = _start(
            [sys.executable, "-m", "govnet", "run", "--config", str(cfg_path)], RUN_DIR / "govnet.log"
        )
        procs.append(("govnet", govnet))
        metrics_url = f"http://{GOVNET_LISTEN[0]}:{GOVNET_LISTEN[1]}/metrics"
        console.print("[dim]waiting for govnet's first polls...[/]")
        _wait_http(metrics_url, 30, "govnet")

        prom = shutil.which("prometheus")
        if prom:
            prom_dir = RUN_DIR / "prometheus"
            prom_dir.mkdir(exist_ok=True)
            prom_cfg = prom_dir / "prometheus.yml"
            prom_cfg.write_text(
                yaml.safe_dump(
                    {
                        "global": {"scrape_interval": "15s"},
                        "scrape_configs": [
                            {
                                "job_name": "govnet",
                                "static_configs": [{"targets": [f"{GOVNET_LISTEN[0]}:{GOVNET_LISTEN[1]}"]}],
                            }
                        ],
                    }
                ),
                encoding="utf-8",
            )
            procs.append(
                (
                    "prometheus",
                    _start(
                        [
                            prom,
                            f"--config.file={prom_cfg}",
                            f"--storage.tsdb.path={prom_dir / 'data'}",
                            f"--web.listen-address={PROM_LISTEN[0]}:{PROM_LISTEN[1]}",
                        ],
                        RUN_DIR / "prometheus.log",
                    ),
                )
            )
            _wait_http(f"http://{PROM_LISTEN[0]}:{PROM_LISTEN[1]}/-/ready", 30, "Prometheus")

        console.print()
        console.print("[bold green]govnet demo is running[/]")
        console.print(f"  govnet metrics      {metrics_url}")
        if prom:
            console.print(
                f"  Prometheus          http://{PROM_LISTEN[0]}:{PROM_LISTEN[1]}/graph?g0.expr=govnet_up"
            )
        if vm:
            console.print(f"  VictoriaMetrics     http://{VM_LISTEN[0]}:{VM_LISTEN[1]}/vmui")
        console.print(f"  lab inventory       {lab.inventory_path}")
        console.print(f"  logs                {RUN_DIR}/*.log")
        fault = f".venv/bin/govnet lab fault --run-dir {RUN_DIR / 'lab'} nc-core-1 dead"
        console.print(f"  inject a fault      {fault}", soft_wrap=True)
        console.print("[dim]Ctrl-C stops everything.[/]")
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    console.print(f"[red]! {name} exited with {proc.returncode}; see {RUN_DIR}/{name}.log[/]")
                    stopping = True
            time.sleep(0.5)
        console.print("stopping...")
        for name, proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                _stop(proc, name)
    console.print("stopped; nothing left running.")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
