"""Every `govnet` command reads well in --help and its lazily imported handler exists."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

CLI = ROOT / "govnet" / "cli.py"


def _lazy_imports() -> list[tuple[str, str]]:
    tree = ast.parse(CLI.read_text(encoding="utf-8"))
    out: list[tuple[str, str]] = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.module:
                    out.extend((node.module, alias.name) for alias in node.names)
    return out


@pytest.mark.parametrize(("module", "name"), _lazy_imports(), ids=lambda v: str(v))
def test_handler_exists(module: str, name: str) -> None:
    assert callable(getattr(importlib.import_module(module), name))


def _commands() -> list[list[str]]:
    from typer.main import get_command

    from govnet.cli import app

    root = get_command(app)
    out: list[list[str]] = [[]]
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        out.append([name])
        out.extend([name, sub] for sub in getattr(cmd, "commands", {}))
    return out


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a) or "govnet")
def test_help(argv: list[str]) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "govnet", *argv, "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert "Usage:" in res.stdout
