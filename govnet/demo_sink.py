"""The demo's notification sink: a webhook receiver and an SMTP server that print every page they get."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Sinks:
    """A webhook receiver and an SMTP server that print every notification they get."""

    def __init__(self, host: str, hook_port: int, smtp_port: int, say: Callable[[str], None]) -> None:
        self.host, self.say = host, say
        self.received = 0
        sinks = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    body = self.rfile.read(min(int(self.headers.get("Content-Length", "0")), 1 << 20))
                    doc = json.loads(body)
                    g = doc.get("govnet") or {}
                    sinks.show(
                        "webhook",
                        str(g.get("kind", "")),
                        str(doc.get("groupKey", "")),
                        str(g.get("text", "")),
                    )
                    status = 200
                except (ValueError, OSError):
                    status = 400
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer((host, hook_port), Hook)
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, name="demo-webhook", daemon=True)
        from aiosmtpd.controller import Controller

        class Mail:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = message_from_bytes(envelope.content, policy=policy.default)
                part = msg.get_body(preferencelist=("plain",)) if hasattr(msg, "get_body") else None
                text = part.get_content() if part is not None else ""
                sinks.show("email", "", str(msg.get("Subject", "")), str(text))
                return "250 OK"

        self.smtp = Controller(Mail(), hostname=host, port=smtp_port)

    def start(self) -> None:
        """Listen."""
        self.thread.start()
        self.smtp.start()

    def show(self, channel: str, kind: str, key: str, text: str) -> None:
        """Print one notification."""
        self.received += 1
        stamp = time.strftime("%H:%M:%S")
        self.say(f"\n━━ 通知 #{self.received} {stamp} via {channel} {kind} {key}\n{text.strip()}\n━━")

    def stop(self) -> None:
        """Close both servers."""
        with contextlib.suppress(Exception):
            self.smtp.stop()
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(5)
