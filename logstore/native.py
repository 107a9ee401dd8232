"""The log store's modules compiled with mypyc: the parse workers' numbering (core/native.py guards them)."""

from __future__ import annotations

from pathlib import Path

from core.native import Native

NATIVE = Native("logstore", Path(__file__).parent, ("batch",), "log store numbering")
