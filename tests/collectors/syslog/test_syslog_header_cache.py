"""The header front cache (collectors/syslog/rfc.py `_Front`): a line parsed after others with the same
front gives exactly the record it gives parsed alone, whatever its body says."""

from __future__ import annotations

import itertools
import random

import pytest

from collectors.syslog import rfc
from collectors.syslog.formats import load_formats
from collectors.syslog.parse import parse_frame
from logstore.record import canonical
from tests.support import syslog_corpus

FORMATS = load_formats()

# Fronts as devices and relays send them, each followed below by every body.
FRONTS = (
    "<190>Mar 12 2024 10:46:04 USG6600 ",  # Huawei USG (the ingest bench's front)
    "<188>Mar 12 2024 10:46:04 USG6600  ",  # two spaces before the body
    "2024-03-12T10:46:04.123+08:00 10.1.1.1 ",  # a relay's RFC 3339 stamp and address
    "<13>Mar  2 10:00:00 host: ",  # host with a colon
    "<13>Mar  2 10:00:00 fw01(root) ",  # StoneOS serial(vsys)
    "<13>Mar  2 10:00:00 src@AD-1 : ",  # Sangfor AD
    "%Mar 12 10:46:04:123 2024 H3C ",  # H3C
    "*Mar  1 00:00:01.123: ",  # IOS: time, then a colon and no host
    "Mar 12 2024 10:46:04: ",  # ASA: time and colon
    "008407: Mar 12 10:46:04 R1 ",  # sequence number
    '<14>Mar 12 10:46:04 "quoted" ',
    "Mar 24 18:06:03 192.168.100.2 ",  # a collector's BSD stamp and address (IOS, Topsec behind it)
    "<189>: sw01: ",  # IOS origin-id: an empty sequence number, then the host (a time follows in some bodies)
)
BODIES = (
    "%%01POLICY/6/POLICYDENY(l):vsys=public, protocol=6, source-ip=10.1.1.2, source-port=1, "
    "destination-ip=203.0.113.5, destination-port=445, rule-name=r1.",
    "SW 2 %%10SHELL/5/SHELL_LOGIN(l): admin logged in from 10.1.1.9.",  # sysname with a space
    "Mar 12 10:46:04 dev2 %%01IFPDT/4/IF_STATE(l)[3]:Interface GE0/0/8 has turned into DOWN state.",
    "2015 HOST %% 01 SHELL/5/CMDRECORD(s):Recorded command.",  # old VRP behind a relay
    "2024-03-12 10:46:05 fw2 sshd[12]: Accepted password for u from 1.2.3.4 port 22 ssh2",
    "sshd[12]: Accepted password for u from 1.2.3.4 port 22 ssh2",
    "%ASA-4-106023: Deny tcp src outside:198.51.100.7/4455 dst inside:10.0.0.1/80 by access-group x",
    ": after a colon",
    "=x",
    "[tag]: x",
    "x",
    "a" * 300 + " b",
    "\t tab",
    "date=2024-03-12 time=10:46:04 devname=FG1 type=traffic action=deny srcip=1.1.1.1",
    "中文 日志 %%01SEC/4/ATTACK(l):攻击",
    "1991219: Mar 24 18:06:03.424 UTC: %SEC_LOGIN-5-LOGIN_SUCCESS: Login Success [user: jo]",  # IOS seq+time
    "1991219: %SYS-5-CONFIG_I: Configured from console by jo",  # a sequence number and no time
    'id=tos time="2020-07-10 16:26:55" fw=TopsecOS  pri=5 type=mgmt user=su result=0',
    # After "host ", a colon: the host pattern's colon alternative reads two characters into the body,
    # and its end-of-text test whether a third follows (found by a fuzz of the cache).
    ":",
    ":\n",
    ":\nx",
    ": x",
)
RECV = (1_700_000_000.0, 1_704_067_199.5, 1_704_067_200.5)  # the last two on either side of a new year
ZONES: tuple[dict[str, str], ...] = ({}, {"10.0.0.1": "Europe/Berlin"})


def _record(raw: bytes, recv: float, zones: dict[str, str]) -> bytes:
    return canonical(parse_frame(raw, recv, "10.0.0.1:514", "tcp", FORMATS, {}, zones))


def _cold(raw: bytes, recv: float, zones: dict[str, str]) -> bytes:
    rfc.clear_caches()
    return _record(raw, recv, zones)


def test_fronts_are_remembered() -> None:
    """The cache is in use for these fronts (else the comparisons below would prove nothing)."""
    kept = []
    for front in FRONTS:
        rfc.clear_caches()
        _record((front + BODIES[0]).encode(), RECV[0], {})
        kept.append(any((front + BODIES[0]).startswith(f.key) for f in rfc._fronts))
    assert all(kept[:6]) and sum(kept) >= 9, kept


@pytest.mark.parametrize("front", FRONTS)
def test_same_front_other_bodies_warm_equals_cold(front: str) -> None:
    # Every body right after every other one with the same front, at the same receive day and device
    # zone as that line (a hit) and at another (the time differs: no hit may be taken).
    settings = list(itertools.product(RECV, ZONES))
    rfc.clear_caches()
    for n, (first, second) in enumerate(itertools.product(BODIES, repeat=2)):
        for warm_with, parse_with in ((n, n), (n, n + 1 + n % 5)):
            recv, zones = settings[warm_with % len(settings)]
            _record((front + first).encode(), recv, zones)
            recv, zones = settings[parse_with % len(settings)]
            raw = (front + second).encode()
            assert _record(raw, recv, zones) == _cold(raw, recv, zones), (front, first, second, recv, zones)


def test_corpus_warm_equals_cold() -> None:
    """Samples, format examples and mutations, in order (warm) and each alone (cold)."""
    rfc.clear_caches()
    frames = list(syslog_corpus.frames(syslog_corpus.texts(mutations=1500, seed=7)))
    warm = [
        canonical(parse_frame(raw, recv, src, "tcp", FORMATS, syslog_corpus.DEVICES, zones))
        for raw, recv, src, zones in frames
    ]
    for (raw, recv, src, zones), want in zip(frames, warm, strict=True):
        rfc.clear_caches()
        assert canonical(parse_frame(raw, recv, src, "tcp", FORMATS, syslog_corpus.DEVICES, zones)) == want


# Parts of fronts and bodies around the boundary between them, for a seeded fuzz.
_PRIS = ("", "<13>", "<190> ", "<13>1 ", "<1000>", "008407: ", "<13>12:  ", "<13>1: *", ".")
_STAMPS = (
    "Mar 12 2024 10:46:04", "Mar  2 10:00:00", "%Mar 12 10:46:04:123 2024", "2024-03-12T10:46:04.123+08:00",
    "2024-03-12 10:46:04", "*Mar  1 00:00:01.123:", "Mar 12 10:46:04 CST", "Feb 29 10:00:00",
    "Mar 12 10:46:04.5",
)  # fmt: skip
_HOSTS = (
    "USG6600", "h", "10.1.1.1", '"q"', "fw(root)", "src@AD", "2024", "a:b", "C", "host:", "x=y", "%X", "[t]:",
    "WARNING@LOGIN:", "<IP>", "a" * 260, "", "中文",
)  # fmt: skip
_SEPS = (" ", "  ", " : ", ": ", "\t", " \t", ":", " \n")
_ATOMS = (
    "%%01POLICY/6/X(l):a=b", "X %%01Y", "Mar 12 10:46:04 dev2 ", "2015 HOST %% 01 ", "sshd[12]: ok", ":", "=",
    "[", " ", "\t", "\n", "%", "%%", "a", "1", "(x)", '"', "中", "CST ", "2024 ",
)  # fmt: skip


def test_fuzzed_fronts_warm_equals_cold() -> None:
    """Random fronts, then two bodies made of separators, colons, newlines and stamps, the second often a
    cut of the first: the second line parsed right after the first equals it parsed cold."""
    rnd = random.Random(20)
    for _ in range(20_000):
        front = (
            rnd.choice(_PRIS)
            + rnd.choice(_STAMPS)
            + rnd.choice(_SEPS)
            + rnd.choice(_HOSTS)
            + rnd.choice(_SEPS)
        )
        first = "".join(rnd.choice(_ATOMS) for _ in range(rnd.randint(0, 5)))
        if rnd.random() < 0.5:
            second = first[: rnd.randint(0, len(first))]
        else:
            second = "".join(rnd.choice(_ATOMS) for _ in range(rnd.randint(0, 3)))
        recv, zones = rnd.choice(RECV), rnd.choice(ZONES)
        _record((front + first).encode(), recv, zones)
        if rnd.random() < 0.3:
            recv, zones = rnd.choice(RECV), rnd.choice(ZONES)
        raw = (front + second).encode()
        assert _record(raw, recv, zones) == _cold(raw, recv, zones), raw
