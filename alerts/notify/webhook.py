"""Generic webhook with an Alertmanager-compatible payload (version 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.engine import Notification
from alerts.notify.base import Result, post_json, require_http_url
from core.secrets import Secret


def alertmanager_payload(n: Notification, receiver: str) -> dict[str, Any]:
    """The JSON Alertmanager's webhook_config would post, plus govnet's level and text."""
    common = dict(n.labels)
    for alert in n.alerts:
        labels = alert["labels"]
        assert isinstance(labels, dict)
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return {
        "version": "4",
        "groupKey": n.incident_id,
        "status": "resolved" if n.kind == "resolved" else "firing",
        "receiver": receiver,
        "groupLabels": {"incident": n.incident_id},
        "commonLabels": common,
        "commonAnnotations": {"summary": n.title},
        "externalURL": "",
        "truncatedAlerts": 0,
        "alerts": [{**a, "generatorURL": "", "fingerprint": ""} for a in n.alerts],
        "govnet": {"kind": n.kind, "level": n.level.value, "text": n.text, "recipients": list(n.recipients)},
    }


@dataclass
class WebhookNotifier:
    """POSTs the Alertmanager-style JSON to a URL (given as a secret reference when it carries a token)."""

    name: str
    url: Secret | str

    def send(self, n: Notification, now: float) -> Result:
        """One POST; the caller retries."""
        url = self.url.resolve() if isinstance(self.url, Secret) else self.url
        result, _ = post_json(require_http_url(url), alertmanager_payload(n, self.name))
        return result
