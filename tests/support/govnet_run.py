"""A `govnet run` process under test, a recording webhook receiver, and waiting: shared by the alert
end-to-end, HA-pair and scale-out tests (each drives real processes on its own loopback range)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.paths import GOVNET


def free_port(host: str) -> int:
    """A TCP port free on `host` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def scrape(self) -> str:
        """The /metrics text ("" when the process does not answer)."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
                return str(resp.read().decode())
        except OSError:
            return ""

    def metric(self, name: str, **labels: str) -> float | None:
        """Sum of a metric's series whose labels include `labels` (None: not scraped or no such series)."""
        values = []
        for m in re.finditer(rf"^{name}(\{{.*\}})? (\S+)$", self.scrape(), re.M):
            if all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
                values.append(float(m.group(2)))
        return sum(values) if values else None
