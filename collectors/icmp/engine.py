"""One raw ICMP socket per address family sends every echo and one thread matches the replies.

Why not scapy's `sr()`: it sniffs with a BPF filter per call, spends ~10-40 ms of CPU per call and
blocks for the whole timeout, so 133 targets every 10 s would need parallel calls and their packet
dissection; here scapy only builds the echo requests (checksums, layout) and the replies are matched
by a 4-byte struct read of (id, seq) and an 8-byte token, so foreign ICMP costs almost nothing.
Every echo has a deadline (`timeout`): an unanswered one is recorded as lost, never waited for.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collectors.icmp.state import ProbeBook, ProbeWindow, WindowStats

log = logging.getLogger(__name__)

ICMP_ECHO_REPLY = 0
ICMP6_ECHO_REPLY = 129
_RCVBUF = 1 << 20


@dataclass(frozen=True, slots=True)
class TargetResult:
    """The window of one target address as seen now."""

    address: str
    stats: WindowStats
    up: bool | None  # None until a first probe is resolved
    sent_total: int
    lost_total: int


class ProbeUnavailable(RuntimeError):
    """Raw ICMP sockets cannot be opened (no root / CAP_NET_RAW)."""


def open_raw_socket(family: int) -> socket.socket:
    """A non-blocking raw ICMP (or ICMPv6) socket; ProbeUnavailable without the privilege."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        sock = socket.socket(family, socket.SOCK_RAW, proto)
    except PermissionError as exc:
        raise ProbeUnavailable(
            "raw ICMP sockets need root or CAP_NET_RAW; probing is off (govnet_probe_available 0)"
        ) from exc
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
    return sock


def build_echo(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    """The ICMP(v6) echo request bytes, built by scapy (the kernel adds the IP header)."""
    if family == socket.AF_INET:
        from scapy.layers.inet import ICMP

        return bytes(ICMP(type=8, code=0, id=ident, seq=seq) / payload)
    from scapy.layers.inet6 import ICMPv6EchoRequest

    # The kernel fills the ICMPv6 checksum of raw sockets (it needs the pseudo-header).
    return bytes(ICMPv6EchoRequest(id=ident, seq=seq, data=payload, cksum=0))


def inet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class EchoTemplate:
    """Scapy builds one echo request per family; each echo patches its sequence (and v4 checksum).

    Building every packet with scapy costs ~740 us; patching costs ~2 us (measured, see docs/probes.md).
    """

    def __init__(self, family: int, ident: int, payload: bytes) -> None:
        self.family = family
        self._base = bytearray(build_echo(family, ident, 0, payload))

    def packet(self, seq: int) -> bytes:
        """The echo request with sequence number `seq`."""
        pkt = self._base
        struct.pack_into("!H", pkt, 6, seq)
        if self.family == socket.AF_INET:
            struct.pack_into("!H", pkt, 2, 0)
            struct.pack_into("!H", pkt, 2, inet_checksum(bytes(pkt)))
        return bytes(pkt)


def parse_reply(family: int, data: bytes, ident: int, token: bytes) -> int | None:
    """The sequence number of one of our echo replies, or None for any other ICMP packet."""
    if family == socket.AF_INET:
        if len(data) < 20:
            return None
        off = (data[0] & 0x0F) * 4
        want = ICMP_ECHO_REPLY
    else:
        off = 0  # IPv6 raw sockets deliver the ICMPv6 message without the IP header
        want = ICMP6_ECHO_REPLY
    if len(data) < off + 8 + len(token) or data[off] != want:
        return None
    rid, seq = struct.unpack_from("!HH", data, off + 4)
    if rid != ident or data[off + 8 : off + 8 + len(token)] != token:
        return None
    return int(seq)


class IcmpEngine:
    """Probes every target `count` times per `interval`, paced at `rate` echoes per second."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        interval: float = 10.0,
        timeout: float = 1.0,
        count: int = 3,
        rate: float = 1000.0,
        window: int = 100,
        payload_size: int = 56,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.targets = list(dict.fromkeys(str(ipaddress.ip_address(t)) for t in targets))
        self.interval, self.timeout, self.count, self.rate = interval, timeout, count, rate
        self.clock = clock
        self.ident = int.from_bytes(os.urandom(2), "big")
        self.token = os.urandom(8)
        self.payload = self.token + bytes(max(0, payload_size - len(self.token)))
        self.book = ProbeBook(timeout)
        self._windows = {t: ProbeWindow(window) for t in self.targets}
        self._lock = threading.Lock()
        self._sockets: dict[int, socket.socket] = {}
        self._templates: dict[int, EchoTemplate] = {}
        self._seq = 0
        self.rounds = 0
        self.send_errors = 0
        self.error: str | None = None
        self._opened = False

    @property
    def available(self) -> bool:
        """True once the raw sockets were opened (stays true after a clean stop)."""
        return self._opened

    @property
    def is_open(self) -> bool:
        """True while the raw sockets are open."""
        return bool(self._sockets)

    def open(self) -> bool:
        """Open the raw sockets the targets need; False (and `error` set) without the privilege."""
        families = {socket.AF_INET6 if ":" in t else socket.AF_INET for t in self.targets} or {socket.AF_INET}
        try:
            for fam in sorted(families):
                self._sockets[fam] = open_raw_socket(fam)
                self._templates[fam] = EchoTemplate(fam, self.ident, self.payload)
        except (ProbeUnavailable, OSError) as exc:
            self.close()
            self.error = str(exc)
            return False
        self._opened = True
        return True

    def close(self) -> None:
        """Close the sockets."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def results(self) -> list[TargetResult]:
        """Every target's current window (thread-safe copy)."""
        with self._lock:
            out = []
            for addr, win in self._windows.items():
                recent = win.recent(self.count)
                up = None if not recent else any(r is not None for r in recent)
                out.append(TargetResult(addr, win.stats(), up, win.sent_total, win.lost_total))
            return out

    # -- the thread ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, rounds: int | None = None) -> None:
        """Probe until `stop` is set, or `rounds` rounds are done and resolved (the thread body)."""
        if not self.is_open and not self.open():
            log.warning("ICMP probing unavailable: %s", self.error)
            return
        queue: deque[str] = deque()
        next_round = self.clock()
        sent_in_burst, burst_start = 0, self.clock()
        try:
            while not stop.is_set():
                now = self.clock()
                if rounds is not None and self.rounds >= rounds and not queue and not self.book.pending():
                    break
                if now >= next_round and (rounds is None or self.rounds < rounds):
                    if queue:
                        log.warning(
                            "probe round %d not finished sending; %d echoes dropped", self.rounds, len(queue)
                        )
                        queue.clear()
                    self.rounds += 1
                    queue.extend(t for _ in range(self.count) for t in self.targets)
                    next_round = max(next_round + self.interval, now)
                    sent_in_burst, burst_start = 0, now
                # Pacing: never more than `rate` echoes per second since the round began.
                allowed = int((now - burst_start) * self.rate) + 1 - sent_in_burst
                while queue and allowed > 0:
                    self._send(queue.popleft(), now)
                    sent_in_burst += 1
                    allowed -= 1
                self._expire(self.clock())
                more = rounds is None or self.rounds < rounds
                wake = [next_round if more else now + 0.25]
                if queue:
                    # Send in small batches (>= 5 ms apart) rather than waking per echo.
                    wake.append(now + max(1.0 / self.rate, 0.005))
                deadline = self.book.next_deadline()
                if deadline is not None:
                    wake.append(deadline + 1e-3)
                wait = max(0.0, min(min(wake) - self.clock(), 0.25))  # 0.25 s: notice `stop` soon
                ready, _, _ = select.select(list(self._sockets.values()), [], [], wait)
                for sock in ready:
                    self._drain(sock)
        finally:
            self.close()

    def _send(self, target: str, now: float) -> None:
        fam = socket.AF_INET6 if ":" in target else socket.AF_INET
        self._seq = (self._seq + 1) & 0xFFFF
        packet = self._templates[fam].packet(self._seq)
        displaced = self.book.sent(self._seq, target, self.clock(), self.rounds)
        if displaced is not None:
            self._record(displaced.target, None)
        try:
            self._sockets[fam].sendto(packet, (target, 0))
        except OSError as exc:
            # No route, interface down...: the echo stays pending and times out as lost.
            self.send_errors += 1
            log.debug("echo to %s not sent: %s", target, exc.strerror)

    def _drain(self, sock: socket.socket) -> None:
        fam = sock.family
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("ICMP receive error: %s", exc.strerror)
                return
            now = self.clock()
            seq = parse_reply(fam, data, self.ident, self.token)
            if seq is None:
                continue
            source = str(ipaddress.ip_address(addr[0].split("%", 1)[0]))
            match = self.book.replied(seq, source, now)
            if match is not None:
                self._record(match[0], match[1])

    def _expire(self, now: float) -> None:
        for out in self.book.expire(now):
            self._record(out.target, None)

    def _record(self, target: str, rtt: float | None) -> None:
        with self._lock:
            win = self._windows.get(target)
            if win is not None:
                win.add(rtt)
