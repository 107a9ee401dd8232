"""Security correlation end to end: real vendor syslog lines over TCP and UDP into the real receiver
and log store, the shipped correlation rules (alerts/rules/security.yaml) and the real alert engine.
Each rule's scenario fires exactly once (one `firing` notification), names the source IP and links to
the records that matched; a benign mix fires nothing. Time is passed in where the rules need it."""

from __future__ import annotations

import base64
import socket
import time
from collections import Counter
from pathlib import Path

import pytest

from alerts.cli import test_rules_command
from alerts.correlation import (
    DEFAULT_CORRELATIONS,
    CorrelationEngine,
    WatchedDevice,
    alert_rules,
    load_correlations,
)
from alerts.engine import AlertView, Engine, Notification
from alerts.maintenance import MaintenanceWindow
from collectors.syslog.formats import load_formats
from collectors.syslog.receiver import Ingest, Receiver, start_receiver
from logstore.search import fetch
from logstore.store import LogStore
from tests.support.loopthread import LoopThread
from tests.support.paths import EXAMPLES, TESTDATA

DATA = TESTDATA / "alerts"
HOST = "127.41.0.1"
# Source address -> device (the receiver's inventory mapping); each sender binds its own address.
DEVICES = {
    "127.41.1.1": ("fw-1", "firewall"),
    "127.41.1.2": ("ips-1", "ips"),
    "127.41.1.3": ("fw-2", "firewall"),  # in a maintenance window
    "127.41.1.4": ("fw-silent", "firewall"),  # never sends
    "127.41.1.5": ("sw-1", "access_switch"),  # never sends, but is not a security device
}
MGMT = ["10.1.0.0/24"]

# Real vendor line shapes (Huawei USG, H3C Comware, Hillstone StoneOS, Sangfor AF) as parsed today.
HW = "<189>Mar 12 2024 10:49:00 USG6600 %%01"
FAIL = HW + (
    "SSH/5/SSH_USER_LOGIN_FAIL(l):The SSH user failed to log in. (ServiceType=stelnet, "
    "UserName={user}, UserAddress={ip}, LocalAddress=10.1.1.1, VpnInstanceName=)"
)
LOGIN = HW + (
    "SSH/5/SSH_USER_LOGIN(l):The SSH user succeeded in logging in. (ServiceType=stelnet, "
    "UserName={user}, UserAddress={ip}, LocalAddress=10.1.1.1, VpnInstanceName=)"
)
H3C_FAIL = (
    "<189>%Mar 12 10:48:00:000 2024 FW-H3C %%10SHELL/5/SHELL_LOGIN_FAILED: {user} failed to log in from {ip}."
)
DENY = (
    "<190>Mar 12 2024 10:46:04 USG6600 %%01POLICY/6/POLICYDENY(l):vsys=public, protocol=6, "
    "source-ip={ip}, source-port=51234, destination-ip=10.1.1.5, destination-port={port}, "
    "time=2024/3/12 10:46:04, source-zone=untrust, destination-zone=trust, rule-name=deny_all."
)
CMD = HW + (
    "SHELL/5/CMDRECORD(s):Recorded command information. (Task=VT0, Ip={ip}, VpnName=, User=admin, "
    'AuthenticationMethod="Local-user", Command="security-policy")'
)
IPS = (
    "<188>Mar 12 2024 10:48:00 USG6600 %%01IPS/4/DETECT(l):An intrusion was detected. (SyslogId=1, "
    'VSys="public", Policy="ips_in", SrcIp={ip}, DstIp=10.1.1.20, SrcPort=4455, DstPort=80, SrcZone=untrust, '
    'DstZone=dmz, User="unknown", Protocol=TCP, Application="HTTP", Profile="default", '
    'SignName="SQL Injection", '
    'SignId=1000, EventNum=1, Target=server, Severity={sev}, Os=all, Category="Injection", Action=Block)'
)
SESSION = (
    "<190>Mar 12 10:46:19 0000123456789 Traffic@FLOW: SESSION: {ip}:53795->203.0.113.20:{port}(TCP), "
    "application HTTP, interface ethernet0/1, vr trust-vr, policy 3, user -@-, host -, send packets 5,"
    "send bytes 500,receive packets 4,receive bytes 800,start time 2024-03-12 10:46:04,close time "
    "2024-03-12 10:46:19,session end,TCP RST\n\0"
)
SANGFOR_IPS = (
    "<132>Mar 12 10:48:04 localhost fwlog: 日志类型:IPS防护日志, 源IP:{ip}, 源端口:5555, "
    "目的IP:192.168.1.20, "
    "目的端口:80, 攻击类型:SQL注入, 严重级别:低, 系统动作:阻断"
)

SCENARIOS: dict[str, list[tuple[str, str]]] = {
    # (sending device address, line)
    "BruteForceAdminLogin": [("127.41.1.1", FAIL.format(user="admin", ip="198.51.100.7")) for _ in range(4)]
    + [("127.41.1.1", H3C_FAIL.format(user="root", ip="198.51.100.7")) for _ in range(3)],
    "PortScan": [("127.41.1.1", DENY.format(ip="198.51.100.20", port=p)) for p in range(20, 45)],
    "AdminLoginOutsideManagement": [("127.41.1.1", LOGIN.format(user="admin", ip="203.0.113.9"))] * 2,
    "ConfigChangeOutsideMaintenance": [("127.41.1.1", CMD.format(ip="10.1.0.100"))] * 3,
    "IpsHighSeverity": [("127.41.1.2", IPS.format(ip="198.51.100.66", sev="high"))] * 2,
}
BENIGN: list[tuple[str, str]] = (
    [("127.41.1.1", FAIL.format(user="admin", ip=f"198.51.100.{i}")) for i in range(100, 112)]  # spread
    + [("127.41.1.1", LOGIN.format(user="admin", ip="10.1.0.5")) for _ in range(10)]  # from management
    + [("127.41.1.1", DENY.format(ip="198.51.100.21", port=445)) for _ in range(60)]  # one port, many times
    + [("127.41.1.1", SESSION.format(ip=f"10.2.0.{i % 5}", port=1000 + i)) for i in range(60)]  # permitted
    + [("127.41.1.3", CMD.format(ip="10.1.0.100")) for _ in range(3)]  # fw-2: inside its maintenance window
    + [("127.41.1.2", IPS.format(ip="198.51.100.67", sev="medium")) for _ in range(3)]
    + [("127.41.1.3", SANGFOR_IPS.format(ip="198.51.100.68")) for _ in range(3)]  # low severity
    + [("127.41.1.4", SESSION.format(ip="10.2.0.9", port=80))]  # fw-silent speaks in the benign run
)


def send(lines: list[tuple[str, str]], port: int, udp_port: int) -> None:
    """Each device's lines over its own TCP connection from its own address (LF framing), as devices send."""
    by_src: dict[str, list[bytes]] = {}
    for src, text in lines:
        data = text.encode()
        by_src.setdefault(src, []).append(data if data.endswith(b"\n\0") else data + b"\n")
    for src, frames in by_src.items():
        with socket.create_connection((HOST, port), timeout=10, source_address=(src, 0)) as sock:
            sock.sendall(b"".join(frames))


def run_scenario(
    tmp_path: Path, lines: list[tuple[str, str]]
) -> tuple[list[Notification], dict[str, AlertView], LogStore]:
    correlations = load_correlations(DEFAULT_CORRELATIONS)
    window = MaintenanceWindow.model_validate(
        {
            "name": "fw-2 change",
            "match": ['device="fw-2"'],
            "start": time.time() - 600,
            "end": time.time() + 3600,
        }
    )
    engine = Engine(alert_rules(correlations), maintenance=[window])
    watched = [
        WatchedDevice(name, role, addr, (("device", name), ("role", role)))
        for addr, (name, role) in DEVICES.items()
    ]
    # Watched from 61 minutes ago: a security device that sends nothing during the run is silent.
    start = time.time() - 3660
    corr = CorrelationEngine(correlations, {"management": MGMT}, engine.in_maintenance, watched, start)
    store = LogStore(tmp_path / "store")
    store.on_append.append(corr.observe_batch)
    loop = LoopThread()
    try:
        ingest = Ingest(store, load_formats(), {addr: name for addr, (name, _) in DEVICES.items()})
        rx: Receiver = loop.run(start_receiver(ingest, HOST, 0, 0))
        send(lines, rx.tcp_port, rx.udp_port)
        deadline = time.monotonic() + 30
        while ingest.stats.durable_total < len(lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ingest.stats.durable_total == len(lines)
        loop.run(rx.close())
    finally:
        loop.stop()
    sent: list[Notification] = []
    views: dict[str, AlertView] = {}
    now = time.time()
    for step in range(0, 121, 15):  # two more minutes of evaluations: nothing may page twice
        engine.publish_internal("correlation", corr.samples(now + step))
        sent += engine.evaluate(now + step)
        if step == 15:
            views = {v.alert: v for v in engine.alerts(now + step) if v.state == "firing"}
    return sent, views, store


def test_each_rule_fires_once_on_its_scenario_sent_as_real_syslog(tmp_path: Path) -> None:
    lines = [line for scenario in SCENARIOS.values() for line in scenario]
    lines.append(("127.41.1.3", SESSION.format(ip="10.2.0.9", port=80)))  # fw-2 is alive
    sent, views, store = run_scenario(tmp_path, lines)
    try:
        firing = [n for n in sent if n.kind == "firing"]
        fired = Counter(str(a["labels"]["alertname"]) for n in firing for a in n.alerts)  # type: ignore[index]
        assert fired == Counter({**dict.fromkeys(SCENARIOS, 1), "SecurityDeviceSilent": 1})
        expected_src = {
            "BruteForceAdminLogin": "198.51.100.7",
            "PortScan": "198.51.100.20",
            "AdminLoginOutsideManagement": "203.0.113.9",
            "ConfigChangeOutsideMaintenance": "10.1.0.100",
            "IpsHighSeverity": "198.51.100.66",
            "SecurityDeviceSilent": "127.41.1.4",
        }
        for name, src in expected_src.items():
            labels = views[name].labels
            assert labels["src_ip"] == src, name
            assert src in views[name].summary, name
        assert views["SecurityDeviceSilent"].labels["device"] == "fw-silent"
        # The link names the records that matched: they are in the store, from that source.
        for name in SCENARIOS:
            labels = views[name].labels
            seqs = [int(s) for s in labels["log_link"].split("seqs=")[1].split(",")]
            recs = fetch(store, seqs)
            assert [r["seq"] for r in recs] == seqs and recs
            assert all(r["src_ip"] == expected_src[name] for r in recs), name
            raw = base64.b64decode(recs[0]["raw"]).decode()
            assert expected_src[name] in raw
        brute = views["BruteForceAdminLogin"].labels
        assert brute["records"].count(",") == 4  # the five failures that crossed the threshold
        # One page per alert: the notification text names the source IP.
        text = {str(n.alerts[0]["labels"]["alertname"]): n.text for n in firing}  # type: ignore[index]
        assert "198.51.100.7" in text["BruteForceAdminLogin"] and "较大" in text["IpsHighSeverity"]
        assert store.verify() == []
    finally:
        store.close()


def test_a_benign_mix_fires_nothing(tmp_path: Path) -> None:
    sent, views, store = run_scenario(tmp_path, BENIGN)
    try:
        assert [n for n in sent if n.kind == "firing"] == []
        assert views == {}
        recs = [r for r, _ in store.iter_records()]
        assert len(recs) == len(BENIGN)  # every benign line arrived and was parsed, none matched a rule
        assert {r["event_type"] for r in recs} >= {
            "admin_login",
            "policy_deny",
            "policy_permit",
            "attack_detected",
            "config_change",
        }
    finally:
        store.close()


@pytest.mark.parametrize("name", ["security_rules_test.yaml"])
def test_rule_cases(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert test_rules_command([DATA / name]) == 0
    assert "SUCCESS (9 tests)" in capsys.readouterr().out


def test_govnet_run_wires_the_store_to_the_correlation(tmp_path: Path) -> None:
    """The alerts section creates the correlation; `govnet run` (govnet/run.py) hands its observer to the
    syslog section's store and attaches it, as done here."""
    from alerts.config import AlertingConfig
    from alerts.service import build as build_alerts
    from collectors.syslog.service import SyslogSection
    from collectors.syslog.service import build as build_syslog
    from core.config import validate_section
    from inventory.load import load_inventory

    inv = load_inventory(EXAMPLES / "minimal.yaml")
    alerts_cfg = validate_section(
        AlertingConfig,
        {"state_db": str(tmp_path / "alerts.db"), "security": {"networks": {"management": MGMT}}},
        tmp_path,
        "alerts",
    )
    (alerting,) = build_alerts(alerts_cfg, inventory=inv)
    corr = alerting.correlation
    assert corr is not None
    assert not corr.fed and corr.samples(time.time() + 7200) == []  # no syslog: no device is "silent"
    syslog_cfg = validate_section(
        SyslogSection,
        {"store": str(tmp_path / "store"), "tcp_port": None, "udp_port": None},
        tmp_path,
        "syslog",
    )
    (svc,) = build_syslog(syslog_cfg, inventory=inv, on_append=[corr.observe_batch])
    corr.attach(time.time())
    assert svc.store.on_append == [corr.observe_batch] and corr.fed
    from logstore.record import new_record

    fails = [new_record(event_type="admin_login", outcome="failure", src_ip="198.51.100.7", user="a")] * 5
    svc.store.append_batch([dict(r, flags=[]) for r in fails])
    assert [s.label_dict["correlation"] for s in corr.samples(time.time())] == ["BruteForceAdminLogin"]
    svc.store.close()
