"""A tiny SNMP v2c GET client on the lab's codec, used to wait until every agent answers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from lab.snmp import ber

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answered: set[tuple[str, int]] = set()
        self.event = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            msg = ber.decode_v2c(data)
        except (ber.BerError, IndexError, ValueError):
            return
        if msg.pdu.tag == ber.RESPONSE:
            self.answered.add((str(addr[0]), int(addr[1])))
            self.event.set()


async def wait_answering(
    targets: list[tuple[str, int]],
    community: bytes,
    timeout: float,  # noqa: ASYNC109 - a deadline for the whole probe loop, not one await
    progress: Callable[[int, int], None] | None = None,
) -> set[tuple[str, int]]:
    """Send v2c GET sysUpTime to every target until all answer or `timeout`; the set that answered."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Collector, local_addr=("127.0.0.1", 0))
    deadline = loop.time() + timeout
    want = set(targets)
    try:
        while True:
            missing = want - proto.answered
            if progress:
                progress(len(want) - len(missing), len(want))
            if not missing or loop.time() > deadline:
                break
            for addr in missing:
                rid = int.from_bytes(os.urandom(3), "big")
                pdu = ber.encode_pdu(
                    ber.GET, rid, 0, 0, [ber.varbind(ber.enc_oid(SYS_UPTIME), ber.NULL_VALUE)]
                )
                transport.sendto(ber.encode_v2c(1, community, pdu), addr)
            proto.event.clear()
            try:
                await asyncio.wait_for(proto.event.wait(), 0.5)
                await asyncio.sleep(0.05)
            except TimeoutError:
                pass
    finally:
        transport.close()
    return proto.answered & want
