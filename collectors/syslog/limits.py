"""Bounds on what unauthenticated senders can make the syslog receiver hold, and who may send."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Limits:
    """Per-listener caps and timeouts (defaults documented in docs/security-logs.md)."""

    queue_bytes: int = 64 * 1024 * 1024  # frames waiting for the writer; UDP beyond it is dropped
    udp_receive_buffer: int = 4 * 1024 * 1024  # kernel socket buffer asked for (absorbs bursts)
    max_connections: int = 1024  # open TCP/TLS connections per listener
    max_per_source: int = 64  # open TCP/TLS connections per sender address (all listeners)
    tls_handshake_timeout: float = 10.0  # seconds for a TLS client to finish its handshake
    max_handshakes: int = 64  # TLS handshakes in progress at once (asyncio holds ~0.5 MiB for each)
    idle_timeout: float = 600.0  # seconds without a byte before a stream connection is closed
    frame_timeout: float = 60.0  # seconds a started frame may take to complete (slowloris)
    buffer_bytes: int = 32 * 1024 * 1024  # partial frames held across all connections


def _network(text: str) -> Network:
    return ipaddress.ip_network(text, strict=False)


@dataclass
class SourcePolicy:
    """Which sender addresses each listener accepts; the others are flagged (kept) or refused.

    `allow[transport]` is None for "the inventory's addresses" (the default), else a list of networks.
    """

    inventory: frozenset[str] = frozenset()
    allow: Mapping[str, list[Network] | None] = field(default_factory=dict)
    refuse_unknown: bool = False

    @classmethod
    def build(
        cls,
        inventory: Iterable[str],
        allow: Mapping[str, Iterable[str] | None] | None = None,
        refuse_unknown: bool = False,
    ) -> SourcePolicy:
        """From inventory addresses and CIDR strings per transport (`udp`, `tcp`, `tls`)."""
        nets = {
            t: None if cidrs is None else [_network(c) for c in cidrs] for t, cidrs in (allow or {}).items()
        }
        return cls(frozenset(str(ipaddress.ip_address(a)) for a in inventory), nets, refuse_unknown)

    def allowed(self, host: str, transport: str) -> bool:
        """True if `host` is on this listener's allow-list."""
        nets = self.allow.get(transport)
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if nets is None:
            return str(addr) in self.inventory
        return any(addr in net for net in nets)

    def refused(self, host: str, transport: str) -> bool:
        """True if a sender must be refused (refusal configured and not on the allow-list)."""
        return self.refuse_unknown and not self.allowed(host, transport)
