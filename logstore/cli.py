"""Command bodies for `govnet export-logs` and `govnet verify-export` (wired in govnet/cli.py)."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from core.secrets import SecretError
from logstore.control import AuditUnavailable, append_audit
from logstore.export import export_logs, verify_export
from logstore.lock import try_lock
from logstore.record import EVENT_TYPES
from logstore.search import Query, search
from logstore.signing import KeySpec
from logstore.store import LogStore


@contextlib.contextmanager
def open_store(store_dir: Path) -> Iterator[LogStore]:
    """The writer when nobody else holds the lock (then this command may write its audit record
    itself), else a read-only snapshot whose audit records go through the running writer."""
    if not (store_dir / "segments").is_dir():
        raise ValueError(f"no log store at {store_dir}")
    lock = try_lock(store_dir)
    store = LogStore(store_dir, lock=lock) if lock is not None else LogStore(store_dir, readonly=True)
    try:
        yield store
    finally:
        store.close()


def _iso(text: str) -> str:
    """Normalise a user-given ISO time (naive means UTC) to the store's sortable form."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_spec(hmac_key: str | None, ed25519_key: str | None) -> KeySpec:
    """Exactly one key reference must be given; there is no default key."""
    if bool(hmac_key) == bool(ed25519_key):
        raise ValueError("give exactly one of --hmac-key REF or --ed25519-key REF (env:NAME or file:PATH)")
    return KeySpec("hmac-sha256", hmac_key) if hmac_key else KeySpec("ed25519", str(ed25519_key))


def export_command(
    store_dir: Path,
    from_ts: str,
    to_ts: str,
    device: str | None,
    event_type: str | None,
    fmt: str,
    out: Path,
    hmac_key: str | None,
    ed25519_key: str | None,
) -> int:
    """Export a time range; print a one-line summary; 0 on success, 2 on bad input."""
    try:
        key = key_spec(hmac_key, ed25519_key)
        if event_type is not None and event_type not in EVENT_TYPES:
            raise ValueError(f"--type must be one of {', '.join(EVENT_TYPES)}")
        start, end = _iso(from_ts), _iso(to_ts)
        with open_store(store_dir) as store:
            manifest = export_logs(store, out, start, end, device, event_type, fmt, key)
    except (ValueError, SecretError, FileExistsError) as exc:
        print(f"export-logs: {exc}", file=sys.stderr)
        return 2
    except AuditUnavailable as exc:
        print(f"export-logs: no export without its audit record: {exc}", file=sys.stderr)
        return 3
    span = manifest["span"]
    print(
        f"exported {manifest['record_count']} records ({span['count']} in span, seq "
        f"{span['first_seq']}..{span['last_seq']}) to {out}; merkle root {span['merkle_root']}"
    )
    return 0


def verify_command(folder: Path, hmac_key: str | None, ed25519_pub: str | None) -> int:
    """Verify an export offline; print every problem with its location; 0 intact, 1 not."""
    try:
        key = key_spec(hmac_key, ed25519_pub)
        result = verify_export(folder, key)
    except (ValueError, SecretError) as exc:
        print(f"verify-export: {exc}", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(f"FAIL {problem}")
    if result.ok:
        print(f"OK {result.records} records: complete, unaltered, signature valid")
        return 0
    print(f"export {folder} FAILED verification ({len(result.problems)} problems)")
    return 1


def verify_store_command(store_dir: Path) -> int:
    """Check the whole store's chain read-only (beside a running writer); 0 intact, 1 not."""
    try:
        if not (store_dir / "segments").is_dir():
            raise ValueError(f"no log store at {store_dir}")
        store = LogStore(store_dir, readonly=True)
    except ValueError as exc:
        print(f"verify-store: {exc}", file=sys.stderr)
        return 2
    problems = store.verify()
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        print(f"store {store_dir} FAILED verification ({len(problems)} problems)")
        return 1
    print(f"OK seq 1..{store.last_seq}: chain, sequence and Merkle roots intact")
    return 0


def search_command(
    store_dir: Path,
    query: Query,
    after_seq: int,
    limit: int,
    with_raw: bool = False,
) -> int:
    """Print one JSON record per line (then a `next_after` line); the search itself is audited."""
    try:
        with open_store(store_dir) as store:
            page = search(store, query, after_seq, limit)
            filters = {k: v for k, v in query.__dict__.items() if v not in (None, "", "~")}
            append_audit(
                store,
                {
                    "action": "search", "outcome": "success", "user": getpass.getuser(), "app": "govnet",
                    "msg": f"search {json.dumps(filters, ensure_ascii=False)} after={after_seq} "
                    f"limit={limit} returned={len(page.items)}",
                },
            )  # fmt: skip
    except ValueError as exc:
        print(f"search-logs: {exc}", file=sys.stderr)
        return 2
    except AuditUnavailable as exc:
        print(f"search-logs: no search without its audit record: {exc}", file=sys.stderr)
        return 3
    for rec in page.items:
        out = rec if with_raw else {k: v for k, v in rec.items() if k != "raw"}
        print(json.dumps(out, ensure_ascii=False))
    print(json.dumps({"next_after": page.next_after}))
    return 0


def iso_arg(text: str | None, default: str) -> str:
    """A CLI time bound in the store's form (absent: `default`)."""
    return _iso(text) if text else default
