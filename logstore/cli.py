"""Command bodies for `govnet export-logs` and `govnet verify-export` (wired in govnet/cli.py)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from core.secrets import SecretError
from logstore.export import export_logs, verify_export
from logstore.record import EVENT_TYPES
from logstore.signing import KeySpec
from logstore.store import LogStore


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
        store = LogStore(store_dir)
        try:
            manifest = export_logs(store, out, start, end, device, event_type, fmt, key)
        finally:
            store.close()
    except (ValueError, SecretError, FileExistsError) as exc:
        print(f"export-logs: {exc}", file=sys.stderr)
        return 2
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
