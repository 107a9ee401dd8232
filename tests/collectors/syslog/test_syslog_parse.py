"""Parsers: every vendor example in collectors/syslog/formats/*.yaml, RFC 3164/5424, encodings, framing."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from collectors.syslog import rfc
from collectors.syslog.formats import KvScanner, VendorFormat, load_formats
from collectors.syslog.framing import Framer
from collectors.syslog.parse import parse_frame
from tests.support.paths import DATA

FORMATS = load_formats()
NOW = 1_773_312_000.0  # 2026-03-12
SAMPLES = DATA / "syslog-samples" / "samples.jsonl"
EXAMPLES = [(f.spec.name, i, ex) for f in FORMATS for i, ex in enumerate(f.spec.examples)]


def parse(raw: bytes, devices: dict[str, str] | None = None) -> dict[str, Any]:
    return parse_frame(raw, NOW, "10.9.0.1:40000", "tcp", FORMATS, devices or {})


def test_at_least_three_vendor_formats_are_data() -> None:
    names = {f.spec.vendor for f in FORMATS}
    assert {"huawei", "h3c", "hillstone", "sangfor"} <= names
    assert all(f.spec.examples for f in FORMATS)


@pytest.mark.parametrize(("fmt", "index", "example"), EXAMPLES, ids=[f"{n}-{i}" for n, i, _ in EXAMPLES])
def test_vendor_examples(fmt: str, index: int, example: dict[str, Any]) -> None:
    raw = example["message"].encode()
    rec = parse(raw)
    assert rec["format"] == fmt
    for key, want in example["expect"].items():
        assert rec[key] == want, key
    assert base64.b64decode(rec["raw"]) == raw  # raw bytes verbatim


def scanned_pairs(scanner: KvScanner, text: bytes) -> list[tuple[bytes, bytes]]:
    spans = scanner.spans(text)
    return [
        (text[spans[j] : spans[j + 1]], text[spans[j + 2] : spans[j + 3]]) for j in range(0, len(spans), 4)
    ]


def test_kv_scan_gives_the_re2_pairs_on_every_sample_and_example() -> None:
    texts = [ex["message"].encode() for _, _, ex in EXAMPLES]
    texts += [json.loads(line)["raw"].encode() for line in SAMPLES.read_text(encoding="utf-8").splitlines()]
    checked = 0
    for fmt in FORMATS:
        for pattern, _, _, scanner in fmt.kv:
            if scanner is None:
                continue
            for text in texts:
                want = pattern.pairs(text)
                assert scanned_pairs(scanner, text) == want, (fmt.spec.name, text)
                checked += len(want)
    assert checked > 1000


@pytest.mark.parametrize(
    ("shape", "error"),
    [
        ({"key_first": "a-z", "key": "a-z=", "value_end": ","}, "no '='"),
        ({"key_first": "a-z_", "key": "a-z", "value_end": ","}, "every key_first"),
        ({"key_first": "z-a", "key": "a-z", "value_end": ","}, "backwards"),
        ({"key_first": "用", "key": "用户", "value_end": ","}, "ASCII only"),
        ({"key_first": "a", "key": "a", "value_end": ",", "quote": "'", "escape": "'"}, "two different"),
        ({"key_first": "a", "key": "a", "value_end": ",", "quote": "«"}, "two different"),
        ({"key_first": "a", "key": "a"}, "value_end or a quote"),
        ({"key_first": "^:", "key": "^:", "value_end": ",", "separator": "：:"}, "no '：:'"),  # "：" in a key
        ({"key_first": "^:", "key": "^:，", "value_end": ",", "separator": ":"}, "every key_first"),
        ({"key_first": "^:", "key": "a-z", "value_end": ",", "separator": ":"}, "every key_first"),
        ({"key_first": "a", "key": "a", "value_end": "^,"}, "lists the characters"),
        ({"key_first": "a", "key": "a\\d", "value_end": ","}, "escaped punctuation"),
        ({"key_first": "a", "key": "a", "value_end": ",", "between": "a="}, "starts with a key character"),
        ({"key_first": "a", "key": "a", "value_end": ",", "between": "(\\w)="}, "and \\\\d only"),
        ({"key_first": "a", "key": "a", "value_end": ",", "separator": ""}, "no ''"),
    ],
)
def test_kv_scan_shapes_it_cannot_read_exactly_are_refused(shape: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        KvScanner(
            shape["key_first"], shape["key"], shape.get("value_end"), shape.get("quote"), shape.get("escape"),
            shape.get("separator", "="), shape.get("between"),
        )  # fmt: skip


def test_a_kv_fast_pattern_is_no_longer_accepted() -> None:
    """The stdlib `fast` patterns were replaced by `scan`: a file still naming one fails to load."""
    with pytest.raises(ValueError, match="fast"):
        VendorFormat.model_validate(
            {
                "name": "x",
                "vendor": "x",
                "detect": "x",
                "kv": [{"pattern": "(a)=(b)", "fast": "(a)=(b)", "fields": {}}],
            }
        )


def test_bad_format_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown target fields"):
        VendorFormat.model_validate(
            {
                "name": "x",
                "vendor": "x",
                "detect": "x",
                "kv": [{"pattern": "(a)=(b)", "fields": {"a": "nope"}}],
            }
        )


def test_rfc5424_structured_data_and_bom() -> None:
    raw = (
        b'<165>1 2026-03-12T10:46:04.5+08:00 fw-a app 123 ID47 [origin ip="10.1.1.1"]'
        b'[ev@32473 src="192.0.2.1" dpt="22" user="a\\"b"] \xef\xbb\xbfuser admin login ok'
    )
    rec = parse(raw)
    assert rec["format"] == "rfc5424"
    assert rec["facility"] == 20 and rec["severity"] == 5
    assert rec["dev_ts"] == "2026-03-12T02:46:04.500000Z"
    assert rec["host"] == "fw-a" and rec["app"] == "app"
    assert rec["msg"] == "user admin login ok"
    assert rec["src_ip"] == "192.0.2.1" and rec["dst_port"] == 22 and rec["user"] == 'a"b'


@pytest.mark.parametrize("offset", ["+99:00", "-24:00", "+2400"])
@pytest.mark.parametrize("sep", ["T", " "])
def test_an_offset_of_a_day_or_more_leaves_the_time_unknown_and_the_rest_read(offset: str, sep: str) -> None:
    rec = parse(f"<38>2026-03-12{sep}10:46:04{offset} host1 sshd[99]: Accepted password for root".encode())
    assert rec["dev_ts"] is None and "parse_error" not in rec["flags"]
    assert rec["host"] == "host1" and rec["app"] == "sshd" and rec["msg"] == "Accepted password for root"
    ok = parse(f"<38>2026-03-12{sep}10:46:04+08:00 host1 sshd[99]: Accepted password for root".encode())
    assert ok["dev_ts"] == "2026-03-12T02:46:04.000000Z"


def test_rfc3164_without_year_takes_receive_year() -> None:
    rec = parse(b"<38>Mar  2 01:02:03 host1 sshd[99]: Accepted password for root")
    assert rec["dev_ts"] == "2026-03-01T17:02:03.000000Z"  # zone-less: Asia/Shanghai, the default
    assert rec["host"] == "host1" and rec["app"] == "sshd"
    assert rec["msg"] == "Accepted password for root"
    assert rec["facility"] == 4 and rec["severity"] == 6


def test_december_stamp_received_in_january_is_last_year() -> None:
    rec = parse_frame(b"<38>Dec 31 23:59:59 h a: x", 1_767_225_700.0, "1.1.1.1:1", "udp", FORMATS, {})
    assert rec["dev_ts"] == "2025-12-31T15:59:59.000000Z"


def test_ios_time_after_a_collectors_header_and_sequence_number_is_the_devices() -> None:
    # The device wrote UTC; the collector's stamp is zone-less (read in the default Asia/Shanghai).
    rec = parse(
        b"Mar 24 18:06:03 192.168.100.2 1991219: Mar 24 18:06:03.424 UTC: %SEC_LOGIN-5-LOGIN_SUCCESS: "
        b"Login Success [user: jo] [Source: 10.2.55.3] [localport: 22]"
    )
    assert rec["dev_ts"] == "2025-03-24T18:06:03.424000Z"  # year-less, 12 days after NOW: last year
    assert rec["host"] == "192.168.100.2"  # the address the device sent from: its part names no other
    assert rec["app"] is None  # a sequence number is no program
    assert rec["user"] == "jo" and rec["event_type"] == "admin_login" and rec["severity"] == 5
    # No time after the sequence number: the collector's stays, as before.
    plain = parse(b"Mar  2 18:06:03 192.168.100.2 1991219: %SYS-5-CONFIG_I: Configured from console by jo")
    assert plain["dev_ts"] == "2026-03-02T10:06:03.000000Z" and plain["host"] == "192.168.100.2"
    # The device's part names its own host: it wins, the collector's address is the relay.
    hdr = rfc.parse_header("Mar  2 18:06:03 10.0.0.9 77: Mar  2 18:06:02 r1 %SYS-5-CONFIG_I: x", NOW)
    assert (hdr.host, hdr.relay_host, hdr.time_text) == ("r1", "10.0.0.9", "Mar  2 18:06:02")


def test_ios_origin_id_gives_host_and_time_only_with_a_time() -> None:
    rec = parse(
        b"<189>: sw01: Jan  6 2022 21:01:34.964: %SYS-5-CONFIG_I: Configured from console by ak on vty0"
    )
    assert rec["host"] == "sw01" and rec["dev_ts"] == "2022-01-06T13:01:34.964000Z"
    assert rec["severity"] == 5 and rec["event_type"] == "config_change" and rec["user"] == "ak"
    seq = parse(
        b"<182>: host-1: 115649616: *Jan 23 14:54:28.511 UTC: %SYS-5-CONFIG_I: Configured from x by ak"
    )
    assert seq["host"] == "host-1" and seq["dev_ts"] == "2026-01-23T14:54:28.511000Z"
    bare = parse(b"<189>: sw01: %SYS-5-CONFIG_I: Configured from console by ak on vty0")
    assert bare["host"] is None and bare["dev_ts"] is None  # a colon and a word name no host


def test_topsec_behind_a_collectors_header_names_its_device_and_time() -> None:
    body = b'id=tos time="2020-07-10 16:26:55" fw=TopsecOS  pri=5 type=mgmt user=su src=192.168.1.30 result=0'
    rec = parse(b"Jul 10 16:27:10 172.18.33.171 " + body)
    assert rec["host"] == "TopsecOS" and rec["dev_ts"] == "2020-07-10T08:26:55.000000Z"
    assert rec["event_type"] == "config_change" and rec["outcome"] == "success"
    # A header without a host gives way in nothing: its time stays (no collector shown to have written it).
    bare = parse(b"<190>Jul 10 16:27:10 " + body)
    assert bare["host"] == "TopsecOS" and bare["dev_ts"] == "2025-07-10T08:27:10.000000Z"
    # The same device name in the header: no relay, the header's time stays.
    same = parse(b"<190>Jul 10 16:27:10 TopsecOS " + body)
    assert same["host"] == "TopsecOS" and same["dev_ts"] == "2025-07-10T08:27:10.000000Z"


def test_gbk_text_is_decoded_and_raw_kept() -> None:
    msg = (
        "<134>Mar 12 10:46:04 localhost fwlog: "
        "日志类型:服务控制或应用控制, 用户:张三, 源IP:10.0.0.5, 系统动作:拒绝"
    )
    raw = msg.encode("gbk")
    rec = parse(raw)
    assert rec["encoding"] == "gbk"
    assert rec["user"] == "张三" and rec["event_type"] == "policy_deny" and rec["action"] == "deny"
    assert base64.b64decode(rec["raw"]) == raw


def test_hillstone_nul_ending_is_stripped_for_parsing_only() -> None:
    raw = (
        b"<190>Mar 12 10:46:19 sn Traffic@FLOW: SESSION: 10.3.1.5:1->10.4.0.1:80(TCP), policy 3, "
        b"session end\n\x00"
    )
    rec = parse(raw)
    assert rec["format"] == "hillstone" and not rec["msg"].endswith(("\n", "\x00"))
    assert base64.b64decode(rec["raw"]) == raw


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\x00", b"garbage without header", b"<999>x", b"\xff\xfe\xfa junk", b"<13>1 -", b"<13>1 a b"],
)
def test_unparseable_is_kept(raw: bytes) -> None:
    rec = parse(raw)
    assert base64.b64decode(rec["raw"]) == raw
    assert rec["event_type"] == "other"


def test_unknown_source_flagged_known_mapped() -> None:
    assert "unknown_source" in parse(b"<13>x")["flags"]
    rec = parse(b"<13>Mar 12 10:00:00 h t: x", {"10.9.0.1": "fw-core-1"})
    assert rec["device"] == "fw-core-1" and "unknown_source" not in rec["flags"]


def test_framer_octet_counting_and_lf_mixed() -> None:
    f = Framer(max_frame=100)
    frames = f.feed(b"5 <1>hi10 <13>world\n<14>lf line\n\x00")
    frames += f.feed(b"5 <1>a")
    frames += f.feed(b"b")
    assert frames == [b"<1>hi", b"<13>world\n", b"<14>lf line", b"<1>ab"]


def test_framer_lf_line_starting_with_digits_is_a_line_not_a_length() -> None:
    # StoneOS sends body-only records over LF framing: "48088401 IPS@IPS: ..." is not an octet count.
    f = Framer(max_frame=1000)
    lines = [b"48088401 IPS@IPS: From 10.0.0.1:1 to 10.0.0.2:80, threat name: x", b"7 days", b"<13>next"]
    frames = []
    data = b"\n".join(lines) + b"\n"
    for i in range(0, len(data), 7):
        frames += f.feed(data[i : i + 7])
    assert frames == lines and f.error is None


def test_framer_oversized_length_prefix_raises() -> None:
    f = Framer(max_frame=1000)
    assert f.feed(b"5 <1>ab99999999 <" + b"x" * 5000) == [b"<1>ab"]
    assert f.error and "exceeds" in f.error and not f.buf
    assert f.feed(b"5 <1>ab") == []  # nothing more is accepted on this connection
    g = Framer(max_frame=1000)
    assert g.feed(b"123456789012345") == [] and not g.error  # no count has 15 digits: a line
    assert g.feed(b" x\n") == [b"123456789012345 x"]
    assert Framer().feed(b"2026-03-12 no pri but LF framed\n") == [b"2026-03-12 no pri but LF framed"]


def test_framer_long_lf_line_is_truncated_with_bounded_memory() -> None:
    f = Framer(max_frame=100)
    out = []
    for _ in range(100):
        out += f.feed(b"<13>" + b"x" * 1000)
        assert len(f.buf) <= 1100
    out += f.feed(b"tail\n<13>next\n")
    assert out[0] == b"<13>" + b"x" * 96 and out[-1] == b"<13>next" and len(out) == 2
    assert f.truncated == 1
