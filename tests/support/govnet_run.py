"""A `govnet run` process under test, a recording webhook receiver, and waiting: shared by the alert
end-to-end, HA-pair, worker, per-target and report tests (each drives real processes on its own
loopback range)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from lab.synth import synth_inventory
from tests.support.paths import GOVNET
from tests.support.ports import free_port as free_port  # re-exported: the harness's users import it here
from tests.support.ports import lab_process
from tests.support.procs import stop


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """(status, body) of a GET; (status, "") for an error status, (0, "") while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), str(resp.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:  # not listening yet
        return 0, ""


def wait_for(cond: Callable[[], Any], timeout: float, what: str, step: float = 0.3) -> Any:
    """Poll `cond` until it returns something true (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Hook:
    """A webhook receiver's record: answers statuses from `script` (then 200), keeps every request."""

    script: list[int] = field(default_factory=list)
    requests: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[dict[str, Any]]:
        """Payloads answered 200, in order."""
        with self.lock:
            return [p for _, status, p in self.requests if status == 200]

    def kinds(self) -> list[tuple[str, str]]:
        """(govnet kind, incident) of accepted payloads, in order."""
        return [(p["govnet"]["kind"], p["groupKey"]) for p in self.accepted()]

    def clear(self) -> None:
        """Forget what was received so far."""
        with self.lock:
            self.requests.clear()


@contextmanager
def webhook(host: str) -> Iterator[tuple[Hook, str]]:
    """A real HTTP webhook receiver on `host` (an ephemeral port): (its record, its URL)."""
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with hook.lock:
                status = hook.script.pop(0) if hook.script else 200
                hook.requests.append((time.time(), status, json.loads(body)))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield hook, f"http://{host}:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class GovnetNode:
    """One `govnet run --config CONFIG` process (working directory: the config's folder)."""

    config: Path
    metrics_url: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process, its output appended to `log_path`."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(GOVNET), "run", "--config", str(self.config)], stdout=log, stderr=log,
                cwd=self.config.parent,
            )  # fmt: skip

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` and wait for the process to end (killed after 15 s)."""
        stop(self.proc, 15, sig)
        self.proc = None

    def scrape(self) -> str:
        """The /metrics text ("" when the process does not answer)."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
                return str(resp.read().decode())
        except OSError:
            return ""

    def series(self, name: str) -> dict[str, float]:
        """`name`'s values keyed by their label text (`{a="b"}`, or "" for a series without labels)."""
        return {
            m.group(1) or "": float(m.group(2))
            for m in re.finditer(rf"^{name}(\{{.*\}})? (\S+)$", self.scrape(), re.M)
        }

    def up_count(self) -> int:
        """How many devices answer their poll (govnet_up == 1)."""
        return sum(1 for v in self.series("govnet_up").values() if v == 1)

    def children(self) -> set[int]:
        """PIDs of the process's children (its poller workers)."""
        assert self.proc is not None
        return {
            int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        }

    def metric(self, name: str, **labels: str) -> float | None:
        """Sum of a metric's series whose labels include `labels` (None: not scraped or no such series)."""
        values = [
            v for k, v in self.series(name).items() if all(f'{n}="{x}"' in k for n, x in labels.items())
        ]
        return sum(values) if values else None


@contextmanager
def polling_lab(
    tmp: Path, host: str, lab_base: str, n_devices: int, n_interfaces: int, **scheduler: object
) -> Iterator[GovnetNode]:
    """The lab with `n_devices` synthetic devices on `lab_base`, and `govnet run` on `host` polling them
    every 2 s (`scheduler` adds to its scheduler section); yields once every device is up."""
    doc = synth_inventory(n_devices, n_interfaces=n_interfaces)
    doc["defaults"] = {"poll_interval": "2s"}
    with lab_process(doc, tmp, lab_base) as lab:
        listen = f"{host}:{free_port(host)}"
        config = {
            "inventory": str(lab.inventory_path),
            "prometheus": {"listen": listen},
            "scheduler": {"timeout": "1s", "retries": 1, **scheduler},
            "log_level": "warning",
        }
        (tmp / "govnet.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        node = GovnetNode(tmp / "govnet.yaml", f"http://{listen}/metrics", tmp / "govnet.log")
        try:
            node.start()
            wait_for(lambda: node.up_count() == n_devices, 60, "every device up")
            yield node
        finally:
            node.stop()
