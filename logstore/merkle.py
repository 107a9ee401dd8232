"""Merkle tree root over leaf hashes (RFC 6962 shape: odd nodes promoted, 0x01 for inner nodes)."""

from __future__ import annotations

import hashlib

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def merkle_root(leaves: list[str]) -> str:
    """Root hash of hex leaf hashes; the empty tree has the hash of the empty string."""
    return merkle_root_of_digests([bytes.fromhex(leaf) for leaf in leaves])


def merkle_root_of_digests(leaves: list[bytes]) -> str:
    """Same root as `merkle_root`, over raw 32-byte leaf digests."""
    if not leaves:
        return EMPTY_ROOT
    level = leaves
    while len(level) > 1:
        nxt = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def merkle_root_packed(packed: bytes | bytearray) -> str:
    """Same root as `merkle_root_of_digests`, over the 32-byte leaf digests concatenated (a sibling
    pair is 64 contiguous bytes: the first level needs no list of leaves)."""
    n = len(packed) // 32
    if n < 2:
        return merkle_root_of_digests([bytes(packed)] if n else [])
    sha256 = hashlib.sha256
    view = memoryview(packed)
    level = [sha256(b"\x01" + view[i : i + 64]).digest() for i in range(0, (n - 1) * 32, 64)]
    if n % 2:
        level.append(bytes(view[(n - 1) * 32 : n * 32]))
    return merkle_root_of_digests(level)
