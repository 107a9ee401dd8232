"""Settings of govnet's long-running processes (`govnet run`'s supervisor, `govnet syslog`)."""

from __future__ import annotations

import gc

# An alert evaluation in a storm makes ~400,000 objects that outlive two young collections at the
# default threshold (700): promoted, they set off ~6 full collections of 100-330 ms each, every one
# holding the loop. At 50,000 they die young: no full collection, peak RSS +4 % (bench.alert_storm,
# docs/bench.md). The syslog receiver's answer headers are unpickled ~2x cheaper with it as well.
GC_THRESHOLDS = (50_000, 20, 10)


def tune() -> None:
    """Apply the settings to this process (before its event loop starts)."""
    gc.set_threshold(*GC_THRESHOLDS)
