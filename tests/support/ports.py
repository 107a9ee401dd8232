"""Ports chosen at run time, so that two test runs on one machine never collide: the kernel picks an
ephemeral port (bind to 0), and for a lab the same port is checked free on every device address; and
the lab process started on such a port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from lab.devices import lab_addresses
from lab.runner import LabProcess


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    """A port free on `host` now (TCP by default; socket.SOCK_DGRAM for UDP)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _free_everywhere(hosts: list[str], kind: int) -> int:
    for _ in range(50):
        port = free_port(hosts[0], kind)
        held = []
        try:
            for host in hosts[1:]:
                s = socket.socket(socket.AF_INET, kind)
                held.append(s)
                s.bind((host, port))
            return port
        except OSError:
            continue  # taken on one of the addresses: ask the kernel for another
        finally:
            for s in held:
                s.close()
    raise AssertionError(f"no port free on all of {hosts[0]}..{hosts[-1]}")


def lab_ports(base: str, devices: int) -> tuple[int, int]:
    """(SNMP UDP port, SSH TCP port) free on each of the lab's `devices` addresses after `base`."""
    hosts = lab_addresses(base, devices)
    return _free_everywhere(hosts, socket.SOCK_DGRAM), _free_everywhere(hosts, socket.SOCK_STREAM)


@contextmanager
def lab_process(inventory: Path | dict[str, Any], tmp: Path, base: str, **kw: Any) -> Iterator[LabProcess]:
    """The lab for `inventory` (a file, or a document written to tmp/inventory.yaml) on addresses after
    `base`, its SNMP port chosen now, SSH off unless `ssh_port` is given; stopped on exit."""
    if isinstance(inventory, dict):
        path = tmp / "inventory.yaml"
        path.write_text(yaml.safe_dump(inventory, allow_unicode=True), encoding="utf-8")
        inventory = path
    devices = yaml.safe_load(inventory.read_text(encoding="utf-8"))["devices"]
    snmp_port, _ = lab_ports(base, len(devices))
    kw = {"snmp_port": snmp_port, "ssh_port": 0, "progress": None, **kw}
    with LabProcess(inventory, tmp / "run", base=base, **kw) as lab:
        yield lab
