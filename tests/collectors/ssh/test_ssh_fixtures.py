"""Recorded CLI outputs per vendor (tests/fixtures/ssh/<platform>/) through one generic test.

`<case>.config.txt` -> normalised text must equal `<case>.config.expected`, and no line of
`<case>.secrets` may survive; `<case>.ha.txt` -> `<case>.ha.expected.yaml` (role/peer or null).
New device coverage is a new file, not new test code. GOVNET_REGEN_FIXTURES=1 rewrites the
expected files (review the diff before committing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from collectors.ssh.ha import parse_ha
from collectors.ssh.normalize import Masker, normalize_config
from collectors.ssh.platform import load_platforms
from tests.support.paths import FIXTURES

FIXTURES = FIXTURES / "ssh"
PLATFORMS = load_platforms()
MASKER = Masker(b"govnet-fixture-mask-key-0123456789")
REGEN = os.environ.get("GOVNET_REGEN_FIXTURES") == "1"


def _cases(kind: str) -> list[Path]:
    return sorted(FIXTURES.glob(f"*/*.{kind}.txt"))


def test_every_platform_has_fixtures_and_every_fixture_a_platform() -> None:
    dirs = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert dirs == set(PLATFORMS)
    for name, platform in PLATFORMS.items():
        assert list((FIXTURES / name).glob("*.config.txt")), f"{name}: no recorded configuration"
        assert platform.command("config")


@pytest.mark.parametrize("raw", _cases("config"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recorded_configuration(raw: Path) -> None:
    platform = PLATFORMS[raw.parent.name]
    lines = raw.read_text(encoding="utf-8").splitlines()
    assert platform.config_is_complete("\n".join(lines))
    assert not platform.config_is_complete("\n".join(lines[: len(lines) // 2]))  # cut short: refused
    assert not platform.config_is_complete(f"<{raw.stem}>")  # only the prompt came back
    text = normalize_config(raw.read_text(encoding="utf-8"), platform, MASKER)
    expected = raw.with_name(raw.name.replace(".config.txt", ".config.expected"))
    if REGEN:
        expected.write_text(text, encoding="utf-8")
    assert text == expected.read_text(encoding="utf-8")
    secrets = raw.with_name(raw.name.replace(".config.txt", ".secrets"))
    values = [s for s in secrets.read_text(encoding="utf-8").splitlines() if s.strip()]
    assert values, "every recorded configuration lists the secrets it holds"
    for value in values:
        assert value in raw.read_text(encoding="utf-8")  # the list is about this file ...
        assert value not in text, f"secret survived normalisation in {raw.name}"  # ... and none survive
    # A prompt + echoed command left in by netmiko (seen under load) and a trailing prompt change nothing.
    assert platform.prompt is not None
    prompt = next(p for p in ("<fx-dev>", "fx-dev#") if platform.prompt.match(p))
    echoed = f"{prompt}{platform.command('config')}\n{raw.read_text(encoding='utf-8')}\n{prompt}\n"
    assert normalize_config(echoed, platform, MASKER) == text
    # Normalising twice changes nothing (already masked values are kept).
    assert normalize_config(text, platform, MASKER) == text


@pytest.mark.parametrize("raw", _cases("ha"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recorded_ha_state(raw: Path) -> None:
    platform = PLATFORMS[raw.parent.name]
    reading = parse_ha(platform, raw.read_text(encoding="utf-8"))
    got = None if reading is None else {"role": reading.role, "peer": reading.peer}
    expected = raw.with_name(raw.name.replace(".ha.txt", ".ha.expected.yaml"))
    if REGEN:
        expected.write_text(yaml.safe_dump(got), encoding="utf-8")
    assert got == yaml.safe_load(expected.read_text(encoding="utf-8"))
