"""`make demo` end to end, as a newcomer uses it, driven by headless Chromium (Debian `chromium`).

The real demo process (`python -m govnet.demo`: the lab with 133 devices, `govnet run` with every
section, the notification sink, PostgreSQL pair, Prometheus and VictoriaMetrics) on its own loopback
address and ports. The test logs in with the credentials the demo printed, runs tour steps, sees the
failover incident on the board, follows the notification's link to the incident page at phone width
(390 px) and acknowledges there, finds the lab firewall's log lines in the security-log search and the
config change as a diff on the backups page; then SIGINT must leave no process and no listening port.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from govnet.demo import Ports
from tests.support.browser import ARTIFACTS, DESKTOP, login
from tests.support.govnet_run import wait_for
from tests.support.paths import GOVNET, ROOT
from tests.support.require import require_cmd

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

HOST = "127.36.0.1"
LAB_BASE = "127.36.1.0"
PHONE: ViewportSize = {"width": 390, "height": 844}
NPORTS = len(fields(Ports)) + 1  # and the PostgreSQL standby


def _free_base() -> int:
    """A port base whose NPORTS ports are free on HOST (TCP and UDP)."""
    for base in range(32000 + os.getpid() % 200 * 100, 60000, 97):
        socks = []
        try:
            for port in range(base, base + NPORTS):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port range")


@dataclass
class Demo:
    """The running demo: its process, what it printed, its ports and run dir."""

    proc: subprocess.Popen[str]
    run_dir: Path
    base: int
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def out(self) -> str:
        with self.lock:
            return "\n".join(self.lines)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    @property
    def ports(self) -> Ports:
        return Ports.from_base(self.base)

    @property
    def console(self) -> str:
        return f"http://{HOST}:{self.ports.api}"

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://{HOST}:{self.ports.metrics}/metrics", timeout=10) as resp:
            return str(resp.read().decode())

    def users(self) -> dict[str, tuple[str, str]]:
        found = re.findall(r"^\s+\S+\s+(\w+)\s+user (\S+)\s+password (\S+)$", self.out(), re.M)
        return {role: (user, pw) for role, user, pw in found}

    def stop(self) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the demo's whole process group; the exit status."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                return self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)

    def tour(self, step: str) -> str:
        res = subprocess.run(
            [str(GOVNET), "lab", "tour", step, "--run-dir", str(self.run_dir / "lab")],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr + res.stdout
        return res.stdout


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))


def _newer_sections_at_work(demo: Demo) -> None:
    """services: the portal, the console and syslog over TCP checked and up; links: declared links
    confirmed by LLDP; where: the ARP/FDB sweep ran (reports: see the report step of _drive)."""
    names = {"portal", "console", "syslog-tcp"}

    def services_up() -> dict[str, float]:
        found = re.findall(r'^govnet_service_up\{.*service="([^"]+)".*\} (\S+)$', demo.metrics(), re.M)
        return {n: float(v) for n, v in found} if {n for n, _ in found} == names else {}

    up = wait_for(services_up, 60, "a check of every demo service")
    assert up == dict.fromkeys(names, 1.0), up
    assert re.search(r"^govnet_service_content_changed\{.*service=\"portal\".*\} 0", demo.metrics(), re.M)
    wait_for(
        lambda: re.search(r'^govnet_link_state\{.*state="confirmed".*\} 1', demo.metrics(), re.M),
        60, "a declared link confirmed by LLDP",
    )  # fmt: skip
    wait_for(lambda: "\ngovnet_where_sweep_duration_seconds " in demo.metrics(), 90, "an ARP/FDB sweep")


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in out:
                out.add(child)
                todo.append(child)
    return out


def _ours(run_dir: Path, pg_ports: tuple[int, int]) -> set[int]:
    """Processes of this demo that are not its descendants (PostgreSQL daemonises)."""
    out = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(run_dir) in cmd or any(f"-p {p}" in cmd and "postgres" in cmd for p in pg_ports):
            out.add(int(d.name))
    return out


def _listening() -> list[str]:
    res = subprocess.run(["ss", "-H", "-l", "-n", "-t", "-u"], capture_output=True, text=True, check=True)
    return [ln for ln in res.stdout.splitlines() if "127.36.0." in ln or "127.36.1." in ln]


def _alive(pids: set[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z":
            out.append(f"{pid} {cmd[:120]}")
    return out


def start_demo(run_dir: Path, *extra: str) -> Demo:
    """Start `python -m govnet.demo` on HOST with free ports; returns once it printed DEMO READY."""
    base = _free_base()
    proc = subprocess.Popen(
        [sys.executable, "-m", "govnet.demo", "--host", HOST, "--port-base", str(base),
         "--lab-base", LAB_BASE,
         "--run-dir", str(run_dir), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,  # a group, as in a terminal
    )  # fmt: skip
    d = Demo(proc, run_dir, base)
    threading.Thread(target=d.read, daemon=True).start()
    try:
        wait_for(lambda: "DEMO READY" in d.out() or proc.poll() is not None, 240, "the demo to start", 1.0)
    except AssertionError:
        d.stop()
        raise
    assert proc.poll() is None, d.out()
    return d


def demo_login(browser: Browser, demo: Demo, role: str, viewport: ViewportSize) -> Page:
    """A console page logged in as the demo's printed user for `role`."""
    user, password = demo.users()[role]
    return login(browser, demo.console, user, password, viewport)[0]


def test_demo_console_tour_and_clean_stop(browser: Browser, tmp_path: Path) -> None:
    """The acceptance of `make demo` (issue 13): console, tour, phone acknowledge, logs, diff, clean stop."""
    require_cmd("ss")
    run_dir = tmp_path / "run"
    demo = start_demo(run_dir)
    try:
        _drive(demo, browser)
    finally:
        code = demo.stop()
        if os.environ.get("GOVNET_KEEP_DEMO"):
            print(f"\ndemo output:\n{demo.out()}")
    assert code == 0, demo.out()[-3000:]
    # A second `make demo` on the same run dir starts cleanly (no stale lab, lock, port or user).
    again = start_demo(run_dir, "--without", "prometheus,victoria-metrics,postgres")
    try:
        assert again.users()["oncall"] != demo.users()["oncall"]  # new random passwords each start
        pids = _descendants(again.proc.pid)
    finally:
        assert again.stop() == 0, again.out()[-3000:]
    assert wait_for(lambda: not _alive(pids), 10, "every process of the second demo to end")
    assert _listening() == []


def _drive(demo: Demo, browser: Browser) -> None:
    """Everything the acceptance asks, in the order a newcomer would do it; ends with Ctrl-C."""
    # Every role has a user with a random password, printed once; there is no default one.
    users = demo.users()
    assert set(users) == {"admin", "engineer", "oncall", "auditor"}, demo.out()
    assert len({pw for _, pw in users.values()}) == 4 and all(len(pw) >= 12 for _, pw in users.values())
    out = demo.out()
    assert "PostgreSQL primary dc-db-1" in out or "PostgreSQL not installed" in out, out
    # The config change first: its diff needs the next scheduled SSH backup.
    assert "agg-chengguan" in demo.tour("config")

    oncall = demo_login(browser, demo, "oncall", PHONE)
    assert oncall.url.endswith("/incidents")
    started = time.monotonic()
    demo.tour("failover")

    def failover_card() -> Any:
        oncall.reload()
        cards = oncall.locator("article.incident", has_text="主备切换")
        return cards.first if cards.count() else None

    card = wait_for(failover_card, 60, "the failover incident on the board", 2.0)
    print(f"\n[demo] failover incident on the board {time.monotonic() - started:.1f} s after the tour step")
    inc_id = card.get_attribute("id")
    assert inc_id and inc_id.startswith("INC-")
    board_width = oncall.evaluate("document.documentElement.scrollWidth")
    assert board_width <= PHONE["width"], f"the board is {board_width} px wide on a {PHONE['width']} px phone"

    # The notification printed by the demo's sink is in Chinese and links to the incident page.
    link = wait_for(
        lambda: re.search(rf"详情与确认：(http://\S+/incidents/{inc_id})$", demo.out(), re.M),
        30,
        "the notification",
    )
    assert "主备切换" in demo.out()
    # The new active firewall's VRRP trap reached govnet (it made govnet re-poll at once).
    metrics = demo.metrics()
    vrrp = r'^govnet_traps_received_total\{device="nc-fw-\d".*trap="vrrpTrapNewMaster".*\} (\S+)$'
    traps = re.findall(vrrp, metrics, re.M)
    assert traps and sum(float(v) for v in traps) >= 1
    # Every other section of `govnet run` is at work on the lab: syslog, ICMP probes, backup verification
    # of the demo files, SSH config backups, and the PostgreSQL pair over SQL.
    syslog = re.search(r"^govnet_syslog_received_total (\S+)$", metrics, re.M)
    assert syslog and float(syslog.group(1)) > 0
    assert re.search(r'^govnet_probe_up\{.*device="nc-core-2".*\} 1', metrics, re.M)
    backups = re.findall(r"^govnet_backup_ok\{(.*)\} (\S+)$", metrics, re.M)
    assert len(backups) == 5 and all(float(v) == 1 for _, v in backups), backups
    assert re.search(r'^govnet_config_backup_ok\{device="nc-core-1".*\} 1', metrics, re.M)
    if "PostgreSQL primary dc-db-1" in out:
        assert re.search(r'^govnet_db_role\{device="dc-db-1",.*state="primary".*\} 1', metrics, re.M)
        assert re.search(r'^govnet_ha_group_state\{group="dc-db",.*state="normal"\} 1', metrics, re.M)
    _newer_sections_at_work(demo)
    oncall.goto(link.group(1))
    assert oncall.locator(f"article#{inc_id}").count() == 1
    width = oncall.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"incident page is {width} px wide on a {PHONE['width']} px phone"
    ack = oncall.locator(f"article#{inc_id} form.ack button")
    box = ack.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    oncall.locator(f"article#{inc_id} form.ack input[name=comment]").fill("已到场，正在核对主备状态")
    ack.click()
    oncall.wait_for_load_state()
    assert oncall.url.endswith(f"/incidents/{inc_id}")
    assert "认领人: demo-oncall" in oncall.locator(f"article#{inc_id}").inner_text()
    oncall.screenshot(path=str(ARTIFACTS / "demo-incident-phone.png"), full_page=True)

    # Security logs: the lab firewall's own lines, and the brute-force run of the tour.
    demo.tour("bruteforce")
    auditor = demo_login(browser, demo, "auditor", DESKTOP)

    def firewall_rows(query: str) -> list[list[str]]:
        # The auditor's search form, as a person fills it in.
        fields = dict(pair.split("=", 1) for pair in query.split("&"))
        auditor.goto(f"{demo.console}/logs")
        auditor.fill("#search input[name=device]", fields.get("device", ""))
        auditor.fill("#search input[name=event_type]", fields.get("event_type", ""))
        auditor.click("#search button")
        auditor.wait_for_load_state()
        rows = auditor.locator("table.logs tr").all()[1:]
        return [r.locator("td").all_inner_texts() for r in rows]

    fw = wait_for(lambda: firewall_rows("device=nc-fw-1"), 30, "firewall log lines")
    assert all(r[2] == "nc-fw-1" for r in fw)
    assert any("Traffic@FLOW" in r[-1] or "Threat@" in r[-1] for r in fw), fw[:3]
    logins = wait_for(
        lambda: [r for r in firewall_rows("device=nc-fw-1&event_type=admin_login") if "203.0.113.66" in r[4]],
        30, "the brute-force login lines",
    )  # fmt: skip
    assert len(logins) >= 30 and all(r[3] == "admin_login" for r in logins)
    auditor.screenshot(path=str(ARTIFACTS / "demo-logs-auditor.png"))

    # A monthly report written now (as the schedule would on the 1st) is listed on the console.
    now = time.time()
    res = subprocess.run(
        [str(GOVNET), "report", "monthly", "--config", str(demo.run_dir / "govnet.yaml"),
         "--from", _utc(now - 120), "--to", _utc(now)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    auditor.goto(demo.console + "/reports")
    files = auditor.locator("main a[href$='report.pdf']")
    assert files.count() == 1, auditor.locator("main").inner_text()

    # The config change as a diff between two stored versions on the backups page.
    engineer = demo_login(browser, demo, "engineer", DESKTOP)

    def diff_lines() -> list[str]:
        engineer.goto(demo.console + "/backups")
        engineer.click("p.devlist a:text-is('agg-chengguan')")
        engineer.wait_for_load_state()
        return [t for t in engineer.locator("pre.diff span.add").all_inner_texts() if "acl number 3001" in t]

    assert wait_for(diff_lines, 120, "the config diff on the backups page", 3.0)
    engineer.screenshot(path=str(ARTIFACTS / "demo-config-diff.png"), full_page=True)

    # The board at desktop width: the README's screenshot (docs/demo-console.png when asked for).
    board = demo_login(browser, demo, "oncall", {"width": 1280, "height": 800})
    board.goto(demo.console + "/incidents?status=open")
    shot = ROOT / "docs" / "demo-console.png" if os.environ.get("GOVNET_DEMO_SCREENSHOT") else None
    board.screenshot(path=str(shot or ARTIFACTS / "demo-console.png"))

    # Ctrl-C: everything stops, nothing is left running or listening.
    pg_ports = (demo.ports.pg, demo.ports.pg + 1)
    pids = _descendants(demo.proc.pid) | _ours(demo.run_dir, pg_ports)
    listening = _listening()
    assert pids and listening, "the demo's processes and ports should be visible while it runs"
    assert demo.stop() == 0, demo.out()[-3000:]
    assert "stopped; nothing left running." in demo.out()
    assert wait_for(lambda: not _alive(pids), 10, "every demo process to end")
    assert _listening() == [], _listening()
    assert _ours(demo.run_dir, pg_ports) == set()
    assert not (demo.run_dir / "lab" / "lab.json").exists()
