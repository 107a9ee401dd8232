"""`govnet run --config FILE`: the composition root, where every part of the running monitor is built.

The order is plain code: the latest store and fan-out, the Influx writer, the scheduler (others act on
it: traps ask it for re-polls, the cluster narrows it to a shard), then each configured section's
services, handed what they share (the log store, the alert engine) as typed arguments; last, every
service that takes samples joins the fan-out and every one that measures itself joins /metrics and the
alert rules.

Exit codes: 0 stopped cleanly; 2 bad config, inventory, secret or file (each problem as file:line) or a
listener that cannot be opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from alerts.service import AlertService
from alerts.service import build as build_alerts
from api.service import build as build_api
from collectors.backup.service import build as build_backups
from collectors.base import Collector
from collectors.cli import pollable, snmp_collector
from collectors.cluster.service import build as build_cluster
from collectors.icmp.service import build as build_probes
from collectors.links import build as build_links
from collectors.scheduler import PollDriver, Scheduler, SchedulerSettings
from collectors.services.runner import ServiceChecker
from collectors.services.service import build as build_service_checks
from collectors.ssh.service import build as build_ssh
from collectors.syslog.service import build as build_syslog
from collectors.traps.service import build as build_traps
from collectors.where.service import build as build_where
from collectors.workers import WorkerPool, default_workers
from core.config import ConfigError, SectionError, check_inputs
from core.fanout import FanOut
from core.gcsettings import tune
from core.latest import LatestStore
from core.pipeline import MetricsSource, SampleSink, Service
from core.secrets import SecretError
from exporters.influx import InfluxClientSender, InfluxWriter
from exporters.prometheus import MetricsServer, SamplesCollector
from exporters.spool import Spool, SpoolError
from govnet.config import Config, InfluxConfig, SchedulerConfig, load_config
from govnet.reporting import report_mailer, report_sources
from inventory.cli import load_or_report
from inventory.model import Device, Inventory
from logstore.store import LogStore
from reports.service import build as build_reports

log = logging.getLogger("govnet")


def settings_of(cfg: SchedulerConfig) -> SchedulerSettings:
    """Scheduler settings from the config section."""
    return SchedulerSettings(
        max_concurrency=cfg.max_concurrency,
        timeout=cfg.timeout,
        retries=cfg.retries,
        unreachable_after=cfg.unreachable_after,
        unreachable_recheck=cfg.unreachable_recheck,
    )


def startup_problems(cfg: Config, inventory: Inventory | None, secrets: bool = True) -> list[str]:
    """What would stop `govnet run`, as file:line lines: a secret that does not resolve, an input file
    that cannot be read, a rule or trap definition file that does not load, a name the inventory lacks.
    `govnet doctor` reports the same list."""
    return [cfg.problem(loc, message) for loc, message in check_inputs(cfg, inventory, secrets=secrets)]


@contextlib.contextmanager
def _section(cfg: Config, name: str) -> Iterator[None]:
    # A room's build() names the field at fault within its section; the file:line is known here.
    try:
        yield
    except SectionError as exc:
        raise ConfigError([cfg.problem((name, *exc.loc), exc.message)]) from None


def influx_writer(ic: InfluxConfig) -> InfluxWriter:
    """The Influx writer with its durable spool (SecretError, SpoolError, OSError for the caller)."""
    token = ic.token.resolve()
    spool = Spool(ic.spool_dir, int(ic.spool_max_bytes))
    sender = InfluxClientSender(ic.url, ic.org, ic.bucket, token, ic.precision, ic.timeout)
    return InfluxWriter(
        spool, sender, ic.batch_size, ic.flush_interval, ic.precision, backoff_max=ic.backoff_max
    )


@dataclass
class Runtime:
    """Everything `govnet run` starts: scheduler, latest store, /metrics server, Influx writer, services."""

    scheduler: PollDriver
    store: LatestStore
    fanout: FanOut
    server: MetricsServer
    writer: InfluxWriter | None
    services: list[Service] = field(default_factory=list)

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


def build_runtime(
    cfg: Config,
    inventory: Inventory,
    collector: Collector,
    devices: Sequence[Device],
    store: LatestStore | None = None,
    workers: int = 1,
) -> Runtime:
    """Build and wire every part (ConfigError with file:line for a section that does not fit the
    inventory; SecretError, SpoolError, OSError when something cannot be opened). With `workers` > 1
    polling runs in that many worker processes (collectors/workers.py), `collector` unused."""
    store = store or LatestStore()
    fanout = FanOut([store])
    writer = influx_writer(cfg.influx) if cfg.influx is not None else None
    if writer is not None:
        fanout.add(writer)
    try:
        scheduler: PollDriver
        if workers > 1:
            scheduler = WorkerPool(
                cfg.inventory, settings_of(cfg.scheduler), workers, fanout, devices, loaded=inventory
            )
        else:
            scheduler = Scheduler(inventory, collector, fanout, settings_of(cfg.scheduler), devices)
        services: list[Service] = []
        alerting: AlertService | None = None
        if cfg.alerts is not None:
            with _section(cfg, "alerts"):
                (alerting,) = build_alerts(cfg.alerts, inventory=inventory)
            services.append(alerting)
        correlation = alerting.correlation if alerting is not None else None
        logstore: LogStore | None = None
        if cfg.syslog is not None:
            with _section(cfg, "syslog"):
                # The security correlation rules see each durable batch of records, in seq order.
                hooks = [correlation.observe_batch] if correlation is not None else []
                syslog = build_syslog(cfg.syslog, inventory=inventory, on_append=hooks)
            if correlation is not None:
                correlation.attach(time.time())  # silent security devices count from now
            logstore = syslog[0].store  # the API audits into and searches this same store
            services += syslog
        engine = alerting.engine if alerting is not None else None
        if cfg.probes is not None:
            services += build_probes(cfg.probes, inventory=inventory, latest=store)
        if cfg.links is not None:
            services += build_links(cfg.links, inventory=inventory, latest=store)
        if cfg.traps is not None:
            with _section(cfg, "traps"):
                services += build_traps(cfg.traps, inventory=inventory, request_poll=scheduler.poll_now)
        if cfg.ssh is not None:
            with _section(cfg, "ssh"):
                services += build_ssh(cfg.ssh, inventory=inventory)
        if cfg.backups is not None:
            with _section(cfg, "backups"):
                services += build_backups(cfg.backups, inventory=inventory)
        checker: ServiceChecker | None = None
        if cfg.services is not None:
            (checker,) = build_service_checks(cfg.services, inventory=inventory, inventory_path=cfg.inventory)
            if engine is not None:
                checker.register_details(engine)  # incidents show the page diff and the findings
            services.append(checker)
        where = None
        if cfg.where is not None:
            (where,) = build_where(cfg.where, inventory=inventory)
            services.append(where)
        if cfg.cluster is not None:
            # The alert engine here also takes the other shards' device health (topology across shards).
            services += build_cluster(
                cfg.cluster, inventory=inventory, scheduler=scheduler, latest=store, peer_sink=engine
            )
        if cfg.api is not None:
            services += build_api(
                cfg.api,
                inventory=inventory,
                latest=store,
                engine=engine,
                logstore=logstore,
                services=checker,
                where=where,
            )
        if cfg.reports is not None:
            with _section(cfg, "reports"):
                mailer = report_mailer(cfg, cfg.reports)
            services += build_reports(cfg.reports, report_sources(cfg), inventory, mailer)
        samples = SamplesCollector(store, [scheduler.internal_samples])
        if writer is not None:
            samples.add_source(writer.internal_samples)
        # Each service plugs into the pipeline by what it offers: a sink, internal metrics, or both. The
        # rules also watch what the services measure themselves (SSH, HA, DB, backups, probes, syslog).
        for svc in services:
            if alerting is not None and svc is not alerting and isinstance(svc, MetricsSource):
                alerting.add_source(svc.internal_samples)
            if isinstance(svc, SampleSink):
                fanout.add(svc)
            if isinstance(svc, MetricsSource):
                samples.add_source(svc.internal_samples)
        server = MetricsServer(
            cfg.prometheus.listen, samples, healthy=scheduler.healthy, targets=scheduler.device_names
        )
    except BaseException:
        if writer is not None:
            writer.spool.close()
        raise
    return Runtime(scheduler, store, fanout, server, writer, services)


def load_apart(path: Path, err: TextIO) -> Inventory | None:
    """load_or_report() in a forked child that hands the validated inventory back pickled.

    Parsing a large inventory (YAML nodes kept for line numbers, then validation) leaves ~27 kB per
    device of fragmented heap behind, which `govnet run` would carry for its lifetime: ~135 MB at
    5 000 devices. The child takes that with it. Problems are written to `err` as before; where fork is
    unavailable or the child fails, the inventory is loaded here.
    """
    if not hasattr(os, "fork"):
        return load_or_report(path, err)
    err.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: load, send, leave without running any parent cleanup
        code = 1
        try:
            os.close(read_fd)
            data = pickle.dumps(load_or_report(path, err), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
            code = 0
        finally:
            err.flush()
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        return load_or_report(path, err)
    loaded = pickle.loads(data)  # noqa: S301 -- our own forked child
    return loaded if isinstance(loaded, Inventory) else None


def run_command(config: Path) -> int:
    """`govnet run --config FILE`: poll on schedule, serve /metrics, run every configured service."""
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
    inventory = load_apart(cfg.inventory, err)
    if inventory is None:
        return 2
    problems = startup_problems(cfg, inventory)
    if problems:
        err.write(f"govnet: invalid config {config}\n" + "\n".join(problems) + "\n")
        return 2
    devices = pollable(inventory, [], err)
    assert devices is not None
    try:
        workers = cfg.scheduler.workers or default_workers()
        collector = snmp_collector(settings_of(cfg.scheduler))
        runtime = build_runtime(cfg, inventory, collector, devices, workers=workers)
    except (SecretError, SpoolError, OSError) as exc:
        err.write(f"govnet: cannot start: {exc}\n")
        return 2
    except ValueError as exc:  # ConfigError, SectionError: a section that does not fit (file:line)
        err.write(f"govnet: invalid config {config}\n{exc}\n")
        return 2
    err.write(
        f"govnet: polling {len(devices)} device(s) in {workers} worker(s); "
        f"metrics on http://{cfg.prometheus.listen}/metrics\n"
    )
    tune()  # the collector's thresholds (core/gcsettings.py)
    asyncio.run(runtime.run())
    err.write("govnet: stopped\n")
    return 0
