"""The log store's SHA-256 work: each record's leaf digest, the hash chain over a run, the Merkle root.

This is the reference, with hashlib. logstore/digest.c implements the same three functions with
OpenSSL (hashlib's per-object overhead was half the cost of these hashes), built by
scripts/build_native.py into an extension module of the same name that the import prefers when
logstore/native.py's guard finds it fresh. Both give the same bytes for every valid argument and the
same exception types for invalid ones (tests/logstore/test_digest.py); the formulas are those of
`logstore.record` (leaf_hash, body_hash, chain_hash), which `logstore.verify` recomputes independently.
"""

from __future__ import annotations

import hashlib
from binascii import hexlify

from logstore.merkle import merkle_root_of_digests

IMPLEMENTATION = "Python, hashlib"  # the C module says "C, OpenSSL <version>"

_sha256 = hashlib.sha256
_DIGEST = 32
_SEQ_MIN, _SEQ_MAX = -(2**63), 2**63 - 1  # what the C formats (a store's seqs start at 1)


def leaf_into(out: bytearray, seq: int, tail: bytes, body: bytes) -> None:
    """Append the record's leaf digest to `out`: sha256(b"\\x00[%d" % seq + tail + hex(sha256(body))).

    `tail` is the rest of the leaf metadata's JSON after the seq (`,"<recv_ts>",<device>,"<type>"]`),
    so the whole is record.leaf_hash(meta_of(rec), body_hash(rec)) as a digest.
    """
    # The usual types first (this runs per record when nothing is compiled), then the checks the C does.
    if (
        type(tail) is not bytes
        or type(body) is not bytes
        or type(seq) is not int
        or type(out) is not bytearray
    ):
        if not isinstance(out, bytearray):
            raise TypeError(f"out must be a bytearray, not {type(out).__name__}")
        if not isinstance(seq, int):
            raise TypeError(f"seq must be an int, not {type(seq).__name__}")
        tail, body = _bytes(tail, "tail"), _bytes(body, "body")
    if not _SEQ_MIN <= seq <= _SEQ_MAX:
        raise ValueError("seq out of the 64-bit range")
    out += _sha256(b"\x00[%d" % seq + tail + _sha256(body).hexdigest().encode()).digest()


def chain(
    prev: bytes, leaves: bytes | bytearray, lines: bytearray | memoryview, starts: list[int], hash_at: int
) -> bytes:
    """Chain a run: per 32-byte leaf, prev = sha256(prev + leaf), its hex written into `lines` at
    `starts[i] + hash_at`; return the last link. Arguments are checked before anything is written."""
    if not isinstance(starts, list):
        raise TypeError(f"starts must be a list, not {type(starts).__name__}")
    if not isinstance(hash_at, int):
        raise TypeError(f"hash_at must be an int, not {type(hash_at).__name__}")
    if hash_at < 0:
        raise ValueError("hash_at must not be negative")
    prev = _bytes(prev, "prev")
    leaves = _bytes(leaves, "leaves")
    out = _view(lines, "lines", writable=True)
    size = len(out)
    if len(prev) != _DIGEST:
        raise ValueError(f"prev must be {_DIGEST} bytes, not {len(prev)}")
    if len(leaves) != _DIGEST * len(starts):
        raise ValueError(
            f"leaves must be {_DIGEST} bytes per start ({len(starts)} starts), not {len(leaves)}"
        )
    for i, start in enumerate(starts):
        if not isinstance(start, int):
            raise TypeError(f"starts[{i}] must be an int, not {type(start).__name__}")
        if not 0 <= start <= size - 64 - hash_at:
            raise ValueError(f"starts[{i}] is out of range: the hash does not fit in lines ({size} bytes)")
    at = 0
    for start in starts:
        prev = _sha256(prev + leaves[at : at + _DIGEST]).digest()
        out[start + hash_at : start + hash_at + 64] = hexlify(prev)
        at += _DIGEST
    return prev


def merkle_root_packed(packed: bytes | bytearray) -> str:
    """`merkle.merkle_root_of_digests` over the 32-byte leaf digests concatenated in `packed` (a sibling
    pair is 64 contiguous bytes: the first level needs no list of leaves)."""
    view = memoryview(_bytes(packed, "packed"))
    if len(view) % _DIGEST:
        raise ValueError(f"packed must be a multiple of {_DIGEST} bytes, not {len(view)}")
    n = len(view) // _DIGEST
    if n < 2:
        return merkle_root_of_digests([bytes(view)] if n else [])
    level = [_sha256(b"\x01" + view[i : i + 64]).digest() for i in range(0, (n - 1) * _DIGEST, 64)]
    if n % 2:
        level.append(bytes(view[(n - 1) * _DIGEST :]))
    return merkle_root_of_digests(level)


def _bytes(data: object, what: str) -> bytes:
    """`data` as bytes when it is a contiguous bytes-like object (a str is not), else TypeError."""
    return data if isinstance(data, bytes) else _view(data, what).tobytes()


def _view(data: object, what: str, writable: bool = False) -> memoryview:
    """`data`'s bytes as a one-dimensional memoryview, else TypeError (as the C module's buffer checks)."""
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        view = None
    if view is None or not view.c_contiguous or (writable and view.readonly):
        kind = "writable contiguous" if writable else "contiguous"
        raise TypeError(f"{what} must be a {kind} bytes-like object, not {type(data).__name__}")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view
