"""A seeded corpus of syslog frames (real samples, format examples and mutations of them) and a dump of
their parsed and numbered records, for comparing two builds (compiled and pure Python) byte for byte.

`python -m tests.support.syslog_corpus OUT` writes one canonical record per line, parsed by whichever
build this process imports (GOVNET_NATIVE=0 forces the Python sources), then the store lines, leaves,
tallies and terms of those records and some odd ones numbered in runs (`numbered`).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from collectors.syslog.format_spec import FORMATS_DIR
from logstore.record import Record, canonical, new_record
from tests.support.paths import DATA

# A policy line of the ingest bench (bench/syslog_ingest.py) and the prefixes relays and odd devices put
# in front of a body: PRI variants, a relay's RFC 3339 stamp and address, year-less and H3C stamps.
BENCH = (
    "<190>Mar 12 2024 10:46:04 USG6600 %%01POLICY/6/POLICYDENY(l):vsys=public, protocol=6, "
    "source-ip=10.1.{a}.{b}, source-port={sp}, destination-ip=203.0.113.5, destination-port=445, "
    "time=2024/3/12 10:46:04, source-zone=trust, destination-zone=untrust, rule-name=deny_smb_{n}."
)
PRIS = ("", "<13>", "<190>", "<34> ", "<999>", "<13>1 ", "<0>", "<1234>", "<>")
PREFIXES = (
    "", "2024-03-12T10:46:04.123+08:00 10.1.1.1 ", "Mar 12 10:46:04 ", "2015 ",
    "Mar 12 2024 10:46:04 10.0.0.9 ", "2024-03-12T10:46:04.5Z 192.168.1.1 Mar 12 10:46:04 ",
    "*Mar  1 00:00:01: ", "%Mar 12 10:46:04:123 2024 ", "008407: ", "Feb 29 10:00:00 ",
)  # fmt: skip
RECV = (1_700_000_000.0, 1_719_806_400.0, 1_704_067_199.5, 1_735_689_600.25)
DEVICES = {"10.0.0.1": "fw1", "::1": "v6dev"}
ZONES = {"10.0.0.1": "Europe/Berlin"}
SOURCES = ("10.0.0.1:514", "10.0.0.2:514", "[::1]:6514")


def texts(mutations: int = 3000, seed: int = 20) -> list[str]:
    """Sample lines, format examples, bench lines and seeded mutations of them."""
    samples = DATA / "syslog-samples" / "samples.jsonl"
    base = [
        json.loads(line)["raw"] for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    for path in sorted(FORMATS_DIR.glob("*.yaml")):
        base += [ex["message"] for ex in yaml.safe_load(path.read_text(encoding="utf-8")).get("examples", [])]
    out = list(base) + [BENCH.format(a=i % 3, b=i % 250, sp=1024 + i, n=i % 97) for i in range(100)]
    rnd = random.Random(seed)
    for _ in range(mutations):
        line = rnd.choice(base)
        k = rnd.random()
        if k < 0.3:  # another header in front
            out.append(rnd.choice(PRIS) + rnd.choice(PREFIXES) + line)
        elif k < 0.5:  # the head of one line on the tail of another
            other = rnd.choice(base)
            out.append(line[: rnd.randrange(len(line) + 1)] + other[rnd.randrange(len(other) + 1) :])
        elif k < 0.75:  # characters replaced by separators, digits, quotes, CJK
            chars = list(line)
            for _ in range(rnd.randint(1, 5)):
                chars[rnd.randrange(len(chars))] = rnd.choice(" :=,%<>[]\"'0123456789aZ-./\t中")
            out.append("".join(chars))
        elif k < 0.85:
            out.append(line.replace(" ", "  ", rnd.randint(0, 3)))
        else:
            out.append(rnd.choice(PRIS) + line)
    return out


def frames(lines: list[str]) -> Iterator[tuple[bytes, float, str, dict[str, str] | None]]:
    """Each line as UTF-8 (and GBK where that differs), from each source, with and without zones."""
    for i, text in enumerate(lines):
        encodings = [text.encode()]
        try:
            gbk = text.encode("gbk")
        except UnicodeEncodeError:
            gbk = encodings[0]
        if gbk != encodings[0]:
            encodings.append(gbk)
        for raw in encodings:
            for source in SOURCES:
                yield raw, RECV[i % len(RECV)], source, ZONES if i % 2 else None


def records(lines: list[str]) -> list[Record]:
    """Every frame's record, parsed by the build this process imported."""
    from collectors.syslog.formats import load_formats
    from collectors.syslog.parse import parse_frame

    formats = load_formats()
    return [
        parse_frame(raw, recv, source, "tcp", formats, DEVICES, zones)
        for raw, recv, source, zones in frames(lines)
    ]


def dump(lines: list[str]) -> list[bytes]:
    """Canonical bytes of every frame's record."""
    return [canonical(rec) for rec in records(lines)]


EVENTS = ("policy_deny", "audit", "store", "other")  # audit and store records are not counted per hour
ODD: list[dict[str, Any]] = [
    {"user": "", "src_ip": "10.0.0.9"},
    {"msg": 'a:""b\x00\x1f\u2028😀', "dst_ip": "203.0.113.5"},
    {"src_port": 2**70, "user": "bob"},
    {"dst_ip": "", "src_ip": "1.2.3.4", "user": "alice"},
    {"flags": ["", "x"], "host": ':"', "rule": '"":""'},
    {"dst_ip": 5, "src_ip": None},
    {"msg": "", "raw": "", "app": ""},
    {},
]


def odd_records(n: int = 400, seed: int = 7) -> list[Record]:
    """Records no parse makes, for the numbering: "" values (absent, spelled as None once numbered), a
    body and metadata needing the standard library's encoder (a 70-bit integer), control and non-BMP
    characters, quotes around colons, non-text search fields, the store's own event types (left out of
    the per-hour counts) and receive times out of order."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        rec = new_record(
            recv_ts=f"2024-03-12T1{rnd.randrange(10)}:00:0{i % 7}.000000Z", source="10.0.0.1:514",
            device=rnd.choice([None, "fw1", "", "核心-1"]), event_type=rnd.choice(EVENTS),
        )  # fmt: skip
        rec.update(ODD[i % len(ODD)])
        out.append(rec)
    return out


def numbered(recs: list[Record], seed: int = 20) -> list[bytes]:
    """`recs` numbered in runs of seeded sizes (some renumbered, as the writer does when the seqs moved):
    each run's store lines, then a line of its offsets, leaves, tally and terms, then the records as
    numbering left them (their seq set, "" made None)."""
    from logstore.batch import number, renumbered

    rnd = random.Random(seed)
    out: list[bytes] = []
    at, seq = 0, 1
    while at < len(recs):
        part = recs[at : at + rnd.choice([1, 2, 3, 17, 100, 500, 2000])]
        at += len(part)
        run = number(part, seq)
        if rnd.random() < 0.2:
            run = renumbered(run, seq + rnd.randrange(1, 5))
        seq = run.first + run.count
        t = run.tally
        out.append(bytes(run.lines))
        about = [run.first, run.starts, run.leaves.hex(), t.min_ts, t.max_ts, t.devices, t.types, t.hourly]
        out.append(
            json.dumps([*about, t.device_last, sorted(run.terms.items())], ensure_ascii=False).encode()
        )
        out += [canonical(rec) for rec in part]
    return out


def full_dump() -> bytes:
    """What `python -m tests.support.syslog_corpus OUT` writes: the corpus's canonical records, then
    those records and the odd ones, shuffled, numbered (`numbered`)."""
    parsed = records(texts())
    out = [canonical(rec) for rec in parsed]
    recs = parsed + odd_records()
    random.Random(5).shuffle(recs)
    return b"\n".join(out + numbered(recs)) + b"\n"


if __name__ == "__main__":
    Path(sys.argv[1]).write_bytes(full_dump())
