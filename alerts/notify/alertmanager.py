"""Forwarding to an existing Alertmanager (`POST /api/v2/alerts`) and an SMS gateway over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.engine import Notification
from alerts.notify.base import OK, Result, post_json, require_http_url
from core.secrets import Secret


def alertmanager_alerts(n: Notification) -> list[dict[str, Any]]:
    """Alertmanager API v2 postable alerts: labels, annotations, startsAt and, when resolved, endsAt."""
    out = []
    for alert in n.alerts:
        labels = alert["labels"]
        annotations = alert["annotations"]
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        item: dict[str, Any] = {
            "labels": {str(k): str(v) for k, v in labels.items()},
            "annotations": {**{str(k): str(v) for k, v in annotations.items()}, "incident": n.incident_id},
            "startsAt": alert["startsAt"],
            "generatorURL": "",
        }
        if alert.get("endsAt"):
            item["endsAt"] = alert["endsAt"]
        out.append(item)
    return out


@dataclass
class AlertmanagerNotifier:
    """Hands govnet's alerts to an Alertmanager that already routes pages (its URL, e.g. http://am:9093)."""

    name: str
    url: str

    def send(self, n: Notification, now: float) -> Result:
        """One POST of the incident's alerts; reminders and escalations are not Alertmanager's business."""
        if n.kind not in ("firing", "update", "resolved", "flapping"):
            return OK
        base = require_http_url(self.url).rstrip("/")
        result, _ = post_json(f"{base}/api/v2/alerts", alertmanager_alerts(n))
        return result


@dataclass
class SmsNotifier:
    """An SMS gateway's HTTP API: POST JSON {to, text} (the gateway's own field names are configurable)."""

    name: str
    url: Secret
    phones: dict[str, str]  # rota name -> phone number
    to_field: str = "to"
    text_field: str = "text"
    max_chars: int = 200

    def send(self, n: Notification, now: float) -> Result:
        """One POST per notification, to the phones of its recipients (nothing to do when none maps)."""
        phones = [self.phones[p] for p in n.recipients if p in self.phones]
        if not phones:
            return OK
        # An SMS carries the title line and the first step only: short, with what to do.
        lines = n.text.splitlines()
        step = next((line for line in lines if line.startswith(("处置第一步", "First step"))), "")
        text = f"{n.title} {step}"[: self.max_chars]
        url = require_http_url(self.url.resolve())
        result, _ = post_json(url, {self.to_field: ",".join(phones), self.text_field: text})
        return result
