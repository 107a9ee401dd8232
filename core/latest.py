"""The latest complete sample set of every device, read by /metrics."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from core.samples import Sample, SampleSet


class LatestStore:
    """Per device, the samples of its last poll; each poll REPLACES the whole set (no frozen series).

    Sets are kept compact (`SampleSet`: a layout shared with the device's previous poll while its
    series are unchanged, values in an array), ~20 bytes per series instead of ~180 for Samples.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_device: dict[str, SampleSet] = {}

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Replace the device's sample set (a failed poll publishes only govnet_up 0 and poll metrics)."""
        if not isinstance(samples, SampleSet):
            with self._lock:
                prev = self._by_device.get(device)
            samples = SampleSet.of(samples, like=prev.layout if prev is not None else None)
        with self._lock:
            self._by_device[device] = samples

    def remove(self, device: str) -> None:
        """Forget a device (removed from the inventory)."""
        with self._lock:
            self._by_device.pop(device, None)

    def of(self, device: str) -> SampleSet | None:
        """The device's current sample set (the same object until its next poll), None if it has none."""
        with self._lock:
            return self._by_device.get(device)

    def snapshot(self) -> list[Sample]:
        """All current samples, device by device (a consistent copy)."""
        with self._lock:
            sets = list(self._by_device.values())
        return [s for samples in sets for s in samples]

    def sets(self) -> list[SampleSet]:
        """Every device's current sample set, in the order the devices were first published."""
        with self._lock:
            return list(self._by_device.values())

    def devices(self) -> list[str]:
        """Names of the devices with a sample set."""
        with self._lock:
            return sorted(self._by_device)
