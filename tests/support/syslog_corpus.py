"""A seeded corpus of syslog frames (real samples, format examples and mutations of them) and a dump of
their parsed records, for comparing two builds of the parser (compiled and pure Python) byte for byte.

`python -m tests.support.syslog_corpus OUT` writes one canonical record per line, parsed by whichever
build this process imports (GOVNET_NATIVE=0 forces the Python sources).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from collectors.syslog.format_spec import FORMATS_DIR
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


def dump(lines: list[str]) -> list[bytes]:
    """Canonical bytes of every frame's record, parsed by the build this process imported."""
    from collectors.syslog.formats import load_formats
    from collectors.syslog.parse import parse_frame
    from logstore.record import canonical

    formats = load_formats()
    return [
        canonical(parse_frame(raw, recv, source, "tcp", formats, DEVICES, zones))
        for raw, recv, source, zones in frames(lines)
    ]


if __name__ == "__main__":
    Path(sys.argv[1]).write_bytes(b"\n".join(dump(texts())) + b"\n")
