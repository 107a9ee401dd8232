"""Lab devices that log: vendor-shaped syslog lines sent from each device's own address, continually.

Each vendor has its own header, message shape, character encoding and transport, as the real devices
send them (shapes taken from the vendors' log references):

| vendor | shape | encoding | transport |
|---|---|---|---|
| hillstone (StoneOS) | `<PRI>Mmm dd hh:mm:ss SERIAL(root) ID Category@MODULE: ...` | UTF-8 | TCP, LF + NUL |
| huawei (VRP, USG) | `<PRI>Mmm dd yyyy hh:mm:ss HOST %%01MOD/sev/NAME(l):...` | UTF-8 | UDP |
| h3c (Comware 7) | `<PRI>Mmm dd hh:mm:ss yyyy HOST %%10MOD/sev/NAME: ...` | UTF-8 | UDP |
| cisco (IOS) | `<PRI>seq: *Mmm dd hh:mm:ss.mmm: %FAC-sev-MNEMONIC: ...` | ASCII | UDP |
| ruijie (RGOS) | `<PRI>seq: *Mmm dd hh:mm:ss: %FAC-sev-MNEMONIC: ...` | ASCII | UDP |
| sangfor (AF/VPN/AD) | `<PRI>Mmm dd hh:mm:ss HOST fwlog: 日志类型:..., 源IP:..., 系统动作:...` | GBK | UDP |
| topsec (NGTOS) | `<PRI>id="NGTOS" time=".." dev=".." type=".." ...` | GBK | TCP (octets) |

Nothing here reads recorded samples: the generators build the shapes from scratch, so the lab does not
depend on test data. Times are Beijing time, as the devices of a Chinese district are set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from lab.state import LabDevice

log = logging.getLogger("lab.syslog")

CST = timezone(timedelta(hours=8))
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Roles that log continually; access switches only log what happens to them (logins, changes, links).
CHATTY_ROLES = {"firewall", "ips", "isolation_gateway", "vpn_gateway", "load_balancer", "core_switch"}
LOGGING_ROLES = CHATTY_ROLES | {"aggregation_switch"}
ADMINS = ("netadmin", "zhangwei", "liqiang", "secadmin")
ATTACKERS = ("203.0.113.45", "198.51.100.77", "203.0.113.201", "198.51.100.9")
THREATS = (
    ("SQL Injection Attempt", "Web Attack"),
    ("Apache Log4j2 Remote Code Execution (CVE-2021-44228)", "Vulnerability"),
    ("SMB Brute Force Login", "Brute Force"),
    ("Trojan Activity: CnC Domain in DNS Lookup", "Malware"),
)


def _bj(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC).astimezone(CST)


def _bsd(t: datetime) -> str:
    # RFC 3164 day: space-padded.
    return f"{MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S}"


def _pri(severity: int, facility: int = 23) -> str:
    return f"<{facility * 8 + severity}>"


@dataclass
class Emitted:
    """One message: the bytes on the wire and how it travels."""

    payload: bytes
    transport: str  # "udp" | "tcp-lf-nul" | "tcp-octet"
    kind: str


@dataclass
class _Ctx:
    dev: LabDevice
    now: float
    rng: random.Random
    seq: int
    src: str = field(default="")
    user: str = field(default="")
    iface: str = field(default="")  # link messages: the interface (a random port when empty)
    up: bool = True

    def port(self, fallback: str) -> str:
        return self.iface or fallback

    def updown(self, up: str = "up", down: str = "down") -> str:
        return up if self.up else down


def _inside(rng: random.Random) -> str:
    return f"10.{rng.randint(16, 40)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"


def _outside(rng: random.Random) -> str:
    return f"{rng.choice(('203.0.113', '198.51.100', '192.0.2'))}.{rng.randint(2, 254)}"


# --- vendor shapes ---------------------------------------------------------------------------------


def _hillstone(kind: str, c: _Ctx) -> Emitted:
    t = _bj(c.now)
    serial = (
        f"{zlib.crc32(c.dev.name.encode()) * 7919 % 10**16:016d}"  # StoneOS puts the serial number as host
    )
    head = f"{_bsd(t)} {serial}(root) {c.rng.randint(0x42000000, 0x4FFFFFFF):08x}"
    r = c.rng
    if kind in ("permit", "deny"):
        src, dst = _inside(r), _outside(r)
        sport, dport = r.randint(1024, 65535), r.choice((80, 443, 53, 25, 3389, 445))
        proto = "UDP" if dport == 53 else "TCP"
        tail = (
            "session deny"
            if kind == "deny"
            else (
                f"send packets {r.randint(1, 90)},send bytes {r.randint(60, 90000)},receive packets "
                f"{r.randint(1, 90)},receive bytes {r.randint(60, 90000)},start time {t:%Y-%m-%d %H:%M:%S},"
                f"close time {t:%Y-%m-%d %H:%M:%S},session end,TCP FIN"
            )
        )
        msg = (
            f"{_pri(6 if kind == 'permit' else 4)}{head} Traffic@FLOW: SESSION: {src}:{sport}->{dst}:"
            f"{dport}({proto}), interface ethernet0/1, vr trust-vr, policy {r.randint(1, 40)}, "
            f"user -@-, host -, {tail}"
        )
    elif kind == "ips":
        name, typ = r.choice(THREATS)
        msg = (
            f"{_pri(2)}{head} Threat@IPS: CRITICAL! From {r.choice(ATTACKERS)}(UNKNOWN:-@-):"
            f"{r.randint(1024, 65535)}(ethernet0/0) to {_inside(r)}(UNKNOWN:-@-):80(ethernet0/1), "
            f"threat name: {name}, threat type: {typ}, action: DROP"
        )
    elif kind == "login":
        msg = (
            f'{_pri(5)}{head} Event@MGMT: Admin user "{c.user}" logged in through SSH, and the IP is {c.src}.'
        )
    elif kind == "login_failed":
        msg = (
            f'{_pri(4)}{head} Event@MGMT: Admin user "{c.user}" failed to log in through SSH, '
            f"and the IP is {c.src}."
        )
    elif kind == "link":
        msg = (
            f"{_pri(5 if c.up else 3)}{head} Event@NET: Interface {c.port('ethernet0/1')} link status "
            f"changes to {c.updown()}."
        )
    else:  # config
        msg = (
            f'{_pri(6)}{head} Configuration@MGMT: "{c.user}"@ssh, policy {r.randint(1, 40)}: '
            f"action permit -> deny, set, event: config changed"
        )
    # StoneOS ends each message with LF and a NUL byte over TCP.
    return Emitted(msg.encode() + b"\n\x00", "tcp-lf-nul", kind)


def _huawei(kind: str, c: _Ctx) -> Emitted:
    t = _bj(c.now)
    head = f"{MONTHS[t.month - 1]} {t.day:2d} {t:%Y %H:%M:%S} {c.dev.name}"
    r = c.rng
    if kind in ("permit", "deny"):
        name = "POLICYPERMIT" if kind == "permit" else "POLICYDENY"
        msg = (
            f"{_pri(6)}{head} %%01POLICY/6/{name}(l):vsys=public, protocol=6, source-ip={_inside(r)}, "
            f"source-port={r.randint(1024, 65535)}, destination-ip={_outside(r)}, destination-port="
            f"{r.choice((80, 443, 22))}, time={t:%Y/%m/%d %H:%M:%S}, source-zone=trust, "
            f"destination-zone=untrust, rule-name=rule_{r.randint(1, 30)}."
        )
    elif kind == "login":
        msg = (
            f"{_pri(5)}{head} %%01SSH/5/SSH_USER_LOGIN(s):The SSH user succeeded in logging in. "
            f"(ServiceType=stelnet, UserName={c.user}, IPAddress={c.src}, VPNInstanceName=)"
        )
    elif kind == "login_failed":
        msg = (
            f"{_pri(4)}{head} %%01SHELL/4/LOGINFAILED(s):Failed to login. (Ip={c.src}, "
            f"UserName={c.user}, Times=1, AccessType=SSH, VpnName=)"
        )
    elif kind == "config":
        msg = (
            f"{_pri(5)}{head} %%01CFG/5/CFG_CHANGE(l):The configuration changed. (User={c.user}, "
            f'IpAddress={c.src}, Command="interface GigabitEthernet0/0/{r.randint(1, 24)}")'
        )
    elif kind == "ips":
        name, _ = r.choice(THREATS)
        msg = (
            f"{_pri(4)}{head} %%01IPS/4/DETECT(l):An intrusion was detected. "
            f"(SyslogId={r.randint(1, 10**6)}, "
            f'VSys="public", Policy="ips-inbound", SrcIp={r.choice(ATTACKERS)}, DstIp={_inside(r)}, '
            f"SrcPort={r.randint(1024, 65535)}, DstPort=80, SrcZone=untrust, DstZone=dmz, "
            f'Protocol=TCP, SignName="{name}", Action=Block)'
        )
    else:  # link
        port = c.port(f"GigabitEthernet0/0/{r.randint(1, 24)}")
        state = c.updown("UP", "DOWN")
        msg = f"{_pri(4)}{head} %%01IFNET/4/IF_STATE(l):Interface {port} has turned into {state} state."
    return Emitted(msg.encode(), "udp", kind)


def _h3c(kind: str, c: _Ctx) -> Emitted:
    t = _bj(c.now)
    head = f"{MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S %Y} {c.dev.name}"
    if kind == "login":
        msg = f"{_pri(6)}{head} %%10SSHS/6/SSHS_LOG: Accepted password for {c.user} from {c.src} port 52427."
    elif kind == "login_failed":
        msg = (
            f"{_pri(6)}{head} %%10SSHS/6/SSHS_LOG: Authentication failed for {c.user} from {c.src} "
            f"port {c.rng.randint(1024, 65535)} ssh2."
        )
    elif kind == "config":
        msg = (
            f"{_pri(6)}{head} %%10SHELL/6/SHELL_CMD: -Line=vty0-IPAddr={c.src}-User={c.user}; "
            f"Command is interface GigabitEthernet1/0/{c.rng.randint(1, 48)}"
        )
    else:
        msg = (
            f"{_pri(5)}{head} %%10IFNET/5/LINK_UPDOWN: Line protocol state on the interface "
            f"{c.port(f'GigabitEthernet1/0/{c.rng.randint(1, 48)}')} changed to {c.updown()}."
        )
    return Emitted(msg.encode(), "udp", kind)


def _cisco_like(kind: str, c: _Ctx, ruijie: bool) -> Emitted:
    t = _bj(c.now)
    stamp = f"*{_bsd(t)}" + ("" if ruijie else f".{int(c.now * 1000) % 1000:03d}")
    head = f"{_pri(5)}{c.seq:06d}: {stamp}:"
    if kind == "login":
        msg = (
            f"{head} %SEC_LOGIN-5-LOGIN_SUCCESS: Login Success [user: {c.user}] [Source: {c.src}] "
            f"[localport: 22] at {t:%H:%M:%S} CST {t:%a %b %d %Y}"
        )
    elif kind == "login_failed":
        msg = (
            f"{head} %SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: {c.user}] [Source: {c.src}] "
            f"[localport: 22] [Reason: Login Authentication Failed] at {t:%H:%M:%S} CST {t:%a %b %d %Y}"
        )
    elif kind == "config":
        msg = f"{head} %SYS-5-CONFIG_I: Configured from console by {c.user} on vty0 ({c.src})"
    else:
        port = c.port(("GigabitEthernet 0/" if ruijie else "GigabitEthernet1/0/") + str(c.rng.randint(1, 24)))
        msg = f"{head} %LINK-3-UPDOWN: Interface {port}, changed state to {c.updown()}"
    return Emitted(msg.encode("ascii", "replace"), "udp", kind)


def _sangfor(kind: str, c: _Ctx) -> Emitted:
    t = _bj(c.now)
    r = c.rng
    head = f"{_pri(6, 16)}{_bsd(t)} {c.dev.name} fwlog:"
    if kind in ("permit", "deny"):
        action = "允许" if kind == "permit" else "拒绝"
        msg = (
            f"{head} 日志类型:服务控制或应用控制, 策略名称:外网访问控制, 用户:(null), 源IP:{_inside(r)}, "
            f"源端口:{r.randint(1024, 65535)}, 目的IP:{_outside(r)}, 目的端口:{r.choice((80, 443, 8080))}, "
            f"应用类型:网站浏览, 应用名称:HTTP, 系统动作:{action}"
        )
    elif kind == "ips":
        msg = (
            f"{head} 日志类型:IPS防护日志, 源IP:{r.choice(ATTACKERS)}, 源端口:{r.randint(1024, 65535)}, "
            f"目的IP:{_inside(r)}, 目的端口:80, 协议:tcp, 攻击类型:web漏洞攻击, "
            f"漏洞名称:Apache Struts 远程代码执行漏洞, 严重等级:高, 动作:拒绝"
        )
    elif kind in ("login", "login_failed"):
        result = "成功" if kind == "login" else "失败"
        msg = f"{head} 日志类型:管理员登录, 用户:{c.user}, 源IP:{c.src}, 登录方式:WEB, 结果:{result}"
    elif kind == "link":
        state = "恢复正常" if c.up else "离线，原因是链路断开"
        msg = f"{_pri(4, 16)}{_bsd(t)} {c.dev.name} LINKD: [ {c.port('eth0')} ]{state}"
    else:
        msg = f"{head} 日志类型:配置变更, 用户:{c.user}, 源IP:{c.src}, 操作:修改策略 外网访问控制"
    # Sangfor's Chinese-locale firmware sends GBK.
    return Emitted(msg.encode("gbk"), "udp", kind)


def _topsec(kind: str, c: _Ctx) -> Emitted:
    t = _bj(c.now)
    r = c.rng
    head = (
        f'{_pri(6)}id="NGTOS" version="V3.2294.23040_NGFW.1_R" time="{t:%Y-%m-%d %H:%M:%S}" '
        f'dev="{c.dev.name}"'
    )
    if kind in ("permit", "deny"):
        action = "accept" if kind == "permit" else "deny"
        msg = (
            f'{head} pri="6" type="ac" recorder="ac" index="1050" vsid="0" vsys_name="root_vsys" '
            f'policyid="{r.randint(1, 99)}" policyname="out-{r.randint(1, 9)}" protoname="TCP" '
            f'src="{_inside(r)}" sport="{r.randint(1024, 65535)}" dst="{_outside(r)}" '
            f'dport="{r.choice((80, 443, 21))}" action="{action}" appname="unknown" user="unknown"'
        )
    elif kind == "ips":
        name, _ = r.choice(THREATS)
        msg = (
            f'{head} pri="2" type="入侵防御日志" recorder="IPSEVENT" index="2120" vsid="0" protoname="tcp" '
            f'src="{r.choice(ATTACKERS)}" sport="{r.randint(1024, 65535)}" dst="{_inside(r)}" dport="80" '
            f'event="{name}" action="drop"'
        )
    elif kind in ("login", "login_failed"):
        ok = kind == "login"
        msg = (
            f'{head} pri="{6 if ok else 4}" type="admin" recorder="admin" index="2010" vsid="0" '
            f'user="{c.user}" src="{c.src}" op="login" method="SSH" result="{"success" if ok else "failed"}" '
            f'description="{"login success" if ok else "login failed"}"'
        )
    elif kind == "link":
        msg = (
            f'{head} pri="{5 if c.up else 1}" type="接口日志" recorder="interface" index="2280" vsid="0" '
            f'interface="{c.port("feth1")}" op="{c.updown()}"'
        )
    else:
        msg = (
            f'{head} pri="6" type="mgmt" recorder="config" index="2000" vsid="0" user="{c.user}" '
            f'src="{c.src}" result="success" command="firewall policy modify id {r.randint(1, 99)}"'
        )
    return Emitted(msg.encode("gbk"), "tcp-octet", kind)


SHAPES: dict[str, Callable[[str, _Ctx], Emitted]] = {
    "hillstone": _hillstone,
    "huawei": _huawei,
    "h3c": _h3c,
    "cisco": lambda k, c: _cisco_like(k, c, ruijie=False),
    "ruijie": lambda k, c: _cisco_like(k, c, ruijie=True),
    "sangfor": _sangfor,
    "topsec": _topsec,
}

# What each role logs in normal operation, with weights.
MIX: dict[str, list[tuple[str, int]]] = {
    "firewall": [("permit", 14), ("deny", 5), ("ips", 1), ("login", 1)],
    "ips": [("ips", 3), ("deny", 2), ("permit", 2)],
    "isolation_gateway": [("permit", 4), ("deny", 2), ("login", 1)],
    "vpn_gateway": [("permit", 4), ("deny", 1), ("login", 2)],
    "load_balancer": [("permit", 3), ("deny", 1)],
    "core_switch": [("login", 1), ("link", 1)],
    "aggregation_switch": [("login", 1), ("link", 1)],
}


def message(
    dev: LabDevice,
    kind: str,
    now: float,
    rng: random.Random,
    seq: int,
    user: str | None = None,
    src: str | None = None,
    iface: str = "",
    up: bool = True,
) -> Emitted | None:
    """One message of `kind` (permit, deny, ips, login, login_failed, config, link) in the device's shape."""
    shape = SHAPES.get(dev.vendor)
    if shape is None:
        return None
    ctx = _Ctx(
        dev,
        now,
        rng,
        seq,
        src or f"10.255.{rng.randint(0, 3)}.{rng.randint(2, 254)}",
        user or rng.choice(ADMINS),
        iface,
        up,
    )
    return shape(kind, ctx)


class SyslogEmitter:
    """Sends the lab's logs to one collector: a steady mix from every logging device, plus bursts on demand.

    UDP from a socket bound to the device's address; TCP over one connection per device (bound likewise),
    reconnected when the collector restarts. Nothing is queued for an absent collector: like a real
    device without a reachable log host, the lab drops the message and counts it.
    """

    def __init__(
        self, devices: list[LabDevice], host: str, port: int, rate: float = 6.0, seed: int = 13
    ) -> None:
        self.devices = [d for d in devices if d.vendor in SHAPES and d.role in LOGGING_ROLES]
        self.chatty = [d for d in self.devices if d.role in CHATTY_ROLES]
        self.host, self.port, self.rate = host, port, rate
        self.rng = random.Random(seed)
        self.seq: dict[str, int] = {}
        self.udp: dict[str, socket.socket] = {}
        self.tcp: dict[str, asyncio.StreamWriter] = {}
        self.sent = 0
        self.dropped = 0
        self._lock = asyncio.Lock()

    async def send(
        self,
        dev: LabDevice,
        kind: str,
        user: str | None = None,
        src: str | None = None,
        iface: str = "",
        up: bool = True,
    ) -> bool:
        """Send one message of `kind` from `dev` now (False when it could not be sent)."""
        if dev.dead:
            return False
        n = self.seq[dev.name] = self.seq.get(dev.name, 0) + 1
        msg = message(dev, kind, time.time(), self.rng, n, user, src, iface, up)
        if msg is None:
            return False
        try:
            if msg.transport == "udp":
                sock = self.udp.get(dev.name)
                if sock is None:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    sock.bind((dev.address, 0))
                    sock.setblocking(False)
                    self.udp[dev.name] = sock
                sock.sendto(msg.payload, (self.host, self.port))
            else:
                frame = msg.payload
                if msg.transport == "tcp-octet":
                    frame = str(len(frame)).encode() + b" " + frame
                writer = await self._tcp(dev)
                writer.write(frame)
                await writer.drain()
        except OSError:
            self.dropped += 1
            old = self.tcp.pop(dev.name, None)
            if old is not None:
                old.close()
            return False
        self.sent += 1
        return True

    async def _tcp(self, dev: LabDevice) -> asyncio.StreamWriter:
        old = self.tcp.get(dev.name)
        if old is not None and not old.is_closing():
            return old
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, local_addr=(dev.address, 0)), 3.0
        )
        self.tcp[dev.name] = writer
        return writer

    async def burst(
        self, dev: LabDevice, kind: str, count: int, src: str, user: str, gap: float = 0.05
    ) -> int:
        """`count` messages of one kind from one source (a brute-force run, a config session)."""
        sent = 0
        for _ in range(count):
            sent += await self.send(dev, kind, user=user, src=src)
            await asyncio.sleep(gap)
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        """The steady mix until `stop`: about `rate` messages per second over the chatty devices."""
        if not self.chatty:
            return
        try:
            while not stop.is_set():
                dev = self.rng.choice(self.chatty)
                kinds, weights = zip(*MIX.get(dev.role, [("login", 1)]), strict=True)
                await self.send(dev, self.rng.choices(kinds, weights)[0])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.rng.expovariate(self.rate))
        finally:
            self.close()

    def close(self) -> None:
        """Close every socket."""
        for s in self.udp.values():
            s.close()
        for w in self.tcp.values():
            w.close()
        self.udp.clear()
        self.tcp.clear()
