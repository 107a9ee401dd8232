"""What a subsystem contributes to `govnet run`: a long-running task, a sample sink, internal metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from govnet.samples import Sample


@dataclass
class RunContext:
    """What `govnet run` hands each subsystem builder."""

    base_dir: Path  # the config file's folder: relative paths in a section are relative to it
    inventory: Any  # inventory.model.Inventory
    inventory_path: Path
    latest: Any  # exporters.store.LatestStore: the latest sample set of every device
    request_poll: Any = None  # callable(device_name) -> None: poll this device now (traps)
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Service(Protocol):
    """A part of `govnet run` (alert engine, trap receiver, prober, syslog receiver, SSH backups...).

    `run` returns when `stop` is set; it must not raise for device or network faults.
    """

    name: str

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set."""
        ...


@runtime_checkable
class SampleSink(Protocol):
    """Receives every device's sample set after each poll (the scheduler's fan-out)."""

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Take one device's samples; must be quick and never raise."""
        ...


@runtime_checkable
class MetricsSource(Protocol):
    """Offers process-wide samples for /metrics (counters of the service itself)."""

    def internal_samples(self) -> list[Sample]:
        """The current internal samples."""
        ...


# Config section -> "module:function" building that subsystem's services for `govnet run`.
# A builder has the signature `build_services(section: dict, ctx: RunContext) -> list[Service]`,
# validates its own section (raising ValueError with field paths), and resolves relative paths
# against `ctx.base_dir`.
BUILDERS: dict[str, str] = {
    "alerts": "alerts.service:build_services",
    "probes": "collectors.icmp.service:build_services",
    "traps": "collectors.traps.service:build_services",
    "ssh": "collectors.ssh.service:build_services",
    "backups": "collectors.backup.service:build_services",
    "syslog": "collectors.syslog.service:build_services",
    "api": "api.service:build_services",
    "cluster": "collectors.cluster.service:build_services",
    "links": "collectors.links:build_services",
}
