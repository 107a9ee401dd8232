"""Sustained syslog ingest over TCP from several senders: govnet (parse + hash chain + fsync per batch)
against rsyslogd writing the same stream to a file, in the same run.

Run: .venv/bin/python -m bench.syslog_ingest [--lines 200000] [--senders 4]
Prints lines/s, CPU per line and the govnet/rsyslog ratio; nothing is asserted (timings are for reading).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.38.0.1"
LINE = (
    "<190>Mar 12 2024 10:46:04 USG6600 %%01POLICY/6/POLICYDENY(l):vsys=public, protocol=6, "
    "source-ip=10.1.{a}.{b}, source-port={sp}, destination-ip=203.0.113.5, destination-port=445, "
    "time=2024/3/12 10:46:04, source-zone=trust, destination-zone=untrust, rule-name=deny_smb_{n}."
)

CHILD = r"""
import asyncio, os, sys
from pathlib import Path
from core.gcsettings import tune
from collectors.syslog.formats import load_formats
from collectors.syslog.receiver import Ingest, start_receiver
from logstore.store import LogStore, StoreConfig

def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

async def main():
    tune()  # as `govnet run`, whose process hosts the receiver
    store = LogStore(Path(sys.argv[1]), StoreConfig(compress_in_background=True))  # as `govnet run`
    total = int(sys.argv[3])
    done = asyncio.Event()
    def on_durable(n, seq):
        if n >= total:
            done.set()
    ingest = Ingest(store, load_formats(), {}, batch_max=5000, on_durable=on_durable,
                    parse_workers=int(sys.argv[4]))
    rx = await start_receiver(ingest, sys.argv[2], 0, None)
    print(rx.tcp_port, flush=True)
    await done.wait()
    # CPU so far of this process and of each parse worker (the bench splits CPU per line by process).
    pids = [os.getpid(), *(ingest.pool.pids() if ingest.pool else [])]
    print(" ".join(f"{pid}:{cpu(pid)}" for pid in pids), flush=True)
    await rx.close()
    store.close()

asyncio.run(main())
"""


def stream(senders: int, lines: int) -> list[bytes]:
    """One LF-framed payload per sender (~277-byte firewall lines)."""
    per = lines // senders
    out = []
    for s in range(senders):
        rows = (LINE.format(a=s, b=i % 250, sp=1024 + i % 60000, n=i % 97) for i in range(per))
        out.append("".join(r + "\n" for r in rows).encode())
    return out


def send_all(port: int, payloads: list[bytes]) -> None:
    def one(data: bytes) -> None:
        with socket.create_connection((HOST, port)) as sock:
            sock.sendall(data)

    threads = [threading.Thread(target=one, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def child_cpu(pid: int) -> float:
    """User+system CPU seconds of a running process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_govnet(
    workdir: Path, payloads: list[bytes], lines: int, workers: int
) -> tuple[float, float, float, float]:
    """(seconds from first byte to last fsync, CPU seconds of the receiver and its parse workers,
    CPU seconds of the receiving process alone and of the workers alone until the last commit)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(workdir / f"store-{workers}"), HOST, str(lines), str(workers)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    time.sleep(1.0 if workers else 0)  # let spawned parse workers finish importing before timing
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # What the receiver and its workers spent starting up (imports, compiling the formats) is not
    # ingest: it is counted when they exit, so it is read now and taken off.
    at_start = {pid: child_cpu(pid) for pid in family(proc.pid)}
    startup = sum(at_start.values())
    start = time.perf_counter()
    send_all(port, payloads)
    split = [tuple(map(float, x.split(":"))) for x in proc.stdout.readline().split()]
    writer = split[0][1] - at_start.get(int(split[0][0]), 0.0)
    parsers = sum(c - at_start.get(int(pid), 0.0) for pid, c in split[1:])
    proc.wait(600)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) - startup
    return elapsed, cpu, writer, parsers


def family(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out += family(int(child))
    return out


RSYSLOG_CONF = """
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\\n")
input(type="imtcp" address="{host}" port="{port}" ruleset="out")
ruleset(name="out") {{
  action(type="omfile" file="{out}" template="raw" {sync})
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def bench_rsyslog(workdir: Path, payloads: list[bytes], lines: int, sync: str) -> tuple[float, float]:
    """(seconds until the output file holds every line, CPU seconds of rsyslogd)."""
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    work = workdir / f"rsyslog-{len(sync)}"
    work.mkdir()
    out = work / "out.log"
    port = free_port()
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, host=HOST, port=port, out=out, sync=sync))
    proc = subprocess.Popen(
        [rsyslogd, "-n", "-f", str(conf), "-i", str(work / "pid")], stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        cpu0 = child_cpu(proc.pid)
        start = time.perf_counter()
        send_all(port, payloads)
        expected = sum(len(p) for p in payloads)
        while not out.exists() or out.stat().st_size < expected:
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        cpu = child_cpu(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(30)
    return elapsed, cpu


def tamper(records: int) -> None:
    """Build a store of `records`, then flip a byte, delete, swap, insert: time each detection."""
    import gzip
    import json

    from logstore.record import new_record
    from logstore.store import LogStore, StoreConfig

    with tempfile.TemporaryDirectory(prefix="govnet-tamper-") as tmp:
        root = Path(tmp) / "store"
        store = LogStore(root, StoreConfig(max_segment_bytes=64 * 1024 * 1024))
        start = time.perf_counter()
        for b in range(0, records, 5000):
            store.append_batch([
                new_record(device=f"fw{i % 7}", event_type="policy_deny", src_ip=f"10.0.{i % 250}.1",
                           dst_port=445, msg=f"policy deny rule r{i % 17} n={i}", raw="PDE5MD4=")
                for i in range(b, min(records, b + 5000))
            ])  # fmt: skip
        store.close()
        segs = sorted((root / "segments").glob("seg-*.ndjson*"))
        size = sum(p.stat().st_size for p in segs) / 1e6
        took = time.perf_counter() - start
        print(
            f"store of {records} records: built in {took:.1f} s, {len(segs)} segments, {size:.1f} MB on disk"
        )
        target = segs[len(segs) // 2]
        original = (gzip.open if target.suffix == ".gz" else open)(target, "rb").read()
        lines = original.splitlines(keepends=True)
        k = len(lines) // 2

        def flip(ls: list[bytes]) -> list[bytes]:
            ls[k] = ls[k].replace(b"n=", b"m=", 1)
            return ls

        def forge(ls: list[bytes]) -> list[bytes]:
            obj = json.loads(ls[k])
            obj["r"]["msg"] = "forged"
            return [*ls[: k + 1], json.dumps(obj).encode() + b"\n", *ls[k + 1 :]]

        edits = {
            "flip one byte": flip,
            "delete one record": lambda ls: ls[:k] + ls[k + 1 :],
            "swap two records": lambda ls: [*ls[:k], ls[k + 1], ls[k], *ls[k + 2 :]],
            "insert one record": forge,
        }
        for name, edit in edits.items():
            data = b"".join(edit(list(lines)))
            (gzip.open if target.suffix == ".gz" else open)(target, "wb").write(data)
            start = time.perf_counter()
            check = LogStore(root)
            problems = check.verify()
            check.close()
            took = time.perf_counter() - start
            first = problems[0] if problems else "NOT DETECTED"
            print(f"{name:18s} verify {took:5.1f} s -> {first}")
            (gzip.open if target.suffix == ".gz" else open)(target, "wb").write(original)


def main() -> None:
    """Run govnet and rsyslog `--runs` times, alternating, and print each run's ratios and their median."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument(
        "--parse-workers", default="0,1,2", help="govnet configurations to measure (comma-separated counts)"
    )
    parser.add_argument("--runs", type=int, default=3, help="same-run pairs; the median ratio is reported")
    parser.add_argument("--tamper-records", type=int, default=0, help="run the tamper benchmark instead")
    args = parser.parse_args()
    if args.tamper_records:
        tamper(args.tamper_records)
        return
    payloads = stream(args.senders, args.lines)
    lines = sum(p.count(b"\n") for p in payloads)
    size = sum(len(p) for p in payloads) / lines
    counts = sorted({int(x) for x in str(args.parse_workers).split(",") if x.strip()})
    print(f"{lines} lines of {size:.0f} B over {args.senders} TCP connections to {HOST}, {args.runs} runs")
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sync_label = "rsyslog sync=on ioBufferSize=256k"
    ratios: dict[str, list[float]] = {}
    buffered: dict[str, list[float]] = {}
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="govnet-syslog-bench-") as tmp:
            work = Path(tmp)
            govnet: dict[str, float] = {}
            for workers in counts:
                g_s, g_cpu, w_cpu, p_cpu = bench_govnet(work, payloads, lines, workers)
                label = f"govnet parse_workers={workers}"
                rate, cpu = lines / g_s, g_cpu / lines * 1e6
                split = f"(receiving process {w_cpu / lines * 1e6:.1f}, workers {p_cpu / lines * 1e6:.1f})"
                print(f"run {run} {label:34s} {rate:9.0f} lines/s  {cpu:6.1f} us CPU/line {split}")
                govnet[label] = g_s
            results = {}
            for label, sync in [(sync_label, 'sync="on" ioBufferSize="256k"'), ("rsyslog buffered", "")]:
                r_s, r_cpu = bench_rsyslog(work, payloads, lines, sync)
                results[label] = r_s
                rate, cpu = lines / r_s, r_cpu / lines * 1e6
                print(f"run {run} {label:34s} {rate:9.0f} lines/s  {cpu:6.1f} us CPU/line")
            for g_label, g_s in govnet.items():
                ratios.setdefault(g_label, []).append(results[sync_label] / g_s)
                buffered.setdefault(g_label, []).append(results["rsyslog buffered"] / g_s)
                print(f"run {run} ratio {g_label} / {sync_label}: {results[sync_label] / g_s:.3f}")
    # The median lines feed `make bench`'s goal table (bench/__main__.py SYSLOG_RATIO).
    for g_label, values in ratios.items():
        runs = ", ".join(f"{v:.3f}" for v in values)
        print(f"ratio {g_label} / {sync_label}: {statistics.median(values):.3f} (median; runs {runs})")
        print(f"ratio {g_label} / rsyslog buffered: {statistics.median(buffered[g_label]):.3f} (median)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
