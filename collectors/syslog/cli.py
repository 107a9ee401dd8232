"""Command body for `govnet syslog`: run the receiver into a store until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import sys
import time
from pathlib import Path

from collectors.syslog.formats import load_formats
from collectors.syslog.forward import Forwarder
from collectors.syslog.receiver import (
    Ingest,
    device_map_from_inventory,
    server_tls_context,
    start_receiver,
    zone_map_from_inventory,
)
from logstore.store import LogStore, StoreConfig


def syslog_command(
    store_dir: Path,
    listen: str,
    tcp_port: int | None,
    udp_port: int | None,
    inventory: Path | None,
    retention_days: float,
    budget_bytes: int | None,
    tls_port: int | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    forward: str | None = None,
    parse_workers: int | None = None,
    tls_client_ca: Path | None = None,
) -> int:
    """Receive syslog into the store; SIGINT/SIGTERM commit what was received and stop.

    `parse_workers`: parse processes beside the writer (None: one per core beyond the first, at least one
    and at most 4; 0 parses in the receiving process, for benchmarks only: a hostile line then stalls it).
    """
    if parse_workers is None:
        parse_workers = min(4, max(1, (os.cpu_count() or 1) - 1))
    tls_context = None
    if tls_port is not None:
        if tls_cert is None or tls_key is None:
            print("syslog: --tls-port needs --tls-cert and --tls-key", file=sys.stderr)
            return 2
        tls_context = server_tls_context(
            str(tls_cert), str(tls_key), str(tls_client_ca) if tls_client_ca else None
        )
    devices: dict[str, str] = {}
    zones: dict[str, str] = {}
    if inventory is not None:
        from inventory.load import InventoryError, load_inventory

        try:
            inv = load_inventory(inventory)
            devices, zones = device_map_from_inventory(inv), zone_map_from_inventory(inv)
        except InventoryError as exc:
            print(f"syslog: inventory has problems: {exc}", file=sys.stderr)
            return 2
    store = LogStore(store_dir, StoreConfig(retention_days=retention_days, budget_bytes=budget_bytes))
    try:
        asyncio.run(
            _serve(
                store,
                listen,
                tcp_port,
                udp_port,
                devices,
                tls_port,
                tls_context,
                forward,
                parse_workers,
                zones,
            )
        )
    finally:
        store.close()
    return 0


async def _serve(
    store: LogStore,
    listen: str,
    tcp_port: int | None,
    udp_port: int | None,
    devices: dict[str, str],
    tls_port: int | None,
    tls_context: ssl.SSLContext | None,
    forward: str | None,
    parse_workers: int,
    zones: dict[str, str],
) -> None:
    forwarder = None
    if forward:
        host, _, port = forward.rpartition(":")
        forwarder = Forwarder(host.strip("[]"), int(port))
        forwarder.start()
    ingest = Ingest(
        store,
        load_formats(),
        devices,
        forward=forwarder.push if forwarder else None,
        parse_workers=parse_workers,
        zones=zones,
    )
    rx = await start_receiver(ingest, listen, tcp_port, udp_port, tls_port=tls_port, tls_context=tls_context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ports = (
        f"tcp {rx.tcp_port if rx.tcp else '-'} udp {rx.udp_port if rx.udp else '-'} "
        f"tls {rx.tls_port if rx.tls else '-'}"
    )
    print(f"syslog receiver on {listen} ({ports}); store {store.root}", flush=True)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 60)
        rx.report_drops()
        for note in await asyncio.to_thread(store.housekeeping, time.time()):
            print(f"store: {note}", flush=True)
    await rx.close()
    if forwarder is not None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await forwarder.flush()
        await forwarder.close()
