"""Measure the CPU cost of probing N loopback targets: this engine vs scapy `sr()` (run as root).

python -m collectors.icmp.bench --targets 133 --rounds 3
"""

from __future__ import annotations

import argparse
import threading
import time

from collectors.icmp.engine import IcmpEngine


def bench_engine(targets: list[str], rounds: int, interval: float, count: int) -> tuple[float, float, int]:
    """CPU seconds and wall seconds of `rounds` engine rounds, and the replies received."""
    engine = IcmpEngine(targets, interval=interval, timeout=min(1.0, interval / 2), count=count)
    if not engine.open():
        raise SystemExit(f"engine: {engine.error}")
    stop = threading.Event()
    wall0 = time.monotonic()
    thread_cpu: list[float] = []

    def body() -> None:
        t0 = time.thread_time()
        engine.run(stop)
        thread_cpu.append(time.thread_time() - t0)

    th = threading.Thread(target=body)
    th.start()
    time.sleep(interval * rounds - interval / 4)
    stop.set()
    th.join()
    replies = sum(r.sent_total - r.lost_total for r in engine.results())
    return thread_cpu[0], time.monotonic() - wall0, replies


def bench_sr(targets: list[str], count: int) -> tuple[float, float, int]:
    """CPU and wall seconds of one scapy sr() round over every target (timeout 1 s)."""
    from scapy.all import conf
    from scapy.layers.inet import ICMP, IP
    from scapy.sendrecv import sr

    conf.verb = 0
    pkts = [IP(dst=t) / ICMP(id=0x4242, seq=i) for i in range(count) for t in targets]
    cpu0, wall0 = time.process_time(), time.monotonic()
    ans, _unans = sr(pkts, timeout=1, verbose=0)
    return time.process_time() - cpu0, time.monotonic() - wall0, len(ans)


def main() -> None:
    """Print the measurements."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=133)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--base", default="127.28.10.")
    args = ap.parse_args()
    targets = [f"{args.base}{i}" for i in range(1, args.targets + 1)]
    cpu, wall, replies = bench_engine(targets, args.rounds, args.interval, args.count)
    echoes = args.rounds * args.count * len(targets)
    print(
        f"engine: {len(targets)} targets x {args.count} echoes x {args.rounds} rounds: "
        f"{replies}/{echoes} replies, thread CPU {cpu * 1000:.1f} ms "
        f"({cpu * 1e6 / max(1, echoes):.0f} us/echo), wall {wall:.1f} s"
    )
    cpu, wall, replies = bench_sr(targets, args.count)
    print(
        f"scapy sr(): one round {len(targets)} x {args.count}: {replies} replies, "
        f"CPU {cpu * 1000:.1f} ms ({cpu * 1e6 / max(1, len(targets) * args.count):.0f} us/echo), "
        f"wall {wall:.2f} s"
    )


if __name__ == "__main__":
    main()
