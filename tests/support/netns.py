"""A real net-snmp agent in a network namespace with many veth interfaces, for acceptance tests and benches.

Layout (all names carry the `gvt6-`/`gv6` prefix and the creating PID, so leftovers of a dead run can be
found and removed without touching anything else):

    root ns  gv6h<pid><seq> 10.250.H.1/30 ──veth── gv6up 10.250.H.2/30  agent ns (snmpd on 10.250.H.2:161)
                                                   gv6e<i> 10.250.128+.x/30 ──veth── gv6p<i>  peer ns

The kernel here has no `dummy` driver, so every agent interface is one end of a veth pair whose other end
sits in the peer namespace.  IPv6 is disabled in both namespaces and every data link has a permanent
neighbour entry with a MAC nobody owns: the only frames on a data link are the ones `send()` puts there,
and the receiver drops them (PACKET_OTHERHOST) without answering, so octet counters move by exactly the
bytes sent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.support.procs import stop

NS_PREFIX = "gvt6-"
LINK_PREFIX = "gv6"
HOST_NET = ipaddress.IPv4Network("10.250.0.0/17")  # /30s for root <-> agent links
DATA_NET = ipaddress.IPv4Network("10.250.128.0/17")  # /30s for agent <-> peer links
NOBODY_MAC = "02:67:76:36:00:01"  # locally administered, owned by no interface
ETH_IP_UDP_OVERHEAD = 14 + 20 + 8  # veth counts the Ethernet header, no FCS
SNMPD = "/usr/sbin/snmpd"
_NS_RE = re.compile(r"^gvt6-(\d+)-\d+-(agent|peer)$")
_TMP_RE = re.compile(r"^gvt6-(\d+)-[a-z0-9_]+$")  # work dirs: gvt6-<pid>-<mkdtemp suffix>
_HOST_IF_RE = re.compile(r"^gv6h([0-9a-f]+)x[0-9a-f]+$")
_seq = 0


class NetnsError(RuntimeError):
    """Setting up the namespace lab failed."""


def _run(*args: str, input_text: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(list(args), input=input_text, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(args[:6])}: rc={proc.returncode}: {proc.stderr.strip()[:500]}")
    return proc.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kernel_supports_netns() -> bool:
    """True when we are root and the kernel has network namespaces and veth."""
    if os.geteuid() != 0 or not Path("/proc/self/ns/net").exists() or shutil.which("ip") is None:
        return False
    name = f"{NS_PREFIX}{os.getpid()}-999-agent"
    try:
        _run("ip", "netns", "add", name)
        try:
            _run("ip", "-n", name, "link", "add", "gv6probe0", "type", "veth", "peer", "name", "gv6probe1")
        finally:
            _kill_ns_processes(name)
            _run("ip", "netns", "del", name, check=False)
    except (NetnsError, OSError, subprocess.SubprocessError):
        return False
    return True


def _kill_ns_processes(ns: str) -> None:
    out = _run("ip", "netns", "pids", ns, check=False)
    for token in out.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(token), signal.SIGKILL)


def cleanup_stale() -> list[str]:
    """Remove `gvt6-*` namespaces, `gv6h*` links and work dirs left by dead processes; return them."""
    removed: list[str] = []
    for line in _run("ip", "netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NS_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _kill_ns_processes(name)
            _run("ip", "netns", "del", name, check=False)
            removed.append(name)
    for line in _run("ip", "-o", "link", "show", check=False).splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        ifname = parts[1].strip().split("@")[0]
        m = _HOST_IF_RE.match(ifname)
        if m and not _pid_alive(int(m.group(1), 16)):
            _run("ip", "link", "del", ifname, check=False)
            removed.append(ifname)
    for path in Path(tempfile.gettempdir()).glob(f"{NS_PREFIX}*-*"):
        m = _TMP_RE.match(path.name)
        if m and path.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


@dataclass(frozen=True)
class DataLink:
    """One agent interface (`agent_if`, in the agent ns) and its veth peer (`peer_if`, in the peer ns)."""

    position: int
    agent_if: str
    peer_if: str
    agent_addr: str
    peer_addr: str


@dataclass(frozen=True)
class V3User:
    """An SNMPv3 USM user of the lab agent (SHA-256 auth, AES-128 privacy)."""

    name: str
    auth_pass: str
    priv_pass: str


@dataclass
class SnmpAgentNetns:
    """A real snmpd in its own namespace with `n_links` veth interfaces; use as a context manager."""

    n_links: int = 48
    community: str = field(default_factory=lambda: "c" + secrets.token_hex(8))
    v3: V3User = field(
        default_factory=lambda: V3User("gvt6user", "a" + secrets.token_hex(10), "p" + secrets.token_hex(10))
    )
    sys_name: str = "gvt6-agent"
    agent_ns: str = ""
    peer_ns: str = ""
    host_if: str = ""
    host_addr: str = ""
    address: str = ""  # where snmpd listens (UDP 161), reachable from the root namespace
    links: list[DataLink] = field(default_factory=list)
    workdir: Path | None = None
    _snmpd: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> SnmpAgentNetns:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Create namespaces and links, start snmpd, wait until it answers."""
        global _seq
        cleanup_stale()
        _seq += 1
        pid = os.getpid()
        self.agent_ns = f"{NS_PREFIX}{pid}-{_seq}-agent"
        self.peer_ns = f"{NS_PREFIX}{pid}-{_seq}-peer"
        self.host_if = f"gv6h{pid:x}x{_seq:x}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{NS_PREFIX}{pid}-"))
        for ns in (self.agent_ns, self.peer_ns):
            _run("ip", "netns", "add", ns)
            for key in ("all", "default"):
                _run("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        self._make_host_link()
        self._make_data_links()
        self._start_snmpd()

    def stop(self) -> None:
        """Stop snmpd and delete everything this instance created (safe to call twice)."""
        stop(self._snmpd, 5)
        self._snmpd = None
        if self._log is not None:
            self._log.close()
            self._log = None
        for ns in (self.agent_ns, self.peer_ns):
            if ns:
                _kill_ns_processes(ns)
                _run("ip", "netns", "del", ns, check=False)
        if self.host_if:
            _run("ip", "link", "del", self.host_if, check=False)  # normally gone with the agent ns
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- construction ---------------------------------------------------------------------------------------
    def _make_host_link(self) -> None:
        used = set(re.findall(r"inet (10\.250\.\d+\.\d+)/", _run("ip", "-4", "-o", "addr", "show")))
        subnets = list(HOST_NET.subnets(new_prefix=30))
        start = (os.getpid() * 7 + _seq * 131) % len(subnets)
        for k in range(len(subnets)):
            net = subnets[(start + k) % len(subnets)]
            host, agent = (str(a) for a in list(net.hosts())[:2])
            if host not in used and agent not in used:
                break
        else:
            raise NetnsError("no free /30 in 10.250.0.0/17")
        _run(
            "ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "gv6up", "netns", self.agent_ns
        )
        _run("ip", "addr", "add", f"{host}/30", "dev", self.host_if)
        _run("ip", "link", "set", self.host_if, "up")
        _run("ip", "-n", self.agent_ns, "addr", "add", f"{agent}/30", "dev", "gv6up")
        _run("ip", "-n", self.agent_ns, "link", "set", "gv6up", "up")
        self.host_addr, self.address = host, agent

    def _make_data_links(self) -> None:
        subnets = DATA_NET.subnets(new_prefix=30)
        agent_cmds: list[str] = []
        peer_cmds: list[str] = []
        for i in range(self.n_links):
            a_addr, p_addr = (str(x) for x in list(next(subnets).hosts())[:2])
            link = DataLink(i, f"gv6e{i}", f"gv6p{i}", a_addr, p_addr)
            self.links.append(link)
            agent_cmds += [
                f"link add {link.agent_if} type veth peer name {link.peer_if} netns {self.peer_ns}",
                f"addr add {a_addr}/30 dev {link.agent_if}",
                f"link set {link.agent_if} up",
            ]
            peer_cmds += [f"addr add {p_addr}/30 dev {link.peer_if}", f"link set {link.peer_if} up"]
        _run("ip", "-n", self.agent_ns, "-batch", "-", input_text="\n".join(agent_cmds) + "\n")
        _run("ip", "-n", self.peer_ns, "-batch", "-", input_text="\n".join(peer_cmds) + "\n")
        # Neighbour entries only once both ends are up (a link going up flushes its neighbours).
        agent_neigh = [
            f"neigh replace {lk.peer_addr} lladdr {NOBODY_MAC} dev {lk.agent_if} nud permanent"
            for lk in self.links
        ]
        peer_neigh = [
            f"neigh replace {lk.agent_addr} lladdr {NOBODY_MAC} dev {lk.peer_if} nud permanent"
            for lk in self.links
        ]
        if self.links:
            _run("ip", "-n", self.agent_ns, "-batch", "-", input_text="\n".join(agent_neigh) + "\n")
            _run("ip", "-n", self.peer_ns, "-batch", "-", input_text="\n".join(peer_neigh) + "\n")

    def _start_snmpd(self) -> None:
        assert self.workdir is not None
        persist = self.workdir / "persist"
        persist.mkdir()
        conf = self.workdir / "snmpd.conf"
        conf.write_text(
            f"agentaddress udp:{self.address}:161\n"
            f"rocommunity {self.community} {self.host_addr}\n"
            f"createUser {self.v3.name} SHA-256 {self.v3.auth_pass} AES {self.v3.priv_pass}\n"
            f"rouser {self.v3.name} priv\n"
            f"sysName {self.sys_name}\n"
            "sysLocation gvt6 netns lab\n"
            "sysContact nobody\n"
            "dontLogTCPWrappersConnects yes\n",
            encoding="utf-8",
        )
        conf.chmod(0o600)
        pidfile = self.workdir / "snmpd.pid"
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(persist), "MIBS": ""}
        self._log = (self.workdir / "snmpd.log").open("wb")
        self._snmpd = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.agent_ns,
                SNMPD,
                "-f",
                "-Lo",
                "-C",
                "-c",
                str(conf),
                "-p",
                str(pidfile),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._snmpd.poll() is not None:
                raise NetnsError(f"snmpd exited rc={self._snmpd.returncode}: {self.snmpd_log()[-800:]}")
            probe = subprocess.run(
                [*self.snmp_cmd("snmpget", "-t", "0.5", "-r", "0"), ".1.3.6.1.2.1.1.5.0"],
                capture_output=True,
                text=True,
                env=self.client_env(),
            )
            if probe.returncode == 0 and self.sys_name in probe.stdout:
                return
            time.sleep(0.2)
        raise NetnsError(f"snmpd did not answer within 20 s: {self.snmpd_log()[-800:]}")

    # -- helpers for tests ----------------------------------------------------------------------------------
    @property
    def snmpd_pid(self) -> int:
        """PID of the snmpd process (the `ip netns exec` wrapper execs it, so the same PID)."""
        assert self._snmpd is not None
        return self._snmpd.pid

    def snmpd_log(self) -> str:
        """What snmpd wrote so far."""
        if self.workdir is None or not (self.workdir / "snmpd.log").exists():
            return ""
        return (self.workdir / "snmpd.log").read_text(errors="replace")

    def client_env(self) -> dict[str, str]:
        """Environment for net-snmp clients: no MIB loading, the v3 user's keys from a private snmp.conf."""
        assert self.workdir is not None
        client = self.workdir / "client"
        if not client.exists():
            client.mkdir(mode=0o700)
            (client / "snmp.conf").write_text(
                f"defSecurityName {self.v3.name}\ndefSecurityLevel authPriv\n"
                f"defAuthType SHA-256\ndefAuthPassphrase {self.v3.auth_pass}\n"
                f"defPrivType AES\ndefPrivPassphrase {self.v3.priv_pass}\n",
                encoding="utf-8",
            )
        return {**os.environ, "MIBS": "", "SNMPCONFPATH": str(client), "HOME": str(client)}

    def snmp_cmd(self, tool: str, *opts: str, v3: bool = False) -> list[str]:
        """A net-snmp command line (`snmpget`, `snmpbulkwalk`...) for the agent; run it with client_env()."""
        auth = ["-v3"] if v3 else ["-v2c", "-c", self.community]
        return [tool, *auth, *opts, "-On", f"udp:{self.address}:161"]

    def walk(self, *oids: str, v3: bool = False) -> dict[str, str]:
        """snmpbulkwalk each OID subtree with net-snmp; {numeric oid without leading dot: value text}."""
        out: dict[str, str] = {}
        for oid in oids:
            proc = subprocess.run(
                [*self.snmp_cmd("snmpbulkwalk", "-Oq", "-Oe", "-Cr25", "-t", "3", "-r", "1", v3=v3), oid],
                capture_output=True,
                text=True,
                env=self.client_env(),
                timeout=60,
            )
            if proc.returncode != 0:
                raise NetnsError(f"snmpbulkwalk {oid}: rc={proc.returncode}: {proc.stderr.strip()[:300]}")
            for line in proc.stdout.splitlines():
                key, _, value = line.partition(" ")
                out[key.lstrip(".")] = value.strip().strip('"')
        return out

    def link_named(self, agent_if: str) -> DataLink:
        """The data link whose agent-side interface is `agent_if`."""
        for link in self.links:
            if link.agent_if == agent_if:
                return link
        raise KeyError(agent_if)

    def set_link(self, link: DataLink, up: bool) -> None:
        """Bring the agent side of a data link down or up (a real link failure)."""
        _run("ip", "-n", self.agent_ns, "link", "set", link.agent_if, "up" if up else "down")
        if up:  # bringing a link up flushes its neighbours; restore the no-reply entry
            _run(
                "ip",
                "-n",
                self.agent_ns,
                "neigh",
                "replace",
                link.peer_addr,
                "lladdr",
                NOBODY_MAC,
                "dev",
                link.agent_if,
                "nud",
                "permanent",
            )

    def kernel_counters(self, link: DataLink) -> tuple[int, int]:
        """(rx_bytes, tx_bytes) of the agent-side interface as the kernel counts them."""
        base = f"/sys/class/net/{link.agent_if}/statistics/"
        out = _run("ip", "netns", "exec", self.agent_ns, "cat", base + "rx_bytes", base + "tx_bytes")
        rx, tx = out.split()
        return int(rx), int(tx)

    def _sender(
        self, link: DataLink, direction: str, payload: int, count: int, pps: float, duration_s: float
    ) -> list[str]:
        """The command line of _SENDER across `link`, out of the agent or into it."""
        ns, dst = (self.agent_ns, link.peer_addr) if direction == "out" else (self.peer_ns, link.agent_addr)
        args = (dst, payload, count, pps, duration_s)
        return ["ip", "netns", "exec", ns, sys.executable, "-c", _SENDER, *map(str, args)]

    def send(self, link: DataLink, packets: int, payload: int = 1000, direction: str = "out") -> int:
        """Send `packets` UDP datagrams across `link` (out of or into the agent); return bytes on the wire."""
        _run(*self._sender(link, direction, payload, packets, 0, 0))
        return packets * (payload + ETH_IP_UDP_OVERHEAD)

    def start_steady(
        self,
        link: DataLink,
        bytes_per_s: float,
        duration_s: float,
        payload: int = 1000,
        direction: str = "out",
    ) -> subprocess.Popen[str]:
        """Start sending at a steady wire rate (bytes/s incl. headers) for `duration_s`; return the sender."""
        pps = bytes_per_s / (payload + ETH_IP_UDP_OVERHEAD)
        return subprocess.Popen(
            self._sender(link, direction, payload, 0, pps, duration_s),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


# A tiny UDP sender run inside a namespace: argv = dst payload count pps duration.
# count > 0: send that many as fast as possible; else send at `pps` for `duration` seconds, pacing on
# the clock (catching up after scheduling hiccups) so the long-run rate is exact.  Prints packets sent.
_SENDER = r"""
import socket, sys, time
dst, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pps, dur = float(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
data = b"g" * size
sent = 0
w0 = time.time()
if count > 0:
    for _ in range(count):
        s.sendto(data, (dst, 9))
    sent = count
else:
    t0 = time.monotonic()
    total = int(pps * dur)
    while sent < total:
        due = min(total, int((time.monotonic() - t0) * pps) + 1)
        while sent < due:
            s.sendto(data, (dst, 9))
            sent += 1
        time.sleep(max(0.0, t0 + sent / pps - time.monotonic()))
print(sent, w0, time.time())
"""


@dataclass(frozen=True)
class SendReport:
    """What a finished sender did: packets, wire bytes, and wall-clock first/last send times."""

    packets: int
    wire_bytes: int
    started: float
    finished: float

    @property
    def rate(self) -> float:
        """Wire bytes per second over the sending period."""
        return self.wire_bytes / max(1e-9, self.finished - self.started)


def sender_report(proc: subprocess.Popen[str], payload: int, timeout: float) -> SendReport:
    """Wait for a sender started by start_steady() and parse what it did."""
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise NetnsError(f"sender failed rc={proc.returncode}: {err[-300:]}")
    packets, started, finished = out.split()
    n = int(packets)
    return SendReport(n, n * (payload + ETH_IP_UDP_OVERHEAD), float(started), float(finished))


@contextlib.contextmanager
def snmp_agent_netns(n_links: int = 48) -> Iterator[SnmpAgentNetns]:
    """Context manager: a started SnmpAgentNetns, always torn down."""
    lab = SnmpAgentNetns(n_links=n_links)
    with lab:
        yield lab
