"""How `govnet run` finds each subsystem's builder (the pipeline contracts live in core.pipeline)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunContext:
    """What `govnet run` hands each subsystem builder."""

    base_dir: Path  # the config file's folder: relative paths in a section are relative to it
    inventory: Any  # inventory.model.Inventory
    inventory_path: Path
    latest: Any  # core.latest.LatestStore: the latest sample set of every device
    request_poll: Any = None  # callable(device_name) -> None: poll this device now (traps)
    extra: dict[str, Any] = field(default_factory=dict)


# Config section -> "module:function" building that subsystem's services for `govnet run`.
# A builder has the signature `build_services(section: dict, ctx: RunContext) -> list[Service]`,
# validates its own section (raising ValueError with field paths), and resolves relative paths
# against `ctx.base_dir`.
BUILDERS: dict[str, str] = {
    "alerts": "alerts.service:build_services",
    "probes": "collectors.icmp.service:build_services",
    "traps": "collectors.traps.service:build_services",
    "ssh": "collectors.ssh.service:build_services",
    "backups": "collectors.backup.service:build_services",
    "syslog": "collectors.syslog.service:build_services",
    "api": "api.service:build_services",
    "cluster": "collectors.cluster.service:build_services",
    "links": "collectors.links:build_services",
    "services": "collectors.services.service:build_services",
    "where": "collectors.where.service:build_services",
}
