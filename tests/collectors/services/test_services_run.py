"""`govnet run` with a `services:` section: the inventory's checks run on schedule against a real nginx,
their series reach /metrics, and the first page becomes a committed baseline."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

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
    import json

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


def test_builder_wires_checker_into_alerts_and_console(tmp_path: Path) -> None:
    from alerts.engine import Engine
    from alerts.rules import DEFAULT_RULES, load_rules
    from collectors.services.runner import ServiceChecker
    from collectors.services.service import CHECKER_KEY, build_services
    from govnet.service import RunContext
    from inventory.load import load_inventory
    from tests.support.paths import EXAMPLES

    engine = Engine(load_rules(DEFAULT_RULES))
    path = EXAMPLES / "services.yaml"
    ctx = RunContext(tmp_path, load_inventory(path), path, None, extra={"alerts_engine": engine})
    (svc,) = build_services({"baseline_dir": "b", "max_concurrency": 4}, ctx)
    assert isinstance(svc, ServiceChecker) and ctx.extra[CHECKER_KEY] is svc
    assert sorted(svc.states) == ["ftp-banner", "mail-tls", "oa-db", "portal", "portal-dns", "zwfw"]
    assert set(engine.details) == {"ServiceContentChanged", "DefacementSuspected"}
    assert svc.repo is not None and svc.repo.path == tmp_path / "b"
    with pytest.raises(ValueError, match="max_concurrency"):
        build_services({"max_concurrency": 0}, ctx)
