"""Vendor data for synthetic devices: lab/data/<vendor>.yaml (sysObjectID/sysDescr per model, OID layouts)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).parent / "data"


@cache
def vendor_profile(vendor: str) -> dict[str, Any]:
    """The parsed data file of a vendor (generic when there is none)."""
    path = DATA_DIR / f"{vendor}.yaml"
    if not path.exists():
        path = DATA_DIR / "generic.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return data


def model_for(vendor: str, role: str, model: str) -> str:
    """The model a device shows: its inventory model, else the vendor's default for its role."""
    if model:
        return model
    prof = vendor_profile(vendor)
    role_models: dict[str, str] = prof.get("role_models") or {}
    if role in role_models:
        return role_models[role]
    names = [m for m in prof.get("models", {}) if m != "default"]
    return names[0] if names else vendor


def model_info(vendor: str, role: str, model: str) -> dict[str, Any]:
    """Merged model settings: defaults < role_sys < the model's own entry."""
    prof = vendor_profile(vendor)
    models: dict[str, Any] = prof.get("models") or {}
    info: dict[str, Any] = {
        "if_index_start": prof.get("if_index_start", 1),
        "management_interface": prof.get("management_interface", "eth0"),
    }
    info.update(models.get("default") or {})
    info.update((prof.get("role_sys") or {}).get(role) or {})
    info.update(models.get(model) or {})
    return info


def objects_for(vendor: str, role: str, model: str) -> list[dict[str, Any]]:
    """The vendor objects of a device: common ones, then those of its role."""
    prof = vendor_profile(vendor)
    role_objects: dict[str, list[dict[str, Any]]] = prof.get("role_objects") or {}
    return list(prof.get("objects") or []) + list(role_objects.get(role) or [])


def entity_rows(vendor: str) -> list[dict[str, Any]]:
    """ENTITY-MIB entPhysicalTable rows of the vendor."""
    return list(vendor_profile(vendor).get("entity") or [])
