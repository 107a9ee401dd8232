"""Auditor search: by source/destination IP, user, event type, device, time range and text, paged by seq.

Each sealed segment gets a term index when it is sealed (`seg-N.idx`, SQLite: one row per term of
`src_ip`, `dst_ip` and `user` with the seqs holding it; indexes written before kept a `(term, seq)`
row per pair and are still read), and its gzip file is written as independent members of ~256 KiB
whose offsets are in the segment's meta file. A search by IP or user therefore reads only the
matching seqs from each index and decompresses only the blocks that hold them; everything else
(device and event type, which the segment meta already prunes, text, the active segment and
segments without an index) is scanned with a cheap byte prefilter.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import re
import sqlite3
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from logstore.batch import TERM_FIELDS, post
from logstore.record import Record
from logstore.segment import SEQ_KEY, SegmentIndex, read_block

PREFIX = {field.encode(): prefix for field, prefix in TERM_FIELDS}
_TERM = re.compile(rb',"(' + b"|".join(PREFIX) + rb')":"((?:[^"\\]|\\.)*)"')
INDEX_SUFFIX = ".idx"
_KEYS = tuple((b',"' + field + b'":"', prefix) for field, prefix in PREFIX.items())
_STRING = re.compile(rb'((?:[^"\\]|\\.)*)"')
_DIGITS = re.compile(rb"\d+")


def _text(value: bytes) -> str:
    return json.loads(b'"' + value + b'"') if b"\\" in value else value.decode("utf-8", "replace")


def index_path(seg_dir: Path, name: str) -> Path:
    """Where a segment's term index lives."""
    return seg_dir / f"{name}{INDEX_SUFFIX}"


def pack_seqs(seqs: list[int]) -> bytes:
    """Seqs as the index stores them: signed 64-bit little-endian integers."""
    packed = array("q", seqs)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def unpack_seqs(data: bytes) -> list[int]:
    """Inverse of `pack_seqs`."""
    packed = array("q")
    packed.frombytes(data)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tolist()


class PostingCollector:
    """Collects term -> seqs from record lines as a segment is sealed (or takes them from the writer,
    which collected them on append), then writes the index."""

    def __init__(self) -> None:
        self.terms: dict[str, list[int]] = {}

    def add_block(self, lines: bytes) -> None:
        """Index a block of whole record lines (the same terms as `add` on each line, found with byte
        searches: in canonical JSON these quoted keys can only be keys, and a regex scan of every
        ~1 KiB line cost ~8 us a record on the sealing path)."""
        for line in lines.split(b"\n"):
            at = line.find(b',"seq":')
            if at < 0:
                continue
            digits = _DIGITS.match(line, at + 7)
            if digits is None:
                continue
            seq = int(digits.group(0))
            for key, prefix in _KEYS:
                i = line.find(key)
                if i < 0:
                    continue
                i += len(key)
                value = line[i : line.find(b'"', i)]
                if b"\\" in value:  # an escaped quote may come first: read the whole string
                    m = _STRING.match(line, i)
                    if m is None:
                        continue
                    value = m.group(1)
                post(self.terms, prefix + _text(value), seq)

    def add(self, seq: int, line: bytes) -> None:
        """Index one stored record line (canonical JSON: these keys can only be keys, never text)."""
        for m in _TERM.finditer(line):
            value = m.group(2)
            text = json.loads(b'"' + value + b'"') if b"\\" in value else value.decode("utf-8", "replace")
            post(self.terms, PREFIX[m.group(1)] + text, seq)

    def write(self, path: Path) -> None:
        """Write the index atomically (tmp, fsync, rename): one row per term, its seqs packed.

        A row per term, not per (term, seq): inserting ~2 rows per record into a SQLite B-tree cost
        ~1 us each on the sealing path; a segment holds far fewer distinct terms than records."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")  # fsynced below, before the rename publishes it
            conn.execute("CREATE TABLE t (term TEXT PRIMARY KEY, seqs BLOB NOT NULL) WITHOUT ROWID")
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO t VALUES (?, ?)",
                [(term, pack_seqs(sorted(set(self.terms[term])))) for term in sorted(self.terms)],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)


def index_rows(path: Path, terms: list[str] | None = None) -> dict[str, list[int]]:
    """term -> sorted seqs from a segment's index (all terms, or only `terms`), in either format."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        where = f" WHERE term IN ({','.join('?' * len(terms))})" if terms is not None else ""
        out: dict[str, list[int]] = {}
        if "t" in tables:
            for term, seqs in conn.execute(f"SELECT term, seqs FROM t{where}", terms or []):  # noqa: S608
                out[term] = unpack_seqs(seqs)
        else:  # an index written before terms were grouped: a row per (term, seq)
            cur = conn.execute(f"SELECT term, seq FROM p{where} ORDER BY term, seq", terms or [])  # noqa: S608
            for term, seq in cur:
                out.setdefault(term, []).append(int(seq))
        return out
    finally:
        conn.close()


@dataclass(frozen=True)
class Query:
    """What an auditor searches for; every given filter must hold (IP matches source or destination)."""

    from_ts: str = ""
    to_ts: str = "~"
    device: str | None = None
    event_type: str | None = None
    src_ip: str | None = None
    dst_ip: str | None = None
    ip: str | None = None
    user: str | None = None
    text: str | None = None

    def matches(self, rec: Record) -> bool:
        """True when the record satisfies every filter."""
        return (
            self.from_ts <= rec["recv_ts"] < self.to_ts
            and (self.device is None or rec.get("device") == self.device)
            and (self.event_type is None or rec.get("event_type") == self.event_type)
            and (self.src_ip is None or rec.get("src_ip") == self.src_ip)
            and (self.dst_ip is None or rec.get("dst_ip") == self.dst_ip)
            and (self.ip is None or self.ip in (rec.get("src_ip"), rec.get("dst_ip")))
            and (self.user is None or rec.get("user") == self.user)
            and (not self.text or self._text_in(rec))
        )

    def _text_in(self, rec: Record) -> bool:
        # Searches are audited with their filters in the audit record's message: a text search
        # would find every earlier search for the same text. Text matches device lines; audit
        # records only when they are asked for (event_type=audit).
        if rec.get("event_type") == "audit" and self.event_type != "audit":
            return False
        return bool(self.text) and str(self.text).lower() in (rec.get("msg") or "").lower()

    def terms(self) -> list[list[str]]:
        """Index lookups: every inner list is an OR (one IP as source or destination), the lists AND."""
        out = []
        if self.src_ip is not None:
            out.append(["s:" + self.src_ip])
        if self.dst_ip is not None:
            out.append(["d:" + self.dst_ip])
        if self.ip is not None:
            out.append(["s:" + self.ip, "d:" + self.ip])
        if self.user is not None:
            out.append(["u:" + self.user])
        return out

    def needles(self) -> list[bytes]:
        """Byte strings a matching record's line must contain (cheap prefilter before parsing)."""
        out = []
        for value in (self.src_ip, self.dst_ip, self.ip, self.user):
            if value is not None:
                out.append(json.dumps(value, ensure_ascii=False)[1:-1].encode())
        return out


@dataclass
class Page:
    """One page of results in seq order; `next_after` is the seq to continue after (None: last page).

    `complete` is False when the search stopped at `max_examined` records before filling the page:
    then `next_after` is the last record examined, and paging on continues the search from there.
    """

    items: list[Record]
    next_after: int | None
    used_index: int = 0  # segments answered from their term index
    scanned: int = 0  # segments scanned
    examined: int = 0  # records looked at (index candidates and scanned lines)
    complete: bool = True


def search(
    store: Any,
    query: Query,
    after_seq: int = 0,
    limit: int = 50,
    use_index: bool = True,
    max_examined: int | None = None,
) -> Page:
    """The first `limit` records after `after_seq` matching `query` (store: a LogStore, reader or writer).

    `use_index=False` scans every segment (the benchmark's anchor); `max_examined` bounds the work of
    one call (a text that matches nothing must not read the whole store in one request)."""
    page = Page([], None)
    for seg in store.segments():
        if seg.count == 0 or seg.last_seq <= after_seq:
            continue
        if not seg.may_hold(query.from_ts, query.to_ts, query.device, query.event_type):
            continue
        idx = index_path(store.seg_dir, seg.name)
        sealed = seg is not store.active
        if use_index and query.terms() and sealed and seg.blocks and idx.exists():
            page.used_index += 1
            found = _by_index(store, seg, idx, query, after_seq)
        else:
            page.scanned += 1
            found = _by_scan(store, seg, query, after_seq)
        for seq, rec in found:
            if rec is not None:
                if len(page.items) == limit:
                    page.next_after = page.items[-1]["seq"]
                    return page
                page.items.append(rec)
            page.examined += 1
            if max_examined is not None and page.examined >= max_examined:
                if len(page.items) < limit:
                    page.complete = False
                    page.next_after = seq
                else:
                    page.next_after = page.items[-1]["seq"]
                return page
    return page


def _loads(line: bytes) -> Record | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    rec = obj.get("r") if isinstance(obj, dict) else None
    return rec if isinstance(rec, dict) else None


def _by_scan(
    store: Any, seg: SegmentIndex, query: Query, after_seq: int
) -> Iterator[tuple[int, Record | None]]:
    """(seq, record if it matches else None) for every record after `after_seq` in the segment."""
    needles = query.needles()
    with contextlib.suppress(FileNotFoundError):
        for line in store.segment_lines(seg):
            m = SEQ_KEY.search(line)
            if m is None:
                continue
            seq = int(m.group(1))
            if seq <= after_seq:
                continue
            if needles and not all(n in line for n in needles):
                yield seq, None
                continue
            rec = _loads(line)
            yield seq, rec if rec is not None and rec.get("seq") == seq and query.matches(rec) else None


def _seqs(idx: Path, query: Query, after_seq: int) -> Iterator[int]:
    """Seqs of the most selective term list (the record filter checks the others)."""
    best: list[int] | None = None
    for terms in query.terms():
        found = index_rows(idx, terms)
        seqs = sorted(set().union(*found.values()))
        if best is None or len(seqs) < len(best):
            best = seqs
    assert best is not None
    yield from best[bisect.bisect_right(best, after_seq) :]


def _by_index(
    store: Any, seg: SegmentIndex, idx: Path, query: Query, after_seq: int
) -> Iterator[tuple[int, Record | None]]:
    path = store.segment_path(seg)
    firsts = [b[0] for b in seg.blocks]
    cached: tuple[int, list[bytes]] | None = None
    for seq in _seqs(idx, query, after_seq):
        block = bisect.bisect_right(firsts, seq) - 1
        if block < 0:
            yield seq, None
            continue
        if cached is None or cached[0] != block:
            cached = (block, read_block(path, seg.blocks, block).splitlines())
        lines = cached[1]
        pos = seq - firsts[block]  # seqs are gap-free inside a segment: line i holds first + i
        rec = _loads(lines[pos]) if 0 <= pos < len(lines) else None
        yield seq, rec if rec is not None and rec.get("seq") == seq and query.matches(rec) else None


def fetch(store: Any, seqs: list[int]) -> list[Record]:
    """The records with these seqs (those that exist), in seq order: what an alert links to."""
    wanted = sorted(set(seqs))
    out: list[Record] = []
    segs = store.segments()
    for seg in segs:
        inside = [s for s in wanted if seg.count and seg.first_seq <= s <= seg.last_seq]
        if not inside:
            continue
        if seg is not store.active and seg.blocks:
            firsts = [b[0] for b in seg.blocks]
            path = store.segment_path(seg)
            cached: tuple[int, list[bytes]] | None = None
            for seq in inside:
                block = bisect.bisect_right(firsts, seq) - 1
                if cached is None or cached[0] != block:
                    cached = (block, read_block(path, seg.blocks, block).splitlines())
                pos = seq - firsts[block]
                rec = _loads(cached[1][pos]) if 0 <= pos < len(cached[1]) else None
                if rec is not None and rec.get("seq") == seq:
                    out.append(rec)
            continue
        todo = set(inside)
        for line in store.segment_lines(seg):
            m = SEQ_KEY.search(line)
            if m and int(m.group(1)) in todo:
                rec = _loads(line)
                if rec is not None:
                    out.append(rec)
                    todo.discard(rec["seq"])
                    if not todo:
                        break
    return out
