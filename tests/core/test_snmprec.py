"""One `.snmprec` reader: the lab (BER) and the profile tests (engine values) read every tag alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.snmp.snmprec import parse_snmprec
from core.snmprec import SnmprecError, read_records
from lab.snmp import ber
from lab.snmp.snmprec import encode, load_snmprec

# Each value twice: plain and in its hex form; both readers must give the same value for both.
PAIRS = [
    ("2", "-5", "2x", "fb"),
    ("4", "GigabitEthernet0/0/1", "4x", "4769676162697445746865726e6574302f302f31"),
    ("6", "1.3.6.1.4.1.2011", "6x", "312e332e362e312e342e312e32303131"),
    ("64", "10.0.0.1", "64x", "0a000001"),
    ("65", "4294967295", "65x", "ffffffff"),
    ("66", "1000", "66x", "03e8"),
    ("67", "12345", "67x", "3039"),
    ("70", "18446744073709551615", "70x", "ffffffffffffffff"),
]


@pytest.mark.parametrize(("tag", "value", "xtag", "xvalue"), PAIRS, ids=[p[0] for p in PAIRS])
def test_plain_and_hex_forms_read_alike_by_lab_and_poller(
    tag: str, value: str, xtag: str, xvalue: str
) -> None:
    text = f"1.3.6.1.9.1|{tag}|{value}\n.1.3.6.1.9.2|{xtag}|{xvalue}\n"
    walk = parse_snmprec(text)
    assert walk["1.3.6.1.9.1"] == walk["1.3.6.1.9.2"] is not None
    plain, hexed = (encode(r) for r in read_records(text))
    assert plain == hexed
    if tag == "2":
        assert walk["1.3.6.1.9.1"] == -5 and plain == ber.enc_int(-5)


def test_null_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "x.snmprec"
    path.write_text("# recorded\n\n1.3.6.1.9.1|5|\n")
    assert parse_snmprec(path.read_text()) == {"1.3.6.1.9.1": None}
    assert load_snmprec(path) == [(ber.parse_oid("1.3.6.1.9.1"), ber.NULL_VALUE)]


@pytest.mark.parametrize(
    "line",
    ["1.3.6.1.9.1|2|twelve", "1.3.6.1.9.1|99|x", "not-an-oid|2|1", "1.3.6.1.9.1|4x|zz", "1.3.6.1.9.1 2 1"],
)
def test_malformed_line_names_file_and_line_in_both(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.snmprec"
    path.write_text(f"1.3.6.1.9.0|2|1\n{line}\n")
    with pytest.raises(SnmprecError, match=r"^bad\.snmprec:2: "):
        load_snmprec(path)
    with pytest.raises(SnmprecError, match=r"^rec:2: "):
        parse_snmprec(path.read_text(), "rec")
