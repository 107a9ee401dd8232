"""Merkle tree root over leaf hashes (RFC 6962 shape: odd nodes promoted, 0x01 for inner nodes).

With hashlib: what verification and exports recompute. Sealing a segment uses
`logstore.digest.merkle_root_packed` (the same root over packed digests, in C when built).
"""

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
