"""Lab devices that speak for themselves: vendor syslog (shape, encoding, transport, source address)
and SNMPv2c traps on faults, received on real sockets from the real lab process and decoded by
pysnmp and by govnet's own syslog parser."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from pyasn1.codec.ber import decoder
from pysnmp.proto import api

from collectors.syslog.formats import load_formats
from collectors.syslog.framing import Framer
from collectors.syslog.parse import parse_frame
from lab.runner import LabProcess
from lab.state import LabDevice
from lab.syslog_gen import SHAPES, message
from lab.traps import LINK_DOWN, LINK_UP, VRRP_NEW_MASTER

HOST = "127.36.8.1"
LAB_BASE = "127.36.9.0"
FORMATS = load_formats()
KINDS = ("permit", "deny", "ips", "login", "login_failed", "config", "link")
# What govnet's shipped vendor formats must make of the lab's lines (the demo's security-log pages
# rely on it).
_FIREWALL = {"permit": "policy_permit", "deny": "policy_deny", "ips": "attack_detected"}
_ADMIN = {"login": "admin_login", "login_failed": "admin_login", "config": "config_change"}
_LINK = {"link": "interface_state"}
EXPECTED = {
    "hillstone": {**_FIREWALL, **_ADMIN},
    "huawei": {**_FIREWALL, **_ADMIN, **_LINK},
    "sangfor": {**_FIREWALL, **_ADMIN, **_LINK},
    "topsec": {**_FIREWALL, **_ADMIN, **_LINK},
    # Switches log no policy decisions: only logins, configuration and links.
    "h3c": {**_ADMIN, **_LINK},
    "cisco": {**_ADMIN, **_LINK},
    "ruijie": {**_ADMIN, **_LINK},
}
OUTCOME = {"login": "success", "login_failed": "failure"}
# The shipped huawei format does not take the address from VRP's `SSH_USER_LOGIN (..., IPAddress=...)`
# yet; the line still carries it (checked below).
SOURCE_PARSED = {"hillstone", "sangfor", "topsec", "h3c", "cisco", "ruijie"}
ENCODING = {"sangfor": "gbk", "topsec": "gbk"}


def _dev(vendor: str, role: str = "firewall") -> LabDevice:
    return LabDevice(f"lab-{vendor}", "ncc", role, vendor, "", "127.36.9.9", 161, None, time.time() - 3600)


@pytest.mark.parametrize("vendor", sorted(SHAPES))
def test_each_vendor_shape_parses_as_the_vendor_logs_it(vendor: str) -> None:
    rng = random.Random(7)
    now = time.time()
    chinese = 0
    for kind in KINDS:
        msg = message(
            _dev(vendor), kind, now, rng, 1, user="secadmin", src="198.51.100.7", iface="eth9", up=False
        )
        assert msg is not None
        raw = msg.payload
        if vendor == "hillstone":
            assert raw.endswith(b"\n\x00") and msg.transport == "tcp-lf-nul"
        text = raw.decode(ENCODING.get(vendor, "utf-8"))
        if vendor in ENCODING and any(ord(ch) > 127 for ch in text):
            chinese += 1
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")  # really GBK, as the Chinese-locale firmware sends it
        assert text.startswith("<") and ">" in text[:6]
        if kind in ("login", "login_failed"):
            assert "secadmin" in text and "198.51.100.7" in text
        if kind == "link":
            assert "eth9" in text
        rec = parse_frame(raw.rstrip(b"\n\x00"), now, "127.36.9.9:5000", msg.transport[:3], FORMATS, {})
        want = EXPECTED.get(vendor, {}).get(kind)
        if want is not None:
            assert rec["event_type"] == want, (kind, text)
            if kind in OUTCOME:
                assert rec["outcome"] == OUTCOME[kind], (kind, text)
                if vendor in SOURCE_PARSED:
                    assert rec["src_ip"] == "198.51.100.7"
    assert chinese > 0 or vendor not in ENCODING


@dataclass
class Collector:
    """A UDP socket and a TCP listener on one address: what the lab sends, with its source."""

    udp: socket.socket
    tcp: socket.socket
    datagrams: list[tuple[bytes, str]] = field(default_factory=list)
    streams: dict[str, bytearray] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self) -> None:
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        conns: list[tuple[socket.socket, str]] = []
        while not self.udp._closed:  # type: ignore[attr-defined]
            try:
                data, addr = self.udp.recvfrom(65535)
                with self.lock:
                    self.datagrams.append((data, addr[0]))
            except (TimeoutError, OSError):
                pass
            try:
                conn, addr = self.tcp.accept()
                conn.settimeout(0.05)
                conns.append((conn, addr[0]))
            except (TimeoutError, OSError):
                pass
            for conn, src in conns:
                try:
                    chunk = conn.recv(65535)
                except (TimeoutError, OSError):
                    continue
                with self.lock:
                    self.streams.setdefault(src, bytearray()).extend(chunk)
        for conn, _ in conns:
            conn.close()

    def traps(self) -> list[tuple[str, str, dict[str, str]]]:
        """(source, snmpTrapOID, varbinds) of every SNMP datagram."""
        out = []
        with self.lock:
            grams = list(self.datagrams)
        for data, src in grams:
            if not data.startswith(b"\x30"):
                continue
            mod = api.PROTOCOL_MODULES[int(api.decodeMessageVersion(data))]
            msg, _ = decoder.decode(data, asn1Spec=mod.Message())
            pdu = mod.apiMessage.get_pdu(msg)
            vbs = {o.prettyPrint(): v.prettyPrint() for o, v in mod.apiPDU.get_varbinds(pdu)}
            out.append((src, vbs["1.3.6.1.6.3.1.1.4.1.0"], vbs))
        return out

    def lines(self, src: str) -> list[bytes]:
        with self.lock:
            grams = [d for d, s in self.datagrams if s == src and d.startswith(b"<")]
            stream = bytes(self.streams.get(src, b""))
        framer = Framer()
        return grams + [bytes(f) for f in framer.feed(stream)]


def wait_for(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabProcess, Collector, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("lab-signals")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((HOST, 0))
    port = udp.getsockname()[1]
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((HOST, port))
    tcp.listen()
    col = Collector(udp, tcp)
    thread = threading.Thread(target=col.serve, daemon=True)
    thread.start()
    rows = [  # name, site, role, vendor, address
        ("core", "ncc", "core_switch", "huawei", "10.0.0.1"),
        ("agg", "jd", "aggregation_switch", "h3c", "10.0.1.1"),
        ("fw-1", "ncc", "firewall", "hillstone", "10.0.0.11"),
        ("fw-2", "ncc", "firewall", "hillstone", "10.0.0.12"),
        ("vpn", "ncc", "vpn_gateway", "sangfor", "10.0.0.21"),
    ]
    inv = {
        "sites": [
            {"name": "ncc", "kind": "control_centre"},
            {"name": "jd", "kind": "aggregation", "parent": "ncc"},
        ],
        "devices": [dict(zip(("name", "site", "role", "vendor", "address"), x, strict=True)) for x in rows],
        "links": [{"a": {"device": "agg", "interface": "Ten-GigabitEthernet1/0/49"},
                   "b": {"device": "core", "interface": "XGigabitEthernet2/0/1"}}],
        "ha_groups": [{"name": "fw", "kind": "firewall", "members": [
            {"device": "fw-1", "expected_role": "active"}, {"device": "fw-2", "expected_role": "standby"}]}],
    }  # fmt: skip
    path = tmp / "inv.yaml"
    path.write_text(yaml.safe_dump(inv))
    with socket.socket() as s:
        s.bind((HOST, 0))
        snmp_port = s.getsockname()[1]
    lab = LabProcess(path, tmp / "lab", base=LAB_BASE, snmp_port=snmp_port, ssh_port=0, progress=None,
                     syslog=f"{HOST}:{port}", traps=f"{HOST}:{port}")  # fmt: skip
    try:
        lab.start()
        addrs = {n: d["address"] for n, d in lab.devices().items()}
        yield lab, col, addrs
    finally:
        lab.stop()
        udp.close()
        tcp.close()
        thread.join(5)


def test_devices_log_continually_from_their_own_address(world: Any) -> None:
    lab, col, addrs = world
    fw = wait_for(
        lambda: [ln for ln in col.lines(addrs["fw-1"]) if b"Traffic@FLOW" in ln], 30, "firewall lines"
    )
    assert all(ln.endswith(b"\x00") or b"@" in ln for ln in fw)  # TCP, LF NUL framed (the framer keeps NUL)
    vpn = wait_for(lambda: col.lines(addrs["vpn"]), 30, "VPN gateway lines")
    assert "日志类型".encode("gbk") in vpn[0]
    records = [parse_frame(ln.rstrip(b"\n\x00"), time.time(), addrs["fw-1"], "tcp", FORMATS, {}) for ln in fw]
    assert {r["event_type"] for r in records} & {"policy_permit", "policy_deny"}
    assert lab.request("signals")["syslog_sent"] > 0


def test_link_down_sends_linkdown_from_both_ends_and_linkup_on_clear(world: Any) -> None:
    lab, col, addrs = world
    lab.fault("agg", "link_down", interface="Ten-GigabitEthernet1/0/49")
    downs = wait_for(lambda: [t for t in col.traps() if t[1] == LINK_DOWN], 10, "linkDown traps")
    time.sleep(0.5)
    downs = [t for t in col.traps() if t[1] == LINK_DOWN]
    assert {src for src, _, _ in downs} == {addrs["agg"], addrs["core"]}
    for _, _, vbs in downs:
        oper = [v for o, v in vbs.items() if o.startswith("1.3.6.1.2.1.2.2.1.8.")]
        index = [v for o, v in vbs.items() if o.startswith("1.3.6.1.2.1.2.2.1.1.")]
        assert oper == ["2"] and len(index) == 1 and int(index[0]) > 0
    h3c = wait_for(lambda: [ln for ln in col.lines(addrs["agg"]) if b"LINK_UPDOWN" in ln], 10, "agg link log")
    assert b"Ten-GigabitEthernet1/0/49 changed to down" in h3c[-1]
    lab.clear("agg")
    ups = wait_for(lambda: [t for t in col.traps() if t[1] == LINK_UP], 10, "linkUp traps")
    assert ups[0][0] in (addrs["agg"], addrs["core"])


def test_failover_sends_new_master_from_the_new_active_member(world: Any) -> None:
    lab, col, addrs = world
    lab.fault("fw-1", "ha_failover")
    masters = wait_for(lambda: [t for t in col.traps() if t[1] == VRRP_NEW_MASTER], 10, "vrrpTrapNewMaster")
    assert masters[0][0] == addrs["fw-2"]
    lab.clear("fw-1")
    back = wait_for(
        lambda: [t for t in col.traps() if t[1] == VRRP_NEW_MASTER and t[0] == addrs["fw-1"]], 10, "swap back"
    )
    assert back


def test_brute_force_burst_and_a_dead_device_is_silent(world: Any) -> None:
    lab, col, addrs = world
    res = lab.request(
        "syslog_burst", device="fw-1", kind="login_failed", count=12, src="203.0.113.66", user="root"
    )
    assert res["ok"] and res["sent"] == 12

    def failures() -> list[dict[str, Any]]:
        recs = [
            parse_frame(ln.rstrip(b"\n\x00"), time.time(), "x", "tcp", FORMATS, {})
            for ln in col.lines(addrs["fw-1"])
        ]
        return [r for r in recs if r["event_type"] == "admin_login" and r["src_ip"] == "203.0.113.66"]

    got = wait_for(lambda: len(failures()) >= 12 and failures(), 10, "12 failed logins")
    assert all(r["outcome"] == "failure" and r["user"] == "root" for r in got)
    lab.fault("fw-2", "dead")
    res = lab.request("syslog_burst", device="fw-2", kind="login", count=3)
    assert res["ok"] and res["sent"] == 0
    lab.clear("fw-2")
