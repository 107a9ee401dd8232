"""Records serialised as store lines once their seqs are known, so the writer only chains them.

A parse worker knows the seq each record of its share of a batch will get (the writer hands batches
out in order and every frame is one record), so it builds the finished store lines itself: canonical
bytes with the seq, body hash and leaf hash, and the line around it with a blank chain hash. The
writer then computes one SHA-256 of 64 bytes per record (the chain) and writes its hex into the
blank. When the seqs turn out different (an audit record was appended in between), the writer
renumbers the run from its bytes (`renumbered`): same records, same formulas, new seqs.

The bytes and hashes are exactly those of `record.canonical`, `record.leaf_hash` and `record.chain_hash`
(what `logstore/verify.py` and an auditor recompute with the standard library).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from core.samples import BoundedTable
from logstore.record import Record, canonical, meta_bytes
from logstore.segment import UNCOUNTED, Tally, loads

BLANK = b"0" * 64  # the chain hash's place in a line until the writer fills it in
_HEAD = b'{"h":"' + BLANK + b'","r":'
_TAIL = b"}\n"
HASH_AT = 6  # offset of the chain hash's hex in a line
BODY_AT = len(_HEAD)  # offset of the record bytes in a line
# Fields the search index keeps, with their term prefixes (logstore/search.py reads the same terms
# back from stored lines when a segment's terms were not collected on append).
TERM_FIELDS = (("dst_ip", "d:"), ("src_ip", "s:"), ("user", "u:"))


@dataclass(slots=True)
class Numbered:
    """Consecutive records (seqs `first`..) as store lines whose chain hashes are still blank.

    `LogStore.append_batch` fills the blanks in `lines` in place: a run is appended once.
    """

    first: int
    lines: bytearray | memoryview  # each `{"h":"<BLANK>","r":<canonical record>}\n` (writable)
    starts: list[int]  # offset of each line in `lines`
    leaves: bytes | bytearray  # the records' 32-byte leaf digests, concatenated
    tally: Tally
    terms: dict[str, list[int]]  # search term -> seqs of the records holding it

    @property
    def count(self) -> int:
        """Number of records."""
        return len(self.starts)

    def bodies(self) -> list[bytes]:
        """Each record's canonical bytes."""
        lines = self.lines
        ends = [*self.starts[1:], len(lines)]
        return [bytes(lines[s + BODY_AT : e - len(_TAIL)]) for s, e in zip(self.starts, ends, strict=True)]


# (ts, device, type) -> `,"ts",..]`, emptied past 4 096 entries
_META_TAILS: BoundedTable[tuple[str, str | None, str], bytes] = BoundedTable(4097)


class Numberer:
    """Serialises records as the store lines of seqs `first`, `first + 1`, ... (see `Numbered`)."""

    def __init__(self, first: int) -> None:
        self.first = first
        self.next = first
        # Lines go straight into one growing buffer: keeping each record's bytes as its own object
        # until the run is done cost ~3 us a record more here (thousands of live 1 KiB allocations).
        self._lines = bytearray()
        self._starts: list[int] = []
        self._leaves = bytearray()
        self._ts: list[str] = []
        self._devices: list[str | None] = []
        self._types: list[str] = []
        self._terms: dict[str, list[int]] = {}

    def add(self, rec: Record) -> None:
        """Number `rec` (in place: its `seq` is set, `""` values become None, one spelling of absent)."""
        seq = self.next
        self.next = seq + 1
        rec["seq"] = seq
        body = canonical(rec)
        # `:""` in canonical JSON is a value that is the empty string (a quote inside a string is
        # escaped): a byte search instead of comparing every value with "" (~0.3 us a record).
        if b':""' in body:
            for key, value in rec.items():
                if value == "":
                    rec[key] = None
            body = canonical(rec)
        ts: str = rec["recv_ts"]
        device: str | None = rec.get("device")
        event_type: str = rec["event_type"]
        # record.leaf_hash(meta_of(rec), body_hash(rec)), on digests instead of hex round trips. The
        # leaf metadata after the seq repeats for the lines of one read (one receive time, one source).
        said = (ts, device, event_type)
        tail = _META_TAILS.get(said)
        if tail is None:
            tail = _META_TAILS.keep(said, meta_bytes([0, ts, device, event_type])[2:])
        sha256 = hashlib.sha256
        digest = sha256(b"\x00[%d" % seq + tail + sha256(body).hexdigest().encode()).digest()
        self._leaves += digest
        lines = self._lines
        self._starts.append(len(lines))
        lines += _HEAD
        lines += body
        lines += _TAIL
        self._ts.append(ts)
        self._devices.append(device)
        self._types.append(event_type)
        for key, prefix in TERM_FIELDS:
            value = rec.get(key)
            if isinstance(value, str):
                seqs = self._terms.get(prefix + value)
                if seqs is None:
                    self._terms[prefix + value] = [seq]
                else:
                    seqs.append(seq)

    def done(self) -> Numbered:
        """The numbered run (at least one record must have been added)."""
        return Numbered(self.first, self._lines, self._starts, self._leaves, self._tally(), self._terms)

    def _tally(self) -> Tally:
        # Whole-list builtins instead of a Python step per record (SegmentIndex.add_entry's results).
        tss = self._ts
        devices = [d or "" for d in self._devices]
        types = dict(Counter(self._types))
        tally = Tally(min(tss), max(tss), list(dict.fromkeys(devices)), types)
        if UNCOUNTED.isdisjoint(types):
            counted = tss, devices
        else:
            keep = [i for i, t in enumerate(self._types) if t not in UNCOUNTED]
            counted = [tss[i] for i in keep], [devices[i] for i in keep]
        times, who = counted
        for (hour, device), n in Counter(zip([t[:13] for t in times], who, strict=True)).items():
            tally.hourly.setdefault(hour, {})[device] = n
        if times == sorted(times):  # receive times in order (the usual case): the last is the newest
            tally.device_last = dict(zip(who, times, strict=True))
        else:
            last = tally.device_last
            for device, ts in zip(who, times, strict=True):
                if ts > last.get(device, ""):
                    last[device] = ts
        return tally


def number(recs: list[Record], first: int) -> Numbered:
    """`recs` numbered from `first` (at least one record)."""
    numberer = Numberer(first)
    for rec in recs:
        numberer.add(rec)
    return numberer.done()


def renumbered(run: Numbered, first: int) -> Numbered:
    """The same records numbered from `first` (the writer's fallback when the seqs it assumed moved)."""
    return number([decode(body) for body in run.bodies()], first)


def decode(body: bytes) -> Record:
    """A record from its canonical bytes."""
    rec: Any = loads(body)
    if not isinstance(rec, dict):
        raise ValueError("not a record")
    return rec
