"""A live `govnet run` (api, syslog on UDP/TCP/TLS with a client CA, alerts, traps) on loopback for the
abuse tests: users per role, certificates, metrics and RSS readers. Every address is under 127.0.0.0/8."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from api.auth import AuthDB
from tests.support.ports import free_port as free_port  # re-exported for this harness's users
from tests.support.procs import stop
from tests.support.prometheus import exposition

PASSWORD = "correct horse battery 9"
ROLES = ("admin", "auditor", "oncall", "engineer")
LONG_NAME = "sw-" + "x" * 40


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    """Resident memory of a process from /proc/PID/status (VmRSS now, VmHWM = peak so far), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(field_name)


def make_certs(folder: Path, host: str) -> dict[str, Path]:
    """A CA, a server certificate for `host` and a client certificate, both signed by the CA (openssl)."""
    out = {name: folder / f"{name}.pem" for name in ("ca", "server", "client")}
    keys = {name: folder / f"{name}.key" for name in ("ca", "server", "client")}

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *ec, "-keyout", str(keys["ca"]), "-out", str(out["ca"]), "-days", "2",
        "-subj", "/CN=abuse-test-ca")  # fmt: skip
    for name, ext in (("server", f"subjectAltName=IP:{host}"), ("client", "extendedKeyUsage=clientAuth")):
        csr = folder / f"{name}.csr"
        run("req", *ec, "-keyout", str(keys[name]), "-out", str(csr), "-subj", f"/CN=abuse-{name}")
        extfile = folder / f"{name}.ext"
        extfile.write_text(ext + "\n")
        run("x509", "-req", "-in", str(csr), "-CA", str(out["ca"]), "-CAkey", str(keys["ca"]),
            "-CAcreateserial", "-out", str(out[name]), "-days", "2", "-extfile", str(extfile))  # fmt: skip
    return {**out, "server_key": keys["server"], "client_key": keys["client"]}


@dataclass
class Stack:
    """The running process and what tests need to reach it."""

    tmp: Path
    host: str  # listeners
    devices: dict[str, str]  # inventory device name -> its (loopback) address
    ports: dict[str, int]
    certs: dict[str, Path]
    proc: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)  # role -> Bearer token

    @property
    def api(self) -> str:
        """Base URL of the API."""
        return f"http://{self.host}:{self.ports['api']}"

    @property
    def pid(self) -> int:
        """The `govnet run` process id."""
        assert self.proc is not None
        return self.proc.pid

    def headers(self, role: str) -> dict[str, str]:
        """Bearer header of the user with this role."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def client(self, source: str | None = None) -> httpx.Client:
        """An HTTP client to the API, its connections bound to `source` (a loopback address) if given."""
        transport = httpx.HTTPTransport(local_address=source) if source else None
        return httpx.Client(base_url=self.api, transport=transport, timeout=30)

    def metrics(self) -> dict[str, float]:
        """The /metrics page as {'name{labels}': value}."""
        with urllib.request.urlopen(f"http://{self.host}:{self.ports['metrics']}/metrics", timeout=10) as r:
            return exposition(r.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value (0.0 when absent); labels must all be present in the series."""
        total = 0.0
        for key, value in self.metrics().items():
            base, _, rest = key.partition("{")
            if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += value
        return total

    def wait_for(self, what: str, check: Any, timeout: float = 30.0) -> None:
        """Poll `check()` until it is true (the process must stay alive)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            try:
                if check():
                    return
            except (OSError, httpx.HTTPError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the process log."""
        log = self.tmp / "govnet.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def syslog_lines(self, text: str) -> list[dict[str, Any]]:
        """Stored records whose message contains `text` (read through the API as the auditor)."""
        with self.client() as c:
            r = c.get("/api/v1/logs", params={"q": text, "limit": 500}, headers=self.headers("auditor"))
        r.raise_for_status()
        items: list[dict[str, Any]] = r.json()["items"]
        return items


def start_stack(tmp: Path, net: int, **overrides: Any) -> Iterator[Stack]:
    """Start `govnet run` with every input section on 127.<net>.0.0/16; yield; stop it (SIGTERM)."""
    host = f"127.{net}.0.1"
    # The third name is adversarial input for backtracking regexes: "(x+x+)+y" never ends on it in `re`.
    devices = {"fw-1": f"127.{net}.0.21", "sw-1": f"127.{net}.0.22", LONG_NAME: f"127.{net}.0.23"}
    inv = {
        "sites": [{"name": "ncc"}],
        "devices": [
            {"name": name, "site": "ncc", "role": "firewall" if name.startswith("fw") else "access_switch",
             "vendor": "hillstone" if name.startswith("fw") else "h3c", "address": addr,
             "snmp": {"version": "2c", "community": "env:ABUSE_COMMUNITY",
                      "port": free_port(addr, socket.SOCK_DGRAM)}}
            for name, addr in devices.items()
        ],
    }  # fmt: skip
    (tmp / "inv.yaml").write_text(yaml.safe_dump(inv))
    ports = {
        "api": free_port(host, socket.SOCK_STREAM),
        "metrics": free_port(host, socket.SOCK_STREAM),
        "tcp": free_port(host, socket.SOCK_STREAM),
        "tls": free_port(host, socket.SOCK_STREAM),
        "udp": free_port(host, socket.SOCK_DGRAM),
        "traps": free_port(host, socket.SOCK_DGRAM),
    }
    certs = make_certs(tmp, host)
    syslog: dict[str, Any] = {
        "store": "logs",
        "listen": host,
        "tcp_port": ports["tcp"],
        "udp_port": ports["udp"],
        "tls_port": ports["tls"],
        "tls_cert": str(certs["server"]),
        "tls_key": str(certs["server_key"]),
        "tls_client_ca": str(certs["ca"]),
        # UDP: inventory addresses only (the default list), others refused; streams: all of loopback.
        "allow": {"tcp": ["127.0.0.0/8"], "tls": ["127.0.0.0/8"]},
        "unknown_sources": "refuse",
        "limits": {
            "queue_bytes": 16 * 1024 * 1024,
            "max_connections": 200,
            "max_connections_per_source": 50,
            "tls_handshake_timeout": 2,
            "max_tls_handshakes": 32,
            "idle_timeout": 4,
            "frame_timeout": 2,
            "buffer_bytes": 1024 * 1024,
        },
    }
    cfg: dict[str, Any] = {
        "inventory": "inv.yaml",
        "prometheus": {"listen": f"{host}:{ports['metrics']}"},
        "alerts": {"evaluate_interval": "1s"},
        "traps": {"listen": f"{host}:{ports['traps']}", "communities": ["env:ABUSE_TRAP"], "repoll": False},
        "syslog": syslog,
        "api": {
            "listen": f"{host}:{ports['api']}",
            "state_dir": "api",
            "session_secret": "env:ABUSE_SESSION_SECRET",
            "session_idle_minutes": 0.05,  # 3 s
            "max_log_scan": 1000,
            "max_connections_per_source": 20,
            "header_timeout": 2,
        },
    }
    for section, values in overrides.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    (tmp / "govnet.yaml").write_text(yaml.safe_dump(cfg))
    stack = Stack(tmp, host, devices, ports, certs)
    db = AuthDB(tmp / "api" / "users.db")
    for role in ROLES:
        db.add_user(f"u-{role}", role, PASSWORD)
        stack.tokens[role] = db.issue(f"u-{role}", "api", 86400, "test")[1]
    db.close()
    env = {**os.environ, "ABUSE_COMMUNITY": "c-abuse", "ABUSE_TRAP": "t-abuse", "MIBS": ""}
    env["ABUSE_SESSION_SECRET"] = "s" * 32
    with (tmp / "govnet.log").open("ab") as log:
        stack.proc = subprocess.Popen(
            [sys.executable, "-m", "govnet", "run", "--config", str(tmp / "govnet.yaml")],
            env=env, stdout=log, stderr=log, cwd=tmp,
        )  # fmt: skip
    try:
        stack.wait_for(
            "the API", lambda: httpx.get(stack.api + "/api/v1/health", timeout=2).status_code == 401
        )
        stack.wait_for("syslog and traps", lambda: "govnet_traps_listening 1.0" in _raw_metrics(stack))
        yield stack
    finally:
        stop(stack.proc, 20)


def _raw_metrics(stack: Stack) -> str:
    with urllib.request.urlopen(f"http://{stack.host}:{stack.ports['metrics']}/metrics", timeout=5) as r:
        body: str = r.read().decode()
    return body
