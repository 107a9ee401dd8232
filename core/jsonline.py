"""One request, one answer: a JSON line each way over a unix socket (the control channels' client)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


def call(path: Path, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send `request` to the server on `path` and return its JSON object answer.

    OSError when the server cannot be reached or goes silent; ValueError when the answer is not one
    JSON object.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(request, ensure_ascii=False).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    return answer
