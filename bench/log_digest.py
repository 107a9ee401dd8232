"""The log store's SHA-256 work per record: the module in use (logstore/digest.c when built) against its
reference (logstore/digest.py, hashlib) in the same run, on the ingest bench's parsed records.

Run: .venv/bin/python -m bench.log_digest [--records 20000] [--repeat 9]
Prints µs CPU per record (min of the repeats) for a worker's leaf, the writer's chain, the Merkle root
at sealing and a worker's whole numbering, and the ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from types import ModuleType

import orjson

from bench.syslog_ingest import stream
from collectors.syslog.formats import load_formats
from collectors.syslog.parse import parse_frame
from logstore import digest
from logstore.batch import HASH_AT, Numbered, Numberer, number
from logstore.native import NATIVE
from logstore.record import Record, meta_bytes

RUN = 500  # records per numbered run (the workers' runs are of this order)


def reference() -> ModuleType:
    """logstore/digest.py, loaded beside whichever module `logstore.digest` is."""
    return NATIVE.reference("digest")


def cpu_per(count: int, repeat: int, fn: Callable[[], object]) -> float:
    """Minimum CPU µs per item of `fn` over `repeat` calls (process time: the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / count * 1e6


def measure(module: ModuleType, recs: list[Record], runs: list[Numbered], repeat: int) -> dict[str, float]:
    """µs per record of `module`'s three functions on these records and runs."""
    bodies = [orjson.dumps(rec, None, orjson.OPT_SORT_KEYS) for rec in recs]
    tails = [meta_bytes([0, rec["recv_ts"], rec.get("device"), rec["event_type"]])[2:] for rec in recs]
    n = len(recs)

    def leaves() -> None:
        out = bytearray()
        for seq, (tail, body) in enumerate(zip(tails, bodies, strict=True)):
            module.leaf_into(out, seq, tail, body)

    def chain() -> None:
        prev = bytes(32)
        for run in runs:
            prev = module.chain(prev, run.leaves, run.lines, run.starts, HASH_AT)

    packed = b"".join(run.leaves for run in runs)
    return {
        "leaf (worker)": cpu_per(n, repeat, leaves),
        "chain (writer)": cpu_per(n, repeat, chain),
        "Merkle root (sealing)": cpu_per(n, repeat, lambda: module.merkle_root_packed(packed)),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure and print; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args(argv)
    formats = load_formats()
    frames = [line for payload in stream(4, args.records) for line in payload.split(b"\n") if line]
    now = time.time()
    recs = [parse_frame(raw, now, "127.0.0.1:5140", "tcp", formats, {}, None) for raw in frames]
    runs = [number([dict(r) for r in recs[i : i + RUN]], 1 + i) for i in range(0, len(recs), RUN)]
    ref = reference()
    print(
        f"{len(recs)} bench records; logstore build: {NATIVE.check().state}; in use: {digest.IMPLEMENTATION}"
    )
    used = measure(digest, recs, runs, args.repeat)
    base = measure(ref, recs, runs, args.repeat)
    print(f"{'µs CPU per record':24s} {'in use':>8s} {'hashlib':>8s} {'ratio':>6s}")
    for name, value in used.items():
        print(f"{name:24s} {value:8.3f} {base[name]:8.3f} {value / base[name]:6.2f}")

    def numbering() -> None:
        copies = [dict(r) for r in recs]
        for i in range(0, len(copies), RUN):
            numberer = Numberer(1 + i)
            for rec in copies[i : i + RUN]:
                numberer.add(rec)
            numberer.done()

    # Includes copying each record (as a worker hands the numberer a fresh dict): ~0.1 µs.
    print(f"{'Numberer.add + done':24s} {cpu_per(len(recs), args.repeat, numbering):8.3f} (this build)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
