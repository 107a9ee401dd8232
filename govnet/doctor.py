"""`govnet doctor`: check a deployment and say what to fix (config, inventory, secrets, devices, ports,
disk budget, clock). Exit 2 when the config, inventory or a secret is wrong (what `govnet run` refuses,
checked by the same code: govnet.run.startup_problems), 1 when another finding is an error (a device, a
port, the disk, the clock); warnings alone exit 0.

Secrets are resolved to prove they can be read, and never printed: messages name references only.
"""

from __future__ import annotations

import asyncio
import errno
import io
import itertools
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from core.config import iter_secrets, split_host_port
from core.secrets import Secret, SecretError
from govnet.config import Config, ConfigError, load_config
from govnet.run import startup_problems
from inventory.model import Inventory, SnmpV2c, SnmpV3

Level = Literal["ok", "warn", "error"]
FATAL = ("config", "inventory", "secrets")  # checks whose errors mean a wrong deployment, not a fault
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
_REF = re.compile(r"^(env|file):.+$")
# Clock offsets beyond these make log timestamps (等保 2.0 audit records) and alert times doubtful.
CLOCK_WARN_S = 0.1
CLOCK_ERROR_S = 1.0
# Headroom left on a filesystem after every budget is full (fraction of its size).
DISK_HEADROOM = 0.05
# Devices listed one per line; the rest are named in one line (a core outage silences hundreds).
MAX_DEVICE_LINES = 20


@dataclass(frozen=True)
class Finding:
    """One result of a check: level, area, what was found and, unless ok, what to do about it."""

    level: Level
    check: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Listener:
    """A socket the deployment binds: protocol, host, port and which setting asks for it."""

    proto: Literal["tcp", "udp"]
    host: str
    port: int
    source: str


@dataclass(frozen=True)
class Budget:
    """A folder that grows up to a byte budget (spool, log store, alert state)."""

    path: Path
    budget: int
    source: str


def doctor_command(config: Path, out: TextIO | None = None, snmp_timeout: float = 1.0) -> int:
    """Run every check on the deployment described by `config`, print findings; 1 on any error."""
    stream = out if out is not None else sys.stdout
    findings = run_checks(config, snmp_timeout=snmp_timeout)
    print_findings(config, findings, stream)
    if any(f.level == "error" and f.check in FATAL for f in findings):
        return 2
    return 1 if any(f.level == "error" for f in findings) else 0


def run_checks(config: Path, snmp_timeout: float = 1.0) -> list[Finding]:
    """All findings for a deployment; checks that need a valid config are skipped without one."""
    cfg, findings = check_config(config)
    if cfg is None:
        return findings
    inventory, found = check_inventory(cfg)
    findings += found
    findings += check_startup(cfg, inventory)
    env = read_env_file(config.parent / "syslog.env")
    findings += check_secrets(cfg, inventory)
    if inventory is not None:
        findings += asyncio.run(check_devices(inventory, snmp_timeout))
    findings += check_ports(listeners(cfg, env))
    findings += check_disk(budgets(cfg, env))
    findings += check_clock(ntp_servers())
    return findings


def print_findings(config: Path, findings: list[Finding], out: TextIO) -> None:
    """Plain text, one finding per line, the fix indented below it, then a count."""
    out.write(f"govnet doctor: {config}\n")
    for f in findings:
        out.write(f"  {f.level.upper():<6} {f.check:<10} {f.message}\n")
        if f.fix and f.level != "ok":
            out.write(f"  {'':<6} {'':<10} fix: {f.fix}\n")
    errors = sum(f.level == "error" for f in findings)
    warns = sum(f.level == "warn" for f in findings)
    out.write(f"{errors} error(s), {warns} warning(s)\n")


# --- config and inventory ----------------------------------------------------------------------


def check_config(path: Path) -> tuple[Config | None, list[Finding]]:
    """The config, or the problems that stop it loading (file:line: field: what)."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        fix = "correct the lines above (docs/config.md); `govnet run` refuses this file"
        return None, [Finding("error", "config", p, fix) for p in exc.problems]
    return cfg, [Finding("ok", "config", f"{path} is valid")]


def check_startup(cfg: Config, inventory: Inventory | None) -> list[Finding]:
    """The checks `govnet run` makes before starting, beyond types: input files (certificates, rule
    and trap definition files) readable and loading, names the inventory has (secrets: check_secrets)."""
    fix = "correct the lines above; `govnet run` refuses to start with them"
    return [Finding("error", "config", p, fix) for p in startup_problems(cfg, inventory, secrets=False)]


def check_inventory(cfg: Config) -> tuple[Inventory | None, list[Finding]]:
    """The inventory the config names, or its problems."""
    from inventory.cli import print_problems, summary
    from inventory.load import InventoryError, load_inventory

    try:
        inv = load_inventory(cfg.inventory)
    except InventoryError as exc:
        buf = io.StringIO()
        print_problems(exc.problems, buf)
        fix = f"correct the inventory, then `govnet check-inventory {cfg.inventory}`"
        return None, [Finding("error", "inventory", line, fix) for line in buf.getvalue().splitlines()]
    first = summary(inv).splitlines()[0] if summary(inv) else ""
    return inv, [Finding("ok", "inventory", f"{cfg.inventory}: {first}")]


# --- secrets -----------------------------------------------------------------------------------


def secret_refs(cfg: Config, inventory: Inventory | None) -> dict[tuple[str, str], tuple[Secret, list[str]]]:
    """Every secret reference of the deployment -> (Secret, where it is used)."""
    found: dict[tuple[str, str], tuple[Secret, list[str]]] = {}

    def add(secret: Secret | None, where: str) -> None:
        if secret is None:
            return
        key = (secret.ref, str(getattr(secret, "_base", None)))
        found.setdefault(key, (secret, []))[1].append(where)

    for loc, secret in iter_secrets(cfg):
        add(secret, f"{'.'.join(map(str, loc))} at {cfg.locate(loc)}")
    if inventory is not None:
        owners: list[tuple[str, Any, Any]] = [("defaults", inventory.defaults.snmp, inventory.defaults.ssh)]
        owners += [(d.name, d.snmp, d.ssh) for d in inventory.devices]
        for owner, snmp, ssh in owners:
            for obj, fields in (
                (snmp, ("community", "auth_key", "priv_key")),
                (ssh, ("password", "key_file")),
            ):
                for fname in fields:
                    add(getattr(obj, fname, None), f"{owner}.{fname}")
    return found


def _file_of(secret: Secret) -> Path | None:
    if secret.scheme != "file":
        return None
    path = Path(secret.target)
    base = getattr(secret, "_base", None)
    return path if path.is_absolute() or base is None else Path(base) / path


def check_secrets(cfg: Config, inventory: Inventory | None) -> list[Finding]:
    """Each secret reference resolves to a non-empty value, and secret files are not world-readable."""
    refs = secret_refs(cfg, inventory)
    out: list[Finding] = []
    good = 0
    for secret, used in refs.values():
        where = ", ".join(used[:3]) + (f" and {len(used) - 3} more" if len(used) > 3 else "")
        try:
            empty = secret.resolve() == ""  # the value itself goes nowhere
        except SecretError as exc:
            fix = (
                f"set {secret.target} in /etc/govnet/govnet.env (EnvironmentFile of the unit)"
                if secret.scheme == "env"
                else "create the file with the value alone: install -m 0640 -o root -g govnet /dev/null FILE"
            )
            out.append(Finding("error", "secrets", f"{secret.ref} (used by {where}): {exc}", fix))
            continue
        if empty:
            out.append(
                Finding("error", "secrets", f"{secret.ref} (used by {where}) is empty", "write the value")
            )
            continue
        good += 1
        path = _file_of(secret)
        if path is not None and path.stat().st_mode & 0o007:
            out.append(
                Finding(
                    "warn",
                    "secrets",
                    f"{path} (used by {where}) is readable by every user",
                    f"chmod 0640 {path}; chown root:govnet {path}",
                )
            )
    out.insert(
        0, Finding("ok", "secrets", f"{good}/{len(refs)} secret references resolve (values not shown)")
    )
    if good < len(refs):
        out[0] = Finding(
            "error", "secrets", f"{len(refs) - good}/{len(refs)} secret references do not resolve"
        )
    return out


# --- devices -----------------------------------------------------------------------------------


async def _probe(address: str, creds: SnmpV2c | SnmpV3, wait_s: float) -> str | None:
    """None when the agent answers a GET of sysUpTime, else why not (never a secret)."""
    from gufo.snmp import SnmpAuthError, SnmpError

    from collectors.snmp.engine import WeakCryptoRefused, make_session

    try:
        session = make_session(address, creds, wait_s, 1)
    except (SecretError, WeakCryptoRefused, ValueError) as exc:
        return f"credentials: {exc}"
    try:
        # One overall bound: gufo's per-request timeout, plus SNMPv3 discovery, plus slack.
        async with asyncio.timeout(2 * wait_s + 0.5):
            if isinstance(creds, SnmpV3):
                await session.refresh()
            await session.get(SYS_UPTIME)
    except TimeoutError:
        return f"no SNMP answer within {wait_s:g}s"
    except SnmpAuthError:
        return "SNMPv3 authentication failed"
    except SnmpError as exc:
        return f"SNMP error {type(exc).__name__}"
    except OSError as exc:
        return f"network error: {exc.strerror or exc}"
    except BaseException as exc:
        # gufo's Rust decoder panics on garbage (pyo3 PanicException is a BaseException).
        if type(exc).__name__ != "PanicException":
            raise
        return "malformed SNMP response"
    return None


async def check_devices(inventory: Inventory, wait_s: float = 1.0, concurrency: int = 64) -> list[Finding]:
    """One SNMP GET of sysUpTime per device, all at once (bounded): who does not answer, and why."""
    gate = asyncio.Semaphore(concurrency)
    targets = [(d, c) for d in inventory.devices if (c := inventory.snmp_of(d)) is not None]

    async def one(address: str, creds: SnmpV2c | SnmpV3) -> str | None:
        async with gate:
            return await _probe(address, creds, wait_s)

    results = await asyncio.gather(*(one(d.address, c) for d, c in targets))
    out: list[Finding] = []
    failed = [(d, c, why) for (d, c), why in zip(targets, results, strict=True) if why is not None]
    for device, creds, why in failed[:MAX_DEVICE_LINES]:
        if why.startswith("credentials"):
            fix = "fix the secret reference (see secrets) or this device's SNMP credentials"
        elif "authentication" in why:
            fix = "check the SNMPv3 user and keys in the inventory against the device"
        else:
            fix = (
                "check the device is up, the route from this node, the device's SNMP ACL allows this "
                "node's address, and the credentials (wrong SNMPv3 keys also look like silence)"
            )
        addr = f"{device.address}:{creds.port}"
        out.append(Finding("error", "devices", f"{device.name} ({addr}): {why}", fix))
    if len(failed) > MAX_DEVICE_LINES:
        rest = [d.name for d, _c, _w in failed[MAX_DEVICE_LINES:]]
        names = ", ".join(rest[:50]) + (", ..." if len(rest) > 50 else "")
        out.append(
            Finding("error", "devices", f"{len(rest)} more devices do not answer: {names}", "as above")
        )
    answered = len(targets) - len(failed)
    level: Level = "ok" if not out else "error"
    out.insert(0, Finding(level, "devices", f"{answered}/{len(targets)} devices answer SNMP (sysUpTime)"))
    return out


# --- ports -------------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a systemd EnvironmentFile (comments and blanks skipped); {} if absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    env: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            env[key.strip()] = value.strip().strip("\"'")
    return env


def listeners(cfg: Config, syslog_env: dict[str, str]) -> list[Listener]:
    """The sockets govnet.service and govnet-syslog.service will bind (defaults included)."""
    out: list[Listener] = []
    host, port = split_host_port(cfg.prometheus.listen)
    out.append(Listener("tcp", host or "0.0.0.0", port, "prometheus.listen"))  # noqa: S104
    if cfg.traps is not None:
        host, port = split_host_port(cfg.traps.listen)
        out.append(Listener("udp", host or "0.0.0.0", port, "traps.listen"))  # noqa: S104
    if cfg.api is not None:
        host, port = split_host_port(cfg.api.listen)
        out.append(Listener("tcp", host or "0.0.0.0", port, "api.listen"))  # noqa: S104
    if cfg.syslog is not None:
        sl = cfg.syslog
        for key, proto, p in (("tcp_port", "tcp", sl.tcp_port), ("udp_port", "udp", sl.udp_port),
                              ("tls_port", "tcp", sl.tls_port)):  # fmt: skip
            if p is not None:
                out.append(Listener(proto, sl.listen, p, f"syslog.{key}"))  # type: ignore[arg-type]
    host = syslog_env.get("GOVNET_SYSLOG_LISTEN", "0.0.0.0")  # noqa: S104
    for key, env_proto in (("GOVNET_SYSLOG_TCP_PORT", "tcp"), ("GOVNET_SYSLOG_UDP_PORT", "udp")):
        if syslog_env.get(key, "").isdigit():
            out.append(Listener(env_proto, host, int(syslog_env[key]), f"syslog.env {key}"))  # type: ignore[arg-type]
    tls = re.search(r"--tls-port[ =](\d+)", syslog_env.get("GOVNET_SYSLOG_EXTRA_ARGS", ""))
    if tls:
        out.append(Listener("tcp", host, int(tls.group(1)), "syslog.env GOVNET_SYSLOG_EXTRA_ARGS --tls-port"))
    return out


def _proc_net_inodes(proto: str, port: int) -> set[str]:
    # Listening sockets on `port` from /proc/net (TCP state 0A = LISTEN; UDP 07 = unconnected).
    want = "0A" if proto == "tcp" else "07"
    inodes: set[str] = set()
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == want and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def port_owner(proto: str, port: int) -> tuple[int, str] | None:
    """(pid, command line) of a process holding a listening socket on `port`, when /proc tells."""
    links = {f"socket:[{i}]" for i in _proc_net_inodes(proto, port)}
    if not links:
        return None
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) in links:
                    raw = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    text = raw.decode(errors="replace")[:120]
                    # Another user's command line must not drive this terminal.
                    return int(pid_dir.name), "".join(c if c.isprintable() else "?" for c in text)
        except OSError:
            continue
    return None


def _is_govnet(cmdline: str) -> bool:
    """The command is govnet itself (`govnet run`, `python -m govnet run`), not merely a path naming it."""
    words = cmdline.split()
    if any(Path(w).name == "govnet" for w in words[:2]):
        return True
    return any(a == "-m" and b.split(".")[0] == "govnet" for a, b in itertools.pairwise(words))


def check_port(lis: Listener) -> Finding:
    """Try to bind the socket the service will bind."""
    where = f"{lis.host}:{lis.port}/{lis.proto} ({lis.source})"
    family = socket.AF_INET6 if ":" in lis.host else socket.AF_INET
    kind = socket.SOCK_STREAM if lis.proto == "tcp" else socket.SOCK_DGRAM
    try:
        with socket.socket(family, kind) as s:
            if lis.proto == "tcp":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
            s.bind((lis.host, lis.port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            owner = port_owner(lis.proto, lis.port)
            if owner and _is_govnet(owner[1]):
                return Finding(
                    "warn", "ports", f"{where} is in use by govnet itself (pid {owner[0]}: {owner[1]})",
                    "fine if that is the running service; otherwise stop the stray process",
                )  # fmt: skip
            by = f" by pid {owner[0]} ({owner[1]})" if owner else ""
            fix = "stop that process or choose another port in the config"
            return Finding("error", "ports", f"{where} is in use{by}", fix)
        if exc.errno == errno.EACCES and lis.port < 1024:
            return Finding(
                "warn", "ports", f"{where}: binding a port below 1024 is not permitted to this user",
                "the systemd units grant CAP_NET_BIND_SERVICE; run doctor as root to test the port itself",
            )  # fmt: skip
        if exc.errno == errno.EADDRNOTAVAIL:
            return Finding("error", "ports", f"{where}: {lis.host} is not an address of this host",
                           "use an address of this host, or 0.0.0.0")  # fmt: skip
        return Finding("error", "ports", f"{where}: cannot bind: {exc.strerror}", "check the address")
    return Finding("ok", "ports", f"{where} is free")


def check_ports(items: list[Listener]) -> list[Finding]:
    """Every listener can be bound now."""
    return [check_port(lis) for lis in items]


# --- disk --------------------------------------------------------------------------------------


def budgets(cfg: Config, syslog_env: dict[str, str]) -> list[Budget]:
    """Folders that grow, with their byte budgets."""
    out: list[Budget] = []
    if cfg.influx is not None:
        out.append(Budget(cfg.influx.spool_dir, int(cfg.influx.spool_max_bytes), "influx.spool_max_bytes"))
    store = syslog_env.get("GOVNET_SYSLOG_STORE")
    if store:
        raw = syslog_env.get("GOVNET_SYSLOG_BUDGET_BYTES", "")
        # Without a budget the store grows with retention alone: count at least 10 GiB for it.
        size = int(raw) if raw.isdigit() else 10 * 2**30
        out.append(Budget(Path(store), size, "syslog.env GOVNET_SYSLOG_BUDGET_BYTES"))
    if cfg.alerts is not None and cfg.alerts.state is None:
        out.append(Budget(cfg.alerts.state_db.parent, 256 * 2**20, "alerts.state_db (256 MiB allowance)"))
    return out


def _usage(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_disk(items: list[Budget]) -> list[Finding]:
    """Each filesystem can hold what its folders may still grow to, with headroom left."""
    out: list[Finding] = []
    by_fs: dict[int, list[tuple[Budget, int]]] = {}
    anchors: dict[int, Path] = {}
    for b in items:
        anchor = _existing(b.path)
        if anchor != b.path:
            out.append(
                Finding(
                    "warn",
                    "disk",
                    f"{b.path} ({b.source}) does not exist yet",
                    f"install -d -o govnet -g govnet -m 0750 {b.path} (systemd creates /var/lib/govnet)",
                )
            )
        elif not os.access(b.path, os.W_OK):
            out.append(Finding("error", "disk", f"{b.path} is not writable", f"chown govnet:govnet {b.path}"))
        dev = os.stat(anchor).st_dev
        anchors.setdefault(dev, anchor)
        used = _usage(b.path) if anchor == b.path else 0
        by_fs.setdefault(dev, []).append((b, used))
    for dev, members in by_fs.items():
        st = os.statvfs(anchors[dev])
        free, size = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        growth = sum(max(0, b.budget - used) for b, used in members)
        names = ", ".join(f"{b.path} {_gib(b.budget)}" for b, _ in members)
        msg = f"filesystem of {anchors[dev]}: {_gib(free)} free; budgets ({names}) may grow {_gib(growth)}"
        if growth > free:
            fix = "free space, grow the filesystem, or lower spool_max_bytes / GOVNET_SYSLOG_BUDGET_BYTES"
            out.append(Finding("error", "disk", msg, fix))
        elif free - growth < DISK_HEADROOM * size:
            out.append(Finding("warn", "disk", msg + " (little headroom left)", "keep 5% of the disk free"))
        else:
            out.append(Finding("ok", "disk", msg))
    return out


# --- clock -------------------------------------------------------------------------------------


def ntp_servers() -> list[str]:
    """NTP servers configured on this host (chrony, systemd-timesyncd, ntpd), if any."""
    servers: list[str] = []
    for conf in ("/etc/chrony/chrony.conf", "/etc/chrony.conf", "/etc/ntp.conf", "/etc/ntpsec/ntp.conf"):
        try:
            for line in Path(conf).read_text().splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0] in ("server", "pool", "peer"):
                    servers.append(parts[1])
        except OSError:
            continue
    for key, _sep, value in (
        line.partition("=") for line in _read_lines("/etc/systemd/timesyncd.conf") if not line.startswith("#")
    ):
        if key.strip() == "NTP":
            servers += value.split()
    return servers


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


_NTP_EPOCH = 2208988800  # 1900-01-01 -> 1970-01-01


def sntp_offset(server: str, port: int = 123, timeout: float = 1.0) -> float:
    """Clock offset (server - local, seconds) from one SNTP exchange (RFC 4330); OSError on failure."""
    addr = socket.getaddrinfo(server, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(addr[0], socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        t0 = time.time()
        req = bytearray(48)
        req[0] = 0x23  # LI 0, version 4, mode 3 (client)
        secs = int(t0) + _NTP_EPOCH
        struct.pack_into("!II", req, 40, secs, int((t0 % 1) * 2**32))
        s.sendto(bytes(req), addr[4])
        data, _ = s.recvfrom(512)
        t3 = time.time()
    if len(data) < 48 or data[0] & 0x07 != 4:
        raise OSError("not an NTP server reply")
    t1 = _ntp_time(data, 32)
    t2 = _ntp_time(data, 40)
    return ((t1 - t0) + (t2 - t3)) / 2


def _ntp_time(data: bytes, offset: int) -> float:
    secs, frac = struct.unpack_from("!II", data, offset)
    return float(secs - _NTP_EPOCH + frac / 2**32)


def _chrony_offset() -> float | None:
    if shutil.which("chronyc") is None:
        return None
    try:
        text = subprocess.run(
            ["chronyc", "-n", "tracking"], capture_output=True, text=True, timeout=3, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"System time\s*:\s*([\d.]+) seconds (fast|slow)", text)
    if not m or "Not synchronised" in text:
        return None
    return float(m.group(1)) * (1 if m.group(2) == "fast" else -1)


def _timedatectl_synced() -> bool | None:
    if shutil.which("timedatectl") is None:
        return None
    try:
        proc = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=3,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = proc.stdout.strip()
    return None if proc.returncode != 0 or value not in ("yes", "no") else value == "yes"


def clock_finding(offset: float, how: str) -> Finding:
    """Judge a measured offset."""
    msg = f"clock offset {offset * 1000:+.1f} ms ({how})"
    fix = "let chrony/timesyncd step and discipline the clock against the extranet's NTP server"
    if abs(offset) >= CLOCK_ERROR_S:
        return Finding("error", "clock", msg, fix)
    if abs(offset) >= CLOCK_WARN_S:
        return Finding("warn", "clock", msg, fix)
    return Finding("ok", "clock", msg)


def check_clock(servers: list[str]) -> list[Finding]:
    """Clock offset from chrony, else an SNTP query of a configured server, else timedatectl's
    synchronised flag, else "unknown" (devices' clocks cannot be read over SNMP sysUpTime)."""
    offset = _chrony_offset()
    if offset is not None:
        return [clock_finding(offset, "chronyc tracking")]
    for server in servers[:3]:
        host, sep, port = server.rpartition(":")
        host, port_n = (host, int(port)) if sep and port.isdigit() and ":" not in host else (server, 123)
        try:
            return [clock_finding(sntp_offset(host, port_n), f"SNTP query of {server}")]
        except OSError:
            continue
    synced = _timedatectl_synced()
    if synced is True:
        return [Finding("ok", "clock", "synchronised per timedatectl (offset not reported)")]
    fix = (
        "install chrony (or enable systemd-timesyncd) pointed at the extranet's NTP server: log and "
        "alert timestamps, and 等保 audit records, depend on it"
    )
    if synced is False:
        return [Finding("warn", "clock", "not synchronised (timedatectl NTPSynchronized=no)", fix)]
    tried = f"; no answer from {', '.join(servers[:3])}" if servers else ""
    return [
        Finding("warn", "clock", f"clock offset unknown: no chrony, timedatectl or NTP server{tried}", fix)
    ]
