"""The collector contract: poll one device, return samples and how the poll went."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.samples import Sample
from inventory.model import Device, Inventory


@dataclass(slots=True)
class PollResult:
    """The outcome of polling one device once."""

    device: str
    ok: bool
    samples: Sequence[Sample] = field(default_factory=list)  # SNMP: a SampleSet
    error: str | None = None  # short reason when not ok (timeout, auth failure, ...)
    varbinds: int = 0
    duration_s: float = 0.0
    timeouts: int = 0


class Collector(Protocol):
    """Anything that can poll a device of the inventory (SNMP, SSH, ICMP...)."""

    async def poll(self, inventory: Inventory, device: Device, now: float) -> PollResult:
        """Poll `device` once; never raise for device faults, report them in the result."""
        ...


def device_labels(device: Device) -> tuple[tuple[str, str], ...]:
    """The labels every device series carries: device, site, role, vendor (sorted)."""
    return (
        ("device", device.name),
        ("role", device.role.value),
        ("site", device.site),
        ("vendor", device.vendor.value),
    )
