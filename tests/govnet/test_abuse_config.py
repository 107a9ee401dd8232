"""Issue 21, finding 8: a YAML bomb in the run config is refused at once by `govnet run` and `govnet
doctor` (before: a MemoryError after 34 s and 3.1 GB). Peak memory of the child is measured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MIB = 1024
MEASURE = (
    "import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:], stderr=subprocess.STDOUT); "
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)"
)


def bomb(levels: int = 9) -> str:
    """Billion laughs: 9 levels of 9 aliases expand to 9**9 (387 million) strings."""
    lines = ["inventory: inv.yaml", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append(f"syslog: {{store: logs, extra: *a{levels - 1}}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("command", ["run", "doctor"])
def test_yaml_bomb_in_the_config_is_refused_fast(tmp_path: Path, command: str) -> None:
    cfg = tmp_path / "govnet.yaml"
    cfg.write_text(bomb())
    out = tmp_path / "out.txt"
    # A child forked from this (possibly large) pytest process starts with pytest's peak RSS, so govnet
    # is started by a small intermediate Python that reports the peak RSS of its own child only.
    with out.open("wb") as sink:
        res = subprocess.run(
            [sys.executable, "-c", MEASURE, sys.executable, "-m", "govnet", command, "--config", str(cfg)],
            stdout=sink, stderr=subprocess.PIPE, cwd=tmp_path, timeout=120, text=True,
        )  # fmt: skip
    code, peak_kib = (int(v) for v in res.stderr.strip().splitlines()[-1].split())
    text = out.read_text()
    print(f"govnet {command} on a YAML bomb: exit {code}, peak RSS {peak_kib // MIB} MiB")
    assert "expands to more than" in text, text
    assert code == 2 if command == "run" else code != 0
    assert peak_kib < 300 * MIB
