"""Deliver each poll's sample set to every sink (latest store, Influx writer, alert engine)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core.pipeline import SampleSink
from core.samples import Sample

log = logging.getLogger(__name__)


class FanOut:
    """Publishes a device's complete sample set to each sink in turn; one failing sink spares the others."""

    def __init__(self, sinks: Sequence[SampleSink] = ()) -> None:
        self.sinks: list[SampleSink] = list(sinks)
        self.errors_total = 0

    def add(self, sink: SampleSink) -> None:
        """Register another sink (the alert engine plugs in here)."""
        self.sinks.append(sink)

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Give the samples to every sink."""
        for sink in self.sinks:
            try:
                sink.publish(device, samples)
            except Exception:
                self.errors_total += 1
                log.exception("sink %s failed for device %s", type(sink).__name__, device)
