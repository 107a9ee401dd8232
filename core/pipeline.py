"""The pipeline contracts: a long-running service, a sample sink, a source of internal metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from core.samples import Sample


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
    """Receives a device's complete sample set after each poll (latest store, Influx writer, alert engine)."""

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Take one device's samples; must be quick, never block the event loop and never raise."""
        ...


@runtime_checkable
class MetricsSource(Protocol):
    """Offers process-wide samples for /metrics (counters of the service itself)."""

    def internal_samples(self) -> list[Sample]:
        """The current internal samples."""
        ...
