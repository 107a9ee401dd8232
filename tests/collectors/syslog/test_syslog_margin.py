"""The parse path's small savings (branch syslogmargin): values cut from an ASCII line's text are those
decoded from its bytes; parse workers run with their collector tuned; ports are read as specified."""

from __future__ import annotations

import random

from collectors.syslog import formats
from collectors.syslog.formats import load_formats, to_port
from collectors.syslog.parse_pool import Group, ParsePool
from core.gcsettings import GC_THRESHOLDS
from tests.support import syslog_corpus
from tests.support.syslog_hostile_parser import parse_reporting_gc


def reference_port(value: object) -> int | None:
    """A port 0-65535 written as ASCII digits (surrounding whitespace allowed), read without any cache."""
    if isinstance(value, int):
        return value if 0 <= value <= 65535 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 5 or any(ch not in "0123456789" for ch in text):
        return None
    return int(text) if int(text) <= 65535 else None


def port_texts(rng: random.Random) -> list[object]:
    fixed: list[object] = [
        "0", "1", "22", "445", "65535", "65536", "99999", "100000", "-1", "+1", " 80 ", "\t443\n", "",
        " ", "8O", "1.5", "0x50", "٣", "²", "１２", "00080", "080", "65535 ", "6553 5", "abc", "N/A",
        80, 0, 65535, 65536, -1, True, None, 3.0, b"80",
    ]  # fmt: skip
    alphabet = "0123456789 \t-+.x٣²１"
    fuzzed: list[object] = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(3000)
    ]
    return fixed + fuzzed + [str(rng.randint(0, 70000)) for _ in range(3000)]


def test_to_port_reads_ascii_digits_in_range_only() -> None:
    rng = random.Random(20)
    values = port_texts(rng)
    assert [to_port(v) for v in values] == [reference_port(v) for v in values]


def test_parse_workers_run_with_a_tuned_frozen_collector() -> None:
    pool = ParsePool(1, load_formats(), {}, parser=parse_reporting_gc)
    try:
        line = b"<190>Mar 12 2024 10:46:04 USG6600 x"
        groups: list[Group] = [([line], 1_773_312_000.0, "10.0.0.1:1", "udp")]
        (rec,) = pool.collect(pool.submit([(1, groups)]))
        threshold, _, frozen = str(rec["msg"]).partition(" frozen=")
        assert threshold == str(GC_THRESHOLDS)
        assert int(frozen) > 1000  # the compiled formats and modules, out of the collector's sight
    finally:
        pool.close()


def test_groups_cut_from_an_ascii_text_equal_the_decoded_bytes() -> None:
    """Every extract, rule and detect pattern of every format on the corpus (samples, examples, bench
    lines, mutations) and on lines with bytes that are not UTF-8: the groups `named_into` cuts from the
    text, when `ascii_text` gives one, are those it decodes from the bytes."""
    lines = [*syslog_corpus.texts(1500), *(t + "\udc80 x=\udcff" for t in syslog_corpus.texts(200, seed=21))]
    patterns = [
        p for f in load_formats() for p in (f.detect, *f.extract, *(r for r, _ in f.rules)) if p.groups
    ]
    cut = 0
    for line in lines:
        data = line.encode("utf-8", "surrogateescape")
        text = formats.ascii_text(line, data)
        assert (text is not None) == line.isascii()
        for pattern in patterns:
            decoded: dict[str, object] = {}
            given: dict[str, object] = {}
            assert pattern.named_into(data, decoded, True) == pattern.named_into(data, given, True, text)
            assert given == decoded, (pattern.pattern, line)
            cut += bool(text is not None and given)
    assert cut > 100  # the ASCII path was taken, with groups
