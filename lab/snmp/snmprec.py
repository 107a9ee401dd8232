"""Load snmpsim `.snmprec` recordings into static MIB views and serve them (community = file stem)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from core.snmprec import Record, load_records
from lab.snmp import ber
from lab.snmp.agent import AgentServer, DeviceAgent
from lab.snmp.ber import Oid
from lab.snmp.view import MibView

_UNSIGNED = {"65": ber.COUNTER32, "66": ber.GAUGE32, "67": ber.TIMETICKS, "70": ber.COUNTER64}


def encode(record: Record) -> bytes:
    """BER encoding of one recorded value."""
    if record.tag == "2":
        return ber.enc_int(record.integer())
    if record.tag in _UNSIGNED:
        return ber.enc_uint(record.integer(), _UNSIGNED[record.tag])
    if record.tag == "4":
        return ber.tlv(ber.OCTET_STRING, record.raw)
    if record.tag == "68":
        return ber.tlv(ber.OPAQUE, record.raw)
    if record.tag == "6":
        return ber.enc_oid(ber.parse_oid(record.text()))
    if record.tag == "64":
        return ber.ip_address(record.text())
    return ber.NULL_VALUE


def load_snmprec(path: Path) -> list[tuple[Oid, bytes]]:
    """A recording as (oid, encoded value) pairs (core.snmprec reads it: SnmprecError names a non-record
    line; variables snmpsim could not serve either are skipped with a counted SnmprecWarning)."""
    return [(ber.parse_oid(r.oid), encode(r)) for r in load_records(path)]


def snmprec_view(path: Path) -> MibView:
    """A static view of one recording."""
    return MibView(load_snmprec(path))


def snmprec_agent(files: Mapping[str, Path] | Iterable[Path], name: str = "snmprec") -> DeviceAgent:
    """One agent answering each recording under its community (mapping key, or file stem)."""
    items = files.items() if isinstance(files, Mapping) else ((p.stem, p) for p in files)
    views = {community.encode(): snmprec_view(Path(path)) for community, path in items}
    return DeviceAgent(name=name, views=views)


async def serve_snmprec(
    files: Mapping[str, Path] | Iterable[Path], address: str = "127.0.0.1", port: int = 16161
) -> AgentServer:
    """Serve recordings on address:port (v2c, community = key or file stem); close() the result to stop."""
    server = AgentServer()
    await server.add(snmprec_agent(files), address, port)
    return server


def main(argv: list[str] | None = None) -> None:
    """`python -m lab.snmp.snmprec ADDRESS PORT FILE...`: serve recordings until interrupted."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3:
        raise SystemExit("usage: python -m lab.snmp.snmprec ADDRESS PORT FILE.snmprec...")

    async def run() -> None:
        server = await serve_snmprec([Path(a) for a in args[2:]], args[0], int(args[1]))
        print(f"serving {len(args) - 2} recordings on {args[0]}:{args[1]}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
