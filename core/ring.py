"""A consistent-hash ring with virtual nodes: which member polls which device (pure, deterministic)."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

DEFAULT_VNODES = 200


def ring_hash(key: str) -> int:
    """A stable 64-bit hash (blake2b): the same on every node and every Python run, unlike hash()."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


class HashRing:
    """Members placed `vnodes` times on a 64-bit circle; a key belongs to the next point clockwise.

    With V virtual nodes per member the load spread is about 1/sqrt(V) of the fair share, and when a
    member joins or leaves only the keys on its arcs move (about 1/n of them).
    """

    def __init__(self, members: Iterable[str], vnodes: int = DEFAULT_VNODES) -> None:
        if vnodes < 1:
            raise ValueError("vnodes must be >= 1")
        self.members = tuple(sorted(set(members)))
        self.vnodes = vnodes
        points = sorted((ring_hash(f"{m}#{i}"), m) for m in self.members for i in range(vnodes))
        self._keys = [p for p, _ in points]
        self._owners = [m for _, m in points]

    def owner(self, key: str) -> str | None:
        """The member owning `key` (None on an empty ring)."""
        if not self._keys:
            return None
        i = bisect.bisect_right(self._keys, ring_hash(key))
        return self._owners[i % len(self._owners)]

    def assign(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """member -> its keys (every member present, possibly with an empty list)."""
        out: dict[str, list[str]] = {m: [] for m in self.members}
        for key in keys:
            owner = self.owner(key)
            if owner is not None:
                out[owner].append(key)
        return out
