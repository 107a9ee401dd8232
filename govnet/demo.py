"""`make demo`: the whole product on the example district, simulated on loopback, nothing to configure.

The lab (SNMP agents, vendor SSH CLIs, syslog and traps from the devices), `govnet run` with every
section (alerts, api + console, syslog, traps, ICMP probes, SSH config backups, backup verification,
the database pair when PostgreSQL is installed), a notification sink that prints every page in
Chinese, Prometheus, VictoriaMetrics and Grafana when they are installed. Console users for each
role get random passwords, printed once. Everything started here is a child process or thread we
own; Ctrl-C (or SIGTERM) stops each, by PID, and a second run starts cleanly.

Ports and addresses are overridable, so a test can run the demo next to anything else:
`--host` / GOVNET_DEMO_HOST, `--port-base` / GOVNET_DEMO_PORT_BASE (every port = base + offset),
`--lab-base` / GOVNET_DEMO_LAB_BASE, `--run-dir` / GOVNET_DEMO_DIR, `--without prometheus,...`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, fields
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from lab.pgpair import PgPair, postgres_bin

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "examples" / "district.yaml"
ROLES = ("admin", "engineer", "oncall", "auditor")
ROLE_ZH = {"admin": "管理员", "engineer": "网络工程师", "oncall": "值班人员", "auditor": "审计员"}
OPTIONAL = ("prometheus", "victoria-metrics", "grafana", "postgres")
POLL_INTERVAL = "15s"  # the district's 30 s, halved so the tour's effects show quickly
BACKUP_DEVICES_MAX = 6  # SSH config backups: cores and a few aggregation points (the tour's targets)

_print_lock = threading.Lock()


def say(text: str = "") -> None:
    """One block to the terminal (stdout), whole, even when sinks print from other threads."""
    with _print_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


@dataclass(frozen=True)
class Ports:
    """Every port the demo listens on (defaults: the well-known ones; with a base: base + offset)."""

    metrics: int = 9810
    api: int = 9820
    syslog: int = 1514
    traps: int = 1162
    hook: int = 9830
    smtp: int = 9825
    prometheus: int = 9090
    vm: int = 8428
    grafana: int = 3000
    portal: int = 9840  # the district's website, watched by the service checks
    lab_snmp: int = 16161
    lab_ssh: int = 2222
    pg: int = 15432  # and pg + 1 for the standby: keep pg last

    @classmethod
    def from_base(cls, base: int | None) -> Ports:
        """Defaults, or `base + i` for the i-th field (the PostgreSQL standby takes one more)."""
        if base is None:
            return cls()
        return cls(*(base + i for i, _ in enumerate(fields(cls))))


# --- helpers -----------------------------------------------------------------------------------------


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def _secret_file(path: Path) -> str:
    if not path.exists():
        _write_secret(path, secrets.token_urlsafe(32))
    return f"file:{path}"


def _wait_http(url: str, timeout: float, stop: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (a loopback URL we built)
                if resp.status < 500:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def _wait_polled(url: str, devices: int, timeout: float, stop: threading.Event) -> bool:
    """True once /metrics has a govnet_up series for `devices` devices (False on timeout or stop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (a loopback URL we built)
                text = resp.read().decode("utf-8", "replace")
            if text.count("\ngovnet_up{") >= devices:
                return True
        except OSError:
            pass
        time.sleep(1.0)
    return False


class Children:
    """Child processes we started, stopped in reverse order, each by PID."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `cmd` in its own session (a terminal's Ctrl-C reaches only us; we stop it ourselves)."""
        with (self.log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.procs.append((name, proc))
        return proc

    def dead(self) -> list[str]:
        """Names of children that exited on their own."""
        return [f"{n} (exit {p.returncode})" for n, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        """SIGTERM each (newest first), then SIGKILL what is still there after 15 s."""
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    say(f"! {name} (pid {proc.pid}) ignored SIGTERM; killing")
                    proc.kill()
                    proc.wait(timeout=5)
        self.procs.clear()


def _demo_inventory(
    lab_inventory: Path, run_dir: Path, host: str, ports: Ports
) -> tuple[Path, list[str], list[str]]:
    """The lab's inventory with a shorter poll interval, backup jobs on demo files and service checks
    of the demo's own website, console and syslog port.

    Returns the file, the devices whose configs are backed up and the backup job hosts.
    """
    doc = yaml.safe_load(lab_inventory.read_text(encoding="utf-8"))
    doc.setdefault("defaults", {})["poll_interval"] = POLL_INTERVAL
    for d in doc["devices"]:
        if d.get("poll_interval"):
            d["poll_interval"] = POLL_INTERVAL
    hosts = []
    for job in doc.get("backup_jobs") or []:
        job["path"] = str(run_dir / "backups" / job["name"])
        hosts.append(job["host"])
    by_role = {
        r: [d["name"] for d in doc["devices"] if d["role"] == r and d.get("ssh")]
        for r in ("core_switch", "aggregation_switch")
    }
    backed = (by_role["core_switch"] + by_role["aggregation_switch"])[:BACKUP_DEVICES_MAX]
    doc["services"] = _demo_services(doc, host, ports)
    out = run_dir / "inventory.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out, backed, sorted(set(hosts))


def _demo_services(doc: dict[str, Any], host: str, ports: Ports) -> list[dict[str, Any]]:
    """Service checks on loopback: the portal (with the defacement watch), the console, syslog over TCP."""
    dc = next((s["name"] for s in doc["sites"] if s.get("kind") == "datacentre"), doc["sites"][0]["name"])
    ncc = next((s["name"] for s in doc["sites"] if s.get("kind") == "control_centre"), dc)
    return [
        {"name": "portal", "description": "区政府门户网站", "owner": {"unit": "区政府办公室", "site": dc},
         "type": "http", "target": f"http://{host}:{ports.portal}/", "interval": "20s", "timeout": "5s",
         "expect": {"contains": ["政务公开"]}, "content": {"volatile_selectors": ["#visit-count"]}},
        {"name": "console", "description": "govnet 控制台", "owner": {"unit": "区大数据中心", "site": ncc},
         "type": "http", "target": f"http://{host}:{ports.api}/login", "interval": "20s", "timeout": "5s"},
        {"name": "syslog-tcp", "description": "安全日志接收（TCP）",
         "owner": {"unit": "区大数据中心", "site": ncc},
         "type": "tcp", "target": f"{host}:{ports.syslog}", "interval": "20s", "timeout": "5s"},
    ]  # fmt: skip


PORTAL_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>某区人民政府</title></head>
<body><h1>某区人民政府门户网站</h1>
<ul><li>政务公开</li><li>政务服务</li><li>互动交流</li></ul>
<p>访问量：<span id="visit-count">0</span></p>
</body></html>
"""


class Portal:
    """The district's website for the service checks: a static page served from `root` (edit its
    index.html while the demo runs to see the defacement watch)."""

    def __init__(self, root: Path, host: str, port: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text(PORTAL_PAGE, encoding="utf-8")
        handler = functools.partial(_QuietFiles, directory=str(root))
        self.server = ThreadingHTTPServer((host, port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="demo-portal", daemon=True)

    def start(self) -> None:
        """Serve in a thread."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _demo_backups(inventory: Path, now: float) -> int:
    """Backup files for every job: a week of nightly dumps and configs, manual ones a few days old."""
    doc = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    count = 0
    for job in doc.get("backup_jobs") or []:
        folder = Path(job["path"])
        folder.mkdir(parents=True, exist_ok=True)
        manual = job.get("mode") == "manual"
        ages = [3] if manual else list(range(7))  # days
        for age in ages:
            t = now - age * 86400 - 3600
            name = f"{job['name']}-{time.strftime('%Y%m%d', time.localtime(t))}.sql.gz"
            path = folder / name
            if not path.exists():
                body = "".join(
                    f"INSERT INTO audit_log VALUES ({i}, '{job['host']}', 'demo row {i}');\n"  # noqa: S608 (file text)
                    for i in range(3000)
                )
                path.write_bytes(gzip.compress(f"-- govnet demo backup of {job['host']}\n{body}".encode(), 6))
            os.utime(path, (t, t))
            count += 1
    return count


def _trust(inventory: Path, devices: list[str], known_hosts: Path) -> list[str]:
    """`govnet ssh trust` each backed-up device (what an operator does once); returns the failures."""
    from collectors.ssh.cli import trust_command

    failed = []
    for dev in devices:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            if trust_command(inventory, dev, known_hosts) != 0:
                failed.append(dev)
    return failed


def _first_backup(inventory: Path, ssh_state: Path, devices: list[str]) -> tuple[float, float]:
    """`govnet ssh backup` of the backed-up devices before govnet runs; returns when it began and ended."""
    from collectors.ssh.cli import backup_command

    began = time.time()
    if devices:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            backup_command(inventory, ssh_state, devices)
    return began, time.time()


def _users(state_dir: Path) -> dict[str, tuple[str, str]]:
    """Fresh console users, one per role, with random passwords: role -> (user, password)."""
    from api.auth import AuthDB

    for suffix in ("", "-wal", "-shm"):
        (state_dir / f"users.db{suffix}").unlink(missing_ok=True)
    db = AuthDB(state_dir / "users.db")
    out = {}
    try:
        for role in ROLES:
            user, password = f"demo-{role}", secrets.token_urlsafe(12)
            db.add_user(user, role, password)
            out[role] = (user, password)
    finally:
        db.close()
    return out


def _grafana(children: Children, run_dir: Path, host: str, ports: Ports) -> str | None:
    """Provision and start grafana-server when it is installed (it is in no registry here)."""
    binary = shutil.which("grafana-server") or shutil.which("grafana")
    if binary is None:
        return None
    home = next(
        (
            p
            for p in (Path(binary).resolve().parent.parent / "share" / "grafana", Path("/usr/share/grafana"))
            if (p / "conf" / "defaults.ini").exists()
        ),
        None,
    )
    if home is None:
        return None
    gdir = run_dir / "grafana"
    (gdir / "data").mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    env = {
        "GF_SERVER_HTTP_ADDR": host,
        "GF_SERVER_HTTP_PORT": str(ports.grafana),
        "GF_PATHS_DATA": str(gdir / "data"),
        "GF_PATHS_LOGS": str(gdir),
        "GF_PATHS_PROVISIONING": str(ROOT / "grafana" / "provisioning"),
        "GF_SECURITY_ADMIN_PASSWORD": password,
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GOVNET_PROMETHEUS_URL": f"http://{host}:{ports.prometheus}",
        "GOVNET_VICTORIAMETRICS_URL": f"http://{host}:{ports.vm}",
        "GOVNET_GRAFANA_DASHBOARDS": str(ROOT / "grafana" / "dashboards"),
    }
    cmd = [binary] + (["server"] if Path(binary).name == "grafana" else []) + ["--homepath", str(home)]
    children.start("grafana", cmd, env)
    return password


@dataclass
class _Setup:
    """What the start-up prepared for `govnet run`: files, devices, secrets."""

    inventory: Path
    backed: list[str]  # devices whose configuration is backed up over SSH
    backup_hosts: list[str]  # hosts of the backup jobs (their files are local demo files)
    state: Path
    secrets: Path
    known_hosts: Path
    first_backup: tuple[float, float]  # when the first config backups began and ended


def _db_pair(
    inventory: Path, ports: Ports, secrets_dir: Path, without: frozenset[str]
) -> tuple[PgPair | None, dict[str, Any], str]:
    """The database pair on the lab's database servers when PostgreSQL is installed.

    Returns the running pair (or None), the `ssh.db` section reading it over SQL, and a note saying
    what runs (or why nothing does).
    """
    pair: PgPair | None = None
    pg_note = "PostgreSQL not installed: the database pair (dc-db) is not simulated"
    pg_bin = postgres_bin()
    db_section: dict[str, Any] = {"enabled": False}
    if pg_bin is not None and "postgres" not in without:
        doc = yaml.safe_load(inventory.read_text(encoding="utf-8"))
        group = next((g for g in doc.get("ha_groups") or [] if g["kind"] == "database"), None)
        addr = {d["name"]: d["address"] for d in doc["devices"]}
        if group is not None:
            a, b = (m["device"] for m in group["members"][:2])
            pair = PgPair(pg_bin, (addr[a], ports.pg), (addr[b], ports.pg + 1))
            try:
                pair.start()
                _write_secret(secrets_dir / "pg_monitor", pair.password)
                access = {
                    "transport": "sql",
                    "dbname": "postgres",
                    "user": "govnet_monitor",
                    "password": f"file:{secrets_dir / 'pg_monitor'}",
                    "sslmode": "disable",
                }
                db_section = {
                    "interval": "15s",
                    "groups": [group["name"]],
                    "access": {a: {**access, "port": ports.pg}, b: {**access, "port": ports.pg + 1}},
                }
                pg_note = (
                    f"PostgreSQL primary {a} {addr[a]}:{ports.pg}, hot standby {b} {addr[b]}:{ports.pg + 1}"
                )
            except (subprocess.SubprocessError, OSError) as exc:
                pair.stop()
                pair = None
                pg_note = f"PostgreSQL pair did not start: {type(exc).__name__}: {str(exc)[:200]}"
    elif "postgres" in without:
        pg_note = "database pair left out (--without postgres)"

    return pair, db_section, pg_note


def _run_config(
    opts: Options, setup: _Setup, console: str, lab_secrets: Path, db_section: dict[str, Any]
) -> dict[str, Any]:
    """The `govnet run` config of the demo: every section, on the demo's addresses and files."""
    host, ports, run_dir = opts.host, opts.ports, opts.run_dir
    state, secrets_dir, backed = setup.state, setup.secrets, setup.backed
    now = time.time()
    config: dict[str, Any] = {
        "inventory": str(setup.inventory),
        "prometheus": {"listen": f"{host}:{ports.metrics}"},
        "scheduler": {"timeout": "2s", "retries": 1},
        "links": {"interval": "30s"},  # declared links checked against the lab's LLDP
        "log_level": "warning",
        "alerts": {
            "rules": ["default"],
            "state_db": str(state / "alerts" / "alerts.db"),
            "evaluate_interval": "5s",
            "report_category": "state",
            "console_url": console,
            # The rota starts with this run, so the first person is on call now, whatever the date.
            "rota": {"people": ["王工", "刘工", "陈科长"], "shift": "1d", "start": int(now) - 3600},
            "channels": [
                {
                    "type": "webhook",
                    "name": "demo-webhook",
                    "url": _url_secret(secrets_dir / "hook_url", f"http://{host}:{ports.hook}/hook"),
                },
                {
                    "type": "email",
                    "name": "demo-mail",
                    "host": host,
                    "port": ports.smtp,
                    "starttls": False,
                    "sender": "govnet@demo.gov.cn",
                    "to": ["noc@demo.gov.cn"],
                },
            ],
            "route": ["demo-webhook"],
            "fallback": "demo-mail",
            # The first configuration backups, taken before monitoring starts, are planned work:
            # storing a device's first version is not a change made outside maintenance.
            "maintenance": [
                {
                    "name": "演示准备：首次配置备份",
                    "match": [f'device=~"{"|".join(backed) or "none"}"'],
                    "start": _iso(setup.first_backup[0] - 5),
                    "end": _iso(setup.first_backup[1] + 1),
                }
            ],
        },
        "api": {
            "listen": f"{host}:{ports.api}",
            "state_dir": str(state / "api"),
            "session_secret": _secret_file(secrets_dir / "session_secret"),
            "export_hmac_key": _secret_file(secrets_dir / "export_hmac_key"),
            "config_repo": str(state / "ssh" / "configs"),
            "backup_dir": str(run_dir / "backups"),
            "report_dir": str(state / "reports"),
        },
        "syslog": {
            "store": str(state / "logs"),
            "listen": host,
            "tcp_port": ports.syslog,
            "udp_port": ports.syslog,
        },
        "traps": {
            "listen": f"{host}:{ports.traps}",
            "communities": [f"file:{lab_secrets / 'snmp_community'}"],
        },
        "probes": {"interval": "10s", "timeout": "1s"},
        "ssh": {
            "state_dir": str(state / "ssh"),
            "settings": {"max_workers": 4, "banner_timeout": 5, "deadline": 60},
            "config_backup": {"every": "45s", "retry": "15s", "devices": backed},
            "ha": {"enabled": False},  # the lab's firewalls (Hillstone) report HA over SNMP
            "db": db_section,
        },
        "backups": {
            "state_dir": str(state / "backups"),
            "known_hosts": str(setup.known_hosts),
            "interval": "1m",
            "local_hosts": setup.backup_hosts,
        },
        # ARP/FDB sweeps of the lab's synthetic hosts: the console's 地址定位 and `govnet where`.
        "where": {"state_dir": str(state), "interval": "60s"},
        # The inventory's service checks (the portal, the console, syslog over TCP; _demo_services).
        "services": {"baseline_dir": str(state / "baselines")},
        # Last month's report on the 1st at 08:00, mailed to the demo's SMTP sink; uplink percentiles
        # from the demo's Prometheus when it runs. `govnet report monthly` writes one at any time.
        "reports": {"dir": str(state / "reports"), "email_channel": "demo-mail"},
    }
    if "prometheus" not in opts.without and shutil.which("prometheus"):
        config["reports"]["tsdb"] = {"kind": "prometheus", "url": f"http://{host}:{ports.prometheus}"}
    return config


# --- the demo ----------------------------------------------------------------------------------------


@dataclass
class Options:
    """What can be overridden (for tests and for machines where a default port is taken)."""

    host: str
    ports: Ports
    lab_base: str
    run_dir: Path
    without: frozenset[str]
    inventory: Path


def parse_args(argv: list[str] | None) -> Options:
    """Flags first, then GOVNET_DEMO_* environment variables, then defaults."""
    env = os.environ
    p = argparse.ArgumentParser(prog="python -m govnet.demo", description=__doc__.split("\n")[0])
    p.add_argument(
        "--host", default=env.get("GOVNET_DEMO_HOST", "127.0.0.1"), help="address every listener binds"
    )
    p.add_argument(
        "--port-base",
        type=int,
        default=int(env["GOVNET_DEMO_PORT_BASE"]) if env.get("GOVNET_DEMO_PORT_BASE") else None,
        help="every port = base + offset (default: the well-known ports)",
    )
    p.add_argument(
        "--lab-base",
        default=env.get("GOVNET_DEMO_LAB_BASE", "127.77.0.0"),
        help="lab device addresses follow it",
    )
    p.add_argument(
        "--run-dir", type=Path, default=Path(env.get("GOVNET_DEMO_DIR", ROOT / ".govnet-lab" / "demo"))
    )
    p.add_argument(
        "--without",
        default=env.get("GOVNET_DEMO_WITHOUT", ""),
        help=f"comma list of optional parts to leave out: {', '.join(OPTIONAL)}",
    )
    p.add_argument("--inventory", type=Path, default=INVENTORY)
    a = p.parse_args(argv)
    without = frozenset(x.strip() for x in a.without.split(",") if x.strip())
    unknown = without - set(OPTIONAL)
    if unknown:
        p.error(f"--without: unknown {', '.join(sorted(unknown))} (known: {', '.join(OPTIONAL)})")
    if a.port_base is not None and not 1024 <= a.port_base <= 65535 - len(fields(Ports)) - 1:
        p.error("--port-base: between 1024 and 65520")
    return Options(
        a.host, Ports.from_base(a.port_base), a.lab_base, a.run_dir.resolve(), without, a.inventory
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo until interrupted."""
    opts = parse_args(argv)
    from govnet.demo_sink import Sinks
    from inventory.cli import load_or_exit
    from lab.runner import LabError, LabProcess, running_pid
    from lab.tour import menu

    load_or_exit(opts.inventory)
    run_dir, host, ports = opts.run_dir, opts.host, opts.ports
    run_dir.mkdir(parents=True, exist_ok=True)
    other = running_pid(run_dir / "lab")
    if other is not None:
        say(f"! a demo lab (pid {other}) already runs from {run_dir}: stop it first (Ctrl-C in its terminal)")
        return 1
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # A clean start: the previous run's state (alerts, users, logs, backups, configs) goes.
    for sub in ("state", "backups"):
        shutil.rmtree(run_dir / sub, ignore_errors=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    children = Children(run_dir / "logs")
    try:
        sinks = Sinks(host, ports.hook, ports.smtp, say)
    except OSError as exc:
        say(f"! cannot listen on {host}:{ports.hook} ({exc.strerror}): is a demo running? try --port-base")
        return 1
    lab = LabProcess(
        opts.inventory,
        run_dir / "lab",
        base=opts.lab_base,
        snmp_port=ports.lab_snmp,
        ssh_port=ports.lab_ssh,
        syslog=f"{host}:{ports.syslog}",
        traps=f"{host}:{ports.traps}",
    )
    pg: PgPair | None = None
    portal: Portal | None = None
    console = f"http://{host}:{ports.api}"
    try:
        try:
            sinks.start()
        except (OSError, RuntimeError) as exc:
            say(f"! cannot listen on {host}:{ports.smtp} ({exc}): is a demo running? try --port-base")
            return 1
        try:
            portal = Portal(run_dir / "portal", host, ports.portal)
        except OSError as exc:
            say(f"! cannot listen on {host}:{ports.portal} ({exc.strerror}): a demo running? try --port-base")
            return 1
        portal.start()
        say(f"govnet demo: simulating {opts.inventory.name} on loopback ({run_dir})")
        try:
            lab.start()
        except LabError as exc:
            say(f"! the lab did not start: {exc}")
            return 1
        (run_dir / "demo.json").write_text(
            json.dumps({"pid": os.getpid(), "console": console}), encoding="utf-8"
        )
        inventory, backed, backup_hosts = _demo_inventory(lab.inventory_path, run_dir, host, ports)
        nfiles = _demo_backups(inventory, time.time())
        state = run_dir / "state"
        known_hosts = state / "ssh" / "known_hosts"
        untrusted = _trust(inventory, backed, known_hosts)
        first_backup = _first_backup(inventory, state / "ssh", [d for d in backed if d not in untrusted])
        users = _users(state / "api")
        secrets_dir = run_dir / "secrets"

        pg, db_section, pg_note = _db_pair(inventory, ports, secrets_dir, opts.without)

        setup = _Setup(inventory, backed, backup_hosts, state, secrets_dir, known_hosts, first_backup)
        config = _run_config(opts, setup, console, lab.run_dir.resolve() / "secrets", db_section)
        influx = not ({"victoria-metrics"} & opts.without) and shutil.which("victoria-metrics")
        if influx:
            config["influx"] = {
                "url": f"http://{host}:{ports.vm}",
                "org": "govnet",
                "bucket": "govnet",
                "token": _secret_file(secrets_dir / "influx_token"),
                "spool_dir": str(state / "spool"),
            }
            vm_dir = run_dir / "victoria-metrics"
            vm_dir.mkdir(exist_ok=True)
            children.start(
                "victoria-metrics",
                [
                    str(influx),
                    f"-storageDataPath={vm_dir}",
                    f"-httpListenAddr={host}:{ports.vm}",
                    "-search.latencyOffset=0s",
                ],
            )
        cfg_path = run_dir / "govnet.yaml"
        cfg_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
        children.start("govnet", [sys.executable, "-m", "govnet", "run", "--config", str(cfg_path)])
        say("waiting for govnet run (first polls, console)...")
        metrics_url = f"http://{host}:{ports.metrics}/metrics"
        ok = _wait_http(metrics_url, 60, stopping) and _wait_http(f"{console}/login", 30, stopping)
        if stopping.is_set():
            return 0
        if not ok:
            say(f"! govnet run did not answer; see {run_dir / 'logs' / 'govnet.log'}")
            return 1
        # Ready means every device was polled once and alerting has left its warm-up: a fault injected
        # earlier would already be in the first poll, and a change nobody saw happen is not a change.
        total = len(yaml.safe_load(inventory.read_text(encoding="utf-8"))["devices"])
        if not _wait_polled(metrics_url, total, 120, stopping) and not stopping.is_set():
            say("! not every device was polled within 120 s (a busy machine?); carrying on")
        stopping.wait(6)  # one alert evaluation (evaluate_interval 5 s) after the last first poll
        prom = None if "prometheus" in opts.without else shutil.which("prometheus")
        if prom:
            pdir = run_dir / "prometheus"
            pdir.mkdir(exist_ok=True)
            (pdir / "prometheus.yml").write_text(
                yaml.safe_dump(
                    {
                        "global": {"scrape_interval": "15s"},
                        "scrape_configs": [
                            {
                                "job_name": "govnet",
                                "static_configs": [{"targets": [f"{host}:{ports.metrics}"]}],
                            }
                        ],
                    }
                ),
                encoding="utf-8",
            )
            children.start(
                "prometheus",
                [
                    prom,
                    f"--config.file={pdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={pdir / 'data'}",
                    f"--web.listen-address={host}:{ports.prometheus}",
                ],
            )
        grafana_pw = None if "grafana" in opts.without else _grafana(children, run_dir, host, ports)

        gv = f"{ROOT / '.venv' / 'bin' / 'govnet'}"
        lines = [
            "",
            "govnet demo is running",
            f"  console (控制台)        {console}",
            f"  metrics                 http://{host}:{ports.metrics}/metrics",
        ]
        if prom:
            lines.append(
                f"  Prometheus              http://{host}:{ports.prometheus}/graph?g0.expr=govnet_up"
            )
        if influx:
            lines.append(f"  VictoriaMetrics         http://{host}:{ports.vm}/vmui")
        if grafana_pw:
            lines.append(f"  Grafana                 http://{host}:{ports.grafana}  (admin / {grafana_pw})")
        else:
            lines.append(
                "  Grafana                 grafana-server is not installed (dashboards: grafana/dashboards)"
            )
        lines += [
            f"  syslog                  {host}:{ports.syslog} UDP+TCP (lab firewalls, gateways, switches)",
            f"  traps                   {host}:{ports.traps} (lab devices: linkDown/Up, VRRP on faults)",
            f"  notifications           printed here (webhook {host}:{ports.hook}, mail {host}:{ports.smtp})",
            f"  config backups          {', '.join(backed)} over SSH"
            + (f" (host key not trusted: {', '.join(untrusted)})" if untrusted else ""),
            f"  backup verification     {nfiles} demo backup files of {len(backup_hosts)} hosts",
            f"  service checks          portal http://{host}:{ports.portal}/, console, syslog TCP (/services;"
            f" edit {run_dir / 'portal' / 'index.html'} to see the defacement watch)",
            f"  monthly reports         on the 1st at 08:00 into {state / 'reports'} (/reports; one now:"
            f" {gv} report monthly --config {cfg_path} --from YYYY-MM-DDTHH:MM)",
            f"  database pair           {pg_note}",
            f"  logs                    {run_dir / 'logs'}",
            "",
            "console users (passwords are random and shown only now):",
        ]
        for role, (user, password) in users.items():
            lines.append(f"  {ROLE_ZH[role]:<6} {role:<9} user {user:<14} password {password}")
        lines += ["", "guided tour (run in another terminal; each step says where in the console to look):"]
        lines += menu(lab.run_dir.resolve(), gv)
        lines += ["", "Ctrl-C stops everything.", "DEMO READY"]
        say("\n".join(lines))
        while not stopping.is_set():
            dead = children.dead()
            if dead or lab.proc is None or lab.proc.poll() is not None:
                say(f"! stopped unexpectedly: {', '.join(dead) or 'lab'}; logs in {run_dir / 'logs'}")
                break
            stopping.wait(0.5)
        return 0
    finally:
        say("stopping...")
        children.stop()
        if pg is not None:
            pg.stop()
        lab.stop()
        if portal is not None:
            portal.stop()
        sinks.stop()
        (run_dir / "demo.json").unlink(missing_ok=True)
        say("stopped; nothing left running.")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))


def _url_secret(path: Path, url: str) -> str:
    # Webhook URLs are secrets in govnet (robot keys live in them): by reference, like in production.
    _write_secret(path, url)
    return f"file:{path}"


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
