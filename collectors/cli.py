"""`govnet poll-once` (one cycle, samples on stdout) and `govnet run` (scheduler + /metrics + Influx).

Exit codes: 0 every polled device answered (or `run` stopped cleanly); 1 some device failed to
answer (`poll-once`) or the runtime failed; 2 bad config, inventory, device name or listen address.
stdout carries only data (samples); progress and errors go to stderr.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from collectors.base import Collector, PollResult
from collectors.scheduler import (
    PollDriver,
    Schedule,
    Scheduler,
    SchedulerSettings,
    accepted_keywords,
    run_poll,
)
from collectors.workers import WorkerPool, default_workers
from core.fanout import FanOut
from core.latest import LatestStore
from core.pipeline import MetricsSource, SampleSink, Service
from core.samples import Sample
from core.secrets import SecretError
from exporters.influx import InfluxClientSender, InfluxWriter
from exporters.prometheus import MetricsServer, SamplesCollector
from exporters.spool import Spool, SpoolError
from govnet.config import Config, ConfigError, SchedulerConfig, load_config
from govnet.service import BUILDERS, RunContext
from inventory.model import Device, Inventory

log = logging.getLogger("govnet")


def load_inventory_or_problems(path: Path, err: TextIO) -> Inventory | None:
    """The inventory at `path`, or None after printing every problem to `err`."""
    from inventory.cli import print_problems
    from inventory.load import InventoryError, load_inventory

    try:
        return load_inventory(path)
    except InventoryError as exc:
        err.write(f"govnet: invalid inventory {path}\n")
        print_problems(exc.problems, err)
        return None


def snmp_collector(settings: SchedulerSettings) -> Collector:
    """The SNMP collector with the configured per-request timeout and retries (imported late)."""
    from collectors.snmp import SnmpCollector

    return SnmpCollector(timeout_s=settings.timeout, retries=settings.retries)


def settings_of(cfg: SchedulerConfig) -> SchedulerSettings:
    """Scheduler settings from the config section."""
    return SchedulerSettings(
        max_concurrency=cfg.max_concurrency,
        timeout=cfg.timeout,
        retries=cfg.retries,
        unreachable_after=cfg.unreachable_after,
        unreachable_recheck=cfg.unreachable_recheck,
    )


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
) -> list[tuple[Device, PollResult, list[Sample]]]:
    """Poll each device once (concurrently, capped, each under its interval's deadline)."""
    schedule = Schedule(settings)
    sem = asyncio.Semaphore(settings.max_concurrency)
    keywords = accepted_keywords(collector)

    async def one(device: Device) -> tuple[Device, PollResult, list[Sample]]:
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
    inv = load_inventory_or_problems(inventory, err)
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


@dataclass
class Runtime:
    """Everything `govnet run` starts: scheduler, latest store, /metrics server, Influx writer."""

    scheduler: PollDriver
    store: LatestStore
    fanout: FanOut
    server: MetricsServer
    writer: InfluxWriter | None
    services: list[Service] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        cfg: Config,
        inventory: Inventory,
        collector: Collector,
        devices: Sequence[Device],
        services: Sequence[Service] = (),
        store: LatestStore | None = None,
        workers: int = 1,
    ) -> Runtime:
        """Wire the pieces (raises SecretError, SpoolError, OSError for the caller to report).

        With `workers` > 1 polling runs in that many worker processes (collectors/workers.py)."""
        store = store or LatestStore()
        fanout = FanOut([store])
        writer = None
        if cfg.influx is not None:
            ic = cfg.influx
            token = ic.token.resolve()
            spool = Spool(ic.spool_dir, int(ic.spool_max_bytes))
            sender = InfluxClientSender(ic.url, ic.org, ic.bucket, token, ic.precision, ic.timeout)
            writer = InfluxWriter(
                spool, sender, ic.batch_size, ic.flush_interval, ic.precision, backoff_max=ic.backoff_max
            )
            fanout.add(writer)
        scheduler: PollDriver
        if workers > 1:
            scheduler = WorkerPool(cfg.inventory, settings_of(cfg.scheduler), workers, fanout, devices)
        else:
            scheduler = Scheduler(inventory, collector, fanout, settings_of(cfg.scheduler), devices)
        samples = SamplesCollector(store, [scheduler.internal_samples])
        if writer is not None:
            samples.add_source(writer.internal_samples)
        # Each service plugs into the pipeline by what it offers: a sink, internal metrics, or both.
        for svc in services:
            if isinstance(svc, SampleSink):
                fanout.add(svc)
            if isinstance(svc, MetricsSource):
                samples.add_source(svc.internal_samples)
        try:
            server = MetricsServer(
                cfg.prometheus.listen, samples, healthy=scheduler.healthy, targets=scheduler.device_names
            )
        except BaseException:
            if writer is not None:
                writer.spool.close()
            raise
        return cls(scheduler, store, fanout, server, writer, list(services))

    async def run(self) -> None:
        """Serve and poll until the scheduler is stopped (SIGINT/SIGTERM), then shut down cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.scheduler.stop)
        self.server.start()
        if self.writer is not None:
            self.writer.start()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(svc.run(stop), name=svc.name) for svc in self.services]
        try:
            await self.scheduler.run()
        finally:
            stop.set()
            if tasks:
                _done, pending = await asyncio.wait(tasks, timeout=10.0)
                for task in pending:
                    log.warning("service %s did not stop in time; cancelled", task.get_name())
                    task.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            self.close()

    def close(self) -> None:
        """Stop serving, flush pending points into the spool and try to drain it briefly."""
        self.server.stop()
        if self.writer is not None:
            self.writer.stop(drain_timeout=5.0)


def build_services(cfg: Config, ctx: RunContext) -> list[Service]:
    """Build the services of every subsystem section present in the config (govnet.service.BUILDERS)."""
    services: list[Service] = []
    for section, target in BUILDERS.items():
        data = getattr(cfg, section)
        if data is None:
            continue
        module_name, func = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ValueError(f"{section}: this govnet has no {section} subsystem yet") from None
        try:
            services.extend(getattr(module, func)(data, ctx))
        except ValueError as exc:
            raise ValueError(f"{section}: {exc}") from None
    return services


def _report_services(cfg: Config, inventory: Inventory) -> list[Service]:
    if cfg.reports is None:
        return []
    from govnet.reporting import report_mailer, report_sources
    from reports.config import parse_reports
    from reports.service import build

    section = parse_reports(cfg.reports, cfg.base_dir)
    return build(section, report_sources(cfg), inventory, report_mailer(cfg, section))


def run_command(config: Path) -> int:
    """`govnet run --config FILE`: poll on schedule, serve /metrics, export to Influx until signalled."""
    err = sys.stderr
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        err.write(f"govnet: invalid config {config}\n{exc}\n")
        return 2
    logging.basicConfig(
        level=getattr(logging, cfg.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=err,
    )
    inventory = load_inventory_or_problems(cfg.inventory, err)
    if inventory is None:
        return 2
    devices = pollable(inventory, [], err)
    assert devices is not None
    store = LatestStore()
    ctx = RunContext(cfg.base_dir, inventory, cfg.inventory, store)
    try:
        services = build_services(cfg, ctx)
        services.extend(_report_services(cfg, inventory))
    except (ValueError, ImportError) as exc:
        err.write(f"govnet: invalid config {config}\n{exc}\n")
        return 2
    # Rules also watch what the services measure themselves (SSH, HA, DB, backups, probes, syslog).
    ctx.extra["metrics_sources"] = [s.internal_samples for s in services if isinstance(s, MetricsSource)]
    try:
        collector = snmp_collector(settings_of(cfg.scheduler))
        workers = cfg.scheduler.workers or default_workers()
        runtime = Runtime.build(cfg, inventory, collector, devices, services, store=store, workers=workers)
    except (SecretError, SpoolError, OSError) as exc:
        err.write(f"govnet: cannot start: {exc}\n")
        return 2
    ctx.request_poll = runtime.scheduler.poll_now
    ctx.extra["scheduler"] = runtime.scheduler  # the cluster service narrows it to its shard
    err.write(
        f"govnet: polling {len(devices)} device(s) in {workers} worker(s); "
        f"metrics on http://{cfg.prometheus.listen}/metrics\n"
    )
    asyncio.run(runtime.run())
    err.write("govnet: stopped\n")
    return 0
