"""WeCom (企业微信) and DingTalk (钉钉) group robots: Markdown messages; DingTalk signed with HMAC-SHA256."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from alerts.engine import Notification
from alerts.notify.base import Result, post_json, require_http_url
from core.secrets import Secret

# Vendor error codes that mean "slow down" (retry later): WeCom 45009 api freq out of limit,
# DingTalk 130101 send too fast. Any other non-zero errcode is permanent (bad key, bad message).
RATE_LIMIT_CODES = {45009, 130101}
COLOURS = {"I": "#d0021b", "II": "#f5a623", "III": "#e6c700", "IV": "#1e6fd9"}


def _robot_result(result: Result, body: bytes) -> Result:
    if result[1] is not None:
        return result
    try:
        code = int(json.loads(body or b"{}").get("errcode", 0))
    except (ValueError, AttributeError):
        return False, "robot answered with a non-JSON body"
    if code == 0:
        return result
    return code in RATE_LIMIT_CODES, f"robot errcode {code}"


def markdown(n: Notification) -> str:
    """Robot Markdown: the coloured title line then the text (already escaped by the templates)."""
    head, _, rest = n.text.partition("\n")
    colour = COLOURS[n.level.value]
    return f'<font color="{colour}">**{head}**</font>\n' + rest.replace("\n", "\n\n")


@dataclass
class WeComNotifier:
    """企业微信群机器人: POST {msgtype: markdown} to the webhook URL (its key is a secret)."""

    name: str
    url: Secret

    def send(self, n: Notification, now: float) -> Result:
        """One POST; WeCom answers 200 with an errcode."""
        payload = {"msgtype": "markdown", "markdown": {"content": markdown(n)}}
        return _robot_result(*post_json(require_http_url(self.url.resolve()), payload))


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), URL-encoded."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(mac).decode())


@dataclass
class DingTalkNotifier:
    """钉钉群机器人 with 加签: timestamp and sign appended to the webhook URL."""

    name: str
    url: Secret
    secret: Secret | None = None

    def send(self, n: Notification, now: float) -> Result:
        """One POST; DingTalk answers 200 with an errcode."""
        url = require_http_url(self.url.resolve())
        if self.secret is not None:
            ts = int(now * 1000)
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}timestamp={ts}&sign={dingtalk_sign(self.secret.resolve(), ts)}"
        payload: dict[str, Any] = {
            "msgtype": "markdown",
            "markdown": {"title": n.title[:64], "text": markdown(n)},
        }
        return _robot_result(*post_json(url, payload))
