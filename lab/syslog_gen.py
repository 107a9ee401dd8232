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
# Each vendor is data: a header template and one line template per message kind, with the random values
# each line draws listed in the order they are drawn (so a seed gives the same lines as it always has).
# Templates are str.format over the drawn values and the message's own: `t` (Beijing time), `mon`, `day`,
# `ms`, `name` (the device), `serial`, `seq`, `user`, `src` (the admin's address).

Draw = Callable[[_Ctx, dict[str, object]], object]


def _rand(lo: int, hi: int) -> Draw:
    return lambda c, _: c.rng.randint(lo, hi)


def _pick(*options: object) -> Draw:
    return lambda c, _: c.rng.choice(options)


def _port(fallback: str, lo: int = 0, hi: int = 0) -> Draw:
    """The link's interface; the fallback's number is drawn even when the link names one."""
    return lambda c, _: c.port(fallback.format(c.rng.randint(lo, hi)) if hi else fallback)


def _updown(up: str = "up", down: str = "down") -> Draw:
    return lambda c, _: c.updown(up, down)


def _inside_d(c: _Ctx, _: dict[str, object]) -> str:
    return _inside(c.rng)


def _outside_d(c: _Ctx, _: dict[str, object]) -> str:
    return _outside(c.rng)


def _proto(_: _Ctx, v: dict[str, object]) -> str:
    return "UDP" if v["dport"] == 53 else "TCP"


SPORT = _rand(1024, 65535)
ATTACKER = _pick(*ATTACKERS)
THREAT = _pick(*THREATS)
BSD = "{mon} {day:2d} {t:%H:%M:%S}"  # RFC 3164 time, the day space-padded


@dataclass(frozen=True)
class Line:
    """One kind of message: its text template, its syslog severity (up, down for link changes) and the
    values it draws, in order."""

    text: str
    severity: int | tuple[int, int] = 6
    draws: tuple[tuple[str, Draw], ...] = ()


@dataclass(frozen=True)
class Shape:
    """A vendor's syslog: header, lines by kind (`other` stands for kinds it does not log), the PRI's
    facility (and fixed severity where the message carries its own), encoding, transport, terminator."""

    head: str
    lines: dict[str, Line]
    other: str
    head_draws: tuple[tuple[str, Draw], ...] = ()
    facility: int = 23
    pri: int | None = None
    encoding: tuple[str, str] = ("utf-8", "strict")
    transport: str = "udp"
    end: bytes = b""

    def render(self, kind: str, c: _Ctx) -> Emitted:
        """The message of `kind` from the context's device."""
        t = _bj(c.now)
        serial = f"{zlib.crc32(c.dev.name.encode()) * 7919 % 10**16:016d}"  # StoneOS's host is its serial
        values: dict[str, object] = {
            "t": t,
            "mon": MONTHS[t.month - 1],
            "day": t.day,
            "name": c.dev.name,
            "ms": int(c.now * 1000) % 1000,
            "serial": serial,
            "seq": c.seq,
            "user": c.user,
            "src": c.src,
        }
        line = self.lines.get(kind) or self.lines[self.other]
        for key, draw in (*self.head_draws, *line.draws):
            values[key] = draw(c, values)
        severity = line.severity if isinstance(line.severity, int) else line.severity[0 if c.up else 1]
        pri = _pri(severity if self.pri is None else self.pri, self.facility)
        msg = f"{pri}{self.head.format(**values)} {line.text.format(**values)}"
        return Emitted(msg.encode(*self.encoding) + self.end, self.transport, kind)


_HS_FLOW = (
    "Traffic@FLOW: SESSION: {sip}:{sport}->{dip}:{dport}({proto}), interface ethernet0/1, vr trust-vr, "
    "policy {policy}, user -@-, host -, "
)
_HS_SESSION = (
    ("sip", _inside_d),
    ("dip", _outside_d),
    ("sport", SPORT),
    ("dport", _pick(80, 443, 53, 25, 3389, 445)),
    ("proto", _proto),
)
HILLSTONE = Shape(
    head=BSD + " {serial}(root) {id:08x}",
    head_draws=(("id", _rand(0x42000000, 0x4FFFFFFF)),),
    lines={
        "permit": Line(
            _HS_FLOW + "send packets {p1},send bytes {b1},receive packets {p2},receive bytes {b2},"
            "start time {t:%Y-%m-%d %H:%M:%S},close time {t:%Y-%m-%d %H:%M:%S},session end,TCP FIN",
            6,
            (
                *_HS_SESSION,
                ("p1", _rand(1, 90)),
                ("b1", _rand(60, 90000)),
                ("p2", _rand(1, 90)),
                ("b2", _rand(60, 90000)),
                ("policy", _rand(1, 40)),
            ),
        ),
        "deny": Line(_HS_FLOW + "session deny", 4, (*_HS_SESSION, ("policy", _rand(1, 40)))),
        "ips": Line(
            "Threat@IPS: CRITICAL! From {attacker}(UNKNOWN:-@-):{sport}(ethernet0/0) to {dip}(UNKNOWN:-@-):"
            "80(ethernet0/1), threat name: {threat[0]}, threat type: {threat[1]}, action: DROP",
            2,
            (("threat", THREAT), ("attacker", ATTACKER), ("sport", SPORT), ("dip", _inside_d)),
        ),
        "login": Line('Event@MGMT: Admin user "{user}" logged in through SSH, and the IP is {src}.', 5),
        "login_failed": Line(
            'Event@MGMT: Admin user "{user}" failed to log in through SSH, and the IP is {src}.', 4
        ),
        "link": Line(
            "Event@NET: Interface {port} link status changes to {state}.",
            (5, 3),
            (("port", _port("ethernet0/1")), ("state", _updown())),
        ),
        "config": Line(
            'Configuration@MGMT: "{user}"@ssh, policy {policy}: action permit -> deny, set, event: '
            "config changed",
            6,
            (("policy", _rand(1, 40)),),
        ),
    },
    other="config",
    transport="tcp-lf-nul",
    end=b"\n\x00",  # StoneOS ends each message with LF and a NUL byte over TCP
)

_HW_POLICY = (
    "(l):vsys=public, protocol=6, source-ip={sip}, source-port={sport}, destination-ip={dip}, "
    "destination-port={dport}, time={t:%Y/%m/%d %H:%M:%S}, source-zone=trust, destination-zone=untrust, "
    "rule-name=rule_{rule}."
)
_HW_SESSION = (
    ("sip", _inside_d),
    ("sport", SPORT),
    ("dip", _outside_d),
    ("dport", _pick(80, 443, 22)),
    ("rule", _rand(1, 30)),
)
HUAWEI = Shape(
    head="{mon} {day:2d} {t:%Y %H:%M:%S} {name}",
    lines={
        "permit": Line("%%01POLICY/6/POLICYPERMIT" + _HW_POLICY, 6, _HW_SESSION),
        "deny": Line("%%01POLICY/6/POLICYDENY" + _HW_POLICY, 6, _HW_SESSION),
        "login": Line(
            "%%01SSH/5/SSH_USER_LOGIN(s):The SSH user succeeded in logging in. (ServiceType=stelnet, "
            "UserName={user}, IPAddress={src}, VPNInstanceName=)",
            5,
        ),
        "login_failed": Line(
            "%%01SHELL/4/LOGINFAILED(s):Failed to login. (Ip={src}, UserName={user}, Times=1, "
            "AccessType=SSH, VpnName=)",
            4,
        ),
        "config": Line(
            "%%01CFG/5/CFG_CHANGE(l):The configuration changed. (User={user}, IpAddress={src}, "
            'Command="interface GigabitEthernet0/0/{n}")',
            5,
            (("n", _rand(1, 24)),),
        ),
        "ips": Line(
            '%%01IPS/4/DETECT(l):An intrusion was detected. (SyslogId={sid}, VSys="public", '
            'Policy="ips-inbound", SrcIp={attacker}, DstIp={dip}, SrcPort={sport}, DstPort=80, '
            "SrcZone=untrust, DstZone=dmz, "
            'Protocol=TCP, SignName="{threat[0]}", Action=Block)',
            4,
            (
                ("threat", THREAT),
                ("sid", _rand(1, 10**6)),
                ("attacker", ATTACKER),
                ("dip", _inside_d),
                ("sport", SPORT),
            ),
        ),
        "link": Line(
            "%%01IFNET/4/IF_STATE(l):Interface {port} has turned into {state} state.",
            4,
            (("port", _port("GigabitEthernet0/0/{}", 1, 24)), ("state", _updown("UP", "DOWN"))),
        ),
    },
    other="link",
)

H3C = Shape(
    head="{mon} {day:2d} {t:%H:%M:%S %Y} {name}",
    lines={
        "login": Line("%%10SSHS/6/SSHS_LOG: Accepted password for {user} from {src} port 52427."),
        "login_failed": Line(
            "%%10SSHS/6/SSHS_LOG: Authentication failed for {user} from {src} port {sport} ssh2.",
            6,
            (("sport", SPORT),),
        ),
        "config": Line(
            "%%10SHELL/6/SHELL_CMD: -Line=vty0-IPAddr={src}-User={user}; Command is interface "
            "GigabitEthernet1/0/{n}",
            6,
            (("n", _rand(1, 48)),),
        ),
        "link": Line(
            "%%10IFNET/5/LINK_UPDOWN: Line protocol state on the interface {port} changed to {state}.",
            5,
            (("port", _port("GigabitEthernet1/0/{}", 1, 48)), ("state", _updown())),
        ),
    },
    other="link",
)


def _ios(head: str, port: str) -> Shape:
    """Cisco IOS and Ruijie RGOS: the same mnemonics, a fixed PRI, ASCII."""
    at = "at {t:%H:%M:%S} CST {t:%a %b %d %Y}"
    return Shape(
        head=head,
        lines={
            "login": Line(
                "%SEC_LOGIN-5-LOGIN_SUCCESS: Login Success [user: {user}] [Source: {src}] "
                "[localport: 22] " + at
            ),
            "login_failed": Line(
                "%SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: {user}] [Source: {src}] "
                "[localport: 22] [Reason: Login Authentication Failed] " + at
            ),
            "config": Line("%SYS-5-CONFIG_I: Configured from console by {user} on vty0 ({src})"),
            "link": Line(
                "%LINK-3-UPDOWN: Interface {port}, changed state to {state}",
                3,
                (("port", _port(port, 1, 24)), ("state", _updown())),
            ),
        },
        other="link",
        pri=5,
        encoding=("ascii", "replace"),
    )


_SF_ACCESS = (
    "fwlog: 日志类型:服务控制或应用控制, 策略名称:外网访问控制, 用户:(null), 源IP:{sip}, 源端口:{sport}, "
    "目的IP:{dip}, 目的端口:{dport}, 应用类型:网站浏览, 应用名称:HTTP, 系统动作:"
)
_SF_SESSION = (("sip", _inside_d), ("sport", SPORT), ("dip", _outside_d), ("dport", _pick(80, 443, 8080)))
_SF_LOGIN = "fwlog: 日志类型:管理员登录, 用户:{user}, 源IP:{src}, 登录方式:WEB, 结果:"
SANGFOR = Shape(
    head=BSD + " {name}",
    lines={
        "permit": Line(_SF_ACCESS + "允许", 6, _SF_SESSION),
        "deny": Line(_SF_ACCESS + "拒绝", 6, _SF_SESSION),
        "ips": Line(
            "fwlog: 日志类型:IPS防护日志, 源IP:{attacker}, 源端口:{sport}, 目的IP:{dip}, 目的端口:80, "
            "协议:tcp, 攻击类型:web漏洞攻击, 漏洞名称:Apache Struts 远程代码执行漏洞, 严重等级:高, 动作:拒绝",
            6,
            (("attacker", ATTACKER), ("sport", SPORT), ("dip", _inside_d)),
        ),
        "login": Line(_SF_LOGIN + "成功"),
        "login_failed": Line(_SF_LOGIN + "失败"),
        "link": Line(
            "LINKD: [ {port} ]{state}",
            4,
            (("port", _port("eth0")), ("state", _updown("恢复正常", "离线，原因是链路断开"))),
        ),
        "config": Line("fwlog: 日志类型:配置变更, 用户:{user}, 源IP:{src}, 操作:修改策略 外网访问控制"),
    },
    other="config",
    facility=16,
    encoding=("gbk", "strict"),  # Sangfor's Chinese-locale firmware sends GBK
)

_TS_AC = (
    'pri="6" type="ac" recorder="ac" index="1050" vsid="0" vsys_name="root_vsys" policyid="{policy}" '
    'policyname="out-{pname}" protoname="TCP" src="{sip}" sport="{sport}" dst="{dip}" dport="{dport}" action='
)
_TS_SESSION = (
    ("policy", _rand(1, 99)),
    ("pname", _rand(1, 9)),
    ("sip", _inside_d),
    ("sport", SPORT),
    ("dip", _outside_d),
    ("dport", _pick(80, 443, 21)),
)
_TS_LOGIN = (
    'pri="{pri}" type="admin" recorder="admin" index="2010" vsid="0" user="{{user}}" src="{{src}}" '
    'op="login" method="SSH" result="{result}" description="login {description}"'
)
TOPSEC = Shape(
    head='id="NGTOS" version="V3.2294.23040_NGFW.1_R" time="{t:%Y-%m-%d %H:%M:%S}" dev="{name}"',
    lines={
        "permit": Line(_TS_AC + '"accept" appname="unknown" user="unknown"', 6, _TS_SESSION),
        "deny": Line(_TS_AC + '"deny" appname="unknown" user="unknown"', 6, _TS_SESSION),
        "ips": Line(
            'pri="2" type="入侵防御日志" recorder="IPSEVENT" index="2120" vsid="0" protoname="tcp" '
            'src="{attacker}" sport="{sport}" dst="{dip}" dport="80" event="{threat[0]}" action="drop"',
            6,
            (("threat", THREAT), ("attacker", ATTACKER), ("sport", SPORT), ("dip", _inside_d)),
        ),
        "login": Line(_TS_LOGIN.format(pri=6, result="success", description="success")),
        "login_failed": Line(_TS_LOGIN.format(pri=4, result="failed", description="failed")),
        "link": Line(
            'pri="{sev}" type="接口日志" recorder="interface" index="2280" vsid="0" interface="{port}" '
            'op="{state}"',
            6,
            (("sev", _updown("5", "1")), ("port", _port("feth1")), ("state", _updown())),
        ),
        "config": Line(
            'pri="6" type="mgmt" recorder="config" index="2000" vsid="0" user="{user}" src="{src}" '
            'result="success" command="firewall policy modify id {n}"',
            6,
            (("n", _rand(1, 99)),),
        ),
    },
    other="config",
    pri=6,
    encoding=("gbk", "strict"),
    transport="tcp-octet",
)

SHAPES: dict[str, Shape] = {
    "hillstone": HILLSTONE,
    "huawei": HUAWEI,
    "h3c": H3C,
    "cisco": _ios("{seq:06d}: *" + BSD + ".{ms:03d}:", "GigabitEthernet1/0/{}"),
    "ruijie": _ios("{seq:06d}: *" + BSD + ":", "GigabitEthernet 0/{}"),
    "sangfor": SANGFOR,
    "topsec": TOPSEC,
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
    return shape.render(kind, ctx)


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
