"""`govnet doctor` against the lab (real SNMP agents on 127.35.0.0/16), real sockets and real files."""

from __future__ import annotations

import io
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from govnet import doctor
from lab.runner import LabProcess
from tests.support.paths import ROOT
from tests.support.ports import lab_process

LAB_BASE = "127.35.0.0"
LISTEN_HOST = "127.35.200.1"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    run_dir = tmp_path_factory.mktemp("doctor-lab")
    with lab_process(ROOT / "examples" / "minimal.yaml", run_dir, LAB_BASE) as lab:
        yield lab


def _config(tmp: Path, inventory: Path, port: int, spool_max_bytes: str = "1MiB") -> Path:
    (tmp / "secrets").mkdir(exist_ok=True)
    secret = tmp / "secrets" / "influx_token"
    secret.write_text("s3cr3t-influx-token-value\n")
    secret.chmod(0o600)
    lines = [
        f"inventory: {inventory}",
        f"prometheus: {{listen: '{LISTEN_HOST}:{port}'}}",
        "influx:",
        "  url: http://127.35.200.2:8428",
        "  org: govnet",
        "  bucket: govnet",
        "  token: file:secrets/influx_token",
        f"  spool_dir: {tmp / 'spool'}",
        f"  spool_max_bytes: {spool_max_bytes}",
    ]
    path = tmp / "govnet.yaml"
    path.write_text("\n".join(lines) + "\n")
    (tmp / "spool").mkdir(exist_ok=True)
    return path


def _run(config: Path) -> tuple[int, str]:
    buf = io.StringIO()
    code = doctor.doctor_command(config, out=buf, snmp_timeout=0.5)
    return code, buf.getvalue()


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip().startswith("ERROR")]


def test_healthy_deployment_passes(lab: LabProcess, tmp_path: Path) -> None:
    config = _config(tmp_path, lab.inventory_path, _free_port(LISTEN_HOST))
    code, text = _run(config)
    assert code == 0, text
    assert not _errors(text)
    assert "3/3 devices answer SNMP" in text
    assert f"{LISTEN_HOST}:" in text and "is free" in text
    # Secrets were read to prove they resolve, and printed nowhere.
    for name in ("snmp_community", "snmp_auth", "snmp_priv"):
        secret_file = lab.run_dir / "secrets" / name
        if secret_file.exists():
            assert secret_file.read_text().strip() not in text
    assert "s3cr3t-influx-token-value" not in text


def test_dead_device_and_busy_port_are_named(lab: LabProcess, tmp_path: Path) -> None:
    port = _free_port(LISTEN_HOST)
    config = _config(tmp_path, lab.inventory_path, port)
    lab.fault("acc-chengguan-sq01", "dead")
    try:
        with socket.socket() as squatter:
            squatter.bind((LISTEN_HOST, port))
            squatter.listen()
            code, text = _run(config)
    finally:
        lab.clear("acc-chengguan-sq01")
    assert code == 1
    errors = _errors(text)
    dead = [e for e in errors if "acc-chengguan-sq01" in e]
    assert dead and "no SNMP answer" in dead[0], text
    assert "2/3 devices answer SNMP" in text
    busy = [e for e in errors if f"{LISTEN_HOST}:{port}/tcp" in e]
    assert busy and "in use" in busy[0] and f"pid {os.getpid()}" in busy[0], text
    # Every error carries what to do about it.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("ERROR") and "devices answer" not in line:
            assert lines[i + 1].strip().startswith("fix:"), line


def test_unresolvable_and_exposed_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVNET_SNMP_AUTH", "auth-value-never-shown")
    monkeypatch.delenv("GOVNET_SNMP_PRIV", raising=False)
    monkeypatch.delenv("GOVNET_UPS_COMMUNITY", raising=False)
    config = _config(tmp_path, ROOT / "examples" / "minimal.yaml", _free_port(LISTEN_HOST))
    (tmp_path / "secrets" / "influx_token").chmod(0o644)
    cfg, _ = doctor.check_config(config)
    assert cfg is not None
    inv, _ = doctor.check_inventory(cfg)
    findings = doctor.check_secrets(cfg, inv)
    text = "\n".join(f"{f.level} {f.message} {f.fix}" for f in findings)
    assert "auth-value-never-shown" not in text and "s3cr3t" not in text
    missing = [f for f in findings if f.level == "error" and "GOVNET_SNMP_PRIV" in f.message]
    assert missing and "govnet.env" in missing[0].fix
    assert any(f.level == "error" and "GOVNET_UPS_COMMUNITY" in f.message for f in findings)
    assert not any("GOVNET_SNMP_AUTH " in f.message for f in findings if f.level == "error")
    exposed = [f for f in findings if f.level == "warn" and "readable by every user" in f.message]
    assert exposed and "chmod 0640" in exposed[0].fix


def test_invalid_config_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "govnet.yaml"
    bad.write_text("inventory: inv.yaml\nprometheus:\n  listen: nowhere\n")
    code, text = _run(bad)
    assert code == 2  # what `govnet run` refuses: exit 2 like it
    assert f"{bad}:3: prometheus.listen" in text


def test_disk_budget_larger_than_the_disk(tmp_path: Path) -> None:
    config = _config(
        tmp_path, ROOT / "examples" / "minimal.yaml", _free_port(LISTEN_HOST), spool_max_bytes="900TiB"
    )
    cfg, _ = doctor.check_config(config)
    assert cfg is not None
    findings = doctor.check_disk(doctor.budgets(cfg, {}))
    err = [f for f in findings if f.level == "error"]
    assert err and str(tmp_path / "spool") in err[0].message and "spool_max_bytes" in err[0].fix
    ok = doctor.check_disk([doctor.Budget(tmp_path / "spool", 1024, "test")])
    assert [f.level for f in ok] == ["ok"]


def _sntp_server(host: str, skew: float) -> tuple[socket.socket, threading.Thread]:
    # A minimal SNTP server whose clock runs `skew` seconds ahead (answers one request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))

    def serve() -> None:
        data, peer = sock.recvfrom(512)
        now = time.time() + skew + 2208988800
        secs, frac = int(now), int((now % 1) * 2**32)
        reply = bytearray(48)
        reply[0] = 0x24  # version 4, mode 4 (server)
        reply[1] = 2
        reply[24:32] = data[40:48]  # originate = client's transmit
        struct.pack_into("!IIII", reply, 32, secs, frac, secs, frac)
        sock.sendto(bytes(reply), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, thread


def test_clock_offset_over_sntp(tmp_path: Path) -> None:
    sock, thread = _sntp_server("127.35.201.1", 5.0)
    try:
        port = sock.getsockname()[1]
        offset = doctor.sntp_offset("127.35.201.1", port)
        assert 4.9 < offset < 5.1
        finding = doctor.clock_finding(offset, "test")
        assert finding.level == "error"
        shown = re.search(r"clock offset ([+-][\d.]+) ms", finding.message)
        assert shown and 4900 < float(shown.group(1)) < 5100
    finally:
        thread.join(2)
        sock.close()
    assert doctor.clock_finding(0.01, "t").level == "ok"
    assert doctor.clock_finding(-0.3, "t").level == "warn"


def test_clock_unknown_is_said_clearly() -> None:
    # A server that does not answer: unless chrony/timedatectl know better, the answer is "unknown".
    findings = doctor.check_clock([f"127.35.201.2:{_free_port('127.35.201.2')}"])
    assert len(findings) == 1
    f = findings[0]
    assert f.level in ("ok", "warn", "error")
    if "unknown" in f.message:
        assert f.level == "warn" and "chrony" in f.fix


def test_syslog_env_ports_are_checked(tmp_path: Path) -> None:
    # The receiver's ports come from syslog.env beside the config, as govnet-syslog.service reads them.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind((LISTEN_HOST, 0))
        udp = held.getsockname()[1]
        tcp = _free_port(LISTEN_HOST)
        (tmp_path / "syslog.env").write_text(
            f"GOVNET_SYSLOG_LISTEN={LISTEN_HOST}\nGOVNET_SYSLOG_TCP_PORT={tcp}\nGOVNET_SYSLOG_UDP_PORT={udp}\n"
        )
        config = _config(tmp_path, ROOT / "examples" / "minimal.yaml", _free_port(LISTEN_HOST))
        cfg, _ = doctor.check_config(config)
        assert cfg is not None
        found = doctor.check_ports(doctor.listeners(cfg, doctor.read_env_file(tmp_path / "syslog.env")))
    by_port = {f.message.split(" ")[0]: f for f in found}
    assert by_port[f"{LISTEN_HOST}:{udp}/udp"].level == "error"
    assert f"pid {os.getpid()}" in by_port[f"{LISTEN_HOST}:{udp}/udp"].message
    assert by_port[f"{LISTEN_HOST}:{tcp}/tcp"].level == "ok"
