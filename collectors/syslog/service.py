"""The syslog pipeline: receiver -> parse -> tamper-evident store (-> optional forward), with housekeeping,
periodic chain verification and its metrics. One assembly serves the `syslog:` section of `govnet run`
and the stand-alone `govnet syslog` (collectors/syslog/cli.py builds the same section from its options)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import Field, field_validator, model_validator

from collectors.base import device_labels
from collectors.syslog.formats import load_formats
from collectors.syslog.forward import Forwarder
from collectors.syslog.limits import Limits, SourcePolicy
from collectors.syslog.parse_pool import default_workers
from collectors.syslog.receiver import (
    Ingest,
    Receiver,
    device_map_from_inventory,
    server_tls_context,
    start_receiver,
    zone_map_from_inventory,
)
from core.config import ConfigPath, HostPort, InputFile, Section, SectionError, split_host_port
from core.samples import Sample
from inventory.model import Inventory
from logstore.control import ControlServer
from logstore.lock import StoreLocked
from logstore.record import Record
from logstore.stats import DeviceInfo, audit_stats
from logstore.store import LogStore, StoreConfig

log = logging.getLogger("govnet.syslog")

COUNTERS = {
    "govnet_syslog_received_total": ("received_total", "Syslog frames received."),
    "govnet_syslog_durable_total": ("durable_total", "Syslog frames stored durably (fsynced)."),
    "govnet_syslog_oversized_closed_total": (
        "oversized_closed_total",
        "TCP connections closed for an oversized frame length.",
    ),
    "govnet_syslog_truncated_total": ("truncated_total", "Overlong LF-framed lines truncated (kept)."),
    "govnet_syslog_udp_overflow_total": (
        "udp_overflow_total",
        "UDP datagrams dropped because the receive queue was at its bound (queue_bytes).",
    ),
    "govnet_syslog_udp_refused_total": (
        "udp_refused_total",
        "UDP datagrams refused: sender not on the listener's allow-list (unknown_sources: refuse).",
    ),
}


class SyslogLimits(Section):
    """`syslog.limits`: what unauthenticated senders can make the receiver hold (see Limits)."""

    queue_bytes: int = Field(Limits.queue_bytes, ge=1024 * 1024)
    max_connections: int = Field(Limits.max_connections, ge=1, le=100_000)
    max_connections_per_source: int = Field(Limits.max_per_source, ge=1, le=100_000)
    tls_handshake_timeout: float = Field(Limits.tls_handshake_timeout, gt=0, le=300)
    max_tls_handshakes: int = Field(Limits.max_handshakes, ge=1, le=100_000)
    idle_timeout: float = Field(Limits.idle_timeout, gt=0, le=86400)
    frame_timeout: float = Field(Limits.frame_timeout, gt=0, le=3600)
    buffer_bytes: int = Field(Limits.buffer_bytes, ge=1024 * 1024)

    def limits(self) -> Limits:
        """As the receiver's Limits."""
        return Limits(
            queue_bytes=self.queue_bytes,
            max_connections=self.max_connections,
            max_per_source=self.max_connections_per_source,
            tls_handshake_timeout=self.tls_handshake_timeout,
            max_handshakes=self.max_tls_handshakes,
            idle_timeout=self.idle_timeout,
            frame_timeout=self.frame_timeout,
            buffer_bytes=self.buffer_bytes,
        )


class SyslogSection(Section):
    """The `syslog:` section of the run config."""

    store: ConfigPath
    listen: str = "0.0.0.0"  # noqa: S104 (a receiver for devices on the management network)
    tcp_port: int | None = Field(1514, ge=0, le=65535)
    udp_port: int | None = Field(1514, ge=0, le=65535)
    tls_port: int | None = Field(None, ge=0, le=65535)
    tls_cert: InputFile | None = None
    tls_key: InputFile | None = None
    tls_client_ca: InputFile | None = None  # set: TLS senders must present a certificate this CA signed
    # Per listener: CIDR allow-list, or "inventory" (default) for the inventory's device addresses.
    allow: dict[Literal["udp", "tcp", "tls"], list[str] | Literal["inventory"]] = Field(default_factory=dict)
    unknown_sources: Literal["flag", "refuse"] = "flag"  # senders off the allow-list: kept+flagged or refused
    limits: SyslogLimits = Field(default_factory=SyslogLimits)

    @field_validator("allow")
    @classmethod
    def _networks(
        cls, v: dict[str, list[str] | Literal["inventory"]]
    ) -> dict[str, list[str] | Literal["inventory"]]:
        for transport, cidrs in v.items():
            for cidr in [] if cidrs == "inventory" else cidrs:
                try:
                    SourcePolicy.build((), {transport: [cidr]})
                except ValueError:
                    raise ValueError(f"{transport}: {cidr!r} is not an address or network") from None
        return v

    retention_days: float = Field(180.0, ge=180.0)  # 网络安全法 Art. 21: at least six months
    budget_bytes: int | None = Field(None, gt=0)
    segment_bytes: int = Field(64 * 1024 * 1024, ge=65536)  # seal (compress, index) segments at this size
    # Untrusted text is parsed only in worker processes, each line within `parse_budget` seconds.
    parse_workers: int = Field(default_factory=default_workers, ge=1, le=8)  # default: the cores, at most 4
    parse_budget: float = Field(2.0, gt=0, le=60)
    verify_every: float = Field(3600.0, gt=0)  # seconds between full chain verifications
    forward: HostPort | None = None  # also forward every durable frame to this syslog receiver (TCP)

    @model_validator(mode="after")
    def _tls(self) -> SyslogSection:
        if self.tls_port is not None and (self.tls_cert is None or self.tls_key is None):
            raise ValueError("tls_port needs tls_cert and tls_key")
        return self


class SyslogService:
    """Receives syslog into the tamper-evident store; exports ingest counters and store health."""

    name = "syslog"

    def __init__(
        self,
        cfg: SyslogSection,
        inventory: Inventory | None,
        store: LogStore,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.inventory = inventory
        self.store = store
        self.devices = device_map_from_inventory(inventory) if inventory is not None else {}
        zones = zone_map_from_inventory(inventory) if inventory is not None else {}
        self.forwarder: Forwarder | None = None
        if cfg.forward is not None:
            host, port = split_host_port(cfg.forward)
            self.forwarder = Forwarder(host, port)
        forward = self.forwarder.push if self.forwarder is not None else None
        self.ingest = Ingest(
            store, load_formats(), self.devices, parse_workers=cfg.parse_workers, zones=zones,
            parse_budget=cfg.parse_budget, forward=forward,
        )  # fmt: skip
        self.receiver: Receiver | None = None
        self.verify_ok: float | None = None
        self.listen_error: str | None = None  # why the receiver could not listen, if it could not
        # Housekeeping and verification notes: logged in `govnet run`, printed by `govnet syslog`.
        self.report = report or (lambda note: log.info("log store: %s", note))

    async def run(self, stop: asyncio.Event, listening: Callable[[Receiver], None] | None = None) -> None:
        """Listen until `stop`; housekeeping every minute, a full verification every `verify_every`.

        `listening` is called once the sockets are open (`govnet syslog` prints the ports).
        """
        tls = None
        if self.cfg.tls_port is not None and self.cfg.tls_cert and self.cfg.tls_key:
            ca = str(self.cfg.tls_client_ca) if self.cfg.tls_client_ca else None
            tls = server_tls_context(str(self.cfg.tls_cert), str(self.cfg.tls_key), ca)
        allow: dict[str, list[str] | None] = {
            t: None if v == "inventory" else v for t, v in self.cfg.allow.items()
        }
        policy = SourcePolicy.build(self.devices, allow, self.cfg.unknown_sources == "refuse")
        try:
            self.receiver = await start_receiver(
                self.ingest,
                self.cfg.listen,
                self.cfg.tcp_port,
                self.cfg.udp_port,
                tls_port=self.cfg.tls_port if tls else None,
                tls_context=tls,
                limits=self.cfg.limits.limits(),
                policy=policy,
            )
        except OSError as exc:
            self.listen_error = f"cannot listen on {self.cfg.listen}: {exc.strerror}"
            log.error("syslog receiver %s", self.listen_error)
            self.store.close()
            return
        if self.forwarder is not None:
            self.forwarder.start()
        if listening is not None:
            listening(self.receiver)
        control = ControlServer(self.store)  # audit records of exports/searches in other processes
        control.start()
        next_verify = 0.0
        try:
            while not stop.is_set():
                now = time.time()
                self.receiver.report_drops()
                for note in await asyncio.to_thread(self.store.housekeeping, now):
                    self.report(note)
                if now >= next_verify:
                    problems = await asyncio.to_thread(self.store.verify)
                    self.verify_ok = 0.0 if problems else 1.0
                    for p in problems[:5]:
                        log.error("log store integrity: %s", p)
                    next_verify = now + self.cfg.verify_every
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 60)
        finally:
            await self.receiver.close()
            if self.forwarder is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await self.forwarder.flush()
                await self.forwarder.close()
            control.close()
            self.store.close()

    def internal_samples(self) -> list[Sample]:
        """Ingest counters, per-device last message time and sequence gaps, store health."""
        now = time.time()
        st = self.ingest.stats
        out = [
            Sample(metric, (), float(getattr(st, attr)), now, "counter", help_)
            for metric, (attr, help_) in COUNTERS.items()
        ]
        for reason, count in sorted(st.refused.items()):
            out.append(
                Sample(
                    "govnet_syslog_connections_refused_total",
                    (("reason", reason),),
                    float(count),
                    now,
                    "counter",
                    "TCP/TLS connections refused (caps, allow-list, TLS handshake failed or too slow).",
                )
            )
        for reason, count in sorted(st.closed.items()):
            out.append(
                Sample(
                    "govnet_syslog_connections_closed_total",
                    (("reason", reason),),
                    float(count),
                    now,
                    "counter",
                    "TCP/TLS connections cut by the receiver (idle, frame_timeout, buffer_full, oversized).",
                )
            )
        out.append(
            Sample(
                "govnet_syslog_queue_bytes", (), float(self.ingest.pending_bytes), now, "gauge",
                "Bytes of received frames waiting for the writer.",
            )
        )  # fmt: skip
        if self.receiver is not None:
            out.append(
                Sample(
                    "govnet_syslog_buffered_bytes", (), float(self.receiver.buffered), now, "gauge",
                    "Bytes of partial frames held for stream connections.",
                )
            )  # fmt: skip
            drops = self.receiver.udp_kernel_drops()
            if drops is not None:
                out.append(
                    Sample(
                        "govnet_syslog_udp_kernel_drops_total", (), float(drops), now, "counter",
                        "UDP datagrams the kernel dropped on the syslog socket (receive buffer full).",
                    )
                )  # fmt: skip
        pool = self.ingest.pool
        if pool is not None:
            for metric, value, help_ in (
                ("govnet_syslog_parse_timeouts_total", pool.timeouts,
                 "Lines stored raw because parsing took longer than the per-line budget."),
                ("govnet_syslog_parse_crashes_total", pool.crashes,
                 "Lines stored raw because a parse worker died on them."),
                ("govnet_syslog_parse_worker_restarts_total", pool.restarts, "Parse workers replaced."),
            ):  # fmt: skip
                out.append(Sample(metric, (), float(value), now, "counter", help_))
        out.append(
            Sample(
                "govnet_syslog_connections",
                (),
                float(st.connections),
                now,
                "gauge",
                "Open TCP/TLS syslog connections.",
            )
        )
        by_name = {d.name: d for d in self.inventory.devices} if self.inventory is not None else {}
        unknown = 0
        for host, ts in list(st.last_seen.items()):
            name = self.devices.get(host)
            if name is None or name not in by_name:
                unknown += 1
                continue
            out.append(
                Sample(
                    "govnet_syslog_last_message_timestamp_seconds",
                    device_labels(by_name[name]),
                    ts,
                    now,
                    "gauge",
                    "Receive time of the device's last durable syslog message.",
                )
            )
        for host, gaps in list(self.ingest.sequences.gaps.items()):
            name = self.devices.get(host)
            if name is None or name not in by_name:
                continue
            out.append(
                Sample(
                    "govnet_syslog_sequence_gaps_total",
                    device_labels(by_name[name]),
                    float(gaps),
                    now,
                    "counter",
                    "Messages missing from the device's RFC 5424 sequenceId numbering (restarts excluded).",
                )
            )
        out.append(
            Sample(
                "govnet_syslog_unknown_sources",
                (),
                float(unknown),
                now,
                "gauge",
                "Syslog sources not in the inventory (kept, flagged).",
            )
        )
        out.append(
            Sample(
                "govnet_logstore_disk_bytes",
                (("store", str(self.store.root)),),
                float(self.store.disk_bytes()),
                now,
                "gauge",
                "Bytes the log store uses on disk.",
            )
        )
        out.append(
            Sample(
                "govnet_logstore_compress_errors_total",
                (("store", str(self.store.root)),),
                float(self.store.metrics["compress_errors_total"]),
                now,
                "counter",
                "Sealed segments whose background compression or indexing failed (kept uncompressed).",
            )
        )
        out.append(
            Sample(
                "govnet_logstore_renumbered_total",
                (("store", str(self.store.root)),),
                float(self.store.metrics["renumbered_total"]),
                now,
                "counter",
                "Records a parse worker numbered from a seq that moved on (an audit record came between), "
                "numbered again by the writer.",
            )
        )
        out += self.audit_samples(now)
        if self.verify_ok is not None:
            out.append(
                Sample(
                    "govnet_logstore_verify_ok",
                    (("store", str(self.store.root)),),
                    self.verify_ok,
                    now,
                    "gauge",
                    "1 when the last full chain verification found nothing wrong.",
                )
            )
        return out

    def audit_samples(self, now: float) -> list[Sample]:
        """等保 review figures from the segment indexes: coverage, retention, budget, lines per device."""
        inv = self.inventory
        devices = (
            [DeviceInfo(d.name, str(d.role), d.site, str(d.address)) for d in inv.devices] if inv else []
        )
        st = audit_stats(self.store, devices, now, days=1)
        store = (("store", str(self.store.root)),)
        out = [
            Sample(
                "govnet_logstore_retention_held_days",
                store,
                float(st["retention"]["held_days"]),
                now,
                "gauge",
                "Days between the oldest record kept and now.",
            ),
        ]
        if st["retention"]["target_days"] is not None:
            out.append(
                Sample(
                    "govnet_logstore_retention_target_days",
                    store,
                    st["retention"]["target_days"],
                    now,
                    "gauge",
                    "Days the store keeps records (retention setting).",
                )
            )
        if st["store"]["budget_bytes"]:
            out.append(
                Sample(
                    "govnet_logstore_budget_bytes",
                    store,
                    float(st["store"]["budget_bytes"]),
                    now,
                    "gauge",
                    "Disk budget of the log store.",
                )
            )
        cov = st["coverage"]
        for state, n in (("reporting", cov["reporting_24h"]), ("silent", len(cov["silent"]))):
            out.append(
                Sample(
                    "govnet_syslog_security_devices",
                    (("state", state),),
                    float(n),
                    now,
                    "gauge",
                    "Security devices (firewall, IPS, VPN, isolation gateway) that sent / did not "
                    "send logs in the last 24 h.",
                )
            )
        if cov["ratio"] is not None:
            out.append(
                Sample(
                    "govnet_syslog_coverage_ratio",
                    (),
                    float(cov["ratio"]),
                    now,
                    "gauge",
                    "Security devices that sent logs in the last 24 h / all of them.",
                )
            )
        by_name = {d.name: d for d in inv.devices} if inv else {}
        for row in st["devices"]:
            dev = by_name.get(row["device"])
            if dev is not None:
                out.append(
                    Sample(
                        "govnet_syslog_device_lines_24h",
                        device_labels(dev),
                        row["lines_24h"],
                        now,
                        "gauge",
                        "Log lines stored from the device in the last 24 h.",
                    )
                )
        return out


def build(
    section: SyslogSection,
    *,
    inventory: Inventory | None,
    report: Callable[[str], None] | None = None,
    on_append: Sequence[Callable[[list[Record]], None]] = (),
) -> list[SyslogService]:
    """The receiver and its log store (the API shares this store: `govnet run` hands it over).

    `on_append` are called with each durable batch in seq order (the security correlation rules).
    """
    try:
        store = LogStore(
            section.store,
            StoreConfig(
                retention_days=section.retention_days,
                budget_bytes=section.budget_bytes,
                max_segment_bytes=section.segment_bytes,
                compress_in_background=True,  # sealing never holds up a batch's fsync
            ),
        )
    except StoreLocked as exc:
        raise SectionError(("store",), str(exc)) from None
    store.on_append.extend(on_append)
    return [SyslogService(section, inventory, store, report)]
