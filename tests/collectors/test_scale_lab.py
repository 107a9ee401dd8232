"""Acceptance: 500 lab devices, 20% dead and 5% slow; healthy devices never miss a poll over 20 cycles."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from collectors.scheduler import Scheduler, SchedulerSettings
from collectors.snmp import SnmpCollector
from core.samples import Sample
from inventory.load import load_inventory
from lab.runner import LabProcess
from lab.synth import synth_inventory
from tests.support.ports import lab_ports

N_DEVICES = 500
N_INTERFACES = 8
INTERVAL = 15.0
CYCLES = 20


class _Recorder:
    """A fan-out sink keeping, per device, each poll's govnet_up, duration and lateness."""

    def __init__(self) -> None:
        self.polls: dict[str, list[dict[str, float]]] = defaultdict(list)

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        row = {s.metric: s.value for s in samples if s.metric.startswith("govnet_")}
        row["_at"] = time.monotonic()
        self.polls[device].append(row)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_500_devices_healthy_never_miss(tmp_path: Path) -> None:
    inv = synth_inventory(N_DEVICES, N_INTERFACES)
    inv["links"] = []  # polling needs no topology; 8-port cores could not carry 500 uplinks anyway
    for d in inv["devices"]:
        d["poll_interval"] = INTERVAL
    src = tmp_path / "synth.yaml"
    src.write_text(yaml.safe_dump(inv, sort_keys=False), encoding="utf-8")
    names = [d["name"] for d in inv["devices"]]
    # Every fifth device dead (20%), every twentieth of the rest slow (5%): slower than the
    # per-request timeout the scheduler derives from the interval, so they cost time, not answers.
    dead = set(names[2::5])
    slow = set([n for n in names[2:] if n not in dead][::16][: N_DEVICES // 20])
    healthy = [n for n in names if n not in dead and n not in slow]
    assert len(dead) == N_DEVICES // 5 and len(slow) == N_DEVICES // 20

    snmp_port, ssh_port = lab_ports("127.30.0.0", N_DEVICES)  # chosen now: two runs at once never collide
    with LabProcess(src, tmp_path / "lab", base="127.30.0.0", snmp_port=snmp_port, ssh_port=ssh_port,
                    progress=None, start_timeout=120) as lab:  # fmt: skip
        for n in dead:
            lab.fault(n, "dead")
        for n in slow:
            lab.fault(n, "slow", seconds=3.0)
        inventory = load_inventory(lab.inventory_path)
        recorder = _Recorder()
        scheduler = Scheduler(
            inventory,
            SnmpCollector(),
            recorder,
            SchedulerSettings(max_concurrency=256, timeout=2.0, retries=1),
        )

        async def drive() -> None:
            task = asyncio.create_task(scheduler.run())
            await asyncio.sleep(INTERVAL * (CYCLES + 1))
            scheduler.stop()
            await task

        started = time.monotonic()
        asyncio.run(drive())
        elapsed = time.monotonic() - started

    problems: list[str] = []
    for n in healthy:
        polls = recorder.polls.get(n, [])
        st = scheduler.schedule.devices[n]
        if len(polls) < CYCLES:
            at = [round(p["_at"] - started, 1) for p in polls]
            problems.append(f"{n}: {len(polls)} polls < {CYCLES} (st.polls={st.polls}, published at {at})")
        if st.missed:
            problems.append(f"{n}: missed {st.missed} polls")
        down = [p for p in polls if p.get("govnet_up") != 1.0]
        if down:
            problems.append(f"{n}: {len(down)} failed polls")
        late = [
            p
            for p in polls
            if p["govnet_poll_duration_seconds"] + p["govnet_poll_lateness_seconds"] >= INTERVAL
        ]
        if late:
            problems.append(f"{n}: {len(late)} polls ran past the interval")
    dead_up = [n for n in dead if any(p.get("govnet_up") == 1.0 for p in recorder.polls.get(n, []))]
    total_polls = sum(len(v) for v in recorder.polls.values())
    print(
        f"\n500-device run: {elapsed:.0f} s, {total_polls} polls, healthy={len(healthy)}, "
        f"dead={len(dead)} slow={len(slow)}, unreachable now="
        f"{sum(1 for s in scheduler.schedule.devices.values() if s.unreachable)}"
    )
    assert not dead_up, f"dead devices reported up: {sorted(dead_up)[:5]}"
    assert not problems, f"{len(problems)} healthy devices had problems, e.g. {problems[:10]}"
    # Dead devices moved to the slow recheck instead of being hammered every interval.
    assert all(scheduler.schedule.devices[n].unreachable for n in dead)
