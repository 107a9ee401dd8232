"""Kernel counters of one socket: datagrams the kernel dropped before the process could read them."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Protocol

PROC_NET = Path("/proc/net")


class _Socket(Protocol):
    @property
    def family(self) -> int: ...

    def fileno(self) -> int: ...


def udp_kernel_drops(sock: _Socket | None) -> int | None:
    """The `drops` column of /proc/net/udp{,6} for this socket (receive buffer full), None if unknown.

    `sock` is a socket or asyncio's TransportSocket wrapper. Read by inode at scrape time rather
    than with SO_RXQ_OVFL, which needs recvmsg() and ancillary data on every datagram (asyncio's
    datagram transport uses recvfrom()).
    """
    if sock is None or sock.fileno() < 0:
        return None
    inode = str(os.fstat(sock.fileno()).st_ino)
    table = "udp6" if sock.family == socket.AF_INET6 else "udp"
    try:
        lines = (PROC_NET / table).read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        cols = line.split()
        # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        if len(cols) >= 13 and cols[9] == inode:
            return int(cols[12])
    return None


def grow_receive_buffer(sock: socket.socket, size: int) -> int:
    """Ask for a `size`-byte receive buffer (past net.core.rmem_max when running as root); the size got.

    A bigger buffer absorbs bursts while the event loop is busy; what still overflows is counted by
    the kernel (udp_kernel_drops).
    """
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        if force is None:
            raise PermissionError
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
