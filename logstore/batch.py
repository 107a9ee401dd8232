"""Records serialised as store lines once their seqs are known, so the writer only chains them.

A parse worker knows the seq each record of its share of a batch will get (the writer hands batches
out in order and every frame is one record), so it builds the finished store lines itself: canonical
bytes with the seq, body hash and leaf hash, and the line around it with a blank chain hash. The
writer then computes one SHA-256 of 64 bytes per record (the chain, `digest.chain`) and writes its hex
into the blank. When the seqs turn out different (an audit record was appended in between), the writer
renumbers the run from its bytes (`renumbered`): same records, same formulas, new seqs.

The bytes and hashes are exactly those of `record.canonical`, `record.leaf_hash` and `record.chain_hash`
(what `logstore/verify.py` and an auditor recompute with the standard library).

Compiled with mypyc (logstore/native.py) when a C compiler was there at build time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson
from mypy_extensions import mypyc_attr

from core.samples import BoundedTable
from logstore.digest import leaf_into
from logstore.record import Record, canonical_stdlib, meta_bytes
from logstore.segment import UNCOUNTED, Tally, loads

BLANK = b"0" * 64  # the chain hash's place in a line until the writer fills it in
_HEAD: Final = b'{"h":"' + BLANK + b'","r":'
_TAIL: Final = b"}\n"
_JOINT: Final = _TAIL + _HEAD  # one record's end and the next one's start, appended in one step
HASH_AT = 6  # offset of the chain hash's hex in a line
BODY_AT: Final = len(_HEAD)  # offset of the record bytes in a line
# Fields the search index keeps, with their term prefixes: collected here on append (`Numberer.add`
# reads them in this order), read back from stored lines by logstore/search.py otherwise.
TERM_FIELDS = (("dst_ip", "d:"), ("src_ip", "s:"), ("user", "u:"))

_dumps: Final = orjson.dumps
_SORT_KEYS: Final = orjson.OPT_SORT_KEYS


@mypyc_attr(native_class=False)  # pickled between the parse workers and the writer: a plain class
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


def post(terms: dict[str, list[int]], value: str, seq: int) -> None:
    """Add `seq` to `value`'s list in `terms` (no empty list made when the value is already there)."""
    seqs = terms.get(value)
    if seqs is None:
        terms[value] = [seq]
    else:
        seqs.append(seq)


class Numberer:
    """Serialises records as the store lines of seqs `first`, `first + 1`, ... (see `Numbered`)."""

    def __init__(self, first: int) -> None:
        self.first = first
        self.next = first
        # Lines go straight into one growing buffer: keeping each record's bytes as its own object
        # until the run is done cost ~3 us a record more here (thousands of live 1 KiB allocations).
        # It always ends with the next line's head (`done` cuts the last one off).
        self._lines = bytearray(_HEAD)
        self._starts: list[int] = []
        self._leaves = bytearray()
        # The index tally by runs of records with the same (receive time, device, event type): the
        # lines of one read share all three, so a record usually only adds one to the last count.
        self._ts = ""
        self._device: str | None = None
        self._type = ""
        self._tail = b""  # the leaf metadata after the seq for that triple
        self._saids: list[tuple[str, str | None, str]] = []
        self._counts: list[int] = []
        # Search terms by field, keyed by the bare value (the prefixed term is made once per value).
        self._dst: dict[str, list[int]] = {}
        self._src: dict[str, list[int]] = {}
        self._user: dict[str, list[int]] = {}

    def add(self, rec: Record) -> None:
        """Number `rec` (in place: its `seq` is set, `""` values become None, one spelling of absent)."""
        seq = self.next
        self.next = seq + 1
        rec["seq"] = seq
        # Compiled, a look at each value costs ~0.15 us a record; the search of the canonical bytes
        # for `:""` it replaces cost ~0.8 (a quote is the commonest byte there). A copy of the values
        # as a list is iterated faster than the dict itself.
        for value in list(rec.values()):
            if isinstance(value, str) and not value:
                for key, given in rec.items():
                    if isinstance(given, str) and not given:
                        rec[key] = None
                break
        try:
            body: bytes = _dumps(rec, None, _SORT_KEYS)  # record.canonical
        except TypeError:  # integers beyond 64 bits
            body = canonical_stdlib(rec)
        ts: str = rec["recv_ts"]
        device: str | None = rec.get("device")
        event_type: str = rec["event_type"]
        counts = self._counts
        if counts and ts == self._ts and device == self._device and event_type == self._type:
            counts[-1] += 1
            tail = self._tail
        else:
            said = (ts, device, event_type)
            self._ts = ts
            self._device = device
            self._type = event_type
            self._saids.append(said)
            counts.append(1)
            # record.leaf_hash(meta_of(rec), body_hash(rec)), on digests instead of hex round trips. The
            # leaf metadata after the seq repeats for the lines of one read.
            got = _META_TAILS.get(said)
            if got is None:
                got = _META_TAILS.keep(said, meta_bytes([0, ts, device, event_type])[2:])
            tail = self._tail = got
        leaf_into(self._leaves, seq, tail, body)
        lines = self._lines
        self._starts.append(len(lines) - BODY_AT)
        lines += body
        lines += _JOINT
        value = rec.get("dst_ip")
        if isinstance(value, str):
            post(self._dst, value, seq)
        value = rec.get("src_ip")
        if isinstance(value, str):
            post(self._src, value, seq)
        value = rec.get("user")
        if isinstance(value, str):
            post(self._user, value, seq)

    def done(self) -> Numbered:
        """The numbered run (at least one record must have been added); the numberer is used up."""
        del self._lines[-BODY_AT:]  # the head no line follows
        terms: dict[str, list[int]] = {}
        for (_, prefix), found in zip(TERM_FIELDS, (self._dst, self._src, self._user), strict=True):
            for value, seqs in found.items():
                terms[prefix + value] = seqs
        return Numbered(self.first, self._lines, self._starts, self._leaves, self._tally(), terms)

    def _tally(self) -> Tally:
        # Per run of equal (time, device, type), in order: what SegmentIndex.add_entry on each record
        # would have made (dicts in order of first appearance, as they are written to the index).
        saids = self._saids
        counts = self._counts
        tss = [said[0] for said in saids]
        devices = [said[1] or "" for said in saids]
        types: dict[str, int] = {}
        for said, n in zip(saids, counts, strict=True):
            types[said[2]] = types.get(said[2], 0) + n
        tally = Tally(min(tss), max(tss), list(dict.fromkeys(devices)), types)
        if UNCOUNTED.isdisjoint(types):
            times, who, ns = tss, devices, counts
        else:
            keep = [i for i, said in enumerate(saids) if said[2] not in UNCOUNTED]
            times, who, ns = [tss[i] for i in keep], [devices[i] for i in keep], [counts[i] for i in keep]
        pairs: dict[tuple[str, str], int] = {}
        for t, device, n in zip(times, who, ns, strict=True):
            pair = (t[:13], device)
            pairs[pair] = pairs.get(pair, 0) + n
        for (hour, device), n in pairs.items():
            tally.hourly.setdefault(hour, {})[device] = n
        if times == sorted(times):  # receive times in order (the usual case): the last is the newest
            tally.device_last = dict(zip(who, times, strict=True))
        else:
            last = tally.device_last
            for device, t in zip(who, times, strict=True):
                if t > last.get(device, ""):
                    last[device] = t
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
