"""Gaps in the devices' own message numbering (RFC 5424 `[meta sequenceId="N"]`), counted at ingest."""

from __future__ import annotations

import re

# A cheap byte search first: only frames that carry a sequenceId pay for a header match.
SEQUENCE_HINT = _HINT = b"sequenceId="
# Structured data sits in the header: a bounded prefix holds it (RFC 5424 SD is rarely over 1 KiB).
_HEAD = 4096
# RFC 5424 section 7.3.1: 1..2147483647, then it wraps to 1 (a lower value: a restart, not a gap).
_MAX = 2147483647
# On the raw bytes (ASCII header): `<PRI>1 TIMESTAMP HOST APP PROCID MSGID` then the SD elements, whose
# quoted values may hold `\"`, `\\` and `\]` escapes: ~5 us per numbered frame here, a full header parse ~30.
_SD_ELEMENT = rb'\[[^ \]"=]+(?: [^ \]"=]+="(?:[^"\\]|\\.)*")*\]'
_HEADER = re.compile(rb"<\d{1,3}>1 (?:[^ ]+ ){5}((?:" + _SD_ELEMENT + rb")+)", re.DOTALL)
_ELEMENT = re.compile(_SD_ELEMENT, re.DOTALL)
_SEQUENCE = re.compile(rb' sequenceId="(\d{1,10})"')


def sequence_id(raw: bytes) -> int | None:
    """The frame's RFC 5424 `meta` sequenceId, or None (no number, not RFC 5424, or out of range)."""
    if _HINT not in raw:
        return None
    head = _HEADER.match(raw, 0, _HEAD)
    if head is None:
        return None
    for element in _ELEMENT.finditer(head.group(1)):
        sd = element.group(0)
        if sd.startswith((b"[meta ", b"[meta]")):
            found = _SEQUENCE.search(sd)
            if found is None:
                return None
            n = int(found.group(1))
            return n if 1 <= n <= _MAX else None
    return None


class SequenceGaps:
    """Per source host: the last sequenceId seen and the messages missing so far."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.gaps: dict[str, int] = {}  # host -> messages missing (a jump from a to b > a+1 adds b-a-1)

    def observe(self, host: str, seq: int) -> int:
        """Record `seq` from `host`; return the messages this one shows missing (0 for none or a restart)."""
        prev = self.last.get(host)
        self.last[host] = seq
        self.gaps.setdefault(host, 0)
        if prev is None or seq <= prev + 1:
            # First number, the next one, a repeat or a lower value (device restart or wrap): no gap.
            return 0
        missing = seq - prev - 1
        self.gaps[host] += missing
        return missing
