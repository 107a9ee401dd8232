"""Where things are in the checkout, for tests in any folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout
TESTS = ROOT / "tests"
DATA = TESTS / "data"  # real-device recordings and syslog samples (third-party, never bundled)
TESTDATA = TESTS / "testdata"  # our own inputs: bad configs, rule tests, bad profiles
FIXTURES = TESTS / "fixtures"  # recorded CLI outputs per SSH platform
EXAMPLES = ROOT / "examples"
GOVNET = ROOT / ".venv" / "bin" / "govnet"
