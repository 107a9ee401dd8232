"""`govnet poll-once` (one cycle, samples on stdout) and the config/inventory loading the room commands share.

Exit codes: 0 every polled device answered; 1 some device failed to answer; 2 bad config, inventory or
device name. stdout carries only data (samples); progress and errors go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO, TypeVar

from pydantic import BaseModel

from collectors.base import Collector, PollResult
from collectors.scheduler import Schedule, SchedulerSettings, accepted_keywords, run_poll
from core.config import ConfigError, Document, inventory_path, load_document
from core.samples import Sample
from inventory.cli import load_or_report
from inventory.model import Device, Inventory

M = TypeVar("M", bound=BaseModel)

log = logging.getLogger("govnet")


def load_section(
    config: Path, name: str, model: type[M], err: TextIO
) -> tuple[M | None, Inventory, Document] | None:
    """One section of a run config (None if absent) and its inventory, or None after printing problems."""
    try:
        doc = load_document(config)
        section = doc.section(name, model)
        inv_path = inventory_path(doc)
    except ConfigError as exc:
        err.write(f"govnet: invalid config {config}\n{exc}\n")
        return None
    inventory = load_or_report(inv_path, err)
    return None if inventory is None else (section, inventory, doc)


def snmp_collector(settings: SchedulerSettings) -> Collector:
    """The SNMP collector with the configured per-request timeout and retries (imported late)."""
    from collectors.snmp import SnmpCollector

    return SnmpCollector(timeout_s=settings.timeout, retries=settings.retries)


def pollable(inventory: Inventory, names: Sequence[str], err: TextIO) -> list[Device] | None:
    """Devices to poll (the named ones, or all with SNMP credentials); None if a name is unknown."""
    known = {d.name: d for d in inventory.devices}
    unknown = [n for n in names if n not in known]
    if unknown:
        err.write(f"govnet: unknown device(s): {', '.join(unknown)}\n")
        return None
    chosen = [known[n] for n in names] if names else list(inventory.devices)
    out = []
    for d in chosen:
        if inventory.snmp_of(d) is None:
            err.write(f"govnet: {d.name}: no SNMP credentials, not polled\n")
        else:
            out.append(d)
    return out


async def poll_cycle(
    inventory: Inventory,
    devices: Sequence[Device],
    collector: Collector,
    settings: SchedulerSettings,
) -> list[tuple[Device, PollResult, Sequence[Sample]]]:
    """Poll each device once (concurrently, capped, each under its interval's deadline)."""
    schedule = Schedule(settings)
    sem = asyncio.Semaphore(settings.max_concurrency)
    keywords = accepted_keywords(collector)

    async def one(device: Device) -> tuple[Device, PollResult, Sequence[Sample]]:
        async with sem:
            started = time.monotonic()
            schedule.add(device.name, inventory.interval_of(device), started)
            plan = schedule.plan(device.name, started, started)
            assert plan is not None  # scheduled == started: the whole budget is left
            wall = time.time()
            result = await run_poll(collector, inventory, device, plan, wall, time.monotonic, keywords)
            schedule.complete(device.name, plan, result, time.monotonic())
            return device, result, schedule.poll_samples(device, result, wall)

    return list(await asyncio.gather(*(one(d) for d in devices)))


def poll_once_command(inventory: Path, json_out: bool, devices: list[str]) -> int:
    """One poll of every (or each named) device; samples on stdout; 0 all answered, 1 some failed."""
    err = sys.stderr
    inv = load_or_report(inventory, err)
    if inv is None:
        return 2
    chosen = pollable(inv, devices, err)
    if chosen is None:
        return 2
    if not chosen:
        err.write("govnet: nothing to poll\n")
        return 1
    err.write(f"govnet: polling {len(chosen)} device(s)...\n")
    settings = SchedulerSettings()
    results = asyncio.run(poll_cycle(inv, chosen, snmp_collector(settings), settings))
    failed = 0
    out = sys.stdout
    for device, result, samples in results:
        if not result.ok:
            failed += 1
            err.write(f"govnet: {device.name}: poll failed: {result.error or 'unknown error'}\n")
        for s in samples:
            if json_out:
                out.write(json.dumps(s.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
            else:
                labels = ",".join(f'{k}="{v}"' for k, v in s.labels)
                out.write(f"{s.metric}{{{labels}}} {s.value:g}\n")
    err.write(f"govnet: {len(chosen) - failed}/{len(chosen)} device(s) answered\n")
    return 1 if failed else 0
