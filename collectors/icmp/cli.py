"""`govnet probe`: one ICMP round over the inventory (or named devices), a table or JSON lines on stdout.

Exit codes: 0 every probed device answered; 1 some did not; 2 bad inventory/device name, or no
raw-socket privilege (root / CAP_NET_RAW).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from collectors.icmp.engine import IcmpEngine
from inventory.problems import safe_text


def probe_command(
    inventory: str, devices: list[str], count: int = 3, timeout: float = 1.0, json_out: bool = False
) -> int:
    """Probe once and print RTT/loss per device."""
    from inventory.cli import load_or_report

    err, out = sys.stderr, sys.stdout
    inv = load_or_report(Path(inventory), err)
    if inv is None:
        return 2
    known = {d.name: d for d in inv.devices}
    unknown = [n for n in devices if n not in known]
    if unknown:
        err.write(f"govnet: unknown device(s): {safe_text(', '.join(unknown))}\n")
        return 2
    chosen = [known[n] for n in devices] if devices else list(inv.devices)
    engine = IcmpEngine(
        [d.address for d in chosen], interval=timeout + 0.1, timeout=timeout, count=count, window=count
    )
    if not engine.open():
        err.write(f"govnet: {engine.error}\n")
        return 2
    engine.run(threading.Event(), rounds=1)
    results = {r.address: r for r in engine.results()}
    failed = 0
    for d in chosen:
        r = results[str(d.address)]
        st = r.stats
        failed += 0 if r.up else 1
        if json_out:
            row = {
                "device": d.name,
                "address": r.address,
                "up": bool(r.up),
                "loss_ratio": st.loss_ratio,
                "rtt_min": st.rtt_min,
                "rtt_avg": st.rtt_avg,
                "rtt_max": st.rtt_max,
                "jitter": st.jitter,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            rtt = f"{st.rtt_avg * 1000:.3f} ms" if st.rtt_avg is not None else "-"
            state = "up" if r.up else "DOWN"
            out.write(f"{d.name:<32} {r.address:<39} {state:<5} loss {st.loss_ratio:4.0%} rtt {rtt}\n")
    err.write(f"govnet: {len(chosen) - failed}/{len(chosen)} device(s) answered\n")
    return 1 if failed else 0
