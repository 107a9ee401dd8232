"""Auditor export (records + manifest + proofs) and its offline verification."""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logstore.control import AuditUnavailable, append_audit
from logstore.merkle import merkle_root
from logstore.record import FIELDS, Record, body_hash, canonical, chain_hash, iso_utc, leaf_hash, parse_iso
from logstore.signing import KeySpec, check, sign
from logstore.store import LogStore

FORMAT_VERSION = 1
INT_FIELDS = frozenset({"seq", "facility", "severity", "src_port", "dst_port"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise(cell: str) -> str:
    """Prefix cells Excel would treat as formulas with a quote (and quotes, so it is reversible)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def unneutralise(cell: str) -> str:
    """Inverse of neutralise."""
    return cell[1:] if cell.startswith("'") else cell


def record_to_row(rec: Record) -> list[str]:
    """CSV cells of a record: None is empty, flags are ;-joined, text cells neutralised."""
    row = []
    for name in FIELDS:
        value = rec.get(name)
        if value is None:
            row.append("")
        elif name == "flags":
            row.append(neutralise(";".join(value)))
        else:
            row.append(neutralise(str(value)))
    return row


def row_to_record(row: list[str]) -> Record:
    """Inverse of record_to_row (exact, so the record's hash can be recomputed from the CSV)."""
    rec: Record = {}
    for name, cell in zip(FIELDS, row, strict=True):
        text = unneutralise(cell)
        if name == "flags":
            rec[name] = text.split(";") if text else []
        elif cell == "":
            rec[name] = None
        elif name in INT_FIELDS:
            rec[name] = int(text)
        else:
            rec[name] = text
    return rec


def _matches(meta: list[Any], from_ts: str, to_ts: str, device: str | None, event_type: str | None) -> bool:
    _seq, ts, dev, etype = meta
    return (
        from_ts <= ts < to_ts
        and (device is None or dev == device)
        and (event_type is None or etype == event_type)
    )


def export_logs(
    store: LogStore,
    out: Path,
    from_ts: str,
    to_ts: str,
    device: str | None,
    event_type: str | None,
    fmt: str,
    key: KeySpec,
) -> dict[str, Any]:
    """Write records, proofs and a signed manifest to `out`; append an audit record; return the manifest."""
    if fmt not in ("csv", "ndjson"):
        raise ValueError("format must be csv or ndjson")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"export folder {out} is not empty")
    store.refresh()  # a reader exports the snapshot of now; the writer's view is always current
    span: list[tuple[Record, str]] = []
    prev_hash = ""
    last_before = ""
    for rec, chain in span_records(store, from_ts, to_ts):
        if rec["recv_ts"] < from_ts and not span:
            last_before = chain
            continue
        span.append((rec, chain))
    # The span is first..last record inside the time range; records after `to` at its end are cut.
    while span and not span[-1][0]["recv_ts"] < to_ts:
        span.pop()
    while span and span[0][0]["recv_ts"] < from_ts:
        last_before = span.pop(0)[1]
    prev_hash = last_before or _prev_of_first(store, span)
    rec_name = f"records.{fmt}"
    records_buf = io.StringIO(newline="")
    writer = csv.writer(records_buf, lineterminator="\r\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(FIELDS)
    proofs = io.StringIO()
    leaves = []
    counts: Counter[str] = Counter()
    selected = 0
    for rec, chain in span:
        bh = body_hash(rec)
        meta = [rec["seq"], rec["recv_ts"], rec["device"], rec["event_type"]]
        leaves.append(leaf_hash(meta, bh))
        proofs.write(json.dumps([*meta, bh, chain], ensure_ascii=False, separators=(",", ":")) + "\n")
        if _matches(meta, from_ts, to_ts, device, event_type):
            selected += 1
            counts[rec["event_type"]] += 1
            if writer is not None:
                writer.writerow(record_to_row(rec))
            else:
                records_buf.write(canonical(rec).decode() + "\n")
    files = {rec_name: records_buf.getvalue().encode(), "proofs.ndjson": proofs.getvalue().encode()}
    for name, data in files.items():
        (out / name).write_bytes(data)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "range": {"from": from_ts, "to": to_ts},
        "filters": {"device": device, "event_type": event_type},
        "format": fmt,
        "record_count": selected,
        "counts_by_type": dict(sorted(counts.items())),
        "span": {
            "count": len(span),
            "first_seq": span[0][0]["seq"] if span else None,
            "last_seq": span[-1][0]["seq"] if span else None,
            "prev_hash": prev_hash,
            "last_hash": span[-1][1] if span else prev_hash,
            "merkle_root": merkle_root(leaves),
        },
        "store_last_seq": store.last_seq,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    manifest["signature"] = sign(_signed_bytes(manifest), key)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    # Through the running writer when this is a reader (its control socket), so the audit record
    # takes the next seq of the one chain; if it cannot be written, the export does not stand.
    try:
        append_audit(
            store,
            {
                "action": "export", "outcome": "success", "user": getpass.getuser(), "app": "govnet",
                "msg": f"export {from_ts}..{to_ts} device={device} type={event_type} format={fmt} "
                f"records={selected} span={manifest['span']['first_seq']}..{manifest['span']['last_seq']} "
                f"root={manifest['span']['merkle_root']} to {out}",
            },
        )  # fmt: skip
    except AuditUnavailable:
        for name in [*files, "manifest.json"]:
            (out / name).unlink(missing_ok=True)
        raise
    return manifest


# Receive times are not strictly ordered by seq: a record is stamped when it is received and gets its
# seq when it is committed, while audit records are stamped when they are appended. A segment in the
# middle of a range can therefore end before a record of the previous one; the export's span must
# never skip it. Commit lag is bounded by the receiver's backpressure; this margin is generous.
COMMIT_LAG = 600.0


def span_records(store: LogStore, from_ts: str, to_ts: str) -> Iterator[tuple[Record, str]]:
    """Every record of the contiguous run of segments that can hold the range (none skipped inside)."""
    segs = store.segments()
    first = next((i for i, seg in enumerate(segs) if seg.count and seg.max_ts >= from_ts), len(segs))
    stop = iso_utc(parse_iso(to_ts) + COMMIT_LAG) if to_ts[:1].isdigit() else to_ts
    for seg in segs[first:]:
        if seg.count and seg.min_ts >= stop:
            break
        for entry, rec in store.segment_entries(seg):
            if rec is not None and entry.stored_hash is not None:
                yield rec, entry.stored_hash


def _prev_of_first(store: LogStore, span: list[tuple[Record, str]]) -> str:
    """Chain hash just before the span's first record (the store anchor or a segment's prev hash)."""
    if not span:
        return store.last_hash
    first = span[0][0]["seq"]
    for seg in store.segments():
        if seg.first_seq == first:
            return seg.prev_hash
    prev = ""
    for rec, chain in store.iter_records(whole_segments=True):
        if rec["seq"] == first:
            return prev
        prev = chain
    return prev


def _signed_bytes(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class ExportCheck:
    """Outcome of verify_export: problems (empty means the export is complete and intact)."""

    problems: list[str] = field(default_factory=list)
    records: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def verify_export(folder: Path, key: KeySpec) -> ExportCheck:
    """Check signature, file hashes, proof chain/Merkle root, and that records match the proofs exactly."""
    res = ExportCheck()
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        res.problems.append(f"manifest.json unreadable: {type(exc).__name__}")
        return res
    reason = check(_signed_bytes(manifest), manifest.get("signature", {}), key)
    if reason:
        res.problems.append(f"manifest.json: {reason} (manifest altered or wrong key)")
    blobs: dict[str, bytes] = {}
    for name, digest in manifest.get("files", {}).items():
        path = folder / Path(name).name
        if not path.exists():
            res.problems.append(f"{name}: missing")
            continue
        blobs[name] = path.read_bytes()
        if hashlib.sha256(blobs[name]).hexdigest() != digest:
            res.problems.append(f"{name}: content differs from the manifest's sha256 (file edited)")
    if "proofs.ndjson" not in blobs:
        return res
    span = manifest["span"]
    rng, flt = manifest["range"], manifest["filters"]
    expected: dict[int, str] = {}
    leaves = []
    prev, prev_seq = span["prev_hash"], (span["first_seq"] or 1) - 1
    for n, line in enumerate(blobs["proofs.ndjson"].decode("utf-8", "replace").splitlines(), 1):
        try:
            seq, ts, dev, etype, bh, chain = json.loads(line)
        except ValueError:
            res.problems.append(f"proofs.ndjson line {n}: unreadable")
            continue
        if seq != prev_seq + 1:
            res.problems.append(
                f"proofs.ndjson line {n}: seq {seq} follows {prev_seq} (records missing or reordered)"
            )
        leaf = leaf_hash([seq, ts, dev, etype], bh)
        leaves.append(leaf)
        if chain_hash(prev, leaf) != chain:
            res.problems.append(f"proofs.ndjson line {n} (seq {seq}): chain hash does not link")
        prev, prev_seq = chain, seq
        if _matches([seq, ts, dev, etype], rng["from"], rng["to"], flt["device"], flt["event_type"]):
            expected[seq] = bh
    if prev != span["last_hash"]:
        res.problems.append(
            "proofs.ndjson: chain does not end at the manifest's last hash (proofs truncated)"
        )
    if merkle_root(leaves) != span["merkle_root"]:
        res.problems.append("proofs.ndjson: Merkle root differs from the manifest")
    rec_name = f"records.{manifest['format']}"
    if rec_name in blobs:
        _check_records(blobs[rec_name], manifest["format"], expected, res, rec_name)
    if res.records != manifest.get("record_count"):
        res.problems.append(
            f"{rec_name}: {res.records} records, manifest says {manifest.get('record_count')}"
        )
    return res


def _check_records(data: bytes, fmt: str, expected: dict[int, str], res: ExportCheck, name: str) -> None:
    seen: set[int] = set()
    text = data.decode("utf-8", "replace")
    rows: list[tuple[int, Record | None]] = []
    if fmt == "csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header != list(FIELDS):
            res.problems.append(f"{name}: header differs from the expected columns")
        for n, row in enumerate(reader, 2):
            try:
                rows.append((n, row_to_record(row)))
            except ValueError:
                rows.append((n, None))
    else:
        for n, line in enumerate(text.splitlines(), 1):
            try:
                obj = json.loads(line)
                rows.append((n, obj if isinstance(obj, dict) else None))
            except ValueError:
                rows.append((n, None))
    for n, rec in rows:
        res.records += 1
        if rec is None or not isinstance(rec.get("seq"), int):
            res.problems.append(f"{name} line {n}: unreadable record")
            continue
        seq = rec["seq"]
        if seq in seen:
            res.problems.append(f"{name} line {n} (seq {seq}): duplicated record")
        elif seq not in expected:
            res.problems.append(f"{name} line {n} (seq {seq}): record not covered by the proofs (inserted)")
        elif body_hash(rec) != expected[seq]:
            res.problems.append(f"{name} line {n} (seq {seq}): record content modified")
        seen.add(seq)
    for seq in sorted(set(expected) - seen):
        res.problems.append(f"{name}: record seq {seq} missing (deleted from the export)")
