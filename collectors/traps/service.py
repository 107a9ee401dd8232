"""`traps:` section of `govnet run`: the trap/inform receiver, re-polls on traps, samples for /metrics.

```yaml
traps:
  listen: 0.0.0.0:162
  communities: [env:GOVNET_TRAP_COMMUNITY]        # v1/v2c, secret references
  v3_users:                                       # authPriv; SHA-2 + AES unless allow_weak_crypto
    - {user: govnet-trap, auth_protocol: sha256, auth_key: env:GOVNET_TRAP_AUTH,
       priv_protocol: aes128, priv_key: env:GOVNET_TRAP_PRIV}
  engine_ids: {nc-fw-1: 80001f888056b3c3e2c5f3a35e00000000}   # v3 traps (not informs) need the sender's
  engine_id: 80001f88804776e65746e6574                          # ours (optional; informs discover it)
  ring_size: 1000
  repoll: true
  definitions: [site-traps.yaml]                  # extra trap definition files (relative to the config)
```
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from collectors.base import device_labels
from collectors.traps.defs import Classified, DefinitionError, TrapCatalog, generic_trap_names
from collectors.traps.flood import TrapGate
from collectors.traps.receiver import TrapEvent, TrapReceiver, V3User
from core.config import Duration, InputFile, Loc, SecretRef, Section, SectionError
from core.samples import Sample
from core.secrets import SecretError
from inventory.model import WEAK_AUTH, WEAK_PRIV, AuthProtocol, Inventory, PrivProtocol

log = logging.getLogger(__name__)
REPOLL_RETRY_FOR = 10.0  # seconds a re-poll keeps being asked for while the device is busy polling
LINK_EXPECT = {"linkDown": 0.0, "linkUp": 1.0}  # govnet_if_oper_up the poll must show to confirm

HELP = {
    "govnet_traps_received_total": "SNMP traps and informs received from the device, by trap name.",
    "govnet_traps_unknown_source_total": "Notifications from addresses/engine IDs not in the inventory.",
    "govnet_traps_datagrams_total": "UDP datagrams reaching the trap receiver.",
    "govnet_traps_malformed_total": "Datagrams or notifications the receiver could not process.",
    "govnet_traps_dropped_total": "Datagrams dropped by flood control before decoding, by reason.",
    "govnet_traps_kernel_drops_total": "Datagrams the kernel dropped on the trap socket (buffer full).",
    "govnet_traps_rejected_total": "Notifications pysnmp rejected, by reason (community, USM, parse).",
    "govnet_traps_informs_total": "Informs received (each acknowledged).",
    "govnet_traps_repolls_total": "Re-polls requested because of a trap.",
    "govnet_traps_listening": "1 while the trap receiver socket is open.",
    "govnet_traps_confirmed_total": "linkDown/linkUp traps whose interface state a later poll confirmed.",
    "govnet_traps_unconfirmed_total": "linkDown/linkUp traps no poll confirmed within the attempts.",
}


@dataclass(slots=True)
class Confirmation:
    """A link trap waiting for a poll that shows its interface in the announced state."""

    if_index: int
    expect: float
    trap: str
    attempts_left: int


class V3UserConfig(Section):
    """A USM user notifications may come from."""

    user: str = Field(min_length=1, max_length=32)
    auth_protocol: AuthProtocol = "sha256"
    auth_key: SecretRef
    priv_protocol: PrivProtocol = "aes128"
    priv_key: SecretRef
    allow_weak_crypto: bool = False

    @model_validator(mode="after")
    def _strong(self) -> V3UserConfig:
        weak = [p for p in (self.auth_protocol, self.priv_protocol) if p in WEAK_AUTH | WEAK_PRIV]
        if weak and not self.allow_weak_crypto:
            raise ValueError(
                f"weak SNMPv3 algorithm {'/'.join(weak)}: use sha256+aes128 or allow_weak_crypto"
            )
        return self


class TrapsConfig(Section):
    """The `traps:` section."""

    listen: str = "0.0.0.0:162"
    communities: list[SecretRef] = Field(default_factory=list)
    v3_users: list[V3UserConfig] = Field(default_factory=list)
    engine_ids: dict[str, str] = Field(default_factory=dict)
    engine_id: str | None = None
    ring_size: int = Field(1000, ge=1, le=1_000_000)
    repoll: bool = True
    # Agents cache their interface table (net-snmp: up to ~3 s), so the first re-poll may predate the
    # change: poll again every `confirm_interval` until the state matches, at most `confirm_attempts` times.
    confirm_attempts: int = Field(10, ge=1, le=100)
    confirm_interval: Duration = 0.5
    definitions: list[InputFile] = Field(default_factory=list)
    # Flood control (collectors/traps/flood.py): per inventory address, and shared by all others.
    rate_per_source: float = Field(100.0, gt=0, le=100_000)  # traps/s each inventory device may send
    burst_per_source: float = Field(200.0, ge=1, le=100_000)
    unknown_rate: float = Field(200.0, gt=0, le=100_000)  # traps/s shared by senders not in the inventory
    max_pending: int = Field(1000, ge=10, le=1_000_000)  # datagrams waiting for the decoder

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("expected HOST:PORT, for example 0.0.0.0:162 or [::]:162")
        return v

    @field_validator("engine_ids")
    @classmethod
    def _engine_ids(cls, v: dict[str, str]) -> dict[str, str]:
        for dev, eid in v.items():
            _hex_engine_id(eid, f"engine_ids.{dev}")
        return v

    @field_validator("engine_id")
    @classmethod
    def _engine_id(cls, v: str | None) -> str | None:
        if v is not None:
            _hex_engine_id(v, "engine_id")
        return v

    @model_validator(mode="after")
    def _someone(self) -> TrapsConfig:
        if not self.communities and not self.v3_users:
            raise ValueError("communities / v3_users: give at least one, or no notification can be accepted")
        return self

    def problems(self, inventory: Any) -> list[tuple[Loc, str]]:
        """The trap definition files load; engine_ids name inventory devices."""
        out: list[tuple[Loc, str]] = []
        try:
            TrapCatalog.load(list(self.definitions))
        except DefinitionError as exc:
            out.append((("definitions",), str(exc)))
        if isinstance(inventory, Inventory):
            try:
                check_engine_ids(self, inventory)
            except SectionError as exc:
                out.append((exc.loc, exc.message))
        return out


def _hex_engine_id(value: str, where: str) -> bytes:
    text = value.lower().removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{where}: expected an snmpEngineID in hex (5-32 bytes)") from None
    if not 5 <= len(raw) <= 32:
        raise ValueError(f"{where}: an snmpEngineID has 5 to 32 bytes")
    return raw


class TrapService:
    """The receiver as a `govnet run` service; each trap from a known device asks for a re-poll."""

    name = "traps"

    def __init__(
        self,
        inventory: Inventory,
        cfg: TrapsConfig,
        request_poll: Callable[[], Callable[[str], bool] | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inventory = inventory
        self.cfg = cfg
        self._request_poll = request_poll
        self.clock = clock
        try:
            self.catalog = TrapCatalog.load(list(cfg.definitions))
        except DefinitionError as exc:
            raise SectionError(("definitions",), str(exc)) from None
        self._devices = {d.name: d for d in inventory.devices}
        self._zero_traps = generic_trap_names()
        self.repolls_total: dict[str, int] = {}
        self._pending: dict[str, tuple[float, float]] = {}  # device -> (not before, give up) (monotonic)
        self._confirm: dict[str, Confirmation] = {}
        self.confirmed_total = 0
        self.unconfirmed_total = 0
        host, _, port = cfg.listen.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self.receiver: TrapReceiver | None = None

    def _resolve_secrets(self) -> tuple[list[str], list[V3User]]:
        communities = [c.resolve() for c in self.cfg.communities]
        users = [
            V3User(
                u.user,
                u.auth_protocol,
                u.auth_key.resolve(),
                u.priv_protocol or "aes128",
                u.priv_key.resolve(),
            )
            for u in self.cfg.v3_users
        ]
        return communities, users

    def start(self) -> TrapReceiver:
        """Open the receiver (event loop running); raises OSError/SecretError for the caller to report."""
        communities, users = self._resolve_secrets()
        receiver = TrapReceiver(
            self.inventory,
            self.catalog,
            host=self._host,
            port=self._port,
            communities=communities,
            users=users,
            engine_ids={dev: _hex_engine_id(eid, dev) for dev, eid in self.cfg.engine_ids.items()},
            ring_size=self.cfg.ring_size,
            engine_id=_hex_engine_id(self.cfg.engine_id, "engine_id") if self.cfg.engine_id else None,
            on_event=self._on_event,
            gate=TrapGate(
                frozenset(str(ipaddress.ip_address(d.address)) for d in self.inventory.devices),
                rate=self.cfg.rate_per_source,
                burst=self.cfg.burst_per_source,
                unknown_rate=self.cfg.unknown_rate,
                max_pending=self.cfg.max_pending,
            ),
        )
        receiver.start()
        self.receiver = receiver
        return receiver

    async def run(self, stop: asyncio.Event) -> None:
        """Receive until `stop`; a bind or secret failure is logged (the receiver stays off)."""
        if self.receiver is None:
            try:
                self.start()
            except (OSError, SecretError) as exc:
                log.error("trap receiver not started on %s: %s", self.cfg.listen, exc)
                await stop.wait()
                return
        log.info("trap receiver listening on %s:%d", self._host, self.receiver.port if self.receiver else 0)
        try:
            while not stop.is_set():
                self._retry_pending()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.25)
        finally:
            if self.receiver is not None:
                self.receiver.close()

    def _on_event(self, event: TrapEvent, classified: Classified) -> None:
        if event.device is None or not self.cfg.repoll or not classified.repoll:
            return
        expect = LINK_EXPECT.get(classified.name)
        if expect is not None and event.if_index is not None:
            self._confirm[event.device] = Confirmation(
                event.if_index, expect, classified.name, self.cfg.confirm_attempts
            )
        self._ask(event.device, 0.0)

    def _ask(self, device: str, delay: float) -> None:
        now = self.clock()
        self._pending[device] = (now + delay, now + delay + REPOLL_RETRY_FOR)
        self._retry_pending()

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Every poll's samples (SampleSink): confirm or re-check the link traps of that device."""
        pending = self._confirm.get(device)
        if pending is None or device in self._pending:
            return  # nothing to confirm, or this poll was not the one asked for yet
        seen = [
            s.value
            for s in samples
            if s.metric == "govnet_if_oper_up" and s.label_dict.get("ifindex") == str(pending.if_index)
        ]
        if seen and seen[0] == pending.expect:
            self.confirmed_total += 1
            del self._confirm[device]
            log.info("%s of %s ifIndex %d confirmed by poll", pending.trap, device, pending.if_index)
            return
        pending.attempts_left -= 1
        if pending.attempts_left <= 0:
            self.unconfirmed_total += 1
            del self._confirm[device]
            log.warning(
                "%s of %s ifIndex %d not confirmed by %d poll(s)",
                pending.trap,
                device,
                pending.if_index,
                self.cfg.confirm_attempts,
            )
            return
        self._ask(device, self.cfg.confirm_interval)

    def _retry_pending(self) -> None:
        request = self._request_poll()
        if request is None or not self._pending:
            return
        now = self.clock()
        for device, (not_before, give_up) in list(self._pending.items()):
            if now < not_before:
                continue
            if now > give_up:
                log.warning(
                    "re-poll of %s after a trap not possible for %.0f s; given up", device, REPOLL_RETRY_FOR
                )
                del self._pending[device]
            elif request(device):
                # Scheduled now; a poll already running may predate the event, hence the retry while busy.
                del self._pending[device]
                self.repolls_total[device] = self.repolls_total.get(device, 0) + 1

    def internal_samples(self) -> list[Sample]:
        """Trap counters for /metrics."""
        ts = time.time()
        rcv = self.receiver

        def s(
            metric: str,
            labels: tuple[tuple[str, str], ...],
            value: float,
            kind: Literal["gauge", "counter"] = "counter",
        ) -> Sample:
            return Sample(metric, labels, value, ts, kind, HELP[metric])

        out = [
            s(
                "govnet_traps_listening",
                (),
                1.0 if rcv is not None and rcv.snmp_engine is not None else 0.0,
                "gauge",
            )
        ]
        if rcv is None:
            return out
        out += [
            s("govnet_traps_unknown_source_total", (), float(rcv.unknown_source_total)),
            s("govnet_traps_datagrams_total", (), float(rcv.datagrams_total)),
            s("govnet_traps_malformed_total", (), float(rcv.malformed_total)),
            s("govnet_traps_informs_total", (), float(rcv.informs_total)),
            s("govnet_traps_confirmed_total", (), float(self.confirmed_total)),
            s("govnet_traps_unconfirmed_total", (), float(self.unconfirmed_total)),
        ]
        for reason, count in sorted(rcv.gate.dropped.items()):
            out.append(s("govnet_traps_dropped_total", (("reason", reason),), float(count)))
        drops = rcv.kernel_drops()
        if drops is not None:
            out.append(s("govnet_traps_kernel_drops_total", (), float(drops)))
        for reason, count in sorted(rcv.rejected().items()):
            out.append(s("govnet_traps_rejected_total", (("reason", reason),), float(count)))
        # Generic traps start at 0 for every inventory device, so increase() sees the first one.
        received = {(device, trap): 0 for device in self._devices for trap in self._zero_traps}
        received.update(rcv.received)
        for (device, trap), count in sorted(received.items()):
            d = self._devices.get(device)
            if d is not None:
                out.append(
                    s(
                        "govnet_traps_received_total",
                        tuple(sorted((*device_labels(d), ("trap", trap)))),
                        float(count),
                    )
                )
        for device, count in sorted({**dict.fromkeys(self._devices, 0), **self.repolls_total}.items()):
            d = self._devices.get(device)
            if d is not None:
                out.append(s("govnet_traps_repolls_total", device_labels(d), float(count)))
        return out

    def recent_events(self, limit: int = 100) -> list[TrapEvent]:
        """The newest events of the ring, newest last (for alerts and the API)."""
        events = list(self.receiver.events) if self.receiver is not None else []
        return events[-limit:]


def check_engine_ids(section: TrapsConfig, inventory: Inventory) -> None:
    """SectionError when `engine_ids` names a device the inventory does not have."""
    names = {d.name for d in inventory.devices}
    for device in section.engine_ids:
        if device not in names:
            raise SectionError(("engine_ids", device), f"unknown device {device!r}")


def build(
    section: TrapsConfig, *, inventory: Inventory, request_poll: Callable[[str], bool] | None
) -> list[TrapService]:
    """The trap service; each trap from a known device asks `request_poll` for a re-poll."""
    check_engine_ids(section, inventory)
    return [TrapService(inventory, section, request_poll=lambda: request_poll)]
