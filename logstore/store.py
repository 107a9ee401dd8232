"""The append-only store: group-committed segments, hash chain, rotation, compression, retention, budget."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logstore.batch import HASH_AT, Numbered, Numberer, decode, renumbered
from logstore.digest import chain, merkle_root_packed
from logstore.lock import WriterLock
from logstore.merkle import merkle_root
from logstore.record import ZERO_HASH, Record, iso_utc, new_record
from logstore.search import PostingCollector, index_path
from logstore.segment import (
    Appender,
    BlockCompressor,
    SegmentIndex,
    Staging,
    compress_segment,
    decode_line,
    entries,
    entries_of,
    fsync_dir,
    read_lines,
    segment_name,
    write_atomic,
)
from logstore.verify import Entry, Problem, check_chain

DAY = 86400.0
SETTINGS = "settings.json"


@dataclass(slots=True)
class StoreConfig:
    """Tunables of a store; retention defaults to 180 days (网络安全法 Art. 21: at least six months)."""

    max_segment_bytes: int = 64 * 1024 * 1024
    retention_days: float = 180.0
    budget_bytes: int | None = None
    warn_ratio: float = 0.8
    compress: bool = True
    # Compression level of sealed segments (ISA-L's deflate, 0-3, plain gzip members): level 1 costs
    # ~0.25 us per record of the bench's firewall lines for 23:1; zlib's level 1 cost 1.8-3.4 us for 22:1.
    compress_level: int = 1
    # Compress and index a sealed segment in a background thread, so the append path never waits for it
    # (the syslog receiver does; tools and tests that read right after sealing keep it synchronous).
    compress_in_background: bool = False


class ReadOnlyStore(RuntimeError):
    """A write was attempted on a store opened read-only."""


class LogStore:
    """Append-only log store in one folder; `append_batch` returns only after the batch is fsynced.

    One writer per store (an OS lock, `logstore.lock`): a second writer raises `StoreLocked` naming
    the holder's PID. `readonly=True` opens a reader: no lock, no file is created, changed or
    repaired; it sees a consistent snapshot (taken at open and at each `refresh()`) while the writer
    goes on appending, sealing and compressing.
    """

    def __init__(
        self,
        root: Path,
        config: StoreConfig | None = None,
        clock: Callable[[], float] = time.time,
        readonly: bool = False,
        lock: WriterLock | None = None,
    ) -> None:
        self.root = Path(root)
        self.config = config or StoreConfig()
        self.clock = clock
        self.readonly = readonly
        self.seg_dir = self.root / "segments"
        self._lock = threading.RLock()
        self._writer_lock: WriterLock | None = None
        # Called with each durable batch (records carry their seq) by the writer, under its lock.
        self.on_append: list[Callable[[list[Record]], None]] = []
        self.metrics: dict[str, float] = {
            "appended_total": 0,
            "batches_total": 0,
            "fsyncs_total": 0,
            "segments_sealed_total": 0,
            "segments_removed_total": 0,
            "budget_ratio": 0.0,
            "budget_warning": 0,
            "compress_errors_total": 0,
            "renumbered_total": 0,  # records a parse worker numbered from a seq that moved on
        }
        self._fh: Appender  # appends to the active segment (a writer only)
        self._staging = Staging()  # its direct writes' buffer, kept from one segment to the next
        # Compresses the active segment as it is appended (None: it is compressed from its file when
        # sealed, e.g. a segment reopened half full).
        self._gz: BlockCompressor | None = None
        self._compressor: threading.Thread | None = None  # compressing the last sealed segment
        self.compress_error: str | None = None
        # Leaf digests of the active segment, kept as they are written so sealing does not re-read
        # and re-hash 64 MiB (that cost more than parsing); 32 bytes per record, concatenated.
        self._leaves = bytearray()
        # Search terms of the active segment (term -> seqs), from the numbered records, so sealing
        # does not re-scan 64 MiB for them (~4 us a record); None when the segment was reopened with
        # records whose terms were not collected (sealing then reads them from the lines).
        self._postings: dict[str, list[int]] | None = {}
        self.active: SegmentIndex
        self.anchor: dict[str, Any]
        self.sealed: list[SegmentIndex]
        if readonly:
            if not self.seg_dir.is_dir():
                raise FileNotFoundError(f"no log store at {self.root}")
            self._reader_pos = 0
            self.refresh()
            return
        self.seg_dir.mkdir(parents=True, exist_ok=True)
        if lock is not None and lock.held:
            self._writer_lock = lock
        else:
            self._writer_lock = WriterLock(self.root)
            self._writer_lock.acquire()
        try:
            self.anchor = self._read_anchor()
            self.sealed = self._read_sealed()
            self._open_active()
            # What readers (the API's audit statistics) report as the retention target and budget.
            settings = {
                "retention_days": self.config.retention_days,
                "budget_bytes": self.config.budget_bytes,
            }
            if self.settings() != settings:
                write_atomic(self.root / SETTINGS, json.dumps(settings).encode())
        except BaseException:
            self._writer_lock.release()
            raise

    def settings(self) -> dict[str, Any]:
        """Retention target and disk budget as the writer last declared them (empty if never)."""
        try:
            data = json.loads((self.root / SETTINGS).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def writable(self) -> bool:
        """True for the (single) writer."""
        return not self.readonly

    # --- opening -------------------------------------------------------------------------------------

    def _read_anchor(self) -> dict[str, Any]:
        path = self.root / "anchor.json"
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        return {"seq": 0, "hash": ZERO_HASH, "removed": []}

    def _read_sealed(self) -> list[SegmentIndex]:
        out = []
        # A reader refreshes often (every API search): parse a meta file again only when it changed.
        cache: dict[str, tuple[int, SegmentIndex]] = getattr(self, "_meta_cache", {})
        fresh: dict[str, tuple[int, SegmentIndex]] = {}
        for meta in sorted(self.seg_dir.glob("seg-*.meta.json")):
            stamp = meta.stat().st_mtime_ns
            hit = cache.get(meta.name)
            seg = hit[1] if hit is not None and hit[0] == stamp else None
            if seg is None:
                seg = SegmentIndex.from_json(json.loads(meta.read_text()))
            fresh[meta.name] = (stamp, seg)
            out.append(seg)
        if self.readonly:
            self._meta_cache = fresh
        out.sort(key=lambda s: s.first_seq)
        return out

    def _open_active(self) -> None:
        sealed_names = {s.name for s in self.sealed}
        plain = sorted(p for p in self.seg_dir.glob("seg-*.ndjson") if p.stem not in sealed_names)
        prev_hash = self.sealed[-1].last_hash if self.sealed else self.anchor["hash"]
        last_seq = self.sealed[-1].last_seq if self.sealed else int(self.anchor["seq"])
        # A sealed segment whose compression was interrupted: finish compressing it.
        for seg in self.sealed:
            if (
                not (self.seg_dir / seg.file).exists()
                and (self.seg_dir / seg.file.removesuffix(".gz")).exists()
            ):
                self._compress(seg)
        events: list[Record] = []
        clean = self.root / "CLEAN"
        if plain:
            path = plain[-1]
            torn = self._repair_tail(path)
            if torn:
                events.append(
                    self._store_event(
                        "torn_tail",
                        f"discarded {torn[0]} bytes at offset {torn[1]} of {path.name} (sha256 {torn[2]})",
                    )
                )
            index = SegmentIndex(name=path.stem, file=path.name, prev_hash=prev_hash)
            for entry, rec in entries(path):
                if entry.leaf is not None:
                    self._leaves += bytes.fromhex(entry.leaf)
                if rec is not None and entry.stored_hash is not None:
                    index.add(rec, entry.stored_hash)
            index.bytes = path.stat().st_size
            if index.count == 0:
                index.first_seq = last_seq + 1
            else:
                self._postings = None
            self.active = index
        else:
            self.active = self._new_active(last_seq + 1, prev_hash)
        self._fh = Appender(self.seg_dir / self.active.file, self._staging)
        self._gz = self._block_compressor()
        has_data = bool(self.sealed) or self.active.count > 0
        if has_data and not clean.exists():
            events.append(
                self._store_event(
                    "unclean_shutdown",
                    f"store reopened after unclean shutdown; last durable seq {self.last_seq}",
                )
            )
        if clean.exists():
            clean.unlink()
            fsync_dir(self.root)
        if events:
            self.append_batch(events)

    def _repair_tail(self, path: Path) -> tuple[int, int, str] | None:
        """Cut an incomplete last line (a write torn by a crash); return (bytes, offset, sha256) cut."""
        data = path.read_bytes()
        keep = len(data)
        while keep > 0:
            start = data.rfind(b"\n", 0, keep - 1) + 1
            line = data[start:keep]
            if line.endswith(b"\n"):
                try:
                    decode_line(line)
                    break
                except ValueError:
                    pass
            keep = start
        if keep == len(data):
            return None
        cut = data[keep:]
        with path.open("r+b") as fh:
            fh.truncate(keep)
            os.fsync(fh.fileno())
        return len(cut), keep, hashlib.sha256(cut).hexdigest()

    def _new_active(self, first_seq: int, prev_hash: str) -> SegmentIndex:
        name = segment_name(first_seq)
        path = self.seg_dir / f"{name}.ndjson"
        path.touch()
        fsync_dir(self.seg_dir)
        return SegmentIndex(name=name, file=path.name, prev_hash=prev_hash, first_seq=first_seq)

    def _block_compressor(self) -> BlockCompressor | None:
        if not self.config.compress or self.active.bytes or self._postings is None:
            return None
        dst = self.seg_dir / f"{self.active.file}.gz.tmp"
        try:
            return BlockCompressor(dst, self.config.compress_level)
        except OSError:
            return None

    def _store_event(self, action: str, msg: str) -> Record:
        return new_record(
            event_type="store", action=action, outcome="recorded", msg=msg, app="govnet-logstore"
        )

    # --- appending -------------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """Sequence number of the last durable record (0 when empty)."""
        if self.active.count:
            return self.active.last_seq
        return self.active.first_seq - 1

    @property
    def last_hash(self) -> str:
        """Chain hash of the last durable record."""
        return self.active.last_hash if self.active.count else self.active.prev_hash

    def append_batch(self, recs: Sequence[Record | Numbered]) -> list[int]:
        """Assign sequence numbers, write, fsync once; return the seqs (durable when this returns).

        Items are records (numbered here: their `seq` is set in place) or runs a parse worker already
        numbered (`logstore.batch`): for those the writer only chains and fills in the chain hashes.
        A run numbered from another seq than the one it gets (the store moved on since it was handed
        out) is renumbered here from its bytes.
        """
        if self.readonly:
            raise ReadOnlyStore(f"log store {self.root} is open read-only")
        if not recs:
            return []
        with self._lock:
            first = seq = self.last_seq + 1
            now: str | None = None
            runs: list[Numbered] = []
            numberer: Numberer | None = None
            for item in recs:
                if isinstance(item, dict):
                    if item.get("recv_ts") in (None, ""):
                        now = now or iso_utc(self.clock())
                        item["recv_ts"] = now
                    if numberer is None:
                        numberer = Numberer(seq)
                    numberer.add(item)
                    seq += 1
                    continue
                if numberer is not None:
                    runs.append(numberer.done())
                    numberer = None
                if item.first != seq:
                    item = renumbered(item, seq)
                    self.metrics["renumbered_total"] += item.count
                runs.append(item)
                seq += item.count
            if numberer is not None:
                runs.append(numberer.done())
            prev = bytes.fromhex(self.last_hash)
            ends: list[str] = []
            size = 0
            for run in runs:
                # The chain: one SHA-256 of 64 bytes per record, its hex written into the line's blank
                # (a whole run in one call: logstore/digest.c).
                prev = chain(prev, run.leaves, run.lines, run.starts, HASH_AT)
                ends.append(prev.hex())
                size += len(run.lines)
            pieces = [run.lines for run in runs]
            try:
                self._fh.write(pieces)
                self._fh.sync()
            except OSError:
                # Disk full or I/O error: nothing of this batch counts; cut what may have been written.
                self._fh = _reopen_truncated(
                    self.seg_dir / self.active.file, self.active.bytes, self._fh, self._staging
                )
                raise
            if self._gz is not None:
                try:
                    staged = self._fh.staged
                    if staged is not None:  # compressed from where the direct write staged them
                        self._gz.add_from(*staged)
                    else:
                        self._gz.add(pieces)
                except OSError:
                    # The batch is durable (it must not fail now): the segment will be compressed
                    # from its file when sealed.
                    with contextlib.suppress(OSError):
                        self._gz.abandon()
                    self._gz = None
            for run, last_hash in zip(runs, ends, strict=True):
                self.active.add_run(run.first, run.count, last_hash, run.tally)
                self._leaves += run.leaves
                postings = self._postings
                if postings is not None:
                    for term, seqs in run.terms.items():
                        got = postings.get(term)
                        if got is None:
                            postings[term] = seqs
                        else:
                            got += seqs
            self.active.bytes += size
            self.metrics["appended_total"] += seq - first
            self.metrics["batches_total"] += 1
            self.metrics["fsyncs_total"] += 1
            if self.active.bytes >= self.config.max_segment_bytes:
                self._seal_active()
            if self.on_append:
                # The hooks see records as stored (dicts): the caller's own, or decoded from the bytes.
                durable: list[Record] = []
                for item in recs:
                    if isinstance(item, dict):
                        durable.append(item)
                    else:
                        durable += [decode(body) for body in item.bodies()]
                for i, rec in enumerate(durable):  # a renumbered run's records carry their new seq
                    rec["seq"] = first + i
                for hook in self.on_append:
                    hook(durable)
            return list(range(first, seq))

    def append(self, rec: Record) -> int:
        """Append one record durably (convenience for audit records)."""
        return self.append_batch([rec])[0]

    def _seal_active(self) -> None:
        seg = self.active
        self._fh.close()
        leaves = self._leaves
        if len(leaves) != 32 * seg.count:  # cannot happen; if it does, take the leaves from the file itself
            read = entries(self.seg_dir / seg.file)
            leaves = bytearray(b"".join(bytes.fromhex(e.leaf) for e, _ in read if e.leaf))
        seg.merkle_root = merkle_root_packed(leaves)
        if self.config.compress:
            seg.file = seg.file + ".gz"
        write_atomic(self.seg_dir / f"{seg.name}.meta.json", json.dumps(seg.to_json(), indent=1).encode())
        self.sealed.append(seg)
        self.metrics["segments_sealed_total"] += 1
        self.active = self._new_active(seg.last_seq + 1, seg.last_hash)
        self._leaves = bytearray()
        postings, self._postings = self._postings, {}
        self._fh = Appender(self.seg_dir / self.active.file, self._staging)
        gz, self._gz = self._gz, self._block_compressor()
        if self.config.compress and self.config.compress_in_background:
            self._compress_later(seg, postings, gz)
        elif self.config.compress:
            self._compress(seg, postings, gz)

    def _compress_later(
        self,
        seg: SegmentIndex,
        postings: dict[str, list[int]] | None = None,
        gz: BlockCompressor | None = None,
    ) -> None:
        """Compress and index a sealed segment in a background thread (one at a time).

        Sealing is on the append path: compressing and indexing 64 MiB took ~0.7 s there, during
        which no batch could be committed. Until it is done, readers read the plain file (a state
        every reader already handles: `segment_path`), and a crash meanwhile is finished on reopen.
        """
        self.wait_compressed()
        thread = threading.Thread(
            target=self._compress_quietly, args=(seg, postings, gz), name="logstore-compress"
        )
        self._compressor = thread
        thread.start()

    def _compress_quietly(
        self, seg: SegmentIndex, postings: dict[str, list[int]] | None, gz: BlockCompressor | None
    ) -> None:
        try:
            self._compress(seg, postings, gz)
        except OSError as exc:  # the plain file stays readable; the next open compresses it again
            self.metrics["compress_errors_total"] += 1
            self.compress_error = f"{seg.name}: {type(exc).__name__}: {exc}"

    def wait_compressed(self) -> None:
        """Wait until the segment being compressed in the background (if any) is done."""
        thread = self._compressor
        if thread is not None:
            thread.join()
            self._compressor = None

    def _compress(
        self,
        seg: SegmentIndex,
        terms: dict[str, list[int]] | None = None,
        gz: BlockCompressor | None = None,
    ) -> None:
        """Compress a sealed segment in independent blocks and build its search index (one read);
        `terms`: its term -> seqs collected on append, else they are read from the lines; `gz`: its
        blocks compressed on append, to finish (else the file is read and compressed now)."""
        src = self.seg_dir / seg.file.removesuffix(".gz")
        dst = self.seg_dir / seg.file
        tmp = dst.with_name(dst.name + ".tmp")
        postings = PostingCollector()
        if terms is not None:
            postings.terms = terms
        scan = postings.add_block if terms is None else None
        if gz is not None and scan is None:
            blocks = gz.finish()
        else:
            if gz is not None:
                gz.abandon()
            blocks = compress_segment(src, tmp, self.config.compress_level, scan)
        # Index first: a segment whose plain file is gone always has its index (or never had one).
        postings.write(index_path(self.seg_dir, seg.name))
        tmp.replace(dst)
        seg.blocks = blocks  # only now: the block offsets are offsets into the compressed file
        # The block table goes into the meta file; until then the segment is read sequentially.
        write_atomic(self.seg_dir / f"{seg.name}.meta.json", json.dumps(seg.to_json(), indent=1).encode())
        src.unlink()
        fsync_dir(self.seg_dir)
        seg.bytes = dst.stat().st_size

    def seal(self) -> None:
        """Close the active segment now (if it holds records), start a new one, and compress it."""
        with self._lock:
            if self.active.count:
                self._seal_active()
            self.wait_compressed()

    def close(self) -> None:
        """Flush, mark a clean shutdown and release the writer lock (a reader has nothing to close)."""
        if self.readonly or self._writer_lock is None or not self._writer_lock.held:
            return
        with self._lock:
            self.wait_compressed()
            self._fh.sync()
            self._fh.close()
            if self._gz is not None:  # the active segment stays plain; it is compressed when sealed
                with contextlib.suppress(OSError):
                    self._gz.abandon()
                self._gz = None
            (self.root / "CLEAN").touch()
            fsync_dir(self.root)
            self._writer_lock.release()

    # --- retention ---------------------------------------------------------------------------------

    def disk_bytes(self) -> int:
        """Bytes used by all segment files (and their search indexes)."""
        if not self.readonly:
            self.wait_compressed()  # count the sealed segment as it will stay, not both its files
        total = 0
        for p in self.seg_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):  # a reader races the writer's sealing
                if p.is_file():
                    total += p.stat().st_size
        return total

    def housekeeping(self, now: float) -> list[str]:
        """Apply retention by age and the disk budget; warn before the budget removes anything."""
        if self.readonly:
            raise ReadOnlyStore(f"log store {self.root} is open read-only")
        with self._lock:
            self.wait_compressed()  # retention may remove the segment being compressed
            return self._housekeeping(now)

    def _housekeeping(self, now: float) -> list[str]:
        notes: list[str] = []
        cutoff = iso_utc(now - self.config.retention_days * DAY)
        while self.sealed and self.sealed[0].max_ts < cutoff:
            notes.append(self._remove_oldest(f"older than {self.config.retention_days:g} days"))
        budget = self.config.budget_bytes
        if budget:
            used = self.disk_bytes()
            ratio = used / budget
            self.metrics["budget_ratio"] = ratio
            warn = ratio >= self.config.warn_ratio
            if warn and not self.metrics["budget_warning"]:
                msg = (
                    f"log store uses {used} of {budget} bytes ({ratio:.0%}); oldest segments will be removed"
                )
                self.append(self._store_event("budget_warning", msg))
                notes.append(msg)
            self.metrics["budget_warning"] = 1 if warn else 0
            while self.disk_bytes() > budget and self.sealed:
                notes.append(self._remove_oldest("disk budget exceeded"))
        return notes

    def _remove_oldest(self, why: str) -> str:
        seg = self.sealed.pop(0)
        self.anchor = {
            "seq": seg.last_seq,
            "hash": seg.last_hash,
            "removed": [*self.anchor.get("removed", []), seg.to_json()],
        }
        write_atomic(self.root / "anchor.json", json.dumps(self.anchor, indent=1).encode())
        for path in (
            self.seg_dir / seg.file,
            self.seg_dir / f"{seg.name}.meta.json",
            index_path(self.seg_dir, seg.name),
        ):
            path.unlink(missing_ok=True)
        fsync_dir(self.seg_dir)
        self.metrics["segments_removed_total"] += 1
        msg = (
            f"removed segment {seg.name} (seq {seg.first_seq}..{seg.last_seq}, {seg.min_ts}..{seg.max_ts}, "
            f"last hash {seg.last_hash}): {why}"
        )
        self.append(self._store_event("segment_removed", msg))
        return msg

    # --- reading -----------------------------------------------------------------------------------

    def segments(self) -> list[SegmentIndex]:
        """Sealed segments then the active one, oldest first (a reader: as of its last refresh)."""
        if self.readonly:
            return [*self.sealed, self.active]
        with self._lock:
            self._fh.flush()
            return [*self.sealed, self.active]

    def segment_path(self, seg: SegmentIndex) -> Path:
        """The file holding a segment's records; while it is being compressed, whichever exists."""
        path = self.seg_dir / seg.file
        if path.exists():
            return path
        other = (
            path.with_name(seg.file.removesuffix(".gz"))
            if seg.file.endswith(".gz")
            else (path.with_name(seg.file + ".gz"))
        )
        return other if other.exists() else path

    def segment_lines(self, seg: SegmentIndex) -> Iterator[bytes]:
        """The record lines of one segment (opened now); a reader stops at the bytes of its snapshot."""
        limit = seg.bytes if self.readonly and seg is self.active else None
        try:
            return read_lines(self.segment_path(seg), limit)
        except FileNotFoundError:
            # The writer sealed it between our look and the open: its compressed file is there now.
            return read_lines(self.segment_path(seg), limit)

    def segment_entries(self, seg: SegmentIndex) -> Iterator[tuple[Entry, Record | None]]:
        """Chain-check entries of one segment (see segment_lines)."""
        return entries_of(self.segment_lines(seg))

    # --- reader snapshot ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reader: take a new snapshot of sealed segments and the complete lines of the active one."""
        if not self.readonly:
            return
        for _ in range(100):
            anchor = self._read_anchor()
            try:
                sealed = self._read_sealed()
            except (FileNotFoundError, ValueError):
                time.sleep(0.01)  # a meta file removed (retention) or replaced while listing
                continue
            last_seq = sealed[-1].last_seq if sealed else int(anchor["seq"])
            prev_hash = sealed[-1].last_hash if sealed else anchor["hash"]
            name = segment_name(last_seq + 1)
            current = getattr(self, "active", None)
            if current is not None and current.name == name:
                active = current
            else:
                active = SegmentIndex(
                    name=name, file=f"{name}.ndjson", prev_hash=prev_hash, first_seq=last_seq + 1
                )
                self._reader_pos = 0
            try:
                self._read_tail(active)
            except FileNotFoundError:
                # Sealed and compressed between listing and reading: the next listing has its meta.
                time.sleep(0.01)
                continue
            self.anchor, self.sealed, self.active = anchor, sealed, active
            return
        raise RuntimeError(f"log store {self.root}: no consistent snapshot (segments changing too fast)")

    def _read_tail(self, active: SegmentIndex) -> None:
        """Add the complete lines written to the active segment since the last refresh."""
        path = self.seg_dir / active.file
        if not path.exists():
            if (self.seg_dir / (active.file + ".gz")).exists() or self._meta_exists(active.name):
                raise FileNotFoundError(path)
            return  # the writer has not created it yet (just sealed the previous one): empty
        with path.open("rb") as fh:
            fh.seek(self._reader_pos)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a line still being written is not part of the snapshot
        for line in data[:end].splitlines(keepends=True):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                chain, rec = decode_line(line)
                active.add(rec, chain)
        self._reader_pos += end
        active.bytes = self._reader_pos

    def _meta_exists(self, name: str) -> bool:
        return (self.seg_dir / f"{name}.meta.json").exists()

    def iter_records(
        self,
        from_ts: str = "",
        to_ts: str = "~",
        device: str | None = None,
        event_type: str | None = None,
        whole_segments: bool = False,
    ) -> Iterator[tuple[Record, str]]:
        """(record, chain hash) in seq order for segments that may match; filters unless whole_segments."""
        for seg in self.segments():
            if not seg.may_hold(
                from_ts, to_ts, None if whole_segments else device, None if whole_segments else event_type
            ):
                continue
            for entry, rec in self.segment_entries(seg):
                if rec is None or entry.stored_hash is None:
                    continue
                if not whole_segments and not (
                    from_ts <= rec["recv_ts"] < to_ts
                    and (device is None or rec["device"] == device)
                    and (event_type is None or rec["event_type"] == event_type)
                ):
                    continue
                yield rec, entry.stored_hash

    def verify(self) -> list[Problem]:
        """Check every segment: chain, sequence, Merkle root and links between segments."""
        if not self.readonly:
            self.wait_compressed()  # no segment changes files under the check
        problems: list[Problem] = []
        prev_hash, prev_seq = self.anchor["hash"], int(self.anchor["seq"])
        for seg in self.segments():
            if seg.prev_hash != prev_hash:
                problems.append(
                    Problem(seg.name, 0, seg.first_seq, "segment does not link to the previous one")
                )
            path = self.segment_path(seg)
            if not path.exists():
                if seg is self.active and seg.count == 0:
                    prev_hash, prev_seq = seg.prev_hash, seg.first_seq - 1
                    continue  # a reader's snapshot between sealing and the next segment's creation
                problems.append(Problem(seg.name, 0, seg.first_seq, "segment file missing"))
                continue
            check = check_chain((e for e, _ in self.segment_entries(seg)), seg.name, prev_hash, prev_seq)
            problems += check.problems
            if seg is not self.active:
                if check.count != seg.count:
                    problems.append(
                        Problem(
                            seg.name,
                            check.count,
                            None,
                            f"segment holds {check.count} records, index says {seg.count}",
                        )
                    )
                if merkle_root(check.leaves) != seg.merkle_root:
                    problems.append(
                        Problem(seg.name, 0, seg.first_seq, "Merkle root differs from the sealed one")
                    )
                if check.last_hash != seg.last_hash:
                    problems.append(
                        Problem(seg.name, check.count, None, "last chain hash differs from the sealed one")
                    )
            prev_hash, prev_seq = seg.last_hash, seg.last_seq
        return problems


def _reopen_truncated(path: Path, size: int, fh: Appender, staging: Staging) -> Appender:
    """Close `fh`, cut `path` back to `size` bytes, reopen for appending (best effort on a failing disk)."""
    with contextlib.suppress(OSError):
        fh.close()
    try:
        with path.open("r+b") as raw:
            raw.truncate(size)
            os.fsync(raw.fileno())
    except OSError:
        pass  # the torn-tail repair on the next open handles what remains
    return Appender(path, staging)
