"""The notifier contract and the HTTP classification every HTTP channel shares."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Protocol

from alerts.engine import Notification

Result = tuple[bool, str | None]  # (retry?, error); (False, None) is success
OK: Result = (False, None)
TIMEOUT = 10.0


class Notifier(Protocol):
    """A channel: `send` delivers one notification and says whether a failure is worth retrying."""

    name: str

    def send(self, n: Notification, now: float) -> Result:
        """Deliver: (False, None) success, (True, err) transient failure, (False, err) permanent."""
        ...


def classify_status(status: int) -> Result:
    """Alertmanager's rule: 2xx ok; 5xx and 429 retry; other 4xx (and 3xx) are permanent."""
    if 200 <= status < 300:
        return OK
    retry = status >= 500 or status == 429
    return retry, f"HTTP {status}"


def post_json(url: str, payload: Any, timeout: float = TIMEOUT) -> tuple[Result, bytes]:
    """POST JSON; the classified result and the body (empty on failure). Errors never show the URL."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)  # noqa: S310 - http(s) checked
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URL from config, http(s) only
            return classify_status(resp.status), resp.read(65536)
    except urllib.error.HTTPError as exc:
        return classify_status(exc.code), b""
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        # Network trouble is transient. Only the exception type is reported: the URL may hold a token.
        reason = getattr(exc, "reason", exc)
        return (True, f"connection failed ({type(reason).__name__})"), b""


def require_http_url(url: str) -> str:
    """Refuse non-HTTP schemes (file:, ftp:) in configured endpoints."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("notifier URL must start with http:// or https://")
    return url
