"""Command body for `govnet syslog`: the same syslog pipeline as the `syslog:` section, stand-alone.

The options become a SyslogSection (one validation, one assembly: collectors/syslog/service.py), so the
receiver behaves alike in both: forwarding, parse workers, housekeeping and periodic chain verification.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from collectors.syslog.parse_pool import default_workers
from collectors.syslog.receiver import Receiver
from collectors.syslog.service import SyslogSection, SyslogService, build
from core.config import SectionError
from inventory.model import Inventory


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
    segment_bytes: int = 64 * 1024 * 1024,
) -> int:
    """Receive syslog into the store; SIGINT/SIGTERM commit what was received and stop.

    `parse_workers`: parse processes beside the writer (None: one per core, at most 4).
    `tls_client_ca`: TLS senders must present a certificate this CA signed.
    Exit 2 on a bad option or inventory, 1 when the receiver cannot listen.
    """
    if parse_workers is None:
        parse_workers = default_workers()
    if tls_port is not None and (tls_cert is None or tls_key is None):
        print("syslog: --tls-port needs --tls-cert and --tls-key", file=sys.stderr)
        return 2
    options: dict[str, Any] = {
        "store": store_dir, "listen": listen, "tcp_port": tcp_port, "udp_port": udp_port,
        "retention_days": retention_days, "budget_bytes": budget_bytes, "tls_port": tls_port,
        "tls_cert": tls_cert, "tls_key": tls_key, "tls_client_ca": tls_client_ca, "forward": forward,
        "parse_workers": parse_workers, "segment_bytes": segment_bytes,
    }  # fmt: skip
    try:
        section = SyslogSection.model_validate(options)
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            option = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "options"
            print(f"syslog: {option}: {err['msg']}", file=sys.stderr)
        return 2
    inv: Inventory | None = None
    if inventory is not None:
        from inventory.load import InventoryError, load_inventory

        try:
            inv = load_inventory(inventory)
        except InventoryError as exc:
            print(f"syslog: inventory has problems: {exc}", file=sys.stderr)
            return 2
    try:
        (service,) = build(section, inventory=inv, report=lambda note: print(f"store: {note}", flush=True))
    except SectionError as exc:  # the store is locked by another writer (names its PID)
        print(f"syslog: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(service))
    if service.listen_error is not None:
        print(f"syslog: {service.listen_error}", file=sys.stderr)
        return 1
    return 0


async def _serve(service: SyslogService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def listening(rx: Receiver) -> None:
        ports = (
            f"tcp {rx.tcp_port if rx.tcp else '-'} udp {rx.udp_port if rx.udp else '-'} "
            f"tls {rx.tls_port if rx.tls else '-'}"
        )
        print(f"syslog receiver on {service.cfg.listen} ({ports}); store {service.store.root}", flush=True)

    await service.run(stop, listening)
