"""Field types shared by the inventory models: names; durations are core.config's, handed on."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.config import Duration, parse_duration

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)]

__all__ = ["Duration", "Name", "parse_duration"]
