"""`govnet run` with `probes:` and `traps:` sections: the builders are found, samples reach /metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from tests.support.procs import stop
from tests.support.require import require_cmd, require_root

DEVICE = "127.28.3.1"  # answers ICMP on lo; no SNMP agent there, so its polls fail
RECEIVER = "127.28.3.2"
METRICS = "127.28.3.3"


def free_port(host: str, kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as r:
        return str(r.read().decode())


def reachable(body: str) -> bool:
    """govnet_reachability_state{...state="up"...} is 1 for the device."""
    return any(
        ln.startswith("govnet_reachability_state{") and 'state="up"' in ln and ln.endswith(" 1.0")
        for ln in body.splitlines()
    )


def test_govnet_run_serves_probe_trap_and_reachability_metrics(tmp_path: Path) -> None:
    require_root()
    require_cmd("snmptrap")
    inv = {
        "sites": [{"name": "s"}],
        "devices": [
            {
                "name": "sw-1",
                "site": "s",
                "role": "access_switch",
                "vendor": "h3c",
                "address": DEVICE,
                "snmp": {
                    "version": "2c",
                    "community": "env:GV5_RUN_COMMUNITY",
                    "port": free_port(DEVICE, socket.SOCK_DGRAM),
                },
            }
        ],
    }
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    trap_port = free_port(RECEIVER, socket.SOCK_DGRAM)
    http_port = free_port(METRICS, socket.SOCK_STREAM)
    cfg = {
        "inventory": "inv.yaml",
        "prometheus": {"listen": f"{METRICS}:{http_port}"},
        "probes": {"interval": "1s", "timeout": "0.5s", "count": 2, "reachability": {"interval": "0.5s"}},
        "traps": {"listen": f"{RECEIVER}:{trap_port}", "communities": ["env:GV5_RUN_TRAP"]},
    }
    (tmp_path / "govnet.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "GV5_RUN_COMMUNITY": "c-run", "GV5_RUN_TRAP": "t-run", "MIBS": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "govnet", "run", "--config", str(tmp_path / "govnet.yaml")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = ""
        end = time.monotonic() + 20
        sent = False
        while time.monotonic() < end:
            time.sleep(0.3)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                body = scrape(f"http://{METRICS}:{http_port}/metrics")
            except OSError:
                continue
            if not sent and "govnet_traps_listening 1.0" in body.splitlines():
                subprocess.run(
                    [
                        "snmptrap",
                        "-v2c",
                        "-c",
                        "t-run",
                        f"--clientaddr={DEVICE}",
                        f"{RECEIVER}:{trap_port}",
                        "",
                        "1.3.6.1.6.3.1.1.5.3",
                    ],
                    env=env,
                    check=True,
                    timeout=20,
                )
                sent = True

            if sent and 'trap="linkDown"' in body and reachable(body):
                break
        lines = body.splitlines()
        assert "govnet_probe_available 1.0" in lines
        assert any(
            ln.startswith("govnet_probe_up{") and 'device="sw-1"' in ln and ln.endswith(" 1.0")
            for ln in lines
        )
        assert 'trap="linkDown"' in body and "govnet_traps_repolls_total{" in body
        # SNMP fails (no agent) but ICMP answers: the device is reachable, not down.
        assert reachable(body), [ln for ln in lines if ln.startswith("govnet_reachability_state{")]
        print(f"metrics complete {time.monotonic() - (end - 20):.1f} s after start")
    finally:
        t_stop = time.monotonic()
        stop(proc, 15)
        print(f"stopped in {time.monotonic() - t_stop:.1f} s")
