"""Where is this address: sweep CPU per 1,000 FDB rows (anchor: net-snmp snmpbulkwalk of the same
columns), a sweep of the example district through the lab, and the history of 20,000 hosts over 180
simulated days (size and query cost).

1. FDB rows: the lab's agent serves a switch with N Q-BRIDGE forwarding rows (a generated snmpsim
   recording) in its own process; govnet's where-poller reads it (SNMP v2c, gufo-snmp) in this
   process, whose CPU (process_time) is the poller's alone; snmpbulkwalk walks the same columns
   (dot1qTpFdbPort, dot1dBasePortIfIndex, ifName) and its CPU is the children's rusage.
2. District: the lab runs examples/district.yaml (SNMPv3 authPriv; Cisco per-VLAN tables through
   SNMPv3 contexts with pysnmp); a WhereService sweeps every ARP/FDB device; CPU of this process.
3. History: 20,000 hosts, sweeps every 2 h in office hours on weekdays (servers always on), with DHCP
   address changes, port moves and replaced PCs; SQLite file size, rows, and lookup latency.

Usage: .venv/bin/python -m bench.where [--rows 5000] [--repeat 5] [--hosts 20000] [--days 180]
[--no-district] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.where.history import History
from collectors.where.poll import TablesPoller
from collectors.where.resolve import Host, resolve
from collectors.where.service import WhereSection, WhereService
from inventory.load import load_inventory
from inventory.model import Device, Inventory, SnmpV2c
from lab.runner import LabProcess

REPO = Path(__file__).resolve().parent.parent
ADDR, PORT = "127.20.17.1", 16171
COMMUNITY = "wherebench"
COLUMNS = ("1.3.6.1.2.1.17.7.1.2.2.1.2", "1.3.6.1.2.1.17.1.4.1.2", "1.3.6.1.2.1.31.1.1.1.1")


def write_fdb_recording(path: Path, rows: int, ports: int = 48) -> None:
    """A switch with `ports` ports and `rows` learned MACs spread over them and over 8 VLANs."""
    lines = ["1.3.6.1.2.1.1.1.0|4|bench switch", "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.25506.1.1"]
    for p in range(1, ports + 1):
        lines.append(f"1.3.6.1.2.1.17.1.4.1.2.{p}|2|{p}")
        lines.append(f"1.3.6.1.2.1.31.1.1.1.1.{p}|4|GigabitEthernet1/0/{p}")
    rng = random.Random(1)
    fdb = []
    for k in range(rows):
        mac = [0x54, 0xEE, 0x75, k >> 16 & 0xFF, k >> 8 & 0xFF, k & 0xFF]
        vlan = 100 + rng.randrange(8)
        fdb.append((vlan, mac, 1 + rng.randrange(ports)))
    for vlan, mac, port in sorted(fdb):
        lines.append(f"1.3.6.1.2.1.17.7.1.2.2.1.2.{vlan}.{'.'.join(map(str, mac))}|2|{port}")
    # snmpsim recordings are sorted by OID
    lines.sort(key=lambda s: tuple(int(x) for x in s.split("|", 1)[0].split(".")))
    path.write_text("\n".join(lines) + "\n")


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_fdb(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="where-bench-") as tmp:
        rec = Path(tmp) / f"{COMMUNITY}.snmprec"
        write_fdb_recording(rec, rows)
        agent = subprocess.Popen(
            [sys.executable, "-m", "lab.snmp.snmprec", ADDR, str(PORT), str(rec)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
        try:
            assert agent.stdout is not None
            agent.stdout.readline()
            os.environ["GOVNET_BENCH_WHERE_COMMUNITY"] = COMMUNITY
            creds = SnmpV2c.model_validate({"community": "env:GOVNET_BENCH_WHERE_COMMUNITY", "port": PORT})
            dev = Device.model_validate(
                {"name": "bench-sw", "site": "s", "role": "access_switch", "vendor": "h3c", "address": ADDR}
            )
            inv = Inventory.model_validate({"devices": [dev.model_dump()]})
            poller = TablesPoller(timeout_s=5.0, retries=1, max_repetitions=25)

            async def read_once() -> int:
                t = await poller.read(dev, creds, arp=False, fdb=True, budget_s=120)
                assert t.ok, t.error
                return len(t.fdb)

            asyncio.run(read_once())  # warm-up (imports, first session)
            read_cpu, resolve_cpu, got = [], [], 0
            for _ in range(repeat):
                c0 = time.process_time()
                tabs = None

                async def one() -> None:
                    nonlocal tabs
                    tabs = await poller.read(dev, creds, arp=False, fdb=True, budget_s=120)

                asyncio.run(one())
                c1 = time.process_time()
                assert tabs is not None and tabs.ok
                got = len(tabs.fdb)
                resolve(inv, [tabs])
                read_cpu.append(c1 - c0)
                resolve_cpu.append(time.process_time() - c1)
            anchor = []
            for _ in range(repeat):
                c0 = children_cpu()
                for col in COLUMNS:
                    subprocess.run(
                        ["snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-Cr25", "-On", "-t", "5",
                         f"{ADDR}:{PORT}", col],
                        check=True, stdout=subprocess.DEVNULL,
                    )  # fmt: skip
                anchor.append(children_cpu() - c0)
        finally:
            agent.terminate()
            agent.wait(10)
    r, s, a = statistics.median(read_cpu), statistics.median(resolve_cpu), statistics.median(anchor)
    per = 1000 / got
    print(f"FDB rows read: {got} (+ {48 * 2} port/name rows), median of {repeat}")
    print("| what | CPU ms per 1,000 FDB rows | ratio to snmpbulkwalk |")
    print("|---|---:|---:|")
    print(f"| govnet read (gufo-snmp GETBULK + parse) | {r * per * 1000:.1f} | {r / a:.2f} |")
    print(f"| govnet resolve (edge ports) | {s * per * 1000:.1f} | {s / a:.2f} |")
    print(f"| govnet sweep total | {(r + s) * per * 1000:.1f} | {(r + s) / a:.2f} |")
    print(f"| net-snmp snmpbulkwalk, same 3 columns (anchor) | {a * per * 1000:.1f} | 1.00 |")


def bench_district(cycles: int) -> None:
    district = REPO / "examples" / "district.yaml"
    with (
        tempfile.TemporaryDirectory(prefix="where-district-") as tmp,
        LabProcess(district, Path(tmp) / "run", base="127.20.96.0", ssh_port=0, progress=None) as lab,
    ):
        inv = load_inventory(lab.inventory_path)
        svc = WhereService(inv, WhereSection(state_dir=Path(tmp)), History(path=Path(tmp) / "where.db"))
        asyncio.run(svc.sweep_once())  # first sweep: sessions, v3 discovery, history rows created
        cpu, wall = [], []
        for _ in range(cycles):
            c0, w0 = time.process_time(), time.monotonic()
            sweep = asyncio.run(svc.sweep_once())
            cpu.append(time.process_time() - c0)
            wall.append(time.monotonic() - w0)
        failed = [t.device for t in svc.last_tables if not t.ok]
        hosts = lab.request("hosts")["hosts"]
        found = sum(
                1 for h in hosts
                if any((x.device, x.port, x.ip) == (h["switch"], h["port"], h["ip"]) for x in sweep.hosts)
            )  # fmt: skip
        cisco = [t for t in svc.last_tables if inv.device(t.device).vendor.value == "cisco"]
        svc.history.close()
    n = len(svc.devices())
    print(f"devices swept: {n} ({len(failed)} failed{': ' + ', '.join(failed) if failed else ''}); "
          f"ARP rows {sweep.arp_rows}, FDB rows {sweep.fdb_rows}; lab hosts traced to their port: "
          f"{found}/{len(hosts)}; Cisco (per-VLAN SNMPv3 contexts, pysnmp): {len(cisco)}")  # fmt: skip
    print(f"sweep CPU {statistics.median(cpu) * 1000:.0f} ms, wall {statistics.median(wall):.1f} s "
          f"(median of {cycles}); at the default 5 min interval: "
          f"{statistics.median(cpu) / 300 * 100:.2f} % of one core")  # fmt: skip


def bench_history(hosts: int, days: int) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="where-history-") as tmp:
        db = Path(tmp) / "where.db"
        h = History(path=db)
        n_switch = max(1, hosts // 24)
        state: list[list[object]] = []  # [ip, mac, switch, port, vlan, server?]
        for k in range(hosts):
            sw = k // 24
            ip = f"10.{64 + sw // 250}.{sw % 250}.{10 + k % 24}"
            state.append([ip, 0x54EE75000000 + k, f"acc-{sw:04d}", f"GigabitEthernet0/0/{1 + k % 24}",
                          100 + sw % 50, rng.random() < 0.1])  # fmt: skip
        next_mac = 0x3C52A1000000
        record_cpu: list[float] = []
        t0 = 1_780_000_000
        for day in range(days):
            weekday = day % 7 < 5
            # Daily churn: DHCP changes (2 %), port moves (0.3 %), replaced PCs (0.1 %).
            for s in state:
                r = rng.random()
                if r < 0.02:
                    s[0] = f"10.{200 + rng.randrange(50)}.{rng.randrange(250)}.{10 + rng.randrange(200)}"
                elif r < 0.023:
                    sw = rng.randrange(n_switch)
                    s[2], s[3] = f"acc-{sw:04d}", f"GigabitEthernet0/0/{1 + rng.randrange(24)}"
                elif r < 0.024:
                    s[1] = next_mac
                    next_mac += 1
            for hour in (9, 11, 13, 15, 17):
                now = t0 + day * 86400 + hour * 3600
                seen = {
                    Host(str(s[0]), int(s[1]), str(s[2]), str(s[3]), int(s[4]))  # type: ignore[call-overload]
                    for s in state
                    if s[5] or weekday
                }
                c0 = time.process_time()
                h.record(seen, now)
                record_cpu.append(time.process_time() - c0)
        h.flush()
        rows = h.count()
        h.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        h.db.conn.execute("VACUUM")
        size = db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob("where.db-*"))
        ips = [str(s[0]) for s in rng.sample(state, 1000)]
        macs = [int(s[1]) for s in rng.sample(state, 1000)]  # type: ignore[call-overload]
        lat_ip, lat_mac = [], []
        for ip, mac in zip(ips, macs, strict=True):
            w0 = time.perf_counter()
            h.by_ip(ip)
            lat_ip.append(time.perf_counter() - w0)
            w0 = time.perf_counter()
            h.by_mac(mac)
            lat_mac.append(time.perf_counter() - w0)
        h.close()
    naive = hosts * days * 288
    print(f"{hosts} hosts, {days} days, {len(record_cpu)} sweeps recorded")
    print(f"history rows {rows} ({rows / hosts:.2f} per host); SQLite file {size / 1e6:.1f} MB "
          f"({size / rows:.0f} B/row); a row per 5-min sighting:  {naive / 1e6:.0f} M")  # fmt: skip
    print(f"record() CPU per sweep of {hosts} hosts: median {statistics.median(record_cpu) * 1000:.0f} ms, "
          f"max {max(record_cpu) * 1000:.0f} ms")  # fmt: skip
    q = sorted(lat_ip)
    m = sorted(lat_mac)
    print(
        f"lookup by IP: median {statistics.median(q) * 1e3:.2f} ms, p99 {q[989] * 1e3:.2f} ms; "
        f"by MAC: median {statistics.median(m) * 1e3:.2f} ms, p99 {m[989] * 1e3:.2f} ms (1,000 each)"
    )


def main(argv: list[str] | None = None) -> None:
    """Run the three measurements."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--hosts", type=int, default=20000)
    p.add_argument("--days", type=int, default=180)
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--no-district", action="store_true")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.rows, a.repeat, a.hosts, a.days, a.cycles = 1000, 2, 2000, 20, 1
    print("### FDB sweep CPU\n")
    bench_fdb(a.rows, a.repeat)
    if not a.no_district:
        print("\n### Example district (examples/district.yaml through the lab)\n")
        bench_district(a.cycles)
    print("\n### History: 20,000 hosts over 180 days\n" if not a.quick else "\n### History (quick)\n")
    bench_history(a.hosts, a.days)


if __name__ == "__main__":
    main()
