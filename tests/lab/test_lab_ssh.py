"""The lab's vendor SSH CLIs driven by real netmiko/paramiko with strict host-key checking."""

from __future__ import annotations

import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import paramiko  # type: ignore[import-untyped]
import pytest
from netmiko import ConnectHandler
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadTimeout,
)

from lab.ssh import start_ssh_servers
from lab.state import LabDevice, LabInterface
from tests.support.loopthread import LoopThread
from tests.support.require import require_cmd

DEVICE_TYPES = {"huawei": "huawei", "h3c": "hp_comware", "cisco": "cisco_ios"}


def _device(name: str, vendor: str, last_octet: int, role: str = "core_switch", **kw: Any) -> LabDevice:
    return LabDevice(
        name=name,
        site="ncc",
        role=role,
        vendor=vendor,
        model="",
        address=f"127.21.0.{last_octet}",
        snmp_port=161,
        ssh_port=0,  # the server picks a free port and writes it back
        boot_time=time.time() - 86400 * 9,
        interfaces=[
            LabInterface(1, "GigabitEthernet0/0/1", alias="to-core-1"),
            LabInterface(2, "GigabitEthernet0/0/2", alias="to-core-2"),
        ],
        **kw,
    )


@dataclass
class Lab:
    run_dir: Path
    devices: dict[str, LabDevice]
    loop: LoopThread

    @property
    def password(self) -> str:
        return (self.run_dir / "secrets" / "ssh_password").read_text().strip()

    def connect(self, name: str, known_hosts: Path | None = None, **kw: Any) -> Any:
        dev = self.devices[name]
        params: dict[str, Any] = {
            "device_type": DEVICE_TYPES[dev.vendor],
            "host": dev.address,
            "port": dev.ssh_port,
            "username": "govnet",
            "password": self.password,
            "ssh_strict": True,
            "system_host_keys": False,
            "alt_host_keys": True,
            "alt_key_file": str(known_hosts or self.run_dir / "known_hosts"),
            "use_keys": False,
            "allow_agent": False,
            "conn_timeout": 5,
            "banner_timeout": 5,
            "auth_timeout": 5,
        }
        params.update(kw)
        return ConnectHandler(**params)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    devices = [
        _device("hw-fw1", "huawei", 1, role="firewall", ha_role="active", ha_group="fw-pair"),
        _device("hw-sw1", "huawei", 2),
        _device("h3c-sw1", "h3c", 3),
        _device("cs-sw1", "cisco", 4),
        _device("cs-fw1", "cisco", 5, role="firewall", ha_role="active", ha_group="asa-pair"),
        _device("cs-cap", "cisco", 6),
        _device("cs-dead", "cisco", 7),
        _device("hw-slow", "huawei", 8),
        _device("linux-1", "linux", 9),  # no CLI profile: skipped
    ]
    loop = LoopThread()
    run_dir = tmp_path_factory.mktemp("lab-ssh")
    try:
        ssh = loop.run(start_ssh_servers(devices, run_dir))
        try:
            yield Lab(run_dir, {d.name: d for d in devices}, loop)
        finally:
            loop.run(ssh.close())
    finally:
        loop.stop()


def test_files_password_and_known_hosts(lab: Lab) -> None:
    pw_file = lab.run_dir / "secrets" / "ssh_password"
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    assert len(lab.password) >= 24
    key_file = lab.run_dir / "ssh_host_keys" / "hw-sw1"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    lines = (lab.run_dir / "known_hosts").read_text().splitlines()
    assert len(lines) == 8  # every device but the one without a CLI profile
    dev = lab.devices["hw-sw1"]
    assert f"[{dev.address}]:{dev.ssh_port} ssh-ed25519 " in "\n".join(lines)
    assert lab.devices["linux-1"].ssh_port == 0


def test_huawei_interfaces_and_config_follow_faults(lab: Lab) -> None:
    dev = lab.devices["hw-sw1"]
    conn = lab.connect("hw-sw1")
    try:
        assert conn.base_prompt == "hw-sw1"
        brief = conn.send_command("display interface brief")
        assert "GigabitEthernet0/0/2        up       up" in brief
        version = conn.send_command("display version")
        assert "uptime is 1 week, 2 day" in version

        dev.interfaces[1].oper_up = False  # link_down fault: seen by the very next command
        brief = conn.send_command("display interface brief")
        assert "GigabitEthernet0/0/2        down     down" in brief
        assert "GigabitEthernet0/0/1        up       up" in brief

        config = conn.send_command("display current-configuration")
        assert "sysname hw-sw1" in config
        assert " description to-core-2" in config
        assert "local-user govnet password irreversible-cipher $1a$" in config
        assert "snmp-agent community read cipher %^%#" in config
        stamp = [ln for ln in config.splitlines() if ln.startswith("!Last configuration was updated")]
        assert config.splitlines()[0].startswith("!Software Version ")

        dev.config_revision += 1  # config_change fault
        dev.config_extra.append("ip route-static 10.9.0.0 255.255.0.0 10.0.0.9")
        changed = conn.send_command("display current-configuration")
        assert "ip route-static 10.9.0.0 255.255.0.0 10.0.0.9" in changed
        new_stamp = [ln for ln in changed.splitlines() if ln.startswith("!Last configuration was updated")]
        assert stamp and new_stamp and stamp != new_stamp
        assert "1000000001" in conn.send_command("display configuration commit list")

        error = conn.send_command("display nonsense")
        assert "Error: Unrecognized command found at '^' position." in error
    finally:
        conn.disconnect()


def test_huawei_hrp_failover_flips_state_and_prompt(lab: Lab) -> None:
    dev = lab.devices["hw-fw1"]
    conn = lab.connect("hw-fw1")
    try:
        assert conn.base_prompt == "hw-fw1"  # netmiko strips the HRP_M prefix
        assert conn.find_prompt() == "HRP_M<hw-fw1>"
        assert "Role: active, peer: standby" in conn.send_command("display hrp state")
        dev.ha_role = "standby"  # ha_failover fault
        assert "Role: standby, peer: active" in conn.send_command("display hrp state")
        assert conn.find_prompt() == "HRP_S<hw-fw1>"
    finally:
        dev.ha_role = "active"
        conn.disconnect()
    # A switch has no HRP.
    sw = lab.connect("hw-sw1")
    try:
        assert "Unrecognized command" in sw.send_command("display hrp state")
    finally:
        sw.disconnect()


def test_h3c_comware(lab: Lab) -> None:
    dev = lab.devices["h3c-sw1"]
    conn = lab.connect("h3c-sw1")
    try:
        assert conn.base_prompt == "h3c-sw1"
        assert "H3C Comware Software, Version 7.1" in conn.send_command("display version")
        assert "GE0/0/1              UP" in conn.send_command("display interface brief")
        dev.interfaces[0].admin_up = False
        dev.interfaces[0].oper_up = False
        brief = conn.send_command("display interface brief")
        assert "GE0/0/1              ADM" in brief
        config = conn.send_command("display current-configuration")
        assert (
            "interface GigabitEthernet0/0/1\n port link-mode bridge\n description to-core-1\n shutdown"
            in config
        )
        assert " sysname h3c-sw1" in config
    finally:
        conn.disconnect()


def test_cisco_ios_and_asa_failover(lab: Lab) -> None:
    dev = lab.devices["cs-sw1"]
    conn = lab.connect("cs-sw1")
    try:
        assert conn.base_prompt == "cs-sw1"
        assert conn.check_enable_mode()
        brief = conn.send_command("show ip interface brief")
        assert "GigabitEthernet0/0/2   unassigned      YES unset  up                    up" in brief
        dev.interfaces[1].oper_up = False
        brief = conn.send_command("show ip interface brief")
        assert "GigabitEthernet0/0/2   unassigned      YES unset  down                  down" in brief
        config = conn.send_command("show running-config")
        assert "hostname cs-sw1" in config and "enable secret 9 $9$" in config
        assert "snmp-server community " in config and "! Last configuration change at " in config
        assert "cs-sw1 uptime is 1 week, 2 days" in conn.send_command("show version")
        assert "% Invalid input detected at '^' marker." in conn.send_command("show nonsense")
        snmp = conn.send_command("show running-config | include snmp-server")
        assert snmp and all(ln.startswith("snmp-server") for ln in snmp.splitlines())
    finally:
        conn.disconnect()

    fw = lab.devices["cs-fw1"]
    conn = lab.connect("cs-fw1")
    try:
        assert "This host: Primary - Active" in conn.send_command("show failover")
        fw.ha_role = "standby"
        assert "This host: Primary - Standby Ready" in conn.send_command("show failover")
    finally:
        fw.ha_role = "active"
        conn.disconnect()


def test_wrong_password_and_wrong_user_are_refused(lab: Lab) -> None:
    with pytest.raises(NetmikoAuthenticationException):
        lab.connect("cs-sw1", password=lab.password + "x")
    with pytest.raises(NetmikoAuthenticationException):
        lab.connect("cs-sw1", username="admin")


def test_public_key_login(lab: Lab) -> None:
    conn = lab.connect(
        "cs-sw1", password="", use_keys=True, key_file=str(lab.run_dir / "secrets" / "ssh_client_key")
    )
    try:
        assert "hostname cs-sw1" in conn.send_command("show running-config")
    finally:
        conn.disconnect()


def test_changed_or_unknown_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    dev = lab.devices["hw-sw1"]
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()
    forged = tmp_path / "known_hosts"
    forged.write_text(f"[{dev.address}]:{dev.ssh_port} {other[0]} {other[1]}\n")
    with pytest.raises(NetmikoTimeoutException, match="does not match"):
        lab.connect("hw-sw1", known_hosts=forged)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(NetmikoTimeoutException, match="not found in known_hosts"):
        lab.connect("hw-sw1", known_hosts=empty)


def test_dead_device_goes_silent_and_comes_back(lab: Lab) -> None:
    dev = lab.devices["cs-dead"]
    open_session = lab.connect("cs-dead")
    try:
        dev.dead = True
        with pytest.raises(ReadTimeout):
            open_session.send_command(
                "show version", read_timeout=2, expect_string=r"cs-dead#", cmd_verify=False
            )
        start = time.monotonic()
        with pytest.raises(NetmikoTimeoutException):
            lab.connect("cs-dead", banner_timeout=2)
        print(f"dead device: new connection failed after {time.monotonic() - start:.2f}s")
    finally:
        dev.dead = False
        open_session.disconnect()
    conn = lab.connect("cs-dead")
    try:
        assert "hostname cs-dead" in conn.send_command("show running-config")
    finally:
        conn.disconnect()


def test_slow_device_still_answers(lab: Lab) -> None:
    dev = lab.devices["hw-slow"]
    conn = lab.connect("hw-slow")
    try:
        start = time.monotonic()
        conn.send_command("display version")
        fast = time.monotonic() - start
        dev.slow_s = 0.5
        start = time.monotonic()
        assert "VRP (R) software" in conn.send_command("display version")
        slow = time.monotonic() - start
        print(f"display version: {fast:.2f}s normal, {slow:.2f}s with slow_s=0.5")
        assert slow >= 0.5  # the delay is a floor, not a timing measurement
    finally:
        dev.slow_s = 0.0
        conn.disconnect()


def test_vty_lines_are_capped_at_five(lab: Lab) -> None:
    conns = [lab.connect("cs-cap") for _ in range(5)]
    try:
        with pytest.raises(NetmikoTimeoutException):
            lab.connect("cs-cap", banner_timeout=3)
        for c in conns:  # all five still work at the same time
            assert "hostname cs-cap" in c.send_command("show running-config | include hostname")
        conns.pop().disconnect()
        deadline = time.monotonic() + 5
        while True:  # the server frees the line once it sees the session end
            try:
                conns.append(lab.connect("cs-cap", banner_timeout=3))
                break
            except NetmikoTimeoutException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        for c in conns:
            c.disconnect()


def _read_until(chan: paramiko.Channel, marker: str, timeout: float = 5) -> str:
    buf = ""
    deadline = time.monotonic() + timeout
    chan.settimeout(0.2)
    while marker not in buf:
        if time.monotonic() > deadline:
            raise AssertionError(f"{marker!r} not seen in {buf!r}")
        try:
            data = chan.recv(4096)
        except TimeoutError:
            continue
        if not data:
            break
        buf += data.decode()
    return buf


def _paramiko(lab: Lab, name: str) -> paramiko.SSHClient:
    dev = lab.devices[name]
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.run_dir / "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        dev.address,
        port=dev.ssh_port,
        username="govnet",
        password=lab.password,
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
    )
    return client


def test_interactive_terminal_editing_ctrl_c_resize_and_quit(lab: Lab) -> None:
    client = _paramiko(lab, "hw-sw1")
    try:
        chan = client.invoke_shell(term="vt100", width=80, height=24)
        _read_until(chan, "<hw-sw1>")
        chan.send("dis verx\x7f\r")  # backspace removes the x
        out = _read_until(chan, "<hw-sw1>")
        assert "dis verx\b \b" in out and "VRP (R) software" in out
        chan.send("display int\x03")  # Ctrl-C drops the half-typed line
        assert "^C\r\n<hw-sw1>" in _read_until(chan, "^C\r\n<hw-sw1>")
        chan.resize_pty(width=200, height=50)
        chan.send("\x1b[Adisplay clock\r\n")  # an arrow key is swallowed, CR LF is one Enter
        out = _read_until(chan, "UTC+08:00\r\n<hw-sw1>")
        assert "\x1b" not in out and "Error" not in out
        chan.send("quit\n")
        deadline = time.monotonic() + 5
        while not chan.exit_status_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert chan.recv_exit_status() == 0
    finally:
        client.close()


def test_exec_request_runs_one_command(lab: Lab) -> None:
    client = _paramiko(lab, "cs-sw1")
    try:
        _, stdout, _ = client.exec_command("show ip interface brief", timeout=5)
        text = stdout.read().decode()
        assert text.startswith("Interface              IP-Address")
        assert stdout.channel.recv_exit_status() == 0
    finally:
        client.close()


def test_host_keys_survive_a_restart(tmp_path: Path) -> None:
    loop = LoopThread()
    try:
        dev = _device("hw-restart", "huawei", 20)
        first = loop.run(start_ssh_servers([dev], tmp_path))
        key_one = (tmp_path / "known_hosts").read_text().split()[1:]
        password_one = (tmp_path / "secrets" / "ssh_password").read_text()
        loop.run(first.close())
        dev.ssh_port = 0
        second = loop.run(start_ssh_servers([dev], tmp_path))
        try:
            assert (tmp_path / "known_hosts").read_text().split()[1:] == key_one
            assert (tmp_path / "secrets" / "ssh_password").read_text() == password_one
            lab = Lab(tmp_path, {dev.name: dev}, loop)
            conn = lab.connect(dev.name)
            try:
                assert conn.base_prompt == "hw-restart"
            finally:
                conn.disconnect()
        finally:
            loop.run(second.close())
    finally:
        loop.stop()


def test_openssh_client_accepts_known_hosts_and_key(lab: Lab) -> None:
    """The real OpenSSH client, strict host-key checking against the lab's known_hosts, key login."""
    require_cmd("ssh")
    dev = lab.devices["cs-sw1"]
    key = lab.run_dir / "secrets" / "ssh_client_key"
    out = subprocess.run(
        [
            "ssh", "-F", "/dev/null", "-p", str(dev.ssh_port), "-i", str(key),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={lab.run_dir / 'known_hosts'}", "-n", "-o", "ConnectTimeout=5",
            f"govnet@{dev.address}", "show ip interface brief",
        ],
        capture_output=True, text=True, timeout=20, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "GigabitEthernet0/0/1" in out.stdout
