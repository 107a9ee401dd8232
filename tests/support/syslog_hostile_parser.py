"""A parse function for worker tests: hangs or dies on marked frames, as a backtracking pattern would."""

from __future__ import annotations

import gc
import os
from typing import Any

from collectors.syslog.parse import parse_frame


def parse_or_hang(raw: bytes, *args: Any, **kwargs: Any) -> Any:
    """Parse like the real parser; spin on b"HANG" (CPU-bound, like a C regex), exit on b"DIE"."""
    if b"HANG" in raw:
        while True:
            pass
    if b"DIE" in raw:
        os._exit(3)
    return parse_frame(raw, *args, **kwargs)


def parse_reporting_gc(raw: bytes, *args: Any, **kwargs: Any) -> Any:
    """Parse like the real parser, with the worker's garbage-collector settings as the message."""
    rec = parse_frame(raw, *args, **kwargs)
    rec["msg"] = f"{gc.get_threshold()} frozen={gc.get_freeze_count()}"
    return rec
