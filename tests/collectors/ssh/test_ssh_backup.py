"""SSH collector and configuration backup against the lab's vendor CLIs, driven by real netmiko and git."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import paramiko  # type: ignore[import-untyped]
import pytest
import yaml

from collectors.ssh.backup import ConfigBackup, ConfigBackupCollector, StatePaths
from collectors.ssh.cli import backup_command, diff_command, history_command, trust_command
from collectors.ssh.client import SshError, SshRunner, SshSettings, target_for
from collectors.ssh.hostkeys import KnownHosts, fingerprint
from collectors.ssh.normalize import Masker, normalize_config
from inventory.load import load_inventory
from inventory.model import Inventory
from lab.ssh import start_ssh_servers
from lab.ssh.server import DeviceServer
from lab.state import LabDevice, LabInterface
from tests.support.loopthread import LoopThread
from tests.support.require import require_cmd

FAST = SshSettings(
    max_workers=8, conn_timeout_s=3, banner_timeout_s=2, auth_timeout_s=3, read_timeout_s=10, deadline_s=20
)
# Secrets as the lab renders them: Huawei irreversible-cipher/%^%# ciphers, H3C $c$3$/$h$6$, Cisco $9$.
SECRET_RE = re.compile(r"(\$1a\$\S+|%\^%#\S+|\$c\$3\$\S+|\$h\$6\$\S+|\$9\$\S+|snmp-server community (\S+))")


def _device(name: str, vendor: str, octet: int, role: str = "core_switch", **kw: Any) -> LabDevice:
    return LabDevice(
        name=name,
        site="ncc",
        role=role,
        vendor=vendor,
        model="",
        address=f"127.27.0.{octet}",
        snmp_port=161,
        ssh_port=0,
        boot_time=time.time() - 86400 * 9,
        interfaces=[LabInterface(1, "GigabitEthernet0/0/1", alias="to-core-1")],
        **kw,
    )


@dataclass
class Lab:
    run_dir: Path
    devices: dict[str, LabDevice]
    inventory_file: Path
    inventory: Inventory
    servers: dict[str, DeviceServer]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_cmd("git")
    devices = [
        _device("hw-sw1", "huawei", 1),
        _device("h3c-sw1", "h3c", 2),
        _device("cs-sw1", "cisco", 3),
        _device("cs-dead", "cisco", 4),
        _device("hw-key", "huawei", 5),
        _device("cs-slow", "cisco", 6),
    ]
    loop = LoopThread()
    run_dir = tmp_path_factory.mktemp("ssh-lab")
    try:
        ssh = loop.run(start_ssh_servers(devices, run_dir))
        try:
            password = run_dir / "secrets" / "ssh_password"
            doc = {
                "sites": [{"name": "ncc", "kind": "control_centre"}],
                "devices": [
                    {
                        "name": d.name,
                        "site": "ncc",
                        "role": d.role,
                        "vendor": d.vendor,
                        "address": d.address,
                        "ssh": {"username": "govnet", "password": f"file:{password}", "port": d.ssh_port},
                    }
                    for d in devices
                ],
            }
            inv_file = run_dir / "inventory.yaml"
            inv_file.write_text(yaml.safe_dump(doc))
            servers = {s.device.name: s for s in ssh.servers}
            yield Lab(run_dir, {d.name: d for d in devices}, inv_file, load_inventory(inv_file), servers)
        finally:
            loop.run(ssh.close())
    finally:
        loop.stop()


def _trust(lab: Lab, known_hosts: Path, *names: str) -> None:
    for name in names:
        assert trust_command(lab.inventory_file, name, known_hosts) == 0


def _all_git_objects(repo: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    )
    return out.stdout.decode("utf-8", "replace")


def test_trust_records_the_lab_key(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    known = tmp_path / "known_hosts"
    assert trust_command(lab.inventory_file, "hw-sw1", known) == 0
    first = capsys.readouterr().out
    assert "hw-sw1 ssh-ed25519 SHA256:" in first and first.rstrip().endswith("added")
    assert trust_command(lab.inventory_file, "hw-sw1", known) == 0
    assert capsys.readouterr().out.rstrip().endswith("unchanged")
    # The key govnet recorded is the one the lab wrote for this device.
    dev = lab.devices["hw-sw1"]
    lab_keys = paramiko.HostKeys(str(lab.run_dir / "known_hosts"))
    expected = lab_keys.lookup(f"[{dev.address}]:{dev.ssh_port}")["ssh-ed25519"]
    assert dev.ssh_port is not None
    (ours,) = KnownHosts(known).lookup(dev.address, dev.ssh_port)
    assert fingerprint(ours) == fingerprint(expected)
    assert trust_command(lab.inventory_file, "no-such-device", known) == 2
    lab.devices["cs-dead"].dead = True  # no banner: trust gives up after its timeout and says so
    try:
        assert trust_command(lab.inventory_file, "cs-dead", known, timeout_s=1.0) == 1
    finally:
        lab.devices["cs-dead"].dead = False
    assert "cannot read the host key of cs-dead" in capsys.readouterr().err


def test_backup_three_vendors_volatile_lines_and_secrets(lab: Lab, tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    _trust(lab, paths.known_hosts, "hw-sw1", "h3c-sw1", "cs-sw1")
    names = ["hw-sw1", "h3c-sw1", "cs-sw1"]
    devices = [lab.inventory.device(n) for n in names]

    async def scenario() -> dict[str, Any]:
        runner = SshRunner(paths.known_hosts, FAST)
        try:
            service = ConfigBackup.open(paths, runner)
            first = await asyncio.gather(*(service.backup(lab.inventory, d, 1_700_000_000) for d in devices))
            cisco = target_for(lab.inventory, lab.inventory.device("cs-sw1"))
            (raw_a,) = await runner.run(cisco, ["show running-config"])
            await asyncio.sleep(1.1)  # `ntp clock-period` changes every second, like on real IOS
            (raw_b,) = await runner.run(cisco, ["show running-config"])
            second = await asyncio.gather(*(service.backup(lab.inventory, d, 1_700_000_600) for d in devices))
            samples = service.samples(devices[2], second[2], 1_700_000_600)
            return {"first": first, "second": second, "raw": (raw_a, raw_b), "service": service,
                    "samples": samples, "cisco": cisco}  # fmt: skip
        finally:
            runner.close()

    r = asyncio.run(scenario())
    for outcome in r["first"]:
        assert outcome.ok and outcome.changed and outcome.commit, outcome
    for outcome in r["second"]:
        assert outcome.ok and not outcome.changed and outcome.commit is None, outcome
    raw_a, raw_b = r["raw"]
    assert raw_a != raw_b  # the volatile lines really differed between the two fetches ...
    service: ConfigBackup = r["service"]
    norm_a = normalize_config(raw_a, r["cisco"].platform, service.masker)
    assert norm_a == normalize_config(raw_b, r["cisco"].platform, service.masker)  # ... and are dropped
    assert "ntp clock-period" not in norm_a and "Last configuration change" not in norm_a

    stored = {n: service.repo.current(n) or "" for n in names}
    assert "sysname hw-sw1" in stored["hw-sw1"] and "!Last configuration was updated" not in stored["hw-sw1"]
    assert " sysname h3c-sw1" in stored["h3c-sw1"]
    assert "hostname cs-sw1" in stored["cs-sw1"] and "enable secret 9 <secret:" in stored["cs-sw1"]
    assert "local-user govnet password irreversible-cipher <secret:" in stored["hw-sw1"]
    assert "password hash <secret:" in stored["h3c-sw1"]
    assert all(len(service.repo.history(n)) == 1 for n in names)

    # No secret the devices printed is anywhere in the repository (any object, any version).
    everything = _all_git_objects(paths.configs)
    secrets_seen: set[str] = set()
    for raw in (raw_a,):
        secrets_seen |= {m.group(2) or m.group(1) for m in SECRET_RE.finditer(raw)}

    async def raw_configs() -> list[str]:
        runner = SshRunner(paths.known_hosts, FAST)
        try:
            outs = []
            for n in ("hw-sw1", "h3c-sw1"):
                t = target_for(lab.inventory, lab.inventory.device(n))
                outs += await runner.run(t, [t.cli.command("config") or ""])
            return outs
        finally:
            runner.close()

    for raw in asyncio.run(raw_configs()):
        secrets_seen |= {m.group(2) or m.group(1) for m in SECRET_RE.finditer(raw)}
    assert len(secrets_seen) >= 8
    leaked = [s for s in secrets_seen if s in everything]
    assert not leaked

    metrics = {s.metric: s.value for s in r["samples"]}
    assert metrics["govnet_config_backup_ok"] == 1
    assert metrics["govnet_config_versions_total"] == 1
    assert metrics["govnet_config_last_change_timestamp_seconds"] == 1_700_000_000
    assert metrics["govnet_ssh_hostkey_mismatch"] == 0
    labels = dict(r["samples"][0].labels)
    assert labels == {"device": "cs-sw1", "site": "ncc", "role": "core_switch", "vendor": "cisco"}


def test_config_change_makes_exactly_one_version_with_a_readable_diff(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = StatePaths(tmp_path / "state")
    _trust(lab, paths.known_hosts, "h3c-sw1", "cs-sw1")
    assert backup_command(lab.inventory_file, paths.root, ["h3c-sw1", "cs-sw1"], FAST) == 0
    assert capsys.readouterr().out.count("new version") == 2
    dev = lab.devices["cs-sw1"]
    dev.config_revision += 1  # the lab's config_change fault
    dev.config_extra.append("ip route 10.9.0.0 255.255.0.0 10.0.0.9")
    assert backup_command(lab.inventory_file, paths.root, ["h3c-sw1", "cs-sw1"], FAST) == 0
    out = capsys.readouterr().out
    assert "cs-sw1: new version" in out and "h3c-sw1: unchanged" in out
    assert backup_command(lab.inventory_file, paths.root, ["cs-sw1"], FAST) == 0
    assert "cs-sw1: unchanged" in capsys.readouterr().out

    assert diff_command(paths.root, "cs-sw1") == 0
    diff = capsys.readouterr().out
    added = [ln for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    removed = [ln for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    assert added == ["+ip route 10.9.0.0 255.255.0.0 10.0.0.9", "+!"]
    assert removed == []  # the moved "Last configuration change" header is not part of the diff
    assert history_command(paths.root, "cs-sw1") == 0
    history = capsys.readouterr().out.splitlines()
    assert len(history) == 2 and "(manual)" in history[0] and "configuration changed" in history[0]
    assert diff_command(paths.root, "../etc") == 2
    assert diff_command(paths.root, "hw-key") == 1  # never backed up


def test_changed_host_key_is_refused_and_reported(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = StatePaths(tmp_path / "state")
    dev = lab.devices["hw-key"]
    device = lab.inventory.device("hw-key")
    forged = paramiko.PKey.from_type_string(
        *[
            part if i == 0 else __import__("base64").b64decode(part)
            for i, part in enumerate(
                asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()[:2]
            )
        ]
    )
    KnownHosts(paths.known_hosts).record(dev.address, dev.ssh_port or 0, forged)

    async def once(now: float) -> Any:
        runner = SshRunner(paths.known_hosts, FAST)
        try:
            service = ConfigBackup.open(paths, runner)
            outcome = await service.backup(lab.inventory, device, now)
            return outcome, service.samples(device, outcome, now)
        finally:
            runner.close()

    outcome, samples = asyncio.run(once(1_700_000_000))
    assert not outcome.ok and outcome.error_kind == "hostkey_mismatch"
    assert [e.kind for e in outcome.events] == ["ssh_hostkey_mismatch"]
    values = {s.metric: s.value for s in samples}
    assert values["govnet_ssh_hostkey_mismatch"] == 1 and values["govnet_config_backup_ok"] == 0
    assert "govnet_config_last_change_timestamp_seconds" not in values

    # `trust` keeps the recorded key and says the key changed; only --replace accepts the new one.
    assert trust_command(lab.inventory_file, "hw-key", paths.known_hosts) == 1
    assert "HOST KEY CHANGED for hw-key" in capsys.readouterr().err
    assert trust_command(lab.inventory_file, "hw-key", paths.known_hosts, replace=True) == 0
    assert capsys.readouterr().out.rstrip().endswith("replaced")
    assert len(KnownHosts(paths.known_hosts).lookup(dev.address, dev.ssh_port or 0)) == 1  # old key gone
    outcome, samples = asyncio.run(once(1_700_000_100))
    assert outcome.ok and outcome.changed
    assert {s.metric: s.value for s in samples}["govnet_ssh_hostkey_mismatch"] == 0


def test_unknown_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    _trust(lab, paths.known_hosts, "hw-sw1")  # the file exists, but not for h3c-sw1

    async def once() -> Any:
        runner = SshRunner(paths.known_hosts, FAST)
        try:
            return await ConfigBackup.open(paths, runner).backup(
                lab.inventory, lab.inventory.device("h3c-sw1"), 1_700_000_000
            )
        finally:
            runner.close()

    outcome = asyncio.run(once())
    assert not outcome.ok and outcome.error_kind == "hostkey_unknown"


def test_dead_device_times_out_within_bound_and_is_reported(lab: Lab, tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    _trust(lab, paths.known_hosts, "cs-dead")
    lab.devices["cs-dead"].dead = True
    try:

        async def once() -> Any:
            runner = SshRunner(paths.known_hosts, FAST)
            try:
                collector = ConfigBackupCollector(ConfigBackup.open(paths, runner))
                start = time.monotonic()
                result = await collector.poll(lab.inventory, lab.inventory.device("cs-dead"), 1_700_000_000)
                return result, time.monotonic() - start
            finally:
                runner.close()

        result, took = asyncio.run(once())
    finally:
        lab.devices["cs-dead"].dead = False
    print(f"dead device: backup reported failure after {took:.2f}s (banner timeout {FAST.banner_timeout_s}s)")
    assert not result.ok and result.error == "timeout" and result.timeouts == 1
    assert {s.metric: s.value for s in result.samples}["govnet_config_backup_ok"] == 0
    assert took < FAST.deadline_s  # bounded by the session deadline (a guarantee, not a benchmark)


def test_deadline_bounds_a_slow_session_and_keeps_the_device_slot(lab: Lab, tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    _trust(lab, paths.known_hosts, "cs-slow")
    dev = lab.devices["cs-slow"]
    settings = SshSettings(
        conn_timeout_s=3, banner_timeout_s=5, auth_timeout_s=5, read_timeout_s=10, deadline_s=1.0
    )
    dev.slow_s = 2.0
    try:

        async def scenario() -> Any:
            runner = SshRunner(paths.known_hosts, settings)
            try:
                target = target_for(lab.inventory, lab.inventory.device("cs-slow"))
                with pytest.raises(SshError) as first:
                    await runner.run(target, ["show clock"])
                sem = runner._limits["cs-slow"]
                locked = sem.locked()  # the abandoned thread still holds the device's only slot
                return first.value, locked
            finally:
                runner.close()

        err, locked = asyncio.run(scenario())
    finally:
        dev.slow_s = 0.0
    assert err.kind == "timeout"
    assert locked


def test_collector_backs_up_daily_not_every_poll(lab: Lab, tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    _trust(lab, paths.known_hosts, "cs-sw1")
    device = lab.inventory.device("cs-sw1")

    async def scenario() -> list[Any]:
        runner = SshRunner(paths.known_hosts, FAST)
        try:
            collector = ConfigBackupCollector(ConfigBackup.open(paths, runner), every_s=86400)
            t0 = 1_700_000_000.0
            first = await collector.poll(lab.inventory, device, t0)
            lab.devices["cs-sw1"].dead = True  # a poll that is not due must not touch the device
            try:
                cached = await collector.poll(lab.inventory, device, t0 + 60)
            finally:
                lab.devices["cs-sw1"].dead = False
            assert not collector.due("cs-sw1", t0 + 60) and collector.due("cs-sw1", t0 + 86400)
            return [first, cached]
        finally:
            runner.close()

    first, cached = asyncio.run(scenario())
    assert first.ok and cached.ok
    assert {s.metric for s in cached.samples} >= {
        "govnet_config_backup_ok",
        "govnet_config_versions_total",
        "govnet_config_last_change_timestamp_seconds",
    }


def test_per_device_limit_serialises_sessions(lab: Lab, tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    _trust(lab, paths.known_hosts, "h3c-sw1")
    target = target_for(lab.inventory, lab.inventory.device("h3c-sw1"))
    server_sessions: list[int] = []
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            server_sessions.append(lab.servers["h3c-sw1"].sessions)
            time.sleep(0.005)

    async def scenario(per_device: int) -> None:
        settings = SshSettings(**{**FAST.__dict__, "per_device": per_device})
        runner = SshRunner(paths.known_hosts, settings)
        try:
            await asyncio.gather(*(runner.run(target, ["display clock"]) for _ in range(3)))
        finally:
            runner.close()

    peaks = []
    for per_device in (1, 3):
        server_sessions.clear()
        stop.clear()
        th = threading.Thread(target=sampler)
        th.start()
        try:
            asyncio.run(scenario(per_device))
        finally:
            stop.set()
            th.join()
        peaks.append(max(server_sessions))
    assert peaks[0] == 1  # limit 1: never two sessions on the device at once
    assert peaks[1] >= 2  # the sampler does see concurrency when it is allowed


def test_no_password_or_secret_in_logs_or_output(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    paths = StatePaths(tmp_path / "state")
    _trust(lab, paths.known_hosts, "cs-sw1")
    caplog.set_level(logging.DEBUG)  # netmiko, paramiko and govnet at their most talkative
    assert backup_command(lab.inventory_file, paths.root, ["cs-sw1"], FAST) == 0
    assert diff_command(paths.root, "cs-sw1") == 0
    lab.devices["cs-sw1"].dead = True
    try:
        assert backup_command(lab.inventory_file, paths.root, ["cs-sw1"], FAST) == 1
    finally:
        lab.devices["cs-sw1"].dead = False
    out = capsys.readouterr()
    seen = caplog.text + out.out + out.err
    assert "cs-sw1: FAILED timeout" in out.err
    password = (lab.run_dir / "secrets" / "ssh_password").read_text().strip()
    assert password not in seen
    raw = (paths.configs / "cs-sw1.cfg").read_text()
    assert "<secret:" in raw and "enable secret 9 <secret:" in out.out  # the diff shows masked values
    assert not [m for m in SECRET_RE.finditer(seen) if "<secret:" not in m.group(0)]


def test_masker_is_keyed_stable_and_distinguishes_secrets() -> None:
    a, b = Masker(b"k" * 32), Masker(b"j" * 32)
    assert a.mask("public") == a.mask("public") != a.mask("private")
    assert a.mask("public") != b.mask("public")
    assert "public" not in a.mask("public")
    with pytest.raises(ValueError):
        Masker(b"short")
