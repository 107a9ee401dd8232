"""Fuzz the frame parser and the TCP framer: no exception escapes, raw bytes kept, frames bounded."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.syslog.formats import KvScanner, Pattern, load_formats
from collectors.syslog.framing import Framer, Lines
from collectors.syslog.parse import parse_frame
from collectors.syslog.sequence import sequence_id

FORMATS = load_formats()
PIECES = [
    b"<190>", b"<13>1 ", b"Mar 12 2024 10:46:04 ", b"%Mar 12 10:46:04:123 2024 ",
    b"%%01POLICY/6/POLICYDENY(l):", b"%%10FILTER/6/FILTER_ZONE_IPV4_EXECUTION: ", b"SrcIPAddr(1003)=",
    b"source-ip=", b"Traffic@FLOW: SESSION: ", b"->", b":80(TCP)",
    "日志类型:".encode(), "日志".encode("gbk"), b'[a b="', b'\\"',
    b"]", b"\xef\xbb\xbf", b"\n\x00", b" ", b"=", b";", b",", b"(", b")", b"-",
]  # fmt: skip
frames = st.one_of(
    st.binary(max_size=600),
    st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=20)), max_size=40).map(b"".join),
)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(frames)
def test_parse_frame_never_raises_and_keeps_raw(raw: bytes) -> None:
    # No timing assert here (the machine is shared): linear time is structural (RE2 formats, refused at
    # load otherwise) and test_syslog_hostile.py feeds every format adversarial 64 KiB inputs.
    rec = parse_frame(raw, 1_773_312_000.0, "10.0.0.1:1", "tcp", FORMATS, {})
    assert base64.b64decode(rec["raw"]) == raw
    assert not any(f.startswith("parse_error") for f in rec["flags"]), rec["flags"]


@SETTINGS
@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(min_value=16, max_value=512))
def test_framer_is_bounded(chunks: list[bytes], max_frame: int) -> None:
    framer = Framer(max_frame=max_frame)
    for chunk in chunks:
        for frame in framer.feed(chunk):
            assert len(frame) <= max_frame
        assert len(framer.buf) <= max_frame + 300 + 12


def test_long_hostile_line_is_parsed_and_kept() -> None:
    raw = (
        b"<190>Mar 12 2024 10:46:04 h %%01IPS/4/DETECT(l):" + b"a=" * 20_000 + b"(" * 10_000 + b"\xff" * 1000
    )
    rec = parse_frame(raw, 1_773_312_000.0, "10.0.0.1:1", "tcp", FORMATS, {})
    assert base64.b64decode(rec["raw"]) == raw


def _frames_one_by_one(framer: Framer, data: bytes) -> list[bytes]:
    """Reference: the framer's per-frame path only (what `feed` did before its LF fast path)."""
    if framer.error is not None:
        return []
    framer.buf += data
    out: list[bytes] = []
    while True:
        try:
            frame = framer._next()
        except ValueError as exc:  # FrameTooLarge: feed() keeps the frames before it and sets `error`
            framer.error = str(exc)
            del framer.buf[:]
            return out
        if frame is None:
            return out
        out.append(frame)


STREAM_PIECES = [
    b"\n",
    b"\r",
    b"\x00",
    b"1",
    b"9",
    b"0",
    b" ",
    b"<13>",
    b"abc def",
    b"12 ",
    b"5 hello",
    b"\n\x00",
]


def reads(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` as a stream delivers it: reads of the sizes in `cuts`, repeated until all is read."""
    out: list[bytes] = []
    pos = 0
    for n in cuts * (len(data) // max(1, sum(cuts)) + 1):
        if pos >= len(data):
            break
        out.append(data[pos : pos + n])
        pos += n
    return out


@SETTINGS
@given(
    st.lists(st.sampled_from(STREAM_PIECES), max_size=60).map(b"".join),
    st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=60),
    st.sampled_from([4, 8, 16, 64, 1000]),
)
def test_framer_fast_path_matches_per_frame_path(data: bytes, cuts: list[int], max_frame: int) -> None:
    fast, slow = Framer(max_frame=max_frame), Framer(max_frame=max_frame)
    got: list[bytes] = []
    want: list[bytes] = []
    for chunk in reads(data, cuts):
        got += fast.feed(chunk)
        want += _frames_one_by_one(slow, chunk)
    assert (got, fast.error, fast.truncated, fast.rest()) == (want, slow.error, slow.truncated, slow.rest())


# Formats whose kv pairs have a `scan` shape: it must give the RE2 pattern's pairs exactly, on any UTF-8.
SCANNED = [(pattern, scanner) for f in FORMATS for pattern, _, _, scanner in f.kv if scanner is not None]
KV_PIECES = [
    b"source-ip=", b"rule-name=", b"vsys=", b"Ip=", b"-", b"a", b"Z", b"=", b'"', b",", b", ", b")", b"(",
    b" ", b".", b"1", b"_", b":", b"%%01POLICY/6/POLICYDENY(l):", b"\n", b"\\", b"\x0b", b"\t", b"\r",
    b"\x0c", b"devname=", b'srcip="', b"0", b"\\\"", b"--", b"-a=", b"a-", b"\\\n", b'=""', "中".encode(),
    "，".encode(), "é".encode(), 'type="接口日志"'.encode(), b'source-address="', b'a="1"',
    # Sangfor's "键:值, " and "[key:value]" (a non-ASCII separator and value end, negated key classes):
    "：".encode(), b"[", b"]", "（".encode(), "源IP:".encode(), "\u3000".encode(), b"Src IP: ", b"a:b",
    "日志类型：".encode(), "\uff1b".encode(),
    # H3C's "Name(1003)=value;": a fixed text with digits between key and value
    b"SrcIPAddr(1003)=", b"(1003)", b"(12)=", b"(12345)=", b";", b"Event(1048)=(2)Session deleted;", b"(",
]  # fmt: skip


@SETTINGS
@given(st.lists(st.sampled_from(KV_PIECES), max_size=60).map(b"".join))
def test_kv_scan_gives_the_re2_pairs(text: bytes) -> None:
    assert {p.pattern for p, _ in SCANNED} >= {  # Huawei, FortiGate, Topsec, Venustech, Sangfor, H3C
        r'([A-Za-z][A-Za-z-]*)=("[^"]*"|[^,)]*)',
        r'([a-z_A-Z0-9]+)=("(?:[^"\\]|\\.)*"|\S*)',
        r'([A-Za-z_0-9]+)=("[^"]*"|\S*)',
        r'([a-z][a-z-]*)="([^"]*)"',  # Junos: quoted values only
        r"([^:：,，\s\[\]]+)[:：]([^,，\]]*)",  # Sangfor: "：" separates, "，" ends a value
        r"([A-Za-z_]+)\(\d{4}\)=([^;]*)",  # H3C: "(dddd)=" between key and value
    }
    for pattern, scanner in SCANNED:
        spans = scanner.spans(text)
        got = [
            (text[spans[j] : spans[j + 1]], text[spans[j + 2] : spans[j + 3]])
            for j in range(0, len(spans), 4)
        ]
        assert got == pattern.pairs(text), (pattern.pattern, text)


# What `read` is given besides each format's own mapping and strip characters: every key of the pieces
# (and a text's values: mapped or not, stripped with ASCII or with non-ASCII characters), and the 2,704
# two-letter keys, among which some hash alike ("Aa", "BB"): the index's chains are walked.
KV_KEYS = {k: f"f{i}" for i, k in enumerate([b"source-ip", b"rule-name", b"vsys", b"Ip", b"a", b"Z", b"a-",
    b"devname", b"srcip", b"type", b"source-address", b"_", b"0", b"1", b"Z-a"])}  # fmt: skip
LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
TWO_LETTERS = {bytes([x, y]): f"t{x}_{y}" for x in LETTERS for y in LETTERS}
# UTF-8 only, as the scan (parse hands formats the UTF-8 of decoded text).
KV_PIECES_READ = [*KV_PIECES, b"ab=", b"Zq=", b"xy=x.", b' "v". ', "，".encode(), b"Zz=\xe4\xb8\xad."]
SCANNED_READ = [(p, m, s, sc) for f in FORMATS for p, m, s, sc in f.kv if sc is not None]


def _re2_read(pattern: Pattern, mapping: dict[bytes, str], strip: str, text: bytes) -> dict[str, Any]:
    """What CompiledFormat.apply reads with the RE2 pair pattern (the path without a `scan` shape)."""
    out: dict[str, Any] = {}
    for (a1, e1), (a2, e2) in pattern.pair_spans(text):
        name = mapping.get(text[a1:e1] if a1 >= 0 else b"")
        if name and name not in out:
            out[name] = (text[a2:e2] if a2 >= 0 else b"").decode("utf-8", "replace").strip(strip)
    return out


@SETTINGS
@given(st.lists(st.sampled_from(KV_PIECES_READ), max_size=60).map(b"".join))
def test_kv_scan_reads_the_re2_fields(text: bytes) -> None:
    """`read` with a mapping (its own index of the keys, ASCII strip characters trimmed off the bytes)
    gives the fields of the RE2 pairs, for each format's mapping and others given in turn."""
    for pattern, mapping, strip, scanner in SCANNED_READ:
        for keys, chars in ((mapping, strip), (KV_KEYS, ' ".'), (TWO_LETTERS, ""), (KV_KEYS, ' "，.'),
                            (mapping, strip)):  # fmt: skip
            got: dict[str, Any] = {}
            scanner.read(text, None, keys, chars, got)
            assert got == _re2_read(pattern, keys, chars, text), (pattern.pattern, text, chars)
            # Given the decoded text too (as apply does): values cut from it on an ASCII line.
            given: dict[str, Any] = {}
            scanner.read(text, None, keys, chars, given, text.decode("utf-8", "surrogateescape"))
            assert given == got, (pattern.pattern, text, chars)


# Bytes that are not UTF-8: surrogateescape makes each one character, as long as its byte.
NOT_UTF8 = [b"\x80", b"\xff=", b"a=\xc3", b"\xed\xb2\x80"]


@SETTINGS
@given(st.lists(st.sampled_from([*KV_PIECES_READ, *NOT_UTF8]), max_size=40).map(b"".join))
def test_kv_scan_given_text_reads_what_the_bytes_give(raw: bytes) -> None:
    """apply hands `read` the body and its bytes: a line with lone surrogates (bytes that were not
    UTF-8) has as many characters as bytes, yet its values must come from the bytes ("\ufffd")."""
    body = raw.decode("utf-8", "surrogateescape")
    data = body.encode("utf-8", "surrogateescape")
    for _, mapping, strip, scanner in SCANNED_READ:
        for keys, chars in ((mapping, strip), (KV_KEYS, ' ".'), (KV_KEYS, ' "，.')):
            plain: dict[str, Any] = {}
            scanner.read(data, None, keys, chars, plain)
            given: dict[str, Any] = {}
            scanner.read(data, None, keys, chars, given, body)
            assert given == plain, (data, chars)


def test_kv_scan_index_chains_keys_that_share_a_slot() -> None:
    scanner = KvScanner("A-Za-z", "A-Za-z-", ",)", '"', None)
    text = b"".join(k + b"=" + v.encode() + b"," for k, v in TWO_LETTERS.items())
    got: dict[str, Any] = {}
    scanner.read(text, None, TWO_LETTERS, "", got)
    assert got == {v: v for v in TWO_LETTERS.values()}
    assert any(scanner.chain)  # some keys shared a slot, and were found behind another (16-bit links)


# Line starts and bodies for the block path: PRI-led lines (RFC 3164 and 5424, a sequenceId or not),
# lines without a PRI, odd PRIs, separators, octet counts, over-long lines.
LINE_STARTS = [
    b"<13>",
    b"<190>",
    b"<13>1 ",
    b"<1>",
    b"<1234>",
    b"<13",
    b"<",
    b"Mar ",
    b"12 <13>",
    b"\r",
    b"\x00",
    b"",
]
LINE_BODIES = [
    b"Mar 12 10:46:04 fw x=1", b'2026-03-12T10:00:00Z h a 1 m [meta sequenceId="7"] hi', b"1 ", b"x" * 40,
    b'- - - - [meta sequenceId="9"]', b"\xff\xfe", b"",
]  # fmt: skip


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(LINE_STARTS), st.sampled_from(LINE_BODIES)), max_size=30),
    st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30),
    st.sampled_from([16, 64, 1000]),
)
def test_framer_blocks_are_the_per_frame_frames(
    lines: list[tuple[bytes, bytes]], cuts: list[int], max_frame: int
) -> None:
    data = b"".join(start + body + b"\n" for start, body in lines)
    fast, slow = Framer(max_frame=max_frame), Framer(max_frame=max_frame)
    got: list[bytes] = []
    want: list[bytes] = []
    for chunk in reads(data, cuts):
        out = fast.feed_block(chunk)
        if isinstance(out, Lines):
            frames = out.frames()
            assert len(out) == len(frames) and out.size == len(out.data)
            if out.plain:  # the receiver skips the sequenceId search for such a block
                assert all(sequence_id(frame) is None for frame in frames)
            k = len(frames) // 2  # a block cut in two (a batch bound) keeps its frames
            assert out[:k].frames() + out[k:].frames() == frames and out[:k].size + out[k:].size == out.size
        else:
            frames = out
        got += frames
        want += _frames_one_by_one(slow, chunk)
    assert (got, fast.error, fast.truncated, fast.rest()) == (want, slow.error, slow.truncated, slow.rest())


def test_framer_gives_a_plain_block_for_firewall_lines() -> None:
    framer = Framer()
    block = framer.feed_block(b"<190>Mar 12 2024 10:46:04 fw a=1\n<190>Mar 12 2024 10:46:05 fw a=2\n<19")
    assert isinstance(block, Lines) and block.plain and len(block) == 2 and framer.buf == b"<19"
    rfc5424 = framer.feed_block(b'0>1 2026-03-12T10:00:00Z h a 1 m [meta sequenceId="7"] x\n')
    assert isinstance(rfc5424, Lines) and not rfc5424.plain
    assert [sequence_id(f) for f in rfc5424] == [7]
