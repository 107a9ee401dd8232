"""Load snmpsim `.snmprec` recordings into static MIB views and serve them (community = file stem)."""

from __future__ import annotations

import asyncio
import binascii
import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from collectors.snmp.snmprec import unhex
from lab.snmp import ber
from lab.snmp.agent import AgentServer, DeviceAgent
from lab.snmp.ber import Oid
from lab.snmp.view import MibView

_UNSIGNED = {"65": ber.COUNTER32, "66": ber.GAUGE32, "67": ber.TIMETICKS, "70": ber.COUNTER64}


def encode_record(type_code: str, value: str) -> bytes:
    """Encode one snmprec value (`2`, `4`, `4x`, `5`, `6`, `64`, `65`, `66`, `67`, `70`, hex `x` forms)."""
    hexed = type_code.endswith("x")
    base = type_code[:-1] if hexed else type_code
    raw = unhex(value) if hexed else value.encode("utf-8")
    if base == "2":
        return ber.enc_int(int.from_bytes(raw, "big", signed=True) if hexed else int(value))
    if base == "4":
        return ber.tlv(ber.OCTET_STRING, raw)
    if base == "5":
        return ber.NULL_VALUE
    if base == "6":
        return ber.enc_oid(ber.parse_oid(raw.decode("ascii")))
    if base == "64":
        return ber.tlv(ber.IP_ADDRESS, raw) if hexed else ber.ip_address(value)
    if base in _UNSIGNED:
        number = int.from_bytes(raw, "big") if hexed else int(value)
        return ber.enc_uint(number, _UNSIGNED[base])
    raise ValueError(f"unsupported snmprec type {type_code!r}")


def load_snmprec(path: Path) -> list[tuple[Oid, bytes]]:
    """Parse a recording into (oid, encoded value) pairs; a malformed line raises ValueError naming it."""
    out: list[tuple[Oid, bytes]] = []
    with path.open(encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            try:
                oid_text, type_code, value = line.split("|", 2)
                if value and type_code in ("4",):
                    value_b = value.encode("utf-8", "surrogateescape")
                    out.append((ber.parse_oid(oid_text), ber.tlv(ber.OCTET_STRING, value_b)))
                else:
                    out.append((ber.parse_oid(oid_text), encode_record(type_code, value)))
            except (ValueError, binascii.Error) as exc:
                raise ValueError(f"{path.name}:{lineno}: {exc}") from None
    return out


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
