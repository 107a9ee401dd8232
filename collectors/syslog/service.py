"""The syslog pipeline: receiver -> parse -> tamper-evident store (-> optional forward), with housekeeping,
periodic chain verification and its metrics. One assembly serves the `syslog:` section of `govnet run`
and the stand-alone `govnet syslog` (collectors/syslog/cli.py builds the same section from its options)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from pydantic import Field, model_validator

from collectors.base import device_labels
from collectors.syslog.formats import load_formats
from collectors.syslog.forward import Forwarder
from collectors.syslog.receiver import (
    Ingest,
    Receiver,
    device_map_from_inventory,
    server_tls_context,
    start_receiver,
)
from core.config import ConfigPath, HostPort, InputFile, Section, split_host_port
from core.samples import Sample
from inventory.model import Inventory
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
    "govnet_syslog_udp_overflow_total": ("udp_overflow_total", "UDP datagrams dropped on queue overflow."),
}


class SyslogSection(Section):
    """The `syslog:` section of the run config."""

    store: ConfigPath
    listen: str = "0.0.0.0"  # noqa: S104 (a receiver for devices on the management network)
    tcp_port: int | None = Field(1514, ge=0, le=65535)
    udp_port: int | None = Field(1514, ge=0, le=65535)
    tls_port: int | None = Field(None, ge=0, le=65535)
    tls_cert: InputFile | None = None
    tls_key: InputFile | None = None
    retention_days: float = Field(180.0, ge=180.0)  # 网络安全法 Art. 21: at least six months
    budget_bytes: int | None = Field(None, gt=0)
    parse_workers: int = Field(0, ge=0, le=8)
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
        self.forwarder: Forwarder | None = None
        if cfg.forward is not None:
            host, port = split_host_port(cfg.forward)
            self.forwarder = Forwarder(host, port)
        forward = self.forwarder.push if self.forwarder is not None else None
        self.ingest = Ingest(
            store, load_formats(), self.devices, forward=forward, parse_workers=cfg.parse_workers
        )
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
            tls = server_tls_context(str(self.cfg.tls_cert), str(self.cfg.tls_key))
        try:
            self.receiver = await start_receiver(
                self.ingest,
                self.cfg.listen,
                self.cfg.tcp_port,
                self.cfg.udp_port,
                tls_port=self.cfg.tls_port if tls else None,
                tls_context=tls,
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
        next_verify = 0.0
        try:
            while not stop.is_set():
                now = time.time()
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
            self.store.close()

    def internal_samples(self) -> list[Sample]:
        """Ingest counters, per-device last message time and sequence gaps, store health."""
        now = time.time()
        st = self.ingest.stats
        out = [
            Sample(metric, (), float(getattr(st, attr)), now, "counter", help_)
            for metric, (attr, help_) in COUNTERS.items()
        ]
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


def build(
    section: SyslogSection, *, inventory: Inventory | None, report: Callable[[str], None] | None = None
) -> list[SyslogService]:
    """The receiver and its log store (the API shares this store: `govnet run` hands it over)."""
    store = LogStore(
        section.store, StoreConfig(retention_days=section.retention_days, budget_bytes=section.budget_bytes)
    )
    return [SyslogService(section, inventory, store, report)]
