"""Every bad config in tests/data/config/bad/ is refused by `govnet run` (exit 2) and by `govnet doctor`
(exit 2), each naming file:line, the field and what is wrong, as its `# expect:` line says.

Adding a case is adding a file: its first line `# expect: LINE: field.path: message` (or `# expect:
message` for a problem of the whole file; `{dir}` stands for the folder). Values are never echoed.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from govnet import doctor
from govnet.run import run_command
from tests.support.paths import DATA

BAD = sorted((DATA / "config" / "bad").glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = re.fullmatch(r"# expect: (.+)", first)
    assert m, f"{path.name}: the first line must be '# expect: ...'"
    text = m.group(1).replace("{dir}", str(path.parent))
    return f"{path}:{text}" if text[0].isdigit() else f"{path}: {text}"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_run_refuses_with_file_line(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(path) == 2
    err = capsys.readouterr().err
    assert _expected(path) in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_doctor_refuses_with_the_same_words(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Doctor's other checks (devices, ports, disk, clock) do not matter here: only the config's.
    for name in ("check_ports", "check_disk", "check_clock"):
        monkeypatch.setattr(doctor, name, _none)
    monkeypatch.setattr(doctor, "check_devices", _no_devices)
    out = io.StringIO()
    assert doctor.doctor_command(path, out=out) == 2
    text = out.getvalue()
    where, _, rest = _expected(path).partition(": ")
    field = rest.split(": ", 1)[0]
    lines = [line for line in text.splitlines() if where in line]
    assert any(field in line for line in lines), text


def _none(*args: object, **kwargs: object) -> list[object]:
    return []


async def _no_devices(*args: object, **kwargs: object) -> list[object]:
    return []
