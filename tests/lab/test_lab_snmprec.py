"""The lab serves real snmpsim recordings: a real net-snmp walk returns every record, unchanged."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.snmprec import SnmprecWarning
from lab.snmp import ber
from lab.snmp.snmprec import load_snmprec
from tests.support.paths import DATA
from tests.support.ports import free_port
from tests.support.require import require, require_cmd

SNMPREC = Path(os.environ.get("GOVNET_SNMPREC", DATA / "snmprec"))
FILES = ["vrp_5720", "stoneos", "asa", "linux_powermon", "generex-ups_cs141"]
ADDR = "127.20.200.1"
PORT = free_port(ADDR, socket.SOCK_DGRAM)  # chosen when collected: two runs at once never collide


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, Path]]:
    paths = {name: SNMPREC / f"{name}.snmprec" for name in FILES}
    require(all(p.exists() for p in paths.values()), f"snmprec recordings in {SNMPREC}")
    require_cmd("snmpbulkwalk", "snmpget")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.snmp.snmprec", ADDR, str(PORT), *map(str, paths.values())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("serving"), line
        yield paths
    finally:
        proc.terminate()
        proc.wait(10)


def _walk(community: str, *opts: str) -> list[str]:
    out = subprocess.run(
        ["snmpbulkwalk", "-v2c", "-c", community, "-On", "-Oq", "-t", "3", *opts, f"{ADDR}:{PORT}", ".1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [ln for ln in out.splitlines() if ln.startswith(".1.") and "No more variables" not in ln]


@pytest.mark.parametrize("name", FILES)
def test_full_walk_returns_every_record(served: dict[str, Path], name: str) -> None:
    records = load_snmprec(served[name])
    lines = _walk(name, "-Cr10")
    walked = [ln.split(" ", 1)[0] for ln in lines]
    assert walked == sorted(("." + ber.oid_str(o) for o, _ in records), key=lambda s: ber.parse_oid(s))
    assert len(walked) == len(records)


def test_big_huawei_values_with_large_max_repetitions(served: dict[str, Path]) -> None:
    # vrp_5720 carries 4.5 KB Q-BRIDGE port lists: 100 repetitions must be cut below 64 KB, not dropped.
    records = load_snmprec(served["vrp_5720"])
    assert len(_walk("vrp_5720", "-Cr100")) == len(records)
    start = (1, 3, 6, 1, 2, 1, 17, 7, 1, 4, 2, 1, 4)
    pdu = ber.encode_pdu(ber.GETBULK, 99, 0, 500, [ber.varbind(ber.enc_oid(start), ber.NULL_VALUE)])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(ber.encode_v2c(1, b"vrp_5720", pdu), (ADDR, PORT))
        resp = s.recv(70000)
    assert 40000 < len(resp) < 64 * 1024
    assert ber.decode_v2c(resp).pdu.request_id == 99


def test_values_match_the_recording(served: dict[str, Path]) -> None:
    # stoneos records sysObjectID with a leading dot: served normalised, like snmpsim.
    out = subprocess.run(
        [
            "snmpget",
            "-v2c",
            "-c",
            "stoneos",
            "-On",
            f"{ADDR}:{PORT}",
            ".1.3.6.1.2.1.1.2.0",
            ".1.3.6.1.2.1.1.3.0",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "OID: .1.3.6.1.4.1.28557.1.126" in out
    assert "Timeticks: (27582800)" in out
    wrong = subprocess.run(
        ["snmpget", "-v2c", "-c", "nope", "-t", "0.5", "-r", "0", f"{ADDR}:{PORT}", ".1.3.6.1.2.1.1.2.0"],
        capture_output=True,
        text=True,
    )
    assert "Timeout" in wrong.stderr


def test_odd_length_hex_read_as_snmpsim_does(tmp_path: Path) -> None:
    # Real recordings hold `4x` values with an odd number of digits: snmpsim (pyasn1 fromHexString)
    # serves the trailing nibble as the high half of a last byte; the lab and the offline loader must
    # both do so (not refuse the file).
    from collectors.snmp.snmprec import load_snmprec as load_walk

    rec = tmp_path / "odd.snmprec"
    rec.write_text("1.3.6.1.2.1.1.1.0|4x|4142a\n1.3.6.1.2.1.1.5.0|4x|414243\n", encoding="utf-8")
    served = dict(load_snmprec(rec))
    assert served[(1, 3, 6, 1, 2, 1, 1, 1, 0)] == ber.tlv(ber.OCTET_STRING, b"AB\xa0")
    assert served[(1, 3, 6, 1, 2, 1, 1, 5, 0)] == ber.tlv(ber.OCTET_STRING, b"ABC")
    walk = load_walk(rec)
    assert walk["1.3.6.1.2.1.1.1.0"] == b"AB\xa0" and walk["1.3.6.1.2.1.1.5.0"] == b"ABC"
    # A sanitised (non-hex) value is not served at all, never as made-up bytes; the file still loads.
    rec.write_text("1.3.6.1.2.1.1.1.0|4x|41zz\n1.3.6.1.2.1.1.5.0|4|sw1\n", encoding="utf-8")
    with pytest.warns(
        SnmprecWarning, match=r"odd\.snmprec: 1 variable\(s\) skipped .*not hex 1 \(first odd\.snmprec:1"
    ):
        assert dict(load_snmprec(rec)) == {(1, 3, 6, 1, 2, 1, 1, 5, 0): ber.tlv(ber.OCTET_STRING, b"sw1")}
