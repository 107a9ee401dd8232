"""One `.snmprec` reader: the lab (BER) and the profile tests (engine values) read every tag alike.

The lines below are made up for each case; the rule they check is snmpsim's (what it serves, what it
refuses), see core/snmprec.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import core.snmprec as rec
from collectors.snmp.snmprec import parse_snmprec
from core.snmprec import SnmprecError, SnmprecWarning, load_recording, read_records
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


# Lines snmpsim indexes but cannot serve (sanitised or broken values): that variable is skipped,
# counted under its kind; the rest of the file is served.
SKIPPED = [
    ("1.3.6.1.9.5|4x|0011aaXXYYZZ", rec.NOT_HEX),  # a MAC address sanitised in place
    ("1.3.6.1.9.5|4x|00 11 22", rec.NOT_HEX),
    ("1.3.6.1.9.5|4x|<private>", rec.NOT_HEX),
    ("1.3.6.1.9.5|2|<private>", rec.NOT_A_NUMBER),
    ("1.3.6.1.9.5|70|", rec.NOT_A_NUMBER),
    ("1.3.6.1.9.5|67|1.5", rec.NOT_A_NUMBER),
    ("1.3.6.1.9.5|2|2147483648", rec.OUT_OF_RANGE),
    ("1.3.6.1.9.5|65|-1", rec.OUT_OF_RANGE),
    ("1.3.6.1.9.5|70|18446744073709551616", rec.OUT_OF_RANGE),
    ("1.3.6.1.9.5|6|Example Switch 8-Port", rec.NOT_AN_OID),
    ("1.3.6.1.9.5|6|", rec.NOT_AN_OID),
    ("1.3.6.1.9.5|64|<IP>", rec.NOT_AN_ADDRESS),  # 4 characters: pysnmp would take them as octets
    ("1.3.6.1.9.5|64|10.0.0", rec.NOT_AN_ADDRESS),
    ("1.3.6.1.9.5|64|10.0.0.256", rec.NOT_AN_ADDRESS),
    ("1.3.6.1.9.5|64x|0a0000", rec.NOT_AN_ADDRESS),
    ("1.3.6.1.9.5|5|something", rec.NULL_WITH_VALUE),
    ("1.3.6.1.9.5|41|5", rec.UNKNOWN_TYPE),
    ("1.3.6.1.9.5|4xx|4142", rec.UNKNOWN_TYPE),
    ("1.3.6.1.9.5|2e|5", rec.UNKNOWN_TYPE),
    ("1.3.6.1.9.5|2:numeric|1", rec.VARIATION),
    ("1.3.6.1.9.5|4:snmprec|x", rec.VARIATION),
    ("1.3.6.1.9.5.<IPADDR>|2|1", rec.BAD_OID),
    ("1.3.6.1.9.5.10.xx.0.1|64|10.0.0.1", rec.BAD_OID),
    ("1.3.6.1.9..5|2|1", rec.BAD_OID),
    (r"1.3.6.1.9.5|4e|a\qb", rec.BAD_ESCAPE),
    ("1.3.6.1.9.5|4e|ab\\", rec.BAD_ESCAPE),
    (r"1.3.6.1.9.5|4e|ab\x4", rec.BAD_ESCAPE),
]


@pytest.mark.parametrize(("line", "kind"), SKIPPED, ids=[line.split("|", 1)[1] for line, _ in SKIPPED])
def test_unservable_variable_skipped_and_counted(tmp_path: Path, line: str, kind: str) -> None:
    path = tmp_path / "dev.snmprec"
    path.write_text(f"1.3.6.1.9.1|4|before\n{line}\n1.3.6.1.9.9|2|7\n", encoding="utf-8")
    recording = load_recording(path)
    assert [r.oid for r in recording.records] == ["1.3.6.1.9.1", "1.3.6.1.9.9"]
    assert [(s.lineno, s.kind) for s in recording.skipped] == [(2, kind)]
    with pytest.warns(
        SnmprecWarning, match=rf"^dev\.snmprec: 1 variable\(s\) skipped .*{kind} 1 \(first dev\.snmprec:2: "
    ):
        served = dict(load_snmprec(path))
    assert served == {
        ber.parse_oid("1.3.6.1.9.1"): ber.tlv(ber.OCTET_STRING, b"before"),
        ber.parse_oid("1.3.6.1.9.9"): ber.enc_int(7),
    }
    with pytest.warns(SnmprecWarning):
        assert parse_snmprec(path.read_text(encoding="utf-8")) == {"1.3.6.1.9.1": b"before", "1.3.6.1.9.9": 7}


def test_one_warning_per_file_counts_each_kind() -> None:
    text = (
        "".join(f"1.3.6.1.9.{i}|4x|aabbccXXYYZ{i}\n" for i in range(1, 4))
        + "1.3.6.1.9.4|66|n/a\n1.3.6.1.9.5|66|3\n"
    )
    with pytest.warns(SnmprecWarning) as caught:
        records = read_records(text, "mixed")
    assert [r.oid for r in records] == ["1.3.6.1.9.5"]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("mixed: 4 variable(s) skipped")
    assert (
        f"{rec.NOT_HEX} 3 (first mixed:1: " in message and f"{rec.NOT_A_NUMBER} 1 (first mixed:4: " in message
    )


# Lines snmpsim serves, each with the value it serves.
SERVED = [
    (r"4e|a\x00b\tc\\d\'\"", b"a\x00b\tc\\d'\""),  # snmpsim's escaped form
    (r"4e|\x07\xe4\x08\t\x03(#", b"\x07\xe4\x08\t\x03(#"),
    ("4|padded   ", b"padded"),  # snmpsim strips the line: trailing blanks are not served
    ("4|  leading kept", b"  leading kept"),
    ("4|form\x0cfeed\x0bvtab\x1csep\u0085nel", "form\x0cfeed\x0bvtab\x1csep\u0085nel".encode()),  # one line
    ("4|", b""),
    ("4x|", b""),
]


@pytest.mark.parametrize(
    ("tv", "value"), SERVED, ids=[tv.split("|")[0] + str(i) for i, (tv, _) in enumerate(SERVED)]
)
def test_octet_string_forms_served_as_snmpsim_does(tv: str, value: bytes) -> None:
    text = f"1.3.6.1.9.1|{tv}\n"
    assert parse_snmprec(text) == {"1.3.6.1.9.1": value}
    assert [encode(r) for r in read_records(text)] == [ber.tlv(ber.OCTET_STRING, value)]


def test_opaque_and_escaped_ip_address() -> None:
    text = "1.3.6.1.9.1|68|Float: 0.25\n1.3.6.1.9.2|68x|9f780441\n1.3.6.1.9.3|64e|\\xc0\\xa8\\x00\\x01\n"
    walk = parse_snmprec(text)
    assert walk == {
        "1.3.6.1.9.1": b"Float: 0.25",
        "1.3.6.1.9.2": b"\x9f\x78\x04\x41",
        "1.3.6.1.9.3": "192.168.0.1",
    }
    assert [encode(r) for r in read_records(text)] == [
        ber.tlv(ber.OPAQUE, b"Float: 0.25"),
        ber.tlv(ber.OPAQUE, b"\x9f\x78\x04\x41"),
        ber.ip_address("192.168.0.1"),
    ]


def test_line_endings_and_oid_spelling_as_snmpsim_reads_them() -> None:
    # CRLF and blank/comment lines; `.`-prefixed, zero-padded arcs and a trailing dot in OID values.
    text = "# c\r\n\r\n.1.3.6.1.9.1|2|5\r\n1.3.6.1.9.02.010|4|x\r\n1.3.6.1.9.3|6|.1.3.6.1.4.1.09.\r\n"
    walk = parse_snmprec(text)
    assert walk == {"1.3.6.1.9.1": 5, "1.3.6.1.9.2.10": b"x", "1.3.6.1.9.3": "1.3.6.1.4.1.9"}
    assert encode(read_records(text)[2]) == ber.enc_oid(ber.parse_oid("1.3.6.1.4.1.9"))


@pytest.mark.parametrize(
    "line",
    ["1.3.6.1.9.1 2 1", "1.3.6.1.9.1|4", "|4|x", "1.3.6.1.9.1||x", "<html><body>", '{"sysDescr": "x"}'],
)
def test_file_that_is_not_a_recording_refused_naming_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.snmprec"
    path.write_text(f"1.3.6.1.9.0|2|1\n{line}\n", encoding="utf-8")
    with pytest.raises(SnmprecError, match=r"^bad\.snmprec:2: not an OID\|TAG\|VALUE line"):
        load_snmprec(path)
    with pytest.raises(SnmprecError, match=r"^rec:2: "):
        parse_snmprec(path.read_text(encoding="utf-8"), "rec")


def test_file_with_no_servable_line_refused() -> None:
    with pytest.raises(SnmprecError, match=r"^all: no line can be served .*not hex 2"):
        read_records("1.3.6.1.9.1|4x|zz\n1.3.6.1.9.2|4x|qq\n", "all")
