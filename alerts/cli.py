"""`govnet test-rules FILE...`: run rule unit tests (promtool style); exit 0 when all pass, 1 otherwise."""

from __future__ import annotations

from pathlib import Path

from alerts.promtest import TestFileError, run_test_file
from alerts.rules import RuleError


def test_rules_command(files: list[Path]) -> int:
    """Run each test file, print `FILE: SUCCESS` or the failures, and return the exit code."""
    failed = False
    for path in files:
        try:
            results = run_test_file(path)
        except (TestFileError, RuleError) as exc:
            print(f"{path}: FAILED: {exc}")
            failed = True
            continue
        bad = [r for r in results if r.failures]
        if not bad:
            print(f"{path}: SUCCESS ({len(results)} tests)")
            continue
        failed = True
        print(f"{path}: FAILED")
        for r in bad:
            print(f"  {r.name}:")
            for f in r.failures:
                print(f"    {f}")
    return 1 if failed else 0


test_rules_command.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name
