"""Every bad inventory in testdata/inventory/bad/ is rejected with exactly the problems it declares.

A case is a YAML file (or a folder of them). Its comment header declares, per file:
  `# expect: LINE: text`   one problem on LINE whose printed form contains text (` ... ` separates
                          parts that must appear in that order);
  `# never: text`          text that must never be printed (secret literals).
Adding a bad case is adding a file: no test code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from inventory.cli import check_inventory_command, load_or_exit
from inventory.load import InventoryError, load_inventory
from inventory.problems import Problem
from tests.support.paths import TESTDATA

BAD = TESTDATA / "inventory" / "bad"
CASES = sorted(p for p in BAD.iterdir() if p.suffix == ".yaml" or p.is_dir())
_HEADER = re.compile(r"^# (expect|never): (.*)$")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Expect:
    file: Path
    line: int
    parts: tuple[str, ...]

    def matches(self, problem: Problem) -> bool:
        if Path(problem.file) != self.file or problem.line != self.line:
            return False
        text, pos = str(problem), 0
        for part in self.parts:
            pos = text.find(part, pos)
            if pos < 0:
                return False
            pos += len(part)
        return True


def _declared(case: Path) -> tuple[list[Expect], list[str]]:
    expects: list[Expect] = []
    never: list[str] = []
    files = sorted(case.glob("*.yaml")) if case.is_dir() else [case]
    for file in files:
        for line in file.read_bytes().decode("utf-8", "replace").splitlines():
            m = _HEADER.match(line)
            if m and m.group(1) == "never":
                never.append(m.group(2))
            elif m:
                number, text = m.group(2).split(": ", 1)
                expects.append(Expect(file, int(number), tuple(text.split(" ... "))))
    return expects, never


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_inventory(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expects, never = _declared(case)
    assert expects, f"{case.name} declares no `# expect:` line"

    with pytest.raises(InventoryError) as info:
        load_inventory(case)
    problems = info.value.problems
    printed = "\n".join(str(p) for p in problems)

    missing = [e for e in expects if not any(e.matches(p) for p in problems)]
    assert not missing, f"expected problems not reported: {missing}\nreported:\n{printed}"
    unexpected = [p for p in problems if not any(e.matches(p) for e in expects)]
    assert not unexpected, "problems reported but not declared:\n" + "\n".join(map(str, unexpected))
    assert len(problems) == len(expects)
    for file in {p.file for p in problems}:
        lines = [p.line for p in problems if p.file == file]
        assert lines == sorted(lines), "problems of a file are in line order"

    # The command prints the same problems, a count, and exits 1; nothing secret, nothing raw.
    assert check_inventory_command(case) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[:-1] == printed.splitlines()
    assert out.splitlines()[-1].startswith(f"{len(problems)} error")
    for text in (out, str(info.value), repr(problems)):
        for secret in never:
            assert secret not in text
    assert not _CONTROL.search(out), "control characters from the inventory reached the terminal"


def test_every_case_names_secrets_it_hides() -> None:
    # Guard against a silently weakened corpus: the secret cases must keep their `never` lines.
    cases = ("literal_secrets.yaml", "many_errors.yaml", "yaml_syntax_secret.yaml", "key_file_literal.yaml")
    for name in cases:
        _, never = _declared(BAD / name)
        assert never, name
        assert all(secret in (BAD / name).read_text() for secret in never)


def test_command_line_exit_status_and_no_secret_leak() -> None:
    case = BAD / "many_errors.yaml"
    expects, never = _declared(case)
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("govnet")), "check-inventory", str(case)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(expects) + 1
    assert lines[-1] == f"{len(expects)} errors in 1 file"
    assert all(line.startswith(f"{case}:") for line in lines[:-1])
    for secret in never:
        assert secret not in proc.stdout + proc.stderr


def test_load_or_exit_prints_to_stderr_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        load_or_exit(BAD / "literal_secrets.yaml")
    assert info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout is for data (poll-once --json)
    assert "devices[0].ssh.password" in captured.err
    assert "Sup3rSecretPw" not in captured.err


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path / "nope.yaml")
    assert [p.message for p in info.value.problems] == ["no such file or folder"]
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path)
    assert "no *.yaml" in info.value.problems[0].message


def test_empty_file_is_an_empty_inventory(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    inventory = load_inventory(tmp_path / "empty.yaml")
    assert inventory.devices == [] and inventory.defaults.poll_interval == 30.0


def test_folder_inventory_concatenates_lists_and_keeps_defaults(tmp_path: Path) -> None:
    (tmp_path / "00-defaults.yaml").write_text(
        "defaults:\n  poll_interval: 1m\n  snmp: {version: 3, user: u, auth_key: env:A, priv_key: env:B}\n"
        "sites:\n  - name: ncc\n"
    )
    (tmp_path / "10-core.yaml").write_text(
        "devices:\n  - {name: core-1, site: ncc, role: core_switch, vendor: huawei, address: 10.0.0.1,\n"
        "     interfaces: [GE1/0/1]}\n"
    )
    (tmp_path / "20-access.yaml").write_text(
        "sites:\n  - {name: sq1, parent: ncc}\n"
        "devices:\n  - {name: acc-1, site: sq1, role: access_switch, vendor: h3c, address: 10.0.1.1}\n"
        "links:\n  - {a: {device: acc-1, interface: GE1/0/25}, b: {device: core-1, interface: GE1/0/1}}\n"
    )
    (tmp_path / "notes.txt").write_text("not yaml: [")  # other files are ignored
    inventory = load_inventory(tmp_path)
    assert [d.name for d in inventory.devices] == ["core-1", "acc-1"]
    assert [s.name for s in inventory.sites] == ["ncc", "sq1"]
    assert inventory.interval_of(inventory.device("acc-1")) == 60.0
    snmp = inventory.snmp_of(inventory.device("core-1"))
    assert snmp is not None and snmp.version == "3" and snmp.auth_protocol == "sha256"


def test_yaml_anchors_and_merge_keys_work_and_keep_lines(tmp_path: Path) -> None:
    # Anchors are a normal way to share a credential block; errors inside still get the right line.
    (tmp_path / "inv.yaml").write_text(
        "sites: [{name: ncc}]\n"
        "devices:\n"
        "  - &base {name: core-1, site: ncc, role: core_switch, vendor: huawei, address: 10.0.0.1}\n"
        "  - <<: *base\n"
        "    name: core-2\n"
        "    address: 10.0.0.300\n"
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path / "inv.yaml")
    [problem] = info.value.problems
    assert (problem.line, problem.path) == (6, "devices[1].address")


def test_allowed_weak_crypto_and_same_address_other_port_load(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(
        "sites: [{name: ncc}]\n"
        "devices:\n"
        "  - {name: old-1, site: ncc, role: ups, vendor: generic, address: 127.0.0.1,\n"
        "     snmp: {version: 3, user: u, auth_protocol: md5, auth_key: env:A, priv_protocol: des,\n"
        "            priv_key: env:B, allow_weak_crypto: true}}\n"
        "  - {name: old-2, site: ncc, role: ups, vendor: generic, address: 127.0.0.1,\n"
        "     snmp: {version: 2c, community: 'file:/etc/govnet/community', port: 10161}}\n"
    )
    inventory = load_inventory(tmp_path / "inv.yaml")
    assert [d.name for d in inventory.devices] == ["old-1", "old-2"]


def test_province_sized_inventory_loads_but_a_mid_sized_alias_bomb_does_not(tmp_path: Path) -> None:
    """The alias-bomb bound grows with what the file holds: 5,000 written-out devices load."""
    from inventory.source import MAX_NODES, read_document
    from lab.synth import write_synth_inventory

    big = write_synth_inventory(tmp_path / "province.yaml", 5000)
    doc, problems = read_document(big)
    assert problems == [] and doc is not None and doc.node is not None
    assert len(doc.data["devices"]) == 5000
    assert len(load_inventory(big).devices) == 5000
    # Few distinct nodes expanding just past MAX_NODES: refused, as before.
    row = "[" + ", ".join(['"x"'] * 100) + "]"
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        f"a: &a {row}\n"
        + "b: &b [" + ", ".join(["*a"] * 100) + "]\n"
        + "c: [" + ", ".join(["*b"] * (MAX_NODES // 10_000 + 1)) + "]\n",
        encoding="utf-8",
    )  # fmt: skip
    doc, problems = read_document(bomb)
    assert doc is None
    assert [p.message for p in problems] == [f"document expands to more than {MAX_NODES} nodes"]
