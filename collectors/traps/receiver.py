"""A pysnmp 7.1 (asyncio) notification receiver: v1/v2c traps, v3 traps and informs, mapped to devices.

pysnmp answers informs itself (NotificationReceiver sends the Response PDU before our callback runs).
Every datagram is counted; decoding happens inside pysnmp, and anything it raises on a hostile
datagram is caught here, so a malformed packet costs one counter, never the receiver.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import api as snmp_api
from pysnmp.proto.api import v2c

from collectors.sockstats import grow_receive_buffer, udp_kernel_drops
from collectors.traps.defs import Classified, TrapCatalog, if_index_of
from collectors.traps.flood import TrapGate
from inventory.model import Inventory
from inventory.problems import safe_text

log = logging.getLogger(__name__)

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"  # v1 agent-addr, added by the v1 -> v2 translation
MAX_VARBINDS_KEPT = 32
MAX_DATAGRAM = 65507

AUTH = {
    "md5": config.USM_AUTH_HMAC96_MD5,
    "sha": config.USM_AUTH_HMAC96_SHA,
    "sha224": config.USM_AUTH_HMAC128_SHA224,
    "sha256": config.USM_AUTH_HMAC192_SHA256,
    "sha384": config.USM_AUTH_HMAC256_SHA384,
    "sha512": config.USM_AUTH_HMAC384_SHA512,
}
PRIV = {
    "des": config.USM_PRIV_CBC56_DES,
    "aes": config.USM_PRIV_CFB128_AES,
    "aes128": config.USM_PRIV_CFB128_AES,
    "aes192": config.USM_PRIV_CFB192_AES,
    "aes256": config.USM_PRIV_CFB256_AES,
}

# pysnmp's own counters of rejected messages: (MIB module, symbol) -> our `reason` label.
REJECT_COUNTERS = {
    ("__SNMPv2-MIB", "snmpInASNParseErrs"): "parse_error",
    ("__SNMPv2-MIB", "snmpInBadVersions"): "bad_version",
    ("__SNMPv2-MIB", "snmpInBadCommunityNames"): "bad_community",
    ("__SNMP-MPD-MIB", "snmpUnknownSecurityModels"): "unknown_security_model",
    ("__SNMP-MPD-MIB", "snmpInvalidMsgs"): "invalid_message",
    ("__SNMP-MPD-MIB", "snmpUnknownPDUHandlers"): "unknown_pdu_handler",
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames"): "unknown_user",
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs"): "unknown_engine_id",
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests"): "wrong_digest",
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors"): "decryption_error",
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows"): "not_in_time_window",
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels"): "unsupported_security_level",
}


@dataclass(frozen=True, slots=True)
class V3User:
    """A USM user traps and informs may come from (keys already resolved; never logged)."""

    user: str
    auth_protocol: str
    auth_key: str
    priv_protocol: str
    priv_key: str


@dataclass(frozen=True, slots=True)
class TrapEvent:
    """One received notification, text escaped and bounded."""

    at: float
    source: str
    device: str | None
    trap: str
    kind: str
    oid: str
    version: str  # "1", "2c" or "3"
    inform: bool
    if_index: int | None
    varbinds: tuple[tuple[str, str], ...]


def _text(value: Any) -> str:
    try:
        if isinstance(value, v2c.OctetString):
            raw = bytes(value)
            try:
                return safe_text(raw.decode("utf-8"))
            except UnicodeDecodeError:
                return "0x" + raw[:100].hex()
        return safe_text(value.prettyPrint())
    except Exception:  # a hostile value must not break the receiver
        return "<undecodable>"


class _GuardedUdp(udp.UdpTransport):  # type: ignore[misc]
    """Counts datagrams and shields the loop from anything pysnmp raises while decoding one."""

    receiver: TrapReceiver

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        receiver = self.receiver
        receiver.note_datagram(len(datagram))
        callback = self._callback_function
        if callback is None or len(datagram) > MAX_DATAGRAM:
            return
        # Flood control before any decoding: per-source buckets and a cap on queued datagrams.
        source = str(transportAddress[0]).split("%", 1)[0] if transportAddress else ""
        gate = receiver.gate
        if not gate.admit(source, time.monotonic()):
            return

        def guarded() -> None:
            try:
                callback(self, transportAddress, datagram)
            except Exception as exc:
                receiver.note_malformed(transportAddress, exc)
            finally:
                gate.done()

        self.loop.call_soon(guarded)


class _GuardedUdp6(udp6.Udp6Transport):  # type: ignore[misc]
    receiver: TrapReceiver
    datagram_received = _GuardedUdp.datagram_received


class TrapReceiver:
    """Receives notifications on one UDP socket and hands each, classified and mapped, to `on_event`."""

    def __init__(
        self,
        inventory: Inventory,
        catalog: TrapCatalog,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - traps come from every device; the config chooses
        port: int = 162,
        communities: Iterable[str] = (),
        users: Iterable[V3User] = (),
        engine_ids: Mapping[str, bytes] | None = None,  # device -> its snmpEngineID (v3 traps)
        ring_size: int = 1000,
        engine_id: bytes | None = None,
        on_event: Callable[[TrapEvent, Classified], None] | None = None,
        wall: Callable[[], float] = time.time,
        gate: TrapGate | None = None,
    ) -> None:
        self.catalog = catalog
        self.host, self.port = host, port
        self.on_event = on_event
        self.wall = wall
        self.events: deque[TrapEvent] = deque(maxlen=ring_size)
        self.by_address: dict[str, str] = {}
        for d in inventory.devices:
            self.by_address.setdefault(str(ipaddress.ip_address(d.address)), d.name)
        self.by_engine: dict[bytes, str] = {eid: dev for dev, eid in (engine_ids or {}).items()}
        self.gate = gate or TrapGate(frozenset(self.by_address))
        self.received: dict[tuple[str, str], int] = {}  # (device, trap) -> count
        self.unknown_source_total = 0
        self.datagrams_total = 0
        self.malformed_total = 0
        self.oversize_total = 0
        self.informs_total = 0
        self._last_security_engine: bytes | None = None
        self._communities = list(communities)
        self._users = list(users)
        self._engine_id = engine_id
        self.snmp_engine: Any = None
        self._reject_objs: dict[str, Any] = {}
        self._sock: socket.socket | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the socket and register with pysnmp; call with the event loop running."""
        eng = engine.SnmpEngine(snmpEngineID=v2c.OctetString(self._engine_id) if self._engine_id else None)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            grow_receive_buffer(sock, 4 << 20)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = sock.getsockname()[1]
        transport = (_GuardedUdp6 if family == socket.AF_INET6 else _GuardedUdp)()
        transport.receiver = self
        domain = udp6.DOMAIN_NAME if family == socket.AF_INET6 else udp.DOMAIN_NAME
        config.add_transport(eng, domain, transport.open_server_mode(sock=sock))
        for i, community in enumerate(self._communities):
            config.add_v1_system(eng, f"govnet-trap-{i}", community)
        for user in self._users:
            # Informs: we are authoritative (our engine ID). Traps: the sender is (one entry per device).
            for engine_id in [None, *self.by_engine]:
                config.add_v3_user(
                    eng,
                    user.user,
                    AUTH[user.auth_protocol],
                    user.auth_key,
                    PRIV[user.priv_protocol],
                    user.priv_key,
                    securityEngineId=None if engine_id is None else v2c.OctetString(engine_id),
                )
        eng.observer.register_observer(self._note_security, "rfc3414.processIncomingMsg")
        ntfrcv.NotificationReceiver(eng, self._on_notification)
        eng.transport_dispatcher.job_started(1)
        self._resolve_counters(eng)
        self.snmp_engine = eng

    def close(self) -> None:
        """Stop receiving."""
        if self.snmp_engine is not None:
            self.snmp_engine.transport_dispatcher.job_finished(1)
            self.snmp_engine.close_dispatcher()
            self.snmp_engine = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def local_engine_id(self) -> bytes:
        """Our snmpEngineID (senders of v3 informs localise keys with it)."""
        assert self.snmp_engine is not None
        return bytes(self.snmp_engine.snmpEngineID)

    # -- counters -----------------------------------------------------------------------------

    def note_datagram(self, size: int) -> None:
        """Count one datagram (and an oversize one)."""
        self.datagrams_total += 1
        if size > MAX_DATAGRAM:
            self.oversize_total += 1

    def note_malformed(self, address: Any, exc: BaseException) -> None:
        """Count a datagram pysnmp could not process; log it with escaped text."""
        self.malformed_total += 1
        src = safe_text(str(address[0]) if isinstance(address, tuple) and address else repr(address))
        log.warning("malformed SNMP datagram from %s: %s", src, safe_text(type(exc).__name__))

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped on the trap socket (receive buffer full), None if unknown."""
        return udp_kernel_drops(self._sock)

    def rejected(self) -> dict[str, int]:
        """pysnmp's rejection counters by reason (parse errors, bad community, USM failures...)."""
        return {reason: int(obj.syntax) for reason, obj in self._reject_objs.items()}

    def _resolve_counters(self, eng: Any) -> None:
        builder = eng.get_mib_builder()
        for (module, symbol), reason in REJECT_COUNTERS.items():
            try:
                (self._reject_objs[reason],) = builder.import_symbols(module, symbol)
            except Exception as exc:  # a counter this pysnmp version does not define
                log.debug("no pysnmp counter %s::%s (%s)", module, symbol, type(exc).__name__)

    # -- callbacks ----------------------------------------------------------------------------

    def _note_security(self, _eng: Any, _point: str, variables: dict[str, Any], _ctx: Any) -> None:
        eid = variables.get("securityEngineId")
        self._last_security_engine = bytes(eid) if eid is not None else None

    def _on_notification(
        self, eng: Any, _state: Any, context_engine_id: Any, _context_name: Any, var_binds: Any, _ctx: Any
    ) -> None:
        try:
            self._handle(eng, context_engine_id, var_binds)
        except Exception:
            self.malformed_total += 1
            log.exception("trap handling failed")

    def _handle(self, eng: Any, context_engine_id: Any, var_binds: Any) -> None:
        exec_ctx = eng.observer.get_execution_context("rfc3412.receiveMessage:request") or {}
        address = exec_ctx.get("transportAddress") or ("?", 0)
        mp_model = int(exec_ctx.get("messageProcessingModel", 1))
        pdu = exec_ctx.get("pdu")
        inform = pdu is not None and pdu.tagSet == v2c.InformRequestPDU.tagSet
        version = {0: "1", 1: "2c", 3: "3"}.get(mp_model, "?")
        binds: list[tuple[str, str]] = []
        trap_oid = ""
        agent_addr = None
        for oid, value in var_binds:
            oid_s = str(oid)
            if oid_s == SNMP_TRAP_OID:
                trap_oid = str(value) if isinstance(value, snmp_api.v2c.ObjectIdentifier) else _text(value)
            elif oid_s == SNMP_TRAP_ADDRESS:
                agent_addr = _text(value)
            if len(binds) < MAX_VARBINDS_KEPT:
                binds.append((safe_text(oid_s), _text(value)))
        source = safe_text(str(address[0]).split("%", 1)[0])
        device = self._device_for(source, agent_addr, mp_model, context_engine_id)
        classified = self.catalog.classify(trap_oid, [v for _, v in binds])
        event = TrapEvent(
            at=self.wall(),
            source=source,
            device=device,
            trap=classified.name,
            kind=classified.kind,
            oid=safe_text(trap_oid),
            version=version,
            inform=inform,
            if_index=if_index_of(binds),
            varbinds=tuple(binds),
        )
        self.events.append(event)
        if inform:
            self.informs_total += 1
        if device is None:
            self.unknown_source_total += 1
            log.warning(
                "trap %s (%s) from unknown source %s (SNMPv%s) ignored",
                event.trap,
                event.oid,
                source,
                version,
            )
        else:
            key = (device, classified.name)
            self.received[key] = self.received.get(key, 0) + 1
            log.info(
                "trap %s from %s (%s)%s",
                event.trap,
                device,
                source,
                f" ifIndex {event.if_index}" if event.if_index is not None else "",
            )
        if self.on_event is not None:
            self.on_event(event, classified)

    def _device_for(
        self, source: str, agent_addr: str | None, mp_model: int, context_engine_id: Any
    ) -> str | None:
        try:
            dev = self.by_address.get(str(ipaddress.ip_address(source)))
        except ValueError:
            dev = None
        if dev is None and mp_model == 3:
            for eid in (self._last_security_engine, bytes(context_engine_id) if context_engine_id else None):
                if eid and eid in self.by_engine:
                    return self.by_engine[eid]
        if dev is None and agent_addr:
            try:
                dev = self.by_address.get(str(ipaddress.ip_address(agent_addr)))
            except ValueError:
                dev = None
        return dev
