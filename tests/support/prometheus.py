"""A real Prometheus (Debian's 2.42 `/usr/bin/prometheus`) for tests: started on a loopback address
with an ephemeral port, the config written from Python data, queried through its HTTP API."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.support.ports import free_port
from tests.support.procs import stop
from tests.support.require import require_cmd


def exposition(text: str) -> dict[str, float]:
    """A /metrics (or /probe) page in the Prometheus text format as {'name{labels}': value}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def static_job(name: str, *targets: str) -> dict[str, Any]:
    """A scrape job with fixed targets (`host:port`)."""
    return {"job_name": name, "static_configs": [{"targets": list(targets)}]}


class Prometheus:
    """One Prometheus process; its port is chosen at construction (so configs can name it before start)."""

    def __init__(self, tmp: Path, host: str, scrape_configs: list[dict[str, Any]], *args: str) -> None:
        require_cmd("prometheus")
        self.tmp, self.args = tmp, args
        self.listen = f"{host}:{free_port(host)}"
        self.url = f"http://{self.listen}"
        cfg = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": scrape_configs,
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        """Start the process (its log in prometheus.log beside its config)."""
        with (self.tmp / "prometheus.log").open("ab") as log:
            self.proc = subprocess.Popen(
                ["/usr/bin/prometheus", f"--config.file={self.tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.tmp / 'tsdb'}", f"--web.listen-address={self.listen}",
                 "--log.level=error", *self.args],
                stdout=log, stderr=log,
            )  # fmt: skip
        return self

    def stop(self) -> None:
        """SIGTERM, then kill after 20 s."""
        stop(self.proc, 20)
        self.proc = None

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def api(self, path: str, **params: str) -> Any:
        """The `data` of an HTTP API answer (None while it does not answer or answers an error)."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError):  # not serving yet, or an error status (HTTPError is an OSError)
            return None
        return body["data"] if body.get("status") == "success" else None

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector ([] while it does not answer)."""
        data = self.api("query", query=promql)
        return list(data["result"]) if data else []
