"""A seeded log store written through every append path, for comparing two builds (the C digest module
and the pure-Python one) file by file.

`python -m tests.support.store_writer DIR [RECORDS]` writes a store in DIR with whichever build this
process imports (GOVNET_NATIVE=0 forces the Python sources): records appended whole, runs numbered ahead
(as parse workers number them) and runs whose seqs moved on (renumbered by the writer), small segments
so several are sealed (Merkle roots) and compressed, then closed. Time comes from a fixed clock.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from logstore.batch import number
from logstore.record import Record, iso_utc, new_record
from logstore.store import LogStore, StoreConfig

T0 = 1_760_000_000.0


def records(rng: random.Random, k: int, n: int) -> list[Record]:
    """`n` varied records of batch `k`: devices or none, "" values, CJK, long messages, event types."""
    out = []
    for i in range(n):
        size = rng.choice((0, 1, 40, 300, 3000))
        out.append(
            new_record(
                recv_ts=iso_utc(T0 + k + i / 7),
                device=rng.choice(("fw1", "fw2", "核心交换机", None)),
                event_type=rng.choice(("policy_deny", "policy_permit", "store", "audit", "login")),
                src_ip=f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                dst_ip=rng.choice(("203.0.113.5", "", "198.51.100.7")),
                user=rng.choice(("", "张三", "admin")),
                msg="".join(rng.choice('ab 中\\"\u2028x') for _ in range(size)),
                raw="PDE5MD4=",
            )
        )
    return out


def write(root: Path, count: int = 3000, seed: int = 20) -> None:
    """Fill a new store in `root` with about `count` records (see the module docstring)."""
    rng = random.Random(seed)
    clock_now = [T0]
    store = LogStore(root, StoreConfig(max_segment_bytes=200_000), clock=lambda: clock_now[0])
    k = 0
    written = 0
    while written < count:
        batch = records(rng, k, rng.choice((1, 2, 7, 64, 500)))
        how = k % 4
        if how == 0:  # whole records, numbered by the writer
            store.append_batch(batch)
        elif how == 1:  # one run numbered ahead, as a parse worker does
            store.append_batch([number(batch, store.last_seq + 1)])
        elif how == 2:  # runs numbered ahead around an audit record appended meanwhile: renumbered
            ahead = store.last_seq + 1
            half = len(batch) // 2
            runs = [number(batch[:half], ahead)] if half else []
            runs.append(number(batch[half:], ahead + half))
            clock_now[0] += 1
            store.append(new_record(event_type="audit", action="export", msg=f"between {k}"))
            store.append_batch(runs)
        else:  # records and runs mixed in one batch
            half = len(batch) // 2
            store.append_batch([*batch[:half], number(batch[half:], store.last_seq + 1 + half)])
        written += len(batch)
        k += 1
    store.close()


if __name__ == "__main__":
    write(Path(sys.argv[1]), *(int(a) for a in sys.argv[2:3]))
