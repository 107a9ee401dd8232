"""Real components are required under `make test` (GOVNET_STRICT=1): missing ones fail, else skip loudly."""

from __future__ import annotations

import os
import shutil

import pytest

STRICT = os.environ.get("GOVNET_STRICT") == "1"


def require(condition: bool, what: str) -> None:
    """Fail loudly under `make test` when a real component is missing; skip (loudly) elsewhere."""
    if condition:
        return
    msg = f"REAL COMPONENT MISSING: {what}"
    if STRICT:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def require_cmd(*names: str) -> None:
    """Require each executable to be on PATH (or in /usr/sbin)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        require(found is not None, f"executable {name!r} (run ./scripts/system-deps.sh as root)")


def require_root() -> None:
    """Require root (network namespaces, raw sockets)."""
    require(os.geteuid() == 0, "root privileges (network namespaces)")
