"""Auditor search over a large store: the first page of a search by IP, user, device/type and time range,
with the per-segment term index against a full scan of the same store (the anchor), in the same run.

Run: .venv/bin/python -m bench.log_search [--records 10000000] [--dir DIR] [--keep]
Generates the records synthetically (firewall deny/permit, admin logins, IPS events from ~65k source
addresses, raw bytes as a device sends them) through LogStore.append_batch, so segments are sealed,
block-compressed and indexed exactly as in production. Prints seconds per first page and the ratio
scan/index; nothing is asserted (timings are for reading).
"""

from __future__ import annotations

import argparse
import base64
import random
import shutil
import tempfile
import time
from pathlib import Path

from logstore.record import iso_utc, new_record
from logstore.search import Query, search
from logstore.store import LogStore, StoreConfig

T0 = 1_790_000_000.0
DEVICES = [f"fw-{i}" for i in range(1, 9)] + ["ips-1", "vpn-1"]
LINE = (
    "<190>Mar 12 2024 10:46:04 USG6600 %%01POLICY/6/POLICY{verb}(l):vsys=public, protocol=6, "
    "source-ip={src}, source-port={sp}, destination-ip={dst}, destination-port={dp}, "
    "time=2024/3/12 10:46:04, source-zone=trust, destination-zone=untrust, rule-name=r{n}."
)


def generate(root: Path, total: int, batch: int = 20_000) -> float:
    """Write records until the store holds `total`; return the seconds it took."""
    clock = [T0]
    store = LogStore(root, StoreConfig(), clock=lambda: clock[0])
    n = store.last_seq
    rng = random.Random(20261204 + n)
    started = time.perf_counter()
    while n < total:
        recs = []
        for _ in range(min(batch, total - n)):
            n += 1
            clock[0] = T0 + n * 0.001  # 1000 records per second of receive time
            # Source addresses: a few busy ones, a long tail (10.<0-255>.<0-255>.1: 65,536 of them).
            src = f"10.{int(rng.paretovariate(1.2)) % 256}.{rng.randrange(256)}.1"
            dst = f"203.0.113.{rng.randrange(256)}"
            kind = rng.random()
            if kind < 0.9:
                etype, verb, user = (
                    ("policy_deny", "DENY", None) if kind < 0.5 else ("policy_permit", "PERMIT", None)
                )
            elif kind < 0.97:
                etype, verb, user = "admin_login", "DENY", f"user{rng.randrange(500)}"
            else:
                etype, verb, user = "attack", "DENY", None
            dp = rng.choice((22, 80, 443, 445, 3389, rng.randrange(1, 65536)))
            raw = LINE.format(verb=verb, src=src, sp=rng.randrange(1024, 65536), dst=dst, dp=dp, n=n % 97)
            recs.append(
                new_record(
                    recv_ts=iso_utc(clock[0]), source="10.255.0.1:514", transport="tcp",
                    device=DEVICES[n % len(DEVICES)], event_type=etype, src_ip=src, dst_ip=dst, dst_port=dp,
                    user=user, action="deny" if verb == "DENY" else "permit", format="huawei_usg",
                    msg=raw[36:], raw=base64.b64encode(raw.encode()).decode(),
                )
            )  # fmt: skip
        store.append_batch(recs)
        if n % 1_000_000 < batch:
            print(f"  {n:>10,} records, {time.perf_counter() - started:6.0f} s", flush=True)
    store.close()
    return time.perf_counter() - started


def first_page(store: LogStore, query: Query, use_index: bool, limit: int = 50) -> tuple[float, int, int]:
    """(seconds, records on the page, segments read from their index)."""
    t = time.perf_counter()
    page = search(store, query, 0, limit, use_index=use_index)
    return time.perf_counter() - t, len(page.items), page.used_index


def main(argv: list[str] | None = None) -> int:
    """Generate (or reuse) the store, then time first pages with and without the index."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument(
        "--active", type=int, default=60_000, help="records beyond --records, left in the active segment"
    )
    ap.add_argument("--dir", type=Path, default=None, help="store folder (reused if it holds a store)")
    ap.add_argument("--keep", action="store_true", help="keep the generated store")
    ap.add_argument("--no-scan", action="store_true", help="skip the full-scan anchor")
    args = ap.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="govnet-search-bench-"))
    root = base / "store"
    try:
        total = args.records + args.active  # the active segment (scanned, not indexed) nearly full
        have = LogStore(root, readonly=True).last_seq if (root / "segments").is_dir() else 0
        if have < total:
            print(f"generating records {have + 1:,}..{total:,} in {root}", flush=True)
            secs = generate(root, total)
            print(f"generated in {secs:.0f} s ({secs / (total - have) * 1e6:.1f} us/record)")
        reader = LogStore(root, readonly=True)
        size = reader.disk_bytes()
        print(
            f"store: seq 1..{reader.last_seq:,}, {len(reader.sealed)} sealed segments, "
            f"{size / 2**30:.2f} GiB; "
            f"active segment (scanned, not indexed): {reader.active.count:,} records, "
            f"{reader.active.bytes / 2**20:.0f} MiB"
        )
        mid = iso_utc(T0 + reader.last_seq * 0.001 / 2)
        queries = [
            ("rare source IP (~20 records spread over the store)", Query(ip="10.30.7.1")),
            ("busy source IP", Query(ip="10.1.5.1")),
            ("source IP + second half", Query(src_ip="10.3.9.1", from_ts=mid)),
            ("user", Query(user="user123")),
            ("IP absent from the store", Query(ip="192.0.2.1")),
            ("device + type (no index)", Query(device="ips-1", event_type="attack")),
        ]
        print("\n| first page of 50 | index s | records | segments by index | full scan s | scan/index |")
        print("|---|---|---|---|---|---|")
        for name, q in queries:
            reader.refresh()
            t_idx, n_idx, used = first_page(reader, q, True)
            t_scan_text = ratio = "-"
            if not args.no_scan and q.terms():
                t_scan, n_scan, _ = first_page(reader, q, False)
                assert n_scan == n_idx
                t_scan_text, ratio = f"{t_scan:.2f}", f"{t_scan / t_idx:.0f}x"
            print(f"| {name} | {t_idx:.3f} | {n_idx} | {used} | {t_scan_text} | {ratio} |", flush=True)
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
