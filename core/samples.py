"""The unit of measurement every collector emits and every exporter consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MetricType = Literal["gauge", "counter"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one metric series at one time (unix seconds, UTC).

    `metric` is the full Prometheus name (`govnet_if_in_octets_total`); `labels`
    always include the device labels (device, site, role, vendor) for device series.
    """

    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp: float
    type: MetricType = "gauge"
    help: str = field(default="", compare=False)

    @property
    def label_dict(self) -> dict[str, str]:
        """The labels as a dict (a copy)."""
        return dict(self.labels)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping, as printed by `govnet poll-once --json`."""
        return {
            "metric": self.metric,
            "labels": dict(self.labels),
            "value": self.value,
            "timestamp": self.timestamp,
            "type": self.type,
        }


def labels_of(**kv: str) -> tuple[tuple[str, str], ...]:
    """Build a canonical (sorted) label tuple."""
    return tuple(sorted(kv.items()))
