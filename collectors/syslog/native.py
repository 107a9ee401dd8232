"""The syslog parse path's modules compiled with mypyc (the build and its guard: core/native.py)."""

from __future__ import annotations

from pathlib import Path

from core.native import Native

# Compiled in one group, in import order (the last imports the others).
NATIVE = Native(
    "collectors.syslog", Path(__file__).parent, ("decode", "rfc", "formats", "parse"), "syslog parser"
)
