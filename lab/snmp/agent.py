"""The asyncio UDP SNMP agent: one socket per simulated device, v2c communities and v3 USM users."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from lab.snmp import ber
from lab.snmp.ber import BerError, Pdu
from lab.snmp.usm import UsmEngine
from lab.snmp.view import MibView

log = logging.getLogger("lab.snmp")

MAX_RESPONSE = 60000  # stay under a 64 KB datagram whatever the client offers
V3_OVERHEAD = 200  # headers, security parameters and AES/HMAC growth
MAX_REPETITIONS = 1000
SNMP_ENGINE = (1, 3, 6, 1, 6, 3, 10, 2, 1)  # snmpEngineID .1, boots .2, time .3, maxMsgSize .4


@dataclass
class DeviceAgent:
    """What one simulated device answers: views by community, a USM engine, faults by callbacks."""

    name: str
    views: dict[bytes, MibView]  # v2c community -> view
    v3_view: MibView | None = None
    v3_contexts: dict[bytes, MibView] = field(default_factory=dict)  # SNMPv3 context name -> view
    usm: UsmEngine | None = None
    boots: Callable[[], int] = lambda: 1
    boot_time: Callable[[], float] = lambda: 0.0
    dead: Callable[[], bool] = lambda: False
    delay: Callable[[], float] = lambda: 0.0
    requests: int = 0
    varbinds: int = 0
    dropped: int = 0
    stats: dict[str, int] = field(default_factory=dict)

    def handle(self, data: bytes, now: float) -> bytes | None:
        """The response datagram for one request datagram, or None to stay silent."""
        try:
            version = ber.message_version(data)
            if version in (0, 1):
                return self._v2c(data, now)
            if version == 3 and self.usm is not None:
                return self._v3(data, now)
        except (BerError, IndexError, ValueError, OverflowError):
            pass
        self.dropped += 1
        return None

    def _v2c(self, data: bytes, now: float) -> bytes | None:
        msg = ber.decode_v2c(data)
        view = self.views.get(msg.community)
        if view is None or msg.pdu.tag not in (ber.GET, ber.GETNEXT, ber.GETBULK):
            self.dropped += 1
            return None
        if msg.version == 0 and msg.pdu.tag == ber.GETBULK:
            self.dropped += 1
            return None
        pdu = self._answer(view, msg.pdu, now, MAX_RESPONSE - 64 - len(msg.community), msg.version == 0)
        return ber.encode_v2c(msg.version, msg.community, pdu)

    def _v3(self, data: bytes, now: float) -> bytes | None:
        assert self.usm is not None
        boots = self.boots()
        etime = max(0, int(now - self.boot_time()))
        req, report = self.usm.process(data, boots, etime)
        if req is None:
            return report
        view = self.v3_contexts.get(req.context_name) if req.context_name else self.v3_view
        if view is None or req.pdu.tag not in (ber.GET, ber.GETNEXT, ber.GETBULK):
            return None
        limit = min(MAX_RESPONSE, max(req.max_size, 484)) - V3_OVERHEAD
        extra = self._engine_values(boots, etime) if req.pdu.tag == ber.GET else None
        pdu = self._answer(view, req.pdu, now, limit, False, extra)
        scoped = ber.tlv(ber.SEQUENCE, self.usm.engine_id_tlv + ber.octets(req.context_name) + pdu)
        return self.usm.encode(req.msg_id, req.flags & 0x03, req.user, scoped, boots, etime)

    def _engine_values(self, boots: int, etime: int) -> dict[tuple[int, ...], bytes]:
        assert self.usm is not None
        return {
            (*SNMP_ENGINE, 1, 0): ber.octets(self.usm.engine_id),
            (*SNMP_ENGINE, 2, 0): ber.enc_int(boots),
            (*SNMP_ENGINE, 3, 0): ber.enc_int(etime),
            (*SNMP_ENGINE, 4, 0): ber.enc_int(65507),
        }

    def _answer(
        self,
        view: MibView,
        pdu: Pdu,
        now: float,
        limit: int,
        v1: bool,
        extra: dict[tuple[int, ...], bytes] | None = None,
    ) -> bytes:
        """Encode the RESPONSE PDU for GET/GETNEXT/GETBULK, within `limit` bytes."""
        self.requests += 1
        out: list[bytes] = []
        size = 0
        if pdu.tag == ber.GET:
            for oid in pdu.oids:
                if extra and oid in extra:
                    vb = ber.varbind(ber.enc_oid(oid), extra[oid])
                elif v1 and view.index(oid) < 0:
                    return ber.encode_pdu(ber.RESPONSE, pdu.request_id, 2, len(out) + 1, [])
                else:
                    vb = view.get(oid, now)
                out.append(vb)
                size += len(vb)
        elif pdu.tag == ber.GETNEXT:
            for oid in pdu.oids:
                i = view.next_index(oid)
                if i < len(view):
                    vb = view.varbind_at(i, now)
                elif v1:
                    return ber.encode_pdu(ber.RESPONSE, pdu.request_id, 2, len(out) + 1, [])
                else:
                    vb = ber.varbind(ber.enc_oid(oid), ber.END_OF_MIB_VIEW_VALUE)
                out.append(vb)
                size += len(vb)
        else:
            n = min(max(pdu.non_repeaters, 0), len(pdu.oids))
            m = min(max(pdu.max_repetitions, 0), MAX_REPETITIONS)
            for oid in pdu.oids[:n]:
                i = view.next_index(oid)
                vb = (
                    view.varbind_at(i, now)
                    if i < len(view)
                    else ber.varbind(ber.enc_oid(oid), ber.END_OF_MIB_VIEW_VALUE)
                )
                out.append(vb)
                size += len(vb)
            rep_oids = pdu.oids[n:]
            if len(rep_oids) == 1 and m:
                # One column, as walkers ask: a slice of the view (endOfMibView when it starts past the end).
                vbs = view.varbinds(view.next_index(rep_oids[0]), m, now)
                if not vbs:
                    vbs.append(ber.varbind(ber.enc_oid(rep_oids[0]), ber.END_OF_MIB_VIEW_VALUE))
                for vb in vbs:
                    if size + len(vb) > limit and out:
                        break  # GETBULK may return fewer varbinds than asked (RFC 3416 4.2.3)
                    out.append(vb)
                    size += len(vb)
                rep_oids = []
            cursors = [view.next_index(o) for o in rep_oids]
            end = len(view)
            full = False
            for rep in range(m if rep_oids else 0):
                if rep and all(c >= end for c in cursors):
                    break  # every column answered endOfMibView once: stop repeating
                for j, c in enumerate(cursors):
                    if c < end:
                        vb = view.varbind_at(c, now)
                        cursors[j] = c + 1
                    else:
                        vb = ber.varbind(ber.enc_oid(rep_oids[j]), ber.END_OF_MIB_VIEW_VALUE)
                    if size + len(vb) > limit and out:
                        full = True  # GETBULK may return fewer varbinds than asked (RFC 3416 4.2.3)
                        break
                    out.append(vb)
                    size += len(vb)
                if full:
                    break
        if size > limit:
            return ber.encode_pdu(ber.RESPONSE, pdu.request_id, 1, 0, [])  # tooBig
        self.varbinds += len(out)
        return ber.encode_pdu(ber.RESPONSE, pdu.request_id, 0, 0, out)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, agent: DeviceAgent) -> None:
        self.agent = agent
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        agent = self.agent
        if agent.dead():
            return
        try:
            resp = agent.handle(data, time.time())
        except Exception:  # a bug must not take the whole lab down; drop the datagram
            log.exception("agent %s failed on a request", agent.name)
            return
        if resp is None or self.transport is None:
            return
        delay = agent.delay()
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._send, resp, addr)
        else:
            self.transport.sendto(resp, addr)

    def _send(self, resp: bytes, addr: tuple[str | object, int]) -> None:
        if self.transport is not None and not self.transport.is_closing() and not self.agent.dead():
            self.transport.sendto(resp, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("agent %s socket error: %s", self.agent.name, exc)


class AgentServer:
    """Binds one UDP socket per agent address and keeps them until `close()`."""

    def __init__(self) -> None:
        self.transports: list[asyncio.DatagramTransport] = []
        self.agents: dict[tuple[str, int], DeviceAgent] = {}

    async def add(self, agent: DeviceAgent, address: str, port: int) -> None:
        """Serve `agent` on address:port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(agent), local_addr=(address, port)
        )
        self.transports.append(transport)
        self.agents[(address, port)] = agent

    def close(self) -> None:
        """Close every socket."""
        for t in self.transports:
            t.close()
        self.transports.clear()
