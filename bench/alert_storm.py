"""An alert storm on the supervisor's loop: every interface of every device erroring and saturated.

Run: .venv/bin/python -m bench.alert_storm [--devices 1000] [--warmup 15] [--thresholds 700,10,10 50000,20,10]

For each garbage-collector threshold (each in its own process, one after the other) the engine is fed
`--warmup` evaluations of the storm, then one more evaluation is stepped as `evaluate_yielding` steps
it; printed: the evaluation's time, its longest step (how long the loop is held), the collections it
ran per generation with the longest of each, and the process's peak RSS. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time

from alerts.engine import Engine
from alerts.rules import DEFAULT_RULES, load_rules
from core.samples import Sample, labels_of

IFS = 48
STEP = 60.0  # seconds between evaluations (the samples' clock; nothing sleeps)


def publish(engine: Engine, devices: int, t: float) -> None:
    """One poll of every device: error counters and output octets rising fast on every interface."""
    for d in range(devices):
        name = f"sw{d}"
        base = labels_of(device=name, site="s", role="access_switch", vendor="huawei")
        samples = [Sample("govnet_up", base, 1.0, t)]
        for i in range(IFS):
            lab = labels_of(
                device=name, site="s", role="access_switch", vendor="huawei", ifname=f"g{i}", ifindex=str(i)
            )
            samples.append(Sample("govnet_if_in_errors_total", lab, t * 10.0, t))
            samples.append(Sample("govnet_if_out_octets_total", lab, t * 1e9, t))
            samples.append(Sample("govnet_if_in_octets_total", lab, t * 1.0, t))
            samples.append(Sample("govnet_if_speed_bps", lab, 1e9, t))
        engine.publish(name, samples)


def child(devices: int, warmup: int, thresholds: tuple[int, int, int]) -> dict[str, object]:
    """The measurement in this process (the thresholds apply from the start, as in `govnet run`)."""
    gc.set_threshold(*thresholds)
    engine = Engine(load_rules(DEFAULT_RULES))
    t = 0.0
    for _ in range(warmup):
        publish(engine, devices, t)
        engine.evaluate(t)
        t += STEP
    publish(engine, devices, t)
    passes: list[list[float]] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append([info["generation"], time.perf_counter()])
        else:
            passes[-1].append(time.perf_counter())

    gc.callbacks.append(watch)
    steps = engine.evaluation(t)
    start = last = time.perf_counter()
    longest = 0.0
    for _ in steps:
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    took = time.perf_counter() - start
    gc.callbacks.remove(watch)
    per_gen: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for gen, begun, *ended in passes:
        if ended:
            per_gen[int(gen)].append(ended[0] - begun)
    return {
        "states": len(engine.states),
        "evaluation_s": took,
        "longest_step_ms": longest * 1000,
        "collections": {g: len(v) for g, v in per_gen.items()},
        "longest_collection_ms": {g: max(v, default=0.0) * 1000 for g, v in per_gen.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    """Measure each threshold in a fresh process and print one row each."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=15, help="evaluations before the measured one")
    ap.add_argument("--thresholds", nargs="+", default=["700,10,10", "50000,20,10"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        g0, g1, g2 = (int(x) for x in args.child.split(","))
        print(json.dumps(child(args.devices, args.warmup, (g0, g1, g2))))
        return
    print(f"alert storm: {args.devices} devices x {IFS} interfaces, {args.warmup} evaluations first")
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"{'gc thresholds':16s} {'states':>7s} {'eval s':>7s} {'longest step ms':>16s} "
        f"{'collections g0/g1/g2':>21s} {'longest g1/g2 ms':>17s} {'peak RSS MB':>12s}"
    )
    for spec in args.thresholds:
        cmd = [
            sys.executable,
            "-m",
            "bench.alert_storm",
            "--devices",
            str(args.devices),
            "--warmup",
            str(args.warmup),
            "--child",
            spec,
        ]
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        n, longest = out["collections"], out["longest_collection_ms"]
        print(
            f"{spec:16s} {out['states']:7d} {out['evaluation_s']:7.2f} {out['longest_step_ms']:16.0f} "
            f"{n['0']:>9d}/{n['1']}/{n['2']:<6d} {longest['1']:8.0f}/{longest['2']:<8.0f} "
            f"{out['peak_rss_mb']:12.0f}"
        )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
