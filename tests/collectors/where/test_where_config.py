"""The `where:` section: defaults, the 180-day floor on retention, unknown keys, and `govnet run` wiring."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.where.service import WhereSection, WhereService, build
from core.config import validate_section
from inventory.load import load_inventory
from tests.support.paths import EXAMPLES


def parse_section(data: dict[str, object], base: Path = Path(".")) -> WhereSection:
    """The `where:` section as `govnet run` reads it."""
    return validate_section(WhereSection, data, base, "where")


def test_defaults_sweep_every_five_minutes_and_keep_history_over_180_days() -> None:
    s = parse_section({})
    assert s.interval == 300.0 and s.retention >= 180 * 86400
    assert "access_switch" in s.fdb_roles and "aggregation_switch" in s.arp_roles


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"retention": "90d"}, "at least 180 days"),
        ({"interval": "soon"}, "interval"),
        ({"communities": ["x"]}, "communities"),
        ({"jump_factor": 0.5}, "jump_factor"),
    ],
)
def test_bad_sections_are_refused_with_the_field_named(section: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_section(section)


def test_the_builder_opens_the_history_relative_to_the_config(tmp_path: Path) -> None:
    inv = load_inventory(EXAMPLES / "district.yaml")
    (svc,) = build(parse_section({"state_dir": "state", "interval": "2m"}, tmp_path), inventory=inv)
    assert isinstance(svc, WhereService)
    assert (tmp_path / "state" / "where.db").exists()
    roles = {d.role.value for d, _arp, _fdb in svc.devices()}
    assert roles == {"access_switch", "aggregation_switch", "core_switch", "firewall", "vpn_gateway"}
    svc.history.close()
