"""Issue 21, finding 8: a YAML bomb in the run config is refused at once by `govnet run` and `govnet
doctor` (before: a MemoryError after 34 s and 3.1 GB). Peak memory of the child is measured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MIB = 1024


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
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "govnet", command, "--config", str(cfg)],
            stdout=sink, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (KiB)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    text = out.read_text()
    print(f"govnet {command} on a YAML bomb: exit {code}, peak RSS {usage.ru_maxrss // MIB} MiB")
    assert "expands to more than" in text, text
    assert code == 2 if command == "run" else code != 0
    assert usage.ru_maxrss < 300 * MIB
