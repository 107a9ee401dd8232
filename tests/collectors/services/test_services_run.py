"""`govnet run` with a `services:` section: the inventory's checks run on schedule against a real nginx,
their series reach /metrics, and the first page becomes a committed baseline."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.support.paths import GOVNET
from tests.support.services_env import HOST, NAME, Nginx, Pki, free_port


def test_govnet_run_checks_services(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    ng = Nginx(tmp_path / "nginx", pki)
    ng.page("<html><body><p>政务公开</p></body></html>")
    ng.start()
    (tmp_path / "ca.pem").write_bytes(pki.ca_file.read_bytes())
    inventory = {
        "sites": [{"name": "ncc", "kind": "control_centre"}],
        "services": [
            {"name": "portal", "owner": {"unit": "区政府办公室", "site": "ncc"}, "type": "https",
             "target": f"https://{NAME}:{ng.https_port}/", "address": HOST, "interval": "2s", "timeout": "2s",
             "tls": {"ca_file": "ca.pem"}, "content": {}},
            {"name": "gone", "owner": {"unit": "x", "site": "ncc"}, "type": "tcp", "interval": "2s",
             "timeout": "1s", "target": f"{HOST}:{free_port()}"},
        ],
    }  # fmt: skip
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory, allow_unicode=True), encoding="utf-8")
    port = free_port()
    config = {"inventory": "inventory.yaml", "prometheus": {"listen": f"{HOST}:{port}"},
              "services": {"baseline_dir": "baselines"}}  # fmt: skip
    (tmp_path / "govnet.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    proc = subprocess.Popen(
        [str(GOVNET), "run", "--config", str(tmp_path / "govnet.yaml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                text = ""
            if 'govnet_service_up{service="gone"' in text and "govnet_service_content_changed{" in text:
                break
            time.sleep(0.5)
        lines = {
            line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if line[:1] != "#"
        }
        up = {k: v for k, v in lines.items() if k.startswith("govnet_service_up{")}
        assert any('service="portal"' in k and v == "1.0" for k, v in up.items()), up
        assert any('service="gone"' in k and v == "0.0" for k, v in up.items()), up
        assert any(k.startswith("govnet_service_cert_expires_in_seconds{") for k in lines)
        assert (tmp_path / "baselines" / "portal.json").is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        ng.stop()


def test_check_services_command(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    ng = Nginx(tmp_path / "nginx", pki)
    ng.page("<html><body><p>政务公开</p></body></html>")
    ng.start()
    try:
        (tmp_path / "ca.pem").write_bytes(pki.ca_file.read_bytes())
        inventory = {
            "sites": [{"name": "ncc"}],
            "services": [
                {"name": "portal", "owner": {"unit": "u", "site": "ncc"}, "type": "https", "address": HOST,
                 "target": f"https://{NAME}:{ng.https_port}/", "tls": {"ca_file": "ca.pem"}},
                {"name": "gone", "owner": {"unit": "u", "site": "ncc"}, "type": "tcp",
                 "target": f"{HOST}:{free_port()}"},
            ],
        }  # fmt: skip
        inv = tmp_path / "inventory.yaml"
        inv.write_text(yaml.safe_dump(inventory, allow_unicode=True), encoding="utf-8")
        cmd = [str(GOVNET), "check-services", "--inventory", str(inv)]
        both = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60)
        assert both.returncode == 1, both.stderr
        rows = {r["service"]: r for r in map(json.loads, both.stdout.splitlines())}
        assert rows["portal"]["up"] and rows["portal"]["status"] == 200 and rows["portal"]["cert"]["chain_ok"]
        assert not rows["gone"]["up"] and rows["gone"]["reason"] == "connection refused"
        one = subprocess.run([*cmd, "--service", "portal"], capture_output=True, text=True, timeout=60)
        assert one.returncode == 0 and one.stdout.startswith("portal: up · HTTP 200 · cert 365.0 d"), (
            one.stdout
        )
        bad = subprocess.run([*cmd, "--service", "nope"], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "unknown service" in bad.stderr
    finally:
        ng.stop()


def test_builder_gives_a_checker_the_alert_engine_can_ask_for_details(tmp_path: Path) -> None:
    from alerts.engine import Engine
    from alerts.rules import DEFAULT_RULES, load_rules
    from collectors.services.runner import ServiceChecker
    from collectors.services.service import ServicesSection, build
    from core.config import validate_section
    from inventory.load import load_inventory
    from tests.support.paths import EXAMPLES

    engine = Engine(load_rules(DEFAULT_RULES))
    path = EXAMPLES / "services.yaml"
    section = validate_section(
        ServicesSection, {"baseline_dir": "b", "max_concurrency": 4}, tmp_path, "services"
    )
    (svc,) = build(section, inventory=load_inventory(path), inventory_path=path)
    svc.register_details(engine)  # as govnet/run.py does when `alerts:` is configured
    assert isinstance(svc, ServiceChecker)
    assert sorted(svc.states) == ["ftp-banner", "mail-tls", "oa-db", "portal", "portal-dns", "zwfw"]
    assert set(engine.details) == {"ServiceContentChanged", "DefacementSuspected"}
    assert svc.repo is not None and svc.repo.path == tmp_path / "b"
    with pytest.raises(ValueError, match="max_concurrency"):
        validate_section(ServicesSection, {"max_concurrency": 0}, tmp_path, "services")


class _Hook(BaseHTTPRequestHandler):
    """A webhook receiver keeping every JSON body it is sent."""

    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).bodies.append(json.loads(data))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_defacement_pages_once_through_govnet_run(tmp_path: Path) -> None:
    """The whole path in one process: checker -> alert service -> engine (with the finding as detail)
    -> webhook; one page when a hidden gambling block appears, one resolved notice when it goes."""
    pki = Pki(tmp_path / "pki")
    ng = Nginx(tmp_path / "nginx", pki)
    clean = "<html><body><h1>某区人民政府</h1><p>政务公开</p></body></html>"
    ng.page(clean)
    ng.start()
    hook = ThreadingHTTPServer((HOST, 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    (tmp_path / "hook.url").write_text(f"http://{HOST}:{hook.server_address[1]}/hook")
    (tmp_path / "ca.pem").write_bytes(pki.ca_file.read_bytes())
    inventory = {
        "sites": [{"name": "ncc"}],
        "services": [
            {"name": "portal", "owner": {"unit": "区政府办公室", "site": "ncc"}, "type": "https",
             "target": f"https://{NAME}:{ng.https_port}/", "address": HOST, "interval": "1s",
             "tls": {"ca_file": "ca.pem"}, "content": {}},
        ],
    }  # fmt: skip
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory, allow_unicode=True), encoding="utf-8")
    config = {
        "inventory": "inventory.yaml",
        "prometheus": {"listen": f"{HOST}:{free_port()}"},
        "log_level": "warning",
        "services": {"baseline_dir": "baselines"},
        "alerts": {
            "rules": ["default"], "state_db": "state/alerts.db", "evaluate_interval": "1s",
            "channels": [{"type": "webhook", "name": "hook", "url": "file:hook.url"}], "route": ["hook"],
        },
    }  # fmt: skip
    (tmp_path / "govnet.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    proc = subprocess.Popen(
        [str(GOVNET), "run", "--config", str(tmp_path / "govnet.yaml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def wait_for(what: str, cond: Any) -> None:
        deadline = time.monotonic() + 90
        while not cond():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, f"{what} did not happen; sent: {_Hook.bodies}"
            time.sleep(0.2)

    def sent(kind: str) -> list[dict[str, Any]]:
        return [b for b in _Hook.bodies if b["govnet"]["kind"] == kind]

    try:
        _Hook.bodies.clear()
        wait_for("first baseline", (tmp_path / "baselines" / "portal.json").is_file)
        ng.page(clean.replace("</body>", '<div style="display:none">澳门新葡京 百家乐</div></body>'))
        wait_for("a page", lambda: sent("firing"))
        ng.page(clean)
        wait_for("a resolved notice", lambda: sent("resolved"))
        time.sleep(3)  # a few more evaluations: nothing else may be sent
        firing, resolved = sent("firing"), sent("resolved")
        assert len(firing) == 1 and len(resolved) == 1, _Hook.bodies
        assert len(_Hook.bodies) == 2, _Hook.bodies
        alert = firing[0]["alerts"][0]
        assert (
            alert["labels"]["alertname"] == "DefacementSuspected"
            and alert["labels"]["reason"] == "forbidden_word"
        )
        assert firing[0]["govnet"]["level"] == "III"
        assert "违规词 forbidden words: 澳门新葡京, 百家乐" in firing[0]["govnet"]["text"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        hook.shutdown()
        ng.stop()
