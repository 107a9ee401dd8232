"""`services:` section of `govnet run`: check the inventory's services and watch their pages.

```yaml
services:
  baseline_dir: state/baselines   # git repository of accepted page baselines (who, when)
  max_concurrency: 32             # checks in flight at once
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collectors.services.runner import ServiceChecker
from collectors.services.watch import BaselineRepo
from core.pipeline import Service
from govnet.service import RunContext

CHECKER_KEY = "service_checker"  # RunContext.extra: the console reads states and accepts baselines


class ServicesSection(BaseModel):
    """`services:` in the run config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline_dir: Path = Path("state/baselines")
    max_concurrency: int = Field(32, ge=1, le=1000)


def build_services(section: dict[str, Any], ctx: RunContext) -> list[Service]:
    """The service checker over the inventory's `services:` (see govnet.service.BUILDERS)."""
    try:
        cfg = ServicesSection.model_validate(section or {})
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from None
    folder = cfg.baseline_dir if cfg.baseline_dir.is_absolute() else ctx.base_dir / cfg.baseline_dir
    repo = BaselineRepo(folder)
    base = Path(ctx.inventory_path).parent if Path(ctx.inventory_path).is_file() else Path(ctx.inventory_path)
    checker = ServiceChecker(list(ctx.inventory.services), repo, base, cfg.max_concurrency)
    ctx.extra[CHECKER_KEY] = checker
    engine = ctx.extra.get("alerts_engine")  # built before us when `alerts:` is configured
    if engine is not None:
        checker.register_details(engine)
    return [checker]
