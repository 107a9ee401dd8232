"""One object for equal parts of a loaded inventory: less memory per device in every process holding it.

A 48-port device loaded from YAML held ~8.5 kB of its own objects, most of them equal to its
neighbours': the interface names (the same `GigabitEthernet0/0/N` on every switch of a model), the
SNMP and SSH credentials (one `defaults`-like block repeated per device), pydantic's per-instance set
of the fields given. `share_equal` makes equal strings, credential models, string lists and field
sets one object each, in place (the models are frozen: nothing changes what they compare equal to).
Pickling keeps the sharing, so the workers' copies share too.
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

from pydantic import BaseModel

from inventory.model import Inventory, SnmpV2c, SnmpV3, SshCredentials

# Small models equal across many devices: shared by their pickled bytes (equal bytes, equal model).
_SHARED_MODELS = (SnmpV2c, SnmpV3, SshCredentials)


class _Pool:
    def __init__(self) -> None:
        self.models: dict[bytes, BaseModel] = {}
        self.lists: dict[tuple[str, ...], list[str]] = {}
        self.field_sets: dict[frozenset[str], set[str]] = {}

    def value(self, v: Any) -> Any:
        if type(v) is str:  # (not enums: they are str too)
            return sys.intern(v)
        if isinstance(v, BaseModel):
            self.model(v)
            if isinstance(v, _SHARED_MODELS):
                return self.models.setdefault(pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL), v)
            return v
        if isinstance(v, list):
            if all(type(x) is str for x in v):
                key = tuple(sys.intern(x) for x in v)
                return self.lists.setdefault(key, list(key))
            for i, x in enumerate(v):
                v[i] = self.value(x)
        return v

    def model(self, m: BaseModel) -> None:
        fields = m.__dict__
        for k, v in fields.items():
            fields[k] = self.value(v)
        fs = m.__pydantic_fields_set__
        # Frozen models never add to it (pydantic copies it for model_copy).
        object.__setattr__(m, "__pydantic_fields_set__", self.field_sets.setdefault(frozenset(fs), fs))


def share_equal(inventory: Inventory) -> Inventory:
    """The same inventory with equal parts shared (see the module docstring); returns it."""
    _Pool().model(inventory)
    return inventory
