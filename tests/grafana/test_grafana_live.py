"""Every panel query of every dashboard returns data from a real Prometheus 2.42 scraping `govnet run`.

The stack: the lab (a small inventory cut from examples/district.yaml, firewalls as Cisco ASA so the HA
MIB is polled), `govnet run` polling it every 5 s and writing to a real VictoriaMetrics, Prometheus
scraping govnet every second. Faults are injected before the queries (an aggregation uplink down, a
firewall failover), so the panels that only show something after a fault are checked with data.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana.boards.promql import AGG, UPLINK, site_state
from grafana.build import walk_panels
from grafana.generate import OUT
from lab.runner import LabProcess
from tests.support import db as db_support
from tests.support.paths import ROOT
from tests.support.procs import stop
from tests.support.require import require_cmd

KEEP = [
    "nc-core-1", "nc-core-2", "nc-fw-1", "nc-fw-2", "nc-gap-1", "nc-vpn-1", "nc-ips-1", "nc-lb-1",
    "nc-srv-1", "dc-db-1", "dc-db-2", "dc-ups-1", "agg-chengguan", "agg-dongcheng",
    "acc-chengguan-sq01", "acc-dongcheng-sq01",
]  # fmt: skip
DOWN_UPLINK = ("agg-chengguan", "GigabitEthernet0/0/47")  # linked to nc-core-1 in the district
FAILOVER = "nc-fw-1"
STALE_BACKUP = "dc-db-2-daily"
# Grafana's built-ins, as Grafana would expand them for a 5-minute view of a 1 s scrape / 5 s poll.
BUILTINS = {"__rate_interval": "16s", "__range": "5m", "__interval": "15s"}
VM_BUILTINS = {"__rate_interval": "30s", "__range": "5m", "__interval": "30s"}


def small_inventory(path: Path) -> None:
    """A 16-device cut of the example district: cores, security edge, DC, two aggregation points."""
    src = yaml.safe_load((ROOT / "examples/district.yaml").read_text(encoding="utf-8"))
    devices = [d for d in src["devices"] if d["name"] in KEEP]
    for d in devices:
        d.pop("poll_interval", None)  # access switches poll every 60 s in the district: use the default
        if d["role"] == "firewall":  # the district's Hillstone profile maps no HA/session objects yet
            d.update(vendor="cisco", model="ASA5555")
    parents = {s["name"]: s.get("parent") for s in src["sites"]}
    sites: set[str] = set()
    for d in devices:
        site: str | None = d["site"]
        while site:
            sites.add(site)
            site = parents[site]
    kept = set(KEEP)
    inv: dict[str, Any] = {
        "defaults": {**src["defaults"], "poll_interval": "5s"},
        "sites": [s for s in src["sites"] if s["name"] in sites],
        "devices": devices,
        "ha_groups": [g for g in src["ha_groups"] if all(m["device"] in kept for m in g["members"])],
        "links": [lk for lk in src["links"] if lk["a"]["device"] in kept and lk["b"]["device"] in kept],
        "backup_jobs": [],
    }
    # Backup jobs of the kept hosts, read from local folders: fresh ones, and one a day and a half old.
    for job in src.get("backup_jobs", []):
        if job["host"] not in kept:
            continue
        folder = path.parent / "backups" / job["name"]
        folder.mkdir(parents=True)
        newest = 36 * 3600 if job["name"] == STALE_BACKUP else 3600
        for i in range(3):  # older ones give the size baseline
            dump = folder / f"{job['name']}-{3 - i}.tar.gz"
            dump.write_bytes(os.urandom(4096 + 16 * i))
            mtime = time.time() - newest - i * 86400
            os.utime(dump, (mtime, mtime))
        inv["backup_jobs"].append({**job, "path": str(folder)})
    path.write_text(yaml.safe_dump(inv, allow_unicode=True, sort_keys=False), encoding="utf-8")


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    """A port free on `host` now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def send_syslog(source: str, dest: tuple[str, int]) -> None:
    """One octet-counted RFC 5424 frame from `source` (a device's address)."""
    msg = b"<134>1 2026-11-21T07:00:00Z fw1 firewall - - - session denied src=10.1.1.1 dst=10.2.2.2"
    with socket.socket() as s:
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(dest)
        s.sendall(str(len(msg)).encode() + b" " + msg)


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


@dataclass
class Stack:
    """URLs of the running stack and the lab handle."""

    prom: str
    vm: str
    lab: LabProcess
    devices: list[str]
    queries: int = 0
    log: list[str] = field(default_factory=list)

    def query(self, base: str, expr: str) -> list[dict[str, Any]]:
        """Instant query through the Prometheus HTTP API; raises on an API error."""
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = get_json(url)
        assert body["status"] == "success", (expr, body)
        self.queries += 1
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def label_values(self, base: str, selector: str, label: str) -> list[str]:
        """What Grafana's `label_values(selector, label)` lists."""
        url = f"{base}/api/v1/series?" + urllib.parse.urlencode({"match[]": selector})
        series = get_json(url)["data"]
        return sorted({s[label] for s in series if label in s})


def wait_for(what: str, check: Any, timeout: float, diagnostics: Any = None) -> None:
    """Poll `check()` until true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, KeyError):
            pass  # not serving yet
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {diagnostics}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_cmd("prometheus", "victoria-metrics", "snmptrap")
    tmp = tmp_path_factory.mktemp("grafana-live")
    small_inventory(tmp / "inventory.yaml")
    govnet_addr = f"127.32.1.1:{free_port('127.32.1.1')}"
    prom_addr = f"127.32.1.2:{free_port('127.32.1.2')}"
    vm_addr = f"127.32.1.3:{free_port('127.32.1.3')}"
    procs: list[subprocess.Popen[bytes]] = []
    cleanups: list[Callable[[], object]] = []
    logs = {n: open(tmp / f"{n}.log", "wb") for n in ("vm", "govnet", "prometheus")}  # noqa: SIM115
    lab = LabProcess(
        tmp / "inventory.yaml",
        tmp / "lab",
        base="127.32.0.0",
        snmp_port=free_port("127.32.0.1", socket.SOCK_DGRAM),
        ssh_port=0,
    )
    try:
        procs.append(
            subprocess.Popen(
                [
                    "victoria-metrics",
                    f"-httpListenAddr={vm_addr}",
                    f"-storageDataPath={tmp / 'vm'}",
                    "-search.latencyOffset=0s",
                    "-retentionPeriod=1d",
                ],
                stdout=logs["vm"],
                stderr=subprocess.STDOUT,
            )
        )
        lab.start()
        inventory = yaml.safe_load(lab.inventory_path.read_text(encoding="utf-8"))
        # A real PostgreSQL primary + hot standby listening on the lab addresses of dc-db-1/dc-db-2
        # (TCP; the lab's SNMP agents there are UDP), built by the database tests' helper.
        addresses = {d["name"]: d["address"] for d in inventory["devices"]}
        saved, db_support.PG_ADDR = db_support.PG_ADDR, (addresses["dc-db-1"], addresses["dc-db-2"])
        try:
            pg_gen = db_support.make_pg_pair()
            pair = next(pg_gen)  # the addresses are read here
        finally:
            db_support.PG_ADDR = saved
        cleanups.append(lambda: list(pg_gen))
        hook_addr = f"127.32.1.4:{free_port('127.32.1.4')}"
        syslog_port = free_port("127.32.1.1")
        cfg: dict[str, Any] = {
            "inventory": str(lab.inventory_path),
            "prometheus": {"listen": govnet_addr},
            # The machine is shared: a generous request timeout and a short unreachable recheck, so a
            # device slowed by load is back within seconds instead of the default minute.
            "scheduler": {"timeout": "1s", "retries": 1, "unreachable_recheck": "5s"},
            "influx": {
                "url": f"http://{vm_addr}",
                "org": "govnet",
                "bucket": "govnet",
                "token": "env:GOVNET_GRAFANA_TEST_TOKEN",
                "flush_interval": "1s",
                "spool_dir": str(tmp / "spool"),
            },
            "alerts": {
                "rules": ["default"],
                "state_db": str(tmp / "alerts.db"),
                "evaluate_interval": "1s",
                # Nothing listens there: deliveries fail and are retried (the failure panels have data).
                "channels": [{"type": "webhook", "name": "hook", "url": "env:GOVNET_GRAFANA_TEST_HOOK"}],
                "route": ["hook"],
            },
            "probes": {"interval": "2s", "timeout": "500ms", "count": 1, "reachability": {"interval": "1s"}},
            "backups": {
                "state_dir": str(tmp / "backup-state"),
                "interval": "2s",
                "local_hosts": sorted({d["host"] for d in inventory["backup_jobs"]}),
            },
            "ssh": {
                "state_dir": str(tmp / "ssh-state"),
                "config_backup": {"enabled": False},
                "ha": {"enabled": False},
                "db": {
                    "interval": "2s",
                    "access": {
                        name: {
                            "transport": "sql",
                            "port": node.port,
                            "password": "env:GOVNET_GRAFANA_TEST_PG",
                            "sslmode": "disable",
                        }
                        for name, node in (("dc-db-1", pair.primary), ("dc-db-2", pair.standby))
                    },
                },
            },
            "syslog": {
                "store": str(tmp / "logs"),
                "listen": "127.32.1.1",
                "tcp_port": syslog_port,
                "udp_port": None,
                "verify_every": 2,
            },
            "traps": {
                "listen": f"127.32.1.1:{free_port('127.32.1.1', socket.SOCK_DGRAM)}",
                "communities": [f"file:{tmp / 'lab/secrets/snmp_community'}"],
            },
        }
        (tmp / "govnet.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        env = {
            **os.environ,
            "GOVNET_GRAFANA_TEST_TOKEN": "not-checked-by-victoriametrics",
            "GOVNET_GRAFANA_TEST_HOOK": f"http://{hook_addr}/",
            "GOVNET_GRAFANA_TEST_PG": pair.monitor_password,
        }
        procs.append(
            subprocess.Popen(
                [str(ROOT / ".venv/bin/govnet"), "run", "--config", str(tmp / "govnet.yaml")],
                stdout=logs["govnet"],
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        prom_cfg = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "govnet", "static_configs": [{"targets": [govnet_addr]}]}],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom_cfg), encoding="utf-8")
        procs.append(
            subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'prom'}",
                    f"--web.listen-address={prom_addr}",
                ],
                stdout=logs["prometheus"],
                stderr=subprocess.STDOUT,
            )
        )
        st = Stack(f"http://{prom_addr}", f"http://{vm_addr}", lab, KEEP)
        t0 = time.monotonic()

        def all_up() -> bool:
            for proc in procs:
                if proc.poll() is not None:
                    tails = {n: (tmp / f"{n}.log").read_text(errors="replace")[-1500:] for n in logs}
                    raise AssertionError(f"{proc.args!r} exited with {proc.returncode}: {tails}")
            up = {r["metric"]["device"] for r in st.query(st.prom, "govnet_up == 1")}
            st.log[:] = [f"not up yet: {sorted(set(KEEP) - up)}"]
            return len(up) == len(KEEP)

        wait_for("every device's govnet_up in Prometheus", all_up, 60, st.log)
        st.log[:] = [f"all {len(KEEP)} devices up in Prometheus after {time.monotonic() - t0:.1f} s"]
        lab.fault(DOWN_UPLINK[0], "link_down", interface=DOWN_UPLINK[1])
        lab.fault(FAILOVER, "ha_failover")
        # A real linkDown trap from the aggregation switch's address (net-snmp snmptrap, v2c).
        trap_host, trap_port = cfg["traps"]["listen"].rsplit(":", 1)
        subprocess.run(
            ["snmptrap", "-v", "2c", "-c", lab.secret("snmp_community"),
             f"--clientaddr={addresses[DOWN_UPLINK[0]]}", f"udp:{trap_host}:{trap_port}", "",
             "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.49", "i", "49"],
            check=True, capture_output=True, timeout=10,
        )  # fmt: skip
        # A real RFC 5424 message over TCP (octet counting) from the firewall's address.
        send_syslog(addresses[FAILOVER], ("127.32.1.1", syslog_port))
        # The down uplink's counters freeze: wait one rate window plus a poll and a scrape.
        wait_for(
            "the failover and the down uplink in Prometheus",
            lambda: (
                st.query(st.prom, f'govnet_ha_role{{device="{FAILOVER}",state="standby"}} == 1')
                and st.query(
                    st.prom,
                    f'govnet_if_oper_up{{device="{DOWN_UPLINK[0]}",ifname="{DOWN_UPLINK[1]}"}} == 0',
                )
            ),
            30,
        )
        time.sleep(int(BUILTINS["__rate_interval"].rstrip("s")) + 3)
        st.log.append(f"stack ready with faults after {time.monotonic() - t0:.1f} s")
        yield st
    finally:
        for proc in reversed(procs):
            stop(proc)
        for cleanup in cleanups:
            cleanup()
        lab.stop()
        for f in logs.values():
            f.close()


def dashboards() -> dict[str, dict[str, Any]]:
    """The committed dashboards."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(OUT.glob("*.json"))}


def variables(st: Stack, base: str, board: dict[str, Any]) -> dict[str, list[str]]:
    """Each variable's candidate values: label_values from the API, a textbox's default; `All` = `.*`."""
    values: dict[str, list[str]] = {}
    for v in board["templating"]["list"]:
        if v["type"] == "textbox":
            values[v["name"]] = [v["query"]]
        elif v["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"])
            assert m, v["query"]
            selector = substitute(m.group(1), {k: vs[-1] for k, vs in values.items()})
            found = st.label_values(base, selector, m.group(2))
            assert found, f"variable {v['name']}: {v['query']} lists nothing"
            values[v["name"]] = found + ([".*"] if v.get("includeAll") else [])
    return values


def substitute(expr: str, chosen: dict[str, str]) -> str:
    """Replace `$name` / `${name}` by the chosen values, longest names first."""
    for name in sorted(chosen, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", chosen[name]).replace("$" + name, chosen[name])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def panels_by_row(board: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(row title, panel) for every non-row panel."""
    row = ""
    for p in walk_panels(board):
        if p["type"] == "row":
            row = p["title"]
        else:
            yield row, p


def check_board(st: Stack, base: str, board: dict[str, Any], builtins: dict[str, str]) -> list[str]:
    """Problems: queries empty for every variable value (or for any value where all must have data)."""
    values = variables(st, base, board)
    problems: list[str] = []
    for row, panel in panels_by_row(board):
        for t in panel["targets"]:
            used = sorted(n for n in values if re.search(r"\$\{?" + n + r"\b", t["expr"]))
            combos = list(itertools.product(*(values[n] for n in used)))
            empty = []
            for combo in combos:
                expr = substitute(t["expr"], {**builtins, **dict(zip(used, combo, strict=True))})
                if not st.query(base, expr):
                    empty.append(dict(zip(used, combo, strict=True)))
            where = f"{board['uid']} / {row} / {panel['title']} / {t['refId']}"
            # Repeated rows and the device dashboard's status and poll health rows must show every
            # value; other device panels need data for at least one device that has the metric.
            strict = row == "$agg" or any(k in row for k in ("状态 Status", "轮询健康 Poll health"))
            if len(empty) == len(combos) or (strict and empty):
                problems.append(f"{where}: no data for {empty} <- {t['expr']}")
    return problems


@pytest.mark.parametrize("uid", ["overview", "uplinks", "device", "security", "datacentre", "govnet"])
def test_every_panel_query_returns_data_from_prometheus(stack: Stack, uid: str) -> None:
    board = dashboards()[uid]
    before = stack.queries
    problems = check_board(stack, stack.prom, board, BUILTINS)
    assert not problems, "\n".join(problems)
    print(f"{uid}: {stack.queries - before} queries with data checks; {'; '.join(stack.log)}")


def test_long_range_panels_return_data_from_victoriametrics(stack: Stack) -> None:
    """The VictoriaMetrics dashboard reads what govnet's Influx writer stored (`<metric>_value`)."""
    with urllib.request.urlopen(f"{stack.vm}/internal/force_flush", timeout=10):
        pass
    problems = check_board(stack, stack.vm, dashboards()["longrange"], VM_BUILTINS)
    assert not problems, "\n".join(problems)


def stat_values(st: Stack, board: str, title: str, label: str) -> dict[str, float]:
    """The values an instant panel shows, by `label`."""
    panel = next(p for _row, p in panels_by_row(dashboards()[board]) if p["title"] == title)
    chosen = {**BUILTINS, "uplink": "(?i).*(uplink|上联|core).*", "agg": ".*"}
    out: dict[str, float] = {}
    for t in panel["targets"][:1] if panel["type"] == "table" else panel["targets"]:
        for r in st.query(st.prom, substitute(t["expr"], chosen)):
            out[r["metric"].get(label, t["refId"])] = float(r["value"][1])
    return out


def test_panels_show_the_injected_faults(stack: Stack) -> None:
    """The overview, uplink, security and data centre panels tell the truth about the injected faults."""
    state = stat_values(
        stack, "overview", "站点状态 Site state (control centre, data centre, aggregation points)", "site"
    )
    assert state["chengguan"] == 1  # one of its two uplinks is down: degraded
    assert state["dongcheng"] == 0 and state["ncc"] == 0 and state["dc"] == 0
    assert set(state) == {"ncc", "dc", "chengguan", "dongcheng"}
    access = stat_values(stack, "overview", "接入站点状态 Access site state", "site")
    assert access == {"chengguan-sq01": 0, "dongcheng-sq01": 0}
    # The fallback used without the probes section (polls + aggregation uplink states) agrees.
    fallback = substitute(site_state(f"{AGG},{UPLINK}"), {"uplink": "(?i).*(uplink|上联|core).*"})
    by_site = {r["metric"]["site"]: float(r["value"][1]) for r in stack.query(stack.prom, fallback)}
    assert by_site["chengguan"] == 1 and by_site["dongcheng"] == 0 and by_site["ncc"] == 0
    assert stat_values(stack, "overview", "上联中断 Aggregation uplinks down", "x") == {"A": 1}
    silent = stat_values(stack, "security", "日志静默 Time since each device's last log", "device")
    assert list(silent) == [FAILOVER] and 0 <= silent[FAILOVER] < 120
    traps = stat_values(stack, "overview", "陷阱 SNMP traps in range", "device")
    assert traps[DOWN_UPLINK[0]] >= 1
    incidents = stat_values(stack, "overview", "未关闭事件 Open incidents by level", "level")
    assert incidents["III"] >= 1  # HAFailover (level III) fires without a `for`
    groups = stat_values(stack, "uplinks", "链路冗余组 Link redundancy groups", "group")
    assert groups["agg-chengguan-uplinks"] == 1 and groups["agg-dongcheng-uplinks"] == 0
    failovers = stat_values(stack, "security", "主备切换 Failovers in range", "device")
    assert failovers[FAILOVER] >= 1 and failovers["nc-fw-2"] >= 1
    roles = stat_values(stack, "security", "HA 角色 HA role", "device")
    assert roles == {FAILOVER: 2, "nc-fw-2": 1}  # swapped: nc-fw-1 standby, nc-fw-2 active
    assert stat_values(stack, "datacentre", "数据库角色 Database roles", "device") == {
        "dc-db-1": 1,
        "dc-db-2": 2,
    }
    assert stat_values(stack, "datacentre", "数据库双机 Database pair verdict", "group") == {"dc-db": 0}
    verdicts = stat_values(stack, "datacentre", "备份作业 Backup jobs", "backup_job")
    assert verdicts[STALE_BACKUP] == 1 and verdicts["dc-db-1-daily"] == 0  # A = the verdict column
    # agg-chengguan's down uplink carries nothing: its twin carries everything.
    panel = next(p for p in walk_panels(dashboards()["uplinks"]) if p["title"].startswith("承载流量"))
    expr = substitute(
        panel["targets"][0]["expr"],
        {**BUILTINS, "uplink": "(?i).*(uplink|上联|core).*", "agg": DOWN_UPLINK[0]},
    )
    by_if = {r["metric"]["ifname"]: float(r["value"][1]) for r in stack.query(stack.prom, expr)}
    assert by_if[DOWN_UPLINK[1]] == 0
    assert by_if["GigabitEthernet0/0/48"] == 1
    assert stat_values(stack, "overview", "接入站点 Access sites", "x") == {"A": 2, "B": 0, "C": 0}
    # Last (it changes what the other tests see): a community site's only switch stops answering
    # SNMP. Its loopback address still answers ping, and govnet's reachability counts any evidence of
    # life, so the site stays up there; the poll-based fallback calls it unreachable.
    stack.lab.fault("acc-dongcheng-sq01", "dead")
    fallback = substitute(site_state(f"{AGG},{UPLINK}"), {"uplink": "(?i).*(uplink|上联|core).*"})

    def fallback_state() -> dict[str, float]:
        return {r["metric"]["site"]: float(r["value"][1]) for r in stack.query(stack.prom, fallback)}

    wait_for("dongcheng-sq01 unreachable by polls", lambda: fallback_state()["dongcheng-sq01"] == 2, 30)
    assert fallback_state()["chengguan-sq01"] == 0
    assert stat_values(stack, "overview", "接入站点状态 Access site state", "site")["dongcheng-sq01"] == 0
