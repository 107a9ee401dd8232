"""Export for auditors and offline verification, through the real `govnet` CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from logstore.export import neutralise, row_to_record, unneutralise
from logstore.record import iso_utc, new_record
from logstore.store import LogStore, StoreConfig

T0 = 1_773_300_000.0  # 2026-03-12T07:20:00Z
GOVNET = [sys.executable, "-m", "govnet"]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """3000 records over 3000 s from three devices, with hostile cells, in several segments."""
    root = tmp_path / "store"
    clock = Clock(T0)
    store = LogStore(root, StoreConfig(max_segment_bytes=200_000), clock=clock)
    for b in range(30):
        recs = []
        for i in range(100):
            n = b * 100 + i
            clock.now = T0 + n
            recs.append(
                new_record(
                    recv_ts=iso_utc(clock.now),
                    device=f"fw{n % 3}",
                    event_type=("policy_deny", "attack", "admin_login")[n % 3],
                    user='=HYPERLINK("http://evil")' if n % 50 == 0 else f"u{n}",
                    msg=f"-2+3 line {n}\r\nsecond" if n % 70 == 0 else f"message {n} 日志",
                    src_port=1000 + n,
                    raw="PDE5MD4=",
                )
            )
        store.append_batch(recs)
    store.close()
    return root


def govnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GOVNET, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=120, check=False)  # fmt: skip


KEY_ENV = {"GOVNET_TEST_EXPORT_KEY": "s3cret-key-for-tests"}


def export(store_dir: Path, out: Path, *extra: str, fmt: str = "csv") -> subprocess.CompletedProcess[str]:
    return govnet("export-logs", "--store", str(store_dir), "--from", "2026-03-12T07:30:00Z",
                  "--to", "2026-03-12T07:45:00", "--format", fmt, "--out", str(out),
                  "--hmac-key", "env:GOVNET_TEST_EXPORT_KEY", *extra, env=KEY_ENV)  # fmt: skip


def verify(out: Path) -> subprocess.CompletedProcess[str]:
    return govnet("verify-export", str(out), "--hmac-key", "env:GOVNET_TEST_EXPORT_KEY", env=KEY_ENV)


def test_neutralise_round_trip() -> None:
    for cell in ["=1+1", "+x", "-2", "@SUM", "\tx", "\rx", "'q", "plain", ""]:
        assert unneutralise(neutralise(cell)) == cell
        assert not neutralise(cell).startswith(("=", "+", "-", "@", "\t", "\r")) or cell == ""


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_export_verify_round_trip(store_dir: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "exp"
    res = export(store_dir, out, fmt=fmt)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["record_count"] == 900  # 07:30..07:45 at one record per second
    assert manifest["span"]["first_seq"] == 601 and manifest["span"]["last_seq"] == 1500
    assert manifest["signature"]["alg"] == "hmac-sha256"
    assert "s3cret" not in (out / "manifest.json").read_text()
    ok = verify(out)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK 900 records" in ok.stdout
    # Every export is itself an audit record in the store.
    store = LogStore(store_dir)
    try:
        audits = [rec for rec, _ in store.iter_records() if rec["event_type"] == "audit"]
        assert len(audits) == 1 and audits[0]["action"] == "export" and "records=900" in audits[0]["msg"]
        assert store.verify() == []
    finally:
        store.close()


def test_csv_cells_are_neutralised(store_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    assert export(store_dir, out).returncode == 0
    with (out / "records.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    for row in body:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    users = {row[header.index("user")] for row in body}
    assert '\'=HYPERLINK("http://evil")' in users
    rec = row_to_record(body[0])
    assert rec["seq"] == 601 and isinstance(rec["src_port"], int)


def test_filtered_export_verifies(store_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    res = export(store_dir, out, "--device", "fw1", "--type", "attack")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["record_count"] == 300 and manifest["span"]["count"] == 900
    assert verify(out).returncode == 0


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        ("modify", "record content modified"),
        ("delete", "missing (deleted from the export)"),
        ("swap_proofs", "seq 621 follows 619"),
        ("manifest", "signature does not match"),
    ],
)
def test_edited_export_fails_and_says_where(store_dir: Path, tmp_path: Path, edit: str, expect: str) -> None:
    out = tmp_path / "exp"
    assert export(store_dir, out, fmt="ndjson").returncode == 0
    if edit == "modify":
        lines = _lines(out / "records.ndjson")
        lines[5] = lines[5].replace("message 605", "message 606")
        (out / "records.ndjson").write_text("".join(lines), encoding="utf-8")
    elif edit == "delete":
        lines = _lines(out / "records.ndjson")
        del lines[10]
        (out / "records.ndjson").write_text("".join(lines), encoding="utf-8")
    elif edit == "swap_proofs":
        lines = _lines(out / "proofs.ndjson")
        lines[19], lines[20] = lines[20], lines[19]
        (out / "proofs.ndjson").write_text("".join(lines), encoding="utf-8")
    else:
        manifest = json.loads((out / "manifest.json").read_text())
        manifest["record_count"] = 899
        (out / "manifest.json").write_text(json.dumps(manifest))
    res = verify(out)
    assert res.returncode == 1
    assert expect in res.stdout, res.stdout
    if edit == "modify":
        assert "records.ndjson line 6 (seq 606)" in res.stdout
    if edit == "delete":
        assert "seq 611 missing" in res.stdout


def test_wrong_key_and_no_key(store_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    res = govnet("export-logs", "--store", str(store_dir), "--from", "2026-03-12T07:30:00Z", "--to",
                 "2026-03-12T07:45:00", "--out", str(out))  # fmt: skip
    assert res.returncode == 2 and "exactly one of" in res.stderr
    assert export(store_dir, out).returncode == 0
    bad = govnet("verify-export", str(out), "--hmac-key", "env:OTHER", env={"OTHER": "nope"})
    assert bad.returncode == 1 and "signature does not match" in bad.stdout


def test_ed25519_signature(store_dir: Path, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, spki))
    out = tmp_path / "exp"
    res = govnet("export-logs", "--store", str(store_dir), "--from", "2026-03-12T07:30:00Z", "--to",
                 "2026-03-12T07:31:00Z", "--out", str(out), "--ed25519-key", f"file:{priv}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    ok = govnet("verify-export", str(out), "--ed25519-pub", f"file:{pub}")
    assert ok.returncode == 0 and "OK 60 records" in ok.stdout
