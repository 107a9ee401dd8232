"""deploy/: systemd units (systemd-analyze), logrotate config (logrotate), /etc/govnet layout, and the
units' exact command lines run against the real CLI on 127.35.0.0/16."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from govnet.config import load_config
from govnet.doctor import read_env_file, secret_refs
from inventory.load import load_inventory
from tests.support.paths import ROOT
from tests.support.require import require_cmd

DEPLOY = ROOT / "deploy"
UNITS = ("govnet.service", "govnet-syslog.service")
GOVNET = Path(sys.executable).parent / "govnet"
HOST = "127.35.202.1"


def _unit(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def _local_copy(tmp: Path, name: str, text: str | None = None) -> Path:
    # systemd-analyze verify checks that ExecStart exists: point it at this checkout's govnet.
    text = text if text is not None else (DEPLOY / "systemd" / name).read_text()
    path = tmp / name
    path.write_text(text.replace("/opt/govnet/bin/govnet", str(GOVNET)))
    return path


def _verify(*units: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True)


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    require_cmd("systemd-analyze")
    units = [_local_copy(tmp_path, n) for n in UNITS]
    proc = _verify(*units)
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if "govnet" in line]
    assert proc.returncode == 0 and not ours, proc.stdout + proc.stderr


def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    require_cmd("systemd-analyze")
    text = (DEPLOY / "systemd" / "govnet.service").read_text().replace("ProtectHome=", "ProtectHom=")
    proc = _verify(_local_copy(tmp_path, "govnet.service", text))
    assert "Unknown key" in proc.stdout + proc.stderr
    missing = (DEPLOY / "systemd" / "govnet.service").read_text()
    proc = _verify(
        _local_copy(tmp_path, "x.service", missing.replace("/opt/govnet/bin/govnet", "/nonexistent"))
    )
    assert proc.returncode != 0


def test_units_exposure_is_low(tmp_path: Path) -> None:
    require_cmd("systemd-analyze")
    for name in UNITS:
        unit = _local_copy(tmp_path, name)
        proc = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--threshold=25", str(unit)],
            capture_output=True, text=True,
        )  # fmt: skip
        score = re.search(r"Overall exposure level for \S+: ([\d.]+)", proc.stdout)
        print(f"\n{name}: systemd-analyze security exposure {score.group(1) if score else '?'}")
        assert proc.returncode == 0, proc.stdout[-2000:]


def test_unprivileged_with_only_the_needed_capabilities() -> None:
    main, syslog = _unit("govnet.service"), _unit("govnet-syslog.service")
    for unit in (main, syslog):
        assert unit["User"] == ["govnet"] and unit["Group"] == ["govnet"]
        assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
        assert unit["PrivateTmp"] == ["yes"]
        assert unit["ReadWritePaths"] == ["/var/lib/govnet /var/log/govnet"]
    assert set(main["AmbientCapabilities"][0].split()) == {"CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
    assert main["CapabilityBoundingSet"] == main["AmbientCapabilities"]
    assert syslog["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"] == syslog["CapabilityBoundingSet"]
    assert main["ExecStart"] == ["/opt/govnet/bin/govnet run --config /etc/govnet/govnet.yaml"]


def test_config_layout_ships_references_not_secrets() -> None:
    etc = DEPLOY / "etc" / "govnet"
    assert [p.name for p in (etc / "secrets").iterdir()] == ["README"]
    cfg = load_config(etc / "govnet.yaml")
    inv = load_inventory(cfg.inventory)
    refs = [s.ref for s, _ in secret_refs(cfg, inv).values()]
    assert refs and all(r.startswith(("file:/etc/govnet/secrets/", "file:secrets/")) for r in refs)
    env = read_env_file(etc / "syslog.env")
    assert float(env["GOVNET_SYSLOG_RETENTION_DAYS"]) >= 180  # 网络安全法 Art. 21: six months


def _expand(exec_start: str, env: dict[str, str]) -> list[str]:
    # systemd: ${VAR} is one word, $VAR is split on whitespace.
    words: list[str] = []
    for word in shlex.split(exec_start):
        m = re.fullmatch(r"\$([A-Z_]+)", word)
        if m:
            words += env.get(m.group(1), "").split()
        else:
            words.append(re.sub(r"\$\{([A-Z_]+)\}", lambda g: env[g.group(1)], word))
    return words


def _free_port(proto: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, proto) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_syslog_unit_command_line_runs(tmp_path: Path) -> None:
    env = read_env_file(DEPLOY / "etc" / "govnet" / "syslog.env")
    port = _free_port()
    env.update(
        GOVNET_SYSLOG_STORE=str(tmp_path / "logstore"), GOVNET_SYSLOG_LISTEN=HOST,
        GOVNET_SYSLOG_TCP_PORT=str(port), GOVNET_SYSLOG_UDP_PORT=str(_free_port(socket.SOCK_DGRAM)),
    )  # fmt: skip
    argv = _expand(_unit("govnet-syslog.service")["ExecStart"][0], env)
    argv = [str(GOVNET) if a == "/opt/govnet/bin/govnet" else a for a in argv]
    argv = [
        str(DEPLOY / "etc" / "govnet" / "inventory.yaml") if a.startswith("/etc/govnet/") else a for a in argv
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((HOST, port), timeout=1) as s:
                    s.sendall(b"<134>1 2026-01-01T00:00:00Z fw1 app - - - doctor test\n")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "receiver never listened"
                time.sleep(0.2)
    finally:
        code = _stop(proc)
    assert code == 0
    assert (tmp_path / "logstore").is_dir()


def test_main_unit_command_line_runs(tmp_path: Path) -> None:
    # The unit's exact argv, with a config like deploy/etc/govnet/govnet.yaml but loopback-only devices.
    (tmp_path / "secrets").mkdir()
    for name in ("snmp_auth_key", "snmp_priv_key", "ssh_password", "ups_community"):
        (tmp_path / "secrets" / name).write_text("x" * 12)
    inv = (DEPLOY / "etc" / "govnet" / "inventory.yaml").read_text()
    inv = inv.replace("/etc/govnet/secrets/", f"{tmp_path}/secrets/").replace("10.255.", "127.35.")
    (tmp_path / "inventory.yaml").write_text(inv)
    port = _free_port()
    cfg = (DEPLOY / "etc" / "govnet" / "govnet.yaml").read_text()
    cfg = cfg.replace("127.0.0.1:9810", f"{HOST}:{port}").replace("/var/lib/govnet", str(tmp_path))
    cfg = re.sub(r"(?ms)^influx:.*?^\n", "", cfg)  # no TSDB in this test
    (tmp_path / "govnet.yaml").write_text(cfg)
    argv = _unit("govnet.service")["ExecStart"][0].split()
    argv = [str(GOVNET), *argv[1:-1], str(tmp_path / "govnet.yaml")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=2) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "govnet run never served /metrics"
                time.sleep(0.3)
    finally:
        code = _stop(proc)
    assert code == 0
    assert "govnet_" in body


def test_logrotate_config_rotates(tmp_path: Path) -> None:
    require_cmd("logrotate")
    logs = tmp_path / "log"
    logs.mkdir()
    conf = (DEPLOY / "logrotate" / "govnet").read_text().replace("/var/log/govnet", str(logs))
    # `su govnet govnet` needs the service user, which only exists on an installed node.
    conf = "\n".join(line for line in conf.splitlines() if line.strip() != "su govnet govnet") + "\n"
    (tmp_path / "govnet.conf").write_text(conf)
    (logs / "govnet.log").write_text("line\n" * 100)
    state = tmp_path / "state"
    dry = subprocess.run(["logrotate", "-d", "-s", str(state), str(tmp_path / "govnet.conf")],
                         capture_output=True, text=True)  # fmt: skip
    assert dry.returncode == 0 and "error" not in dry.stderr.lower(), dry.stderr
    real = subprocess.run(["logrotate", "-f", "-s", str(state), str(tmp_path / "govnet.conf")],
                          capture_output=True, text=True)  # fmt: skip
    assert real.returncode == 0, real.stderr
    rotated = [p.name for p in logs.iterdir() if p.name.startswith("govnet.log-")]
    assert rotated and (logs / "govnet.log").stat().st_size == 0  # copytruncate: same file, emptied


def test_install_script_is_valid_bash() -> None:
    for script in (DEPLOY / "install.sh", ROOT / "scripts" / "bundle.sh"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    out = subprocess.run([str(DEPLOY / "install.sh"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--deb-mirror" in out.stdout


@pytest.mark.parametrize("name", UNITS)
def test_units_are_in_the_bundle_layout(name: str) -> None:
    # install.sh --service copies deploy/systemd/*.service; bundle.sh ships deploy/systemd as is.
    assert (DEPLOY / "systemd" / name).read_text().count("ExecStart=") == 1
