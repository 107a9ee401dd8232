"""Garbage-collector settings of govnet's long-running processes (`govnet run`'s supervisor, `govnet
syslog`, the syslog parse workers)."""

from __future__ import annotations

import gc

# An alert evaluation in a storm makes ~400,000 objects that outlive two young collections at the
# default threshold (700): promoted, they set off ~6 full collections of 100-330 ms each, every one
# holding the loop. At 50,000 they die young: no full collection, peak RSS +4 % (bench.alert_storm,
# docs/bench.md). The syslog receiver's answer headers are unpickled ~2x cheaper with it as well.
GC_THRESHOLDS = (50_000, 20, 10)


def tune(freeze: bool = False) -> None:
    """Apply the thresholds to this process (before its loop starts); with `freeze`, first move every
    object alive now out of the collector's sight (a parse worker's compiled formats and modules: its
    per-line objects hold no cycles and are freed by their counts)."""
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
