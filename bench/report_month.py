"""A month of the example district (133 devices) as a report: how long collect + XLSX + PDF take.

The journal is synthesised (a month of state changes: each device fails a few times, aggregation uplinks
degrade, one maintenance window, govnet stopped twice), incidents are stored like the engine stores them,
then `govnet report monthly` runs as a process. Goal (issue 17): <= 30 s on this machine. No TSDB here:
the uplink section says so; `--tsdb URL` adds it.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from alerts.incidents import Incident
from alerts.journal import Journal
from alerts.levels import Level
from alerts.persist import StateDB, incident_to_json
from inventory.load import load_inventory
from reports.collect import month_bounds

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "examples" / "district.yaml"


def synthesise(folder: Path, month: str, seed: int = 7) -> tuple[Path, int]:
    """A config whose state file holds a month of journal and incidents; returns (config, changes)."""
    rng = random.Random(seed)
    inv = load_inventory(INVENTORY)
    start, end = month_bounds(month)
    state = folder / "state" / "alerts.db"
    journal = Journal(state, gap=60)
    journal.conn.execute("PRAGMA synchronous=OFF")  # synthesis only: the engine writes each one durably
    # Observations every 60 s (a month = 43,200 evaluations, all devices each time, as the engine does).
    states = {d.name: "up" for d in inv.devices}
    outages: dict[str, float] = {}
    stopped = [(start + 9 * 86400, start + 9 * 86400 + 1800), (start + 20 * 86400, start + 20 * 86400 + 300)]
    changes = 0
    t = start
    while t < end:
        if not any(a <= t < b for a, b in stopped):
            for name in states:
                if name in outages and t >= outages[name]:
                    del outages[name]
                    states[name] = "up"
                elif states[name] == "up" and rng.random() < 3 / (30 * 1440):  # ~3 failures a month
                    states[name] = rng.choice(["down", "degraded", "unreachable"])
                    outages[name] = t + rng.uniform(120, 7200)
            changes += journal.observe(states, t)
        t += 60
    journal.close()
    db = StateDB(state)
    for i in range(60):
        opened = rng.uniform(start, end - 86400)
        dev = rng.choice(inv.devices).name
        inc = Incident(str(i + 1), (("device", dev),), opened, rng.choice(list(Level)), "state")
        inc.acked_at = opened + rng.uniform(60, 1800)
        inc.resolved_at = opened + rng.uniform(600, 14400)
        inc.reported_at = opened + rng.uniform(600, 9000) if inc.level.must_report else None
        with db.tx() as conn:
            conn.execute(
                "INSERT INTO incidents (id, open, doc) VALUES (?, 0, ?)",
                (inc.id, _json(incident_to_json(inc))),
            )
    db.close()
    cfg = {
        "inventory": str(INVENTORY),
        "alerts": {
            "state_db": "state/alerts.db",
            "channels": [{"type": "webhook", "name": "w", "url": "file:hook.url"}],
            "route": ["w"],
            "maintenance": [
                {
                    "name": "月度割接",
                    "match": ['site=~".+"'],
                    "weekly": {"days": ["sun"], "start": "01:00", "end": "03:00"},
                }
            ],
        },
        "reports": {"dir": "reports"},
    }
    (folder / "hook.url").write_text("http://127.0.0.1:9/\n")
    path = folder / "govnet.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path, changes


def _json(doc: object) -> str:
    import json

    return json.dumps(doc, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    """Print the generation time next to the goal."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--month", default="2026-11")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="govnet-report-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.monotonic()
        config, changes = synthesise(folder, args.month)
        print(f"synthesised a month: {changes} state changes of 133 devices in {time.monotonic() - t0:.1f} s")
        times = []
        for i in range(args.runs):
            t0 = time.monotonic()
            res = subprocess.run(
                [sys.executable, "-m", "govnet", "report", "monthly", "--config", str(config),
                 "--month", args.month, "--out", str(folder / f"out{i}")],
                check=False, capture_output=True, text=True,
            )  # fmt: skip
            times.append(time.monotonic() - t0)
            if res.returncode != 0:
                print(f"# govnet report failed ({res.returncode}):\n{res.stderr}")
                return 1
        pdf = folder / "out0" / "report.pdf"
        print("| figure | value | goal |\n|---|---|---|")
        spread = f"{min(times):.1f} / {sorted(times)[len(times) // 2]:.1f} / {max(times):.1f}"
        what = "monthly report, 133 devices (collect + XLSX + PDF, one process), min/median/max s"
        print(f"| {what} | {spread} | <= 30 |")
        print(f"| PDF size | {pdf.stat().st_size / 1024:.0f} KiB | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
