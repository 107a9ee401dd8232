"""The alert engine inside `govnet run`: a sample sink, a loop (evaluate, deliver) and its own metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

from alerts.config import AlertingConfig, node_name
from alerts.config import build as build_pipeline
from alerts.correlation import CorrelationEngine, WatchedDevice, load_correlations
from alerts.engine import Engine
from alerts.ha import PgLeaderElector
from alerts.journal import Journal
from alerts.levels import Level
from alerts.notify.dispatch import Dispatcher
from alerts.rules import RuleError
from collectors.base import device_labels
from core.config import SectionError
from core.samples import Sample, labels_of
from inventory.model import Inventory
from inventory.topology import Topology

log = logging.getLogger(__name__)

MetricsSourceFn = Callable[[], list[Sample]]


async def run_alerts(
    engine: Engine,
    dispatcher: Dispatcher,
    interval: float,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.time,
    before: Callable[[float], None] | None = None,
    ready: Callable[[float], bool] | None = None,
    leading: Callable[[], Awaitable[bool]] | None = None,
    journal: Journal | None = None,
) -> int:
    """Evaluate rules and deliver due notifications until `stop` is set; returns the number of cycles.

    Samples reach the engine through the fan-out (`engine.publish`) on the event loop thread; the
    evaluation runs there too (it is CPU work on shared state), handing the loop back between rules,
    while delivery, which blocks on HTTP/SMTP, runs in a worker thread so a slow receiver never
    stalls polling. With `leading` (an HA
    pair), a cycle in which this node is not the leader only pulls samples (`before`): the standby
    neither applies commands nor evaluates nor notifies.
    """
    cycles = 0
    while not stop.is_set():
        now = clock()
        try:
            if before is not None:
                before(now)
            if leading is not None and not await leading():
                cycles += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
                continue
            if leading is not None:
                now = clock()  # the leader check may have waited on the network
            engine.apply_commands(now)
            # Until every device has been polled since start, a missing series is not a cleared
            # condition: evaluating then would resolve restored alerts and page them again.
            if ready is None or ready(now):
                await engine.evaluate_yielding(now)
                if journal is not None:
                    journal.observe(engine.device_states(), now)
            await asyncio.to_thread(dispatcher.run_due, now)
        except Exception:  # one bad cycle must not end alerting; the next one retries
            log.exception("alert cycle failed")
        cycles += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    return cycles


class AlertService:
    """`govnet run`'s alert service: receives every poll (SampleSink), evaluates, notifies, exports counts.

    Samples other services produce themselves (SSH host keys and config changes, HA verdicts, backup
    ages, syslog gaps...) are not polls: `govnet run` hands their `internal_samples` to `add_source`
    (read at every cycle).
    """

    name = "alerts"

    def __init__(
        self,
        cfg: AlertingConfig,
        engine: Engine,
        dispatcher: Dispatcher,
        inventory: Inventory | None = None,
        elector: PgLeaderElector | None = None,
    ) -> None:
        self.cfg, self.engine, self.dispatcher = cfg, engine, dispatcher
        self.elector = elector
        self.takeovers: list[float] = []  # when this node became the leader (state reloaded)
        if elector is not None:
            self._fence(None)
        self.sources: list[MetricsSourceFn] = []
        self.journal: Journal | None = None
        self.correlation: CorrelationEngine | None = None  # security events from syslog (build)
        self.cycles = 0
        self.source_errors = 0
        self.started = time.time()
        self.seen: set[str] = set()
        self.expected: set[str] = set()
        self.warmup = 0.0
        if inventory is not None:
            inv = inventory
            polled = [d for d in inv.devices if inv.snmp_of(d) is not None]
            self.expected = {d.name for d in polled}
            intervals = [inv.interval_of(d) for d in polled] or [0.0]
            # Long enough for every device's first poll (a dead one times out), bounded.
            self.warmup = min(300.0, 2 * max(intervals) + 10.0)
        self._ready = not self.expected

    def add_source(self, source: MetricsSourceFn) -> None:
        """Feed another service's internal samples to the rules (each cycle)."""
        self.sources.append(source)

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """SampleSink: one device's complete poll (never raises: the fan-out must go on)."""
        try:
            self.engine.publish(device, samples)
            if not self._ready:
                self.seen.add(device)
        except Exception:
            log.exception("alert engine could not take samples of %s", device)

    def _pull_sources(self, now: float) -> None:
        for i, source in enumerate(list(self.sources)):
            try:
                samples = source()
            except Exception:
                self.source_errors += 1
                log.exception("metrics source %d failed", i)
                continue
            # One store entry per (source, device): a source's sample set replaces its previous one.
            by_device: dict[str, list[Sample]] = defaultdict(list)
            for s in samples:
                if s.metric.startswith("govnet_alerts_") or s.metric.startswith("govnet_notifications_"):
                    continue
                by_device[dict(s.labels).get("device", "")].append(s)
            for device, batch in by_device.items():
                self.engine.publish_internal(f"{i}/{device}", batch)

    def _fence(self, pid: int | None) -> None:
        # The store refuses leader writes unless the lock session `pid` holds the lock; a standby
        # gets an impossible pid, so even an API call on it cannot write incidents.
        store = self.engine.db
        if self.elector is not None and store is not None and hasattr(store, "fence"):
            store.fence = (pid if pid is not None else -1, self.elector.key)

    async def leading(self) -> bool:
        """HA: keep or try the leader lock; on winning it, reload the shared state before evaluating."""
        assert self.elector is not None
        was = self.elector.leader
        pid = self.elector.backend_pid
        lead = await asyncio.to_thread(self.elector.check)
        if lead and (not was or pid != self.elector.backend_pid):
            self._fence(self.elector.backend_pid)
            try:
                # On the event loop: engine state is not thread-safe. A few reads of open incidents.
                self.engine.reload()
                resent = self.dispatcher.recover()
            except Exception:
                log.exception("alerts HA: could not load the shared state; giving the lock back")
                self.elector.release()
                self._fence(None)
                return False
            self.takeovers.append(time.time())
            log.warning(
                "alerts HA: %s leads: %d open incidents loaded, %d in-flight deliveries to retry",
                self.elector.node, len([i for i in self.engine.incidents.values() if i.open]), resent,
            )  # fmt: skip
        elif not lead and was:
            self._fence(None)
            log.error("alerts HA: %s is no longer the leader", self.elector.node)
        return lead

    def ready(self, now: float) -> bool:
        """True once every polled device has published since start (or the warm-up time has passed)."""
        if not self._ready and (self.expected <= self.seen or now - self.started >= self.warmup):
            self._ready = True
            log.info("alerts: evaluating (%d of %d devices seen)", len(self.seen), len(self.expected))
        return self._ready

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate and deliver every `evaluate_interval` until `stop` is set."""
        self.started = time.time()
        try:
            self.cycles = await run_alerts(
                self.engine,
                self.dispatcher,
                self.cfg.evaluate_interval,
                stop,
                before=self._pull_sources,
                ready=self.ready,
                leading=self.leading if self.elector is not None else None,
                journal=self.journal,
            )
        finally:
            if self.elector is not None:
                self.elector.release()
            if self.engine.db is not None:
                self.engine.db.close()
            if self.journal is not None:
                self.journal.close()

    def internal_samples(self) -> list[Sample]:
        """MetricsSource: firing alerts and open incidents per level; notifications per channel."""
        now = time.time()
        stats = self.engine.stats(now)
        out: list[Sample] = []
        for level in Level:
            out.append(
                Sample(
                    "govnet_alerts_firing", labels_of(level=level.value), float(stats["firing"][level.value]),
                    now, help="Alerts firing (including inhibited and silenced ones), per emergency level.",
                )
            )  # fmt: skip
            out.append(
                Sample(
                    "govnet_incidents_open", labels_of(level=level.value),
                    float(stats["incidents"][level.value]), now, help="Open incidents per emergency level.",
                )
            )  # fmt: skip
        if self.elector is not None:
            lab = labels_of(cluster=self.cfg.state.cluster if self.cfg.state else "", node=self.elector.node)
            out.append(
                Sample("govnet_ha_leader", lab, float(self.elector.leader), now,
                       help="1 on the HA node that evaluates alerts and notifies, 0 on the standby.")
            )  # fmt: skip
            out.append(
                Sample("govnet_ha_leader_changes_total", lab, float(self.elector.changes), now, "counter",
                       "Times this node became the alert leader.")
            )  # fmt: skip
        c = self.dispatcher.counters
        for channel in self.dispatcher.notifiers:
            lab = labels_of(channel=channel)
            for metric, counts, help_ in (
                ("govnet_notifications_sent_total", c.sent_by_channel, "Notifications a channel accepted."),
                (
                    "govnet_notifications_failed_total",
                    c.failed_by_channel,
                    "Notifications refused (4xx) or given up after retries; the fallback takes them.",
                ),
                ("govnet_notifications_retries_total", c.retried_by_channel, "Transient failures retried."),
            ):
                out.append(Sample(metric, lab, float(counts.get(channel, 0)), now, "counter", help_))
        return out


def build(section: AlertingConfig, *, inventory: Inventory | None) -> list[AlertService]:
    """The alert service for the `alerts:` section (SectionError names the field at fault)."""
    topology = Topology.from_inventory(inventory) if inventory is not None else None
    try:
        engine, dispatcher = build_pipeline(section, topology)
    except RuleError as exc:
        raise SectionError(("rules",), str(exc)) from None
    except ConnectionError as exc:
        raise SectionError(("state", "postgres"), str(exc)) from None
    except OSError as exc:
        raise SectionError(("state_db",), f"cannot open {section.state_db}: {exc.strerror}") from None
    elector = None
    if section.state is not None:
        elector = PgLeaderElector(section.state.postgres.resolve(), section.state.cluster, node_name(section))
    service = AlertService(section, engine, dispatcher, inventory, elector)
    if section.security.enabled:
        # The syslog service (built after this one) feeds it the records it stores: govnet/run.py
        # hands `service.correlation.observe_batch` to it.
        try:
            service.correlation = build_correlation(section, engine, inventory)
        except RuleError as exc:
            raise SectionError(("security", "rules"), str(exc)) from None
        correlation = service.correlation
        service.add_source(lambda: correlation.samples(time.time()))
    service.journal = open_journal(section)
    return [service]


def build_correlation(cfg: AlertingConfig, engine: Engine, inventory: Inventory | None) -> CorrelationEngine:
    """The correlation engine of `cfg.security`, watching the inventory's security devices."""
    watched = []
    if inventory is not None:
        for d in inventory.devices:
            labels = tuple(sorted(device_labels(d)))
            watched.append(WatchedDevice(d.name, str(d.role), str(d.address), labels))
    by_name = {w.name: w.labels for w in watched}
    return CorrelationEngine(
        load_correlations(*cfg.security.rules),
        networks=cfg.security.networks,
        in_maintenance=engine.in_maintenance,
        devices=watched,
        device_labels=lambda name: by_name.get(name, (("device", name),) if name else ()),
    )


def open_journal(cfg: AlertingConfig, readonly: bool = False) -> Journal:
    """The state-change journal of the monthly reports, in the SQLite state file (`state_db`).

    With a PostgreSQL store (HA pair) each node keeps its own journal in `state_db` beside it.
    """
    journal = Journal(cfg.state_db, gap=max(30.0, 3 * cfg.evaluate_interval), readonly=readonly)
    if not readonly:
        journal.record_windows([(w.name, w.model_dump_json()) for w in cfg.maintenance], time.time())
    return journal
