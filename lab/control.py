"""The lab's control channel: JSON lines over a unix socket in the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import jsonline

SOCKET_NAME = "control.sock"


class ControlError(RuntimeError):
    """The lab refused a request or could not be reached."""


def call(run_dir: Path, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to the lab in run_dir and return its answer (ControlError on failure)."""
    path = Path(run_dir) / SOCKET_NAME
    try:
        answer = jsonline.call(path, request, timeout)
    except OSError as exc:
        raise ControlError(f"lab control socket {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ControlError("lab answered garbage on its control socket") from None
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "lab refused the request")))
    return answer
