"""Issue 21, findings 2 and 8 against a live `govnet run`: a trap flood is rate-limited before decoding,
every datagram is accounted for (decoded, dropped by flood control, or dropped by the kernel), and a
device's own traps keep arriving and are counted."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.abuse_stack import Stack, rss_kib, start_stack
from tests.support.require import require_cmd

NET = 67
MIB = 1024
LINKDOWN = "1.3.6.1.6.3.1.1.5.3"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_cmd("openssl", "snmptrap")
    yield from start_stack(tmp_path_factory.mktemp("abuse-traps"), NET)


def trap_bytes(host: str) -> bytes:
    """A real v2c linkDown datagram (community t-abuse) from net-snmp's snmptrap, captured."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        s.settimeout(10)
        port = s.getsockname()[1]
        subprocess.run(
            ["snmptrap", "-v2c", "-c", "t-abuse", f"{host}:{port}", "", LINKDOWN],
            env={**os.environ, "MIBS": ""}, check=True, timeout=20, capture_output=True,
        )  # fmt: skip
        return s.recvfrom(65535)[0]


def test_trap_flood_is_counted_and_devices_traps_still_arrive(stack: Stack) -> None:
    trap = trap_bytes(f"127.{NET}.7.9")
    target = (stack.host, stack.ports["traps"])
    base = rss_kib(stack.pid)
    datagrams0 = stack.metric("govnet_traps_datagrams_total")
    kernel0 = stack.metric("govnet_traps_kernel_drops_total")
    legit_sent = 0
    flooding = threading.Event()
    flooding.set()

    def device() -> None:
        nonlocal legit_sent
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((stack.devices["fw-1"], 0))
            while flooding.is_set():
                s.sendto(trap, target)
                legit_sent += 1
                time.sleep(0.05)

    sender = threading.Thread(target=device)
    sender.start()
    flood_sent = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((f"127.{NET}.7.1", 0))  # not in the inventory
            end = time.monotonic() + 3.0
            while time.monotonic() < end and flood_sent < 30_000:  # about 10,000 a second
                s.sendto(trap, target)
                flood_sent += 1
                if flood_sent % 100 == 0:
                    time.sleep(0.01)
    finally:
        flooding.clear()
        sender.join()
    peak = rss_kib(stack.pid, "VmHWM")
    total = flood_sent + legit_sent

    def accounted() -> bool:
        got = stack.metric("govnet_traps_datagrams_total") - datagrams0
        return got + stack.metric("govnet_traps_kernel_drops_total") - kernel0 == total

    stack.wait_for("every trap datagram decoded, dropped or counted by the kernel", accounted)
    unknown_dropped = stack.metric("govnet_traps_dropped_total", reason="unknown_rate")
    kernel = stack.metric("govnet_traps_kernel_drops_total") - kernel0
    device_traps = stack.metric("govnet_traps_received_total", device="fw-1", trap="linkDown")
    print(f"trap flood: {flood_sent} from a stranger + {legit_sent} from fw-1; dropped by flood control "
          f"{unknown_dropped:.0f}, by the kernel {kernel:.0f}; fw-1 traps counted {device_traps:.0f}; "
          f"RSS {base // MIB} MiB, peak {peak // MIB} MiB")  # fmt: skip
    assert unknown_dropped > 0
    # Flood control never drops a device's own traps (its bucket is its own); a trap lost to a full
    # socket buffer is counted by the kernel. Nothing is lost uncounted.
    assert stack.metric("govnet_traps_dropped_total", reason="source_rate") == 0
    assert device_traps == legit_sent or kernel > 0
    assert peak - base < 64 * MIB
    # After the flood a device's trap is decoded and counted at once.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((stack.devices["fw-1"], 0))
        s.sendto(trap, target)
    stack.wait_for(
        "the trap after the flood",
        lambda: (
            stack.metric("govnet_traps_received_total", device="fw-1", trap="linkDown") == device_traps + 1
        ),
    )
