"""`services:` section of `govnet run`: check the inventory's services and watch their pages.

```yaml
services:
  baseline_dir: state/baselines   # git repository of accepted page baselines (who, when)
  max_concurrency: 32             # checks in flight at once
```
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from collectors.services.runner import ServiceChecker
from collectors.services.watch import BaselineRepo
from core.config import ConfigPath, Section
from inventory.model import Inventory


class ServicesSection(Section):
    """`services:` in the run config."""

    baseline_dir: ConfigPath = Path("state/baselines")
    max_concurrency: int = Field(32, ge=1, le=1000)


def build(section: ServicesSection, *, inventory: Inventory, inventory_path: Path) -> list[ServiceChecker]:
    """The service checker over the inventory's `services:` (relative page files: the inventory's folder)."""
    repo = BaselineRepo(section.baseline_dir)
    base = inventory_path.parent if inventory_path.is_file() else inventory_path
    return [ServiceChecker(list(inventory.services), repo, base, section.max_concurrency)]
