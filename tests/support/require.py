"""Real components are required: a missing one fails the test loudly, never skips it."""

from __future__ import annotations

import os
import shutil

import pytest

STRICT = os.environ.get("GOVNET_STRICT") == "1"


def require(condition: bool, what: str) -> None:
    """Fail loudly when a real component is missing (a skip would hide it)."""
    if not condition:
        pytest.fail(f"REAL COMPONENT MISSING: {what}", pytrace=False)


def require_cmd(*names: str) -> None:
    """Require each executable to be on PATH (or in /usr/sbin)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        require(found is not None, f"executable {name!r} (run ./scripts/system-deps.sh as root)")


def require_root() -> None:
    """Require root (network namespaces, raw sockets)."""
    require(os.geteuid() == 0, "root privileges (network namespaces)")
