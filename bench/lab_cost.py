"""What the lab costs: a ~130-device lab polled every 30 s by real net-snmp clients (SNMPv3 authPriv),
and the lab's CPU per govnet device poll.

Prints the lab's CPU seconds per minute (idle and polled), its RSS, and the varbinds it serves per
CPU second; then polls a synthetic lab of `--govnet-devices` with govnet's own SnmpCollector (in a
child process, 64 at a time, like `bench.capacity`) and prints the lab's CPU per device poll: the
figure that says how many devices the lab can serve beside a poller. CPU is summed over every lab
process (`--procs`). Usage: .venv/bin/python bench/lab_cost.py [--devices 130] [--interfaces 48]
[--cycles 2] [--interval 30] [--inventory examples/district.yaml] [--govnet-devices 200] [--procs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.runner import LabProcess
from lab.synth import write_synth_inventory

TICK = os.sysconf("SC_CLK_TCK")
WALKS = (".1.3.6.1.2.1.2.2.1", ".1.3.6.1.2.1.31.1.1.1")  # ifTable + ifXTable


def cpu_s(lab: LabProcess) -> float:
    """CPU seconds of the lab process and its shards."""
    total = 0.0
    for pid in lab.pids():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def rss_mb(lab: LabProcess) -> float:
    """Resident memory of the lab process and its shards."""
    total = 0.0
    for pid in lab.pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


async def poll_all(lab: LabProcess, interval: float, cycles: int, concurrency: int) -> tuple[int, int]:
    auth, priv = lab.secret("snmp_auth"), lab.secret("snmp_priv")
    devices = list(lab.devices().values())
    sem = asyncio.Semaphore(concurrency)
    failures = 0
    lines = 0

    async def walk(dev: dict[str, object], oid: str) -> None:
        nonlocal failures, lines
        async with sem:
            proc = await asyncio.create_subprocess_exec(
                "snmpbulkwalk", "-v3", "-l", "authPriv", "-u", "govnet", "-a", "SHA-256", "-A", auth,
                "-x", "AES", "-X", priv, "-Cr25", "-On", "-t", "5", f"{dev['address']}:{dev['snmp_port']}",
                oid,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await proc.communicate()
            failures += proc.returncode != 0
            lines += out.count(b"\n")

    loop = asyncio.get_running_loop()
    for c in range(cycles):
        start = loop.time()
        # Spread the devices over the interval like a scheduler would.
        tasks = []
        for k, dev in enumerate(devices):
            delay = start + interval * k / len(devices) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks += [asyncio.create_task(walk(dev, oid)) for oid in WALKS]
        await asyncio.gather(*tasks)
        rest = start + interval - loop.time()
        print(f"cycle {c + 1}/{cycles}: {len(devices)} devices polled, {failures} failed walks", flush=True)
        if rest > 0 and c + 1 < cycles:
            await asyncio.sleep(rest)
    return failures, lines


def micro(n_interfaces: int) -> None:
    """The agent alone (no sockets): v2c GETBULK x25 walks of ifXTable, varbinds per CPU second."""
    from inventory.model import Inventory
    from lab.devices import build_devices
    from lab.server import make_agent
    from lab.snmp import ber
    from lab.synth import synth_inventory

    inv = Inventory.model_validate(synth_inventory(3, n_interfaces))
    dev = build_devices(inv, "127.20.0.0", 161, None, time.time())[2]
    agent = make_agent(dev, b"public", b"authpassword", b"privpassword")
    root: tuple[int, ...] = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
    served = 0
    in_agent = 0.0
    t0 = time.process_time()
    for _ in range(200):
        oid = root
        while oid[: len(root)] == root:
            pdu = ber.encode_pdu(ber.GETBULK, 1, 0, 25, [ber.varbind(ber.enc_oid(oid), ber.NULL_VALUE)])
            req = ber.encode_v2c(1, b"public", pdu)
            a0 = time.process_time()
            resp = agent.handle(req, time.time())
            in_agent += time.process_time() - a0
            assert resp is not None
            msg = ber.decode_v2c(resp)
            s, e = ber.expect(resp, 0, len(resp), ber.SEQUENCE)
            _, p = ber.read_int(resp, s, e)
            _, p = ber.read_octets(resp, p, e)
            _, ps, pe = ber.read_tlv(resp, p, e)
            _, q = ber.read_int(resp, ps, pe)
            _, q = ber.read_int(resp, q, pe)
            _, q = ber.read_int(resp, q, pe)
            vbs = ber.decode_varbinds(resp, q, pe)
            served += len(vbs)
            oid = vbs[-1][0]
            del msg
    used = time.process_time() - t0
    print(f"agent alone (v2c GETBULK 25, no sockets): {served / in_agent:,.0f} varbinds per CPU second "
          f"({served / used:,.0f} including this loop's client-side encoding and decoding)")  # fmt: skip


def per_govnet_poll(devices: int, interfaces: int, rounds: int, procs: int, base: str) -> dict[str, float]:
    """The lab's CPU per device poll when govnet's SnmpCollector polls a synthetic lab."""
    import yaml

    from bench.snmp_vs_exporter import run_child
    from lab.synth import synth_inventory

    with tempfile.TemporaryDirectory(prefix="lab-cost-") as tmp:
        src = Path(tmp) / "inv.yaml"
        # The lab adds each device's management port to the listed ones (48 in all by default).
        src.write_text(yaml.safe_dump(synth_inventory(devices, interfaces - 1)))
        t0 = time.monotonic()
        with LabProcess(
            src, Path(tmp) / "run", base=base, ssh_port=0, progress=None, procs=procs, start_timeout=300
        ) as lab:
            start_s = time.monotonic() - t0
            inv = yaml.safe_load(lab.inventory_path.read_text())
            spec: dict[str, object] = {"inventory": inv, "polls": 0, "warmup": 1, "concurrency": 64}
            run_child("bench._poll_child", spec, {})  # v3 discovery and the first walks, unmeasured
            st0, c0 = lab.status(), cpu_s(lab)
            r = run_child("bench._poll_child", {**spec, "polls": rounds, "warmup": 0}, {})
            used = cpu_s(lab) - c0
            st = lab.status()
            rss = rss_mb(lab)
    polls = int(r["polls"])
    return {
        "devices": devices,
        "procs": procs,
        "start_s": start_s,
        "polls": polls,
        "ok": int(r["ok"]),
        "varbinds": int(r["varbinds"]),
        "requests": st["requests"] - st0["requests"],
        "lab_cpu_s": used,
        "lab_ms_per_poll": 1000 * used / max(polls, 1),
        "lab_us_per_request": 1e6 * used / max(st["requests"] - st0["requests"], 1),
        "poller_ms_per_poll": 1000 * float(r["cpu_s"]) / max(polls, 1),
        "lab_rss_mb": rss,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=130)
    p.add_argument("--interfaces", type=int, default=48)
    p.add_argument("--cycles", type=int, default=2)
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument("--idle", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--inventory", type=Path)
    p.add_argument("--base", default="127.20.64.0")
    p.add_argument("--govnet-devices", type=int, default=200, help="0: skip the govnet-poll measurement")
    p.add_argument("--rounds", type=int, default=3, help="measured govnet poll rounds")
    p.add_argument("--procs", type=int, default=1, help="lab processes (lab.server --procs)")
    args = p.parse_args()
    micro(args.interfaces)
    if args.govnet_devices:
        g = per_govnet_poll(args.govnet_devices, args.interfaces, args.rounds, args.procs, "127.20.96.0")
        print(
            f"govnet polls of a {g['devices']}-device synthetic lab ({args.interfaces} interfaces, "
            f"v3 authPriv, {g['procs']} lab process(es), started in {g['start_s']:.1f} s): "
            f"{g['ok']}/{g['polls']} polls ok, "
            f"{g['varbinds'] / max(g['polls'], 1):.0f} varbinds and {g['requests'] / max(g['polls'], 1):.0f} "
            f"requests per poll"
        )
        print(
            f"lab CPU per govnet device poll: {g['lab_ms_per_poll']:.2f} ms "
            f"({g['lab_us_per_request']:.0f} us per request; "
            f"the poller's own: {g['poller_ms_per_poll']:.2f} ms); "
            f"lab RSS {g['lab_rss_mb']:.0f} MB"
        )
    with tempfile.TemporaryDirectory(prefix="lab-cost-") as tmp:
        inv = args.inventory or write_synth_inventory(Path(tmp) / "inv.yaml", args.devices, args.interfaces)
        t0 = time.monotonic()
        with LabProcess(inv, Path(tmp) / "run", base=args.base, ssh_port=0, procs=args.procs) as lab:
            st = lab.status()
            n = len(st["devices"])
            print(f"lab up: {n} devices in {time.monotonic() - t0:.1f} s, start CPU {cpu_s(lab):.2f} s, "
                  f"RSS {rss_mb(lab):.1f} MB")  # fmt: skip
            c0 = cpu_s(lab)
            time.sleep(args.idle)
            idle = (cpu_s(lab) - c0) / args.idle * 60
            v0, c1, w0 = st["varbinds"], cpu_s(lab), time.monotonic()
            failures, lines = asyncio.run(poll_all(lab, args.interval, args.cycles, args.concurrency))
            wall = time.monotonic() - w0
            used = cpu_s(lab) - c1
            st = lab.status()
            served = st["varbinds"] - v0
            print(f"idle: {idle:.3f} CPU s/min")
            print(f"polled: {args.cycles} cycles x {n} devices every {args.interval:.0f} s, "
                  f"{served} varbinds ({lines} lines at the clients), {failures} failed walks")  # fmt: skip
            print(f"lab CPU: {used:.2f} s over {wall:.0f} s = {used / max(wall, 1e-9) * 60:.2f} CPU s/min "
                  f"({used / max(wall, 1e-9) * 100:.1f}% of one core)")  # fmt: skip
            print(f"lab RSS: {rss_mb(lab):.1f} MB")
            print(
                f"agent throughput: {served / max(used, 1e-9):,.0f} varbinds per CPU second "
                "(v3 authPriv, GETBULK 25)"
            )


if __name__ == "__main__":
    main()
