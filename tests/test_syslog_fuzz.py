"""Fuzz the frame parser and the TCP framer: no exception escapes, raw bytes kept, bounded time."""

from __future__ import annotations

import base64
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.syslog.formats import load_formats
from collectors.syslog.framing import Framer
from collectors.syslog.parse import parse_frame

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
    start = time.perf_counter()
    rec = parse_frame(raw, 1_773_312_000.0, "10.0.0.1:1", "tcp", FORMATS, {})
    elapsed = time.perf_counter() - start
    assert base64.b64decode(rec["raw"]) == raw
    assert not any(f.startswith("parse_error") for f in rec["flags"]), rec["flags"]
    assert elapsed < 0.5, f"{elapsed:.3f}s for {len(raw)} bytes"  # catastrophic regex backtracking guard


@SETTINGS
@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(min_value=16, max_value=512))
def test_framer_is_bounded(chunks: list[bytes], max_frame: int) -> None:
    framer = Framer(max_frame=max_frame)
    for chunk in chunks:
        for frame in framer.feed(chunk):
            assert len(frame) <= max_frame
        assert len(framer.buf) <= max_frame + 300 + 12


def test_long_hostile_line_is_fast() -> None:
    raw = (
        b"<190>Mar 12 2024 10:46:04 h %%01IPS/4/DETECT(l):" + b"a=" * 20_000 + b"(" * 10_000 + b"\xff" * 1000
    )
    start = time.perf_counter()
    rec = parse_frame(raw, 1_773_312_000.0, "10.0.0.1:1", "tcp", FORMATS, {})
    assert time.perf_counter() - start < 2.0
    assert base64.b64decode(rec["raw"]) == raw
