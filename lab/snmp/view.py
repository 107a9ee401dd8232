"""A device's MIB view: a sorted OID list with pre-encoded varbinds and static or computed values."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from typing import Any

from lab.snmp import ber
from lab.snmp.ber import Oid

Provider = Callable[[float], bytes]  # now -> encoded value TLV
# (function, argument): function(argument, now) -> encoded value; cheaper than a closure per cell.
Cell = tuple[Callable[[Any, float], bytes], Any]
Value = bytes | Provider | Cell

# Devices of one vendor share most OIDs and many static varbinds (ifType.3 = 6 on every switch):
# one copy of each serves every view, so a 3 000-device lab holds a fraction of the bytes.
_SHARED: dict[Any, Any] = {}


def _shared(obj: Any) -> Any:
    return _SHARED.setdefault(obj, obj)


class MibView:
    """Sorted OIDs, their encoded TLVs and values; lookups are bisects, walks are index steps.

    `vbs[i]` is the whole encoded varbind of a static value (built once: answering is a list
    lookup), None for a computed one.
    """

    __slots__ = ("enc", "oids", "values", "vbs")

    def __init__(self, entries: Iterable[tuple[Oid, Value]]) -> None:
        merged: dict[Oid, Value] = {}
        for oid, value in entries:
            merged[oid] = value  # later entries override earlier ones
        self.oids: list[Oid] = [_shared(o) for o in sorted(merged)]
        self.enc: list[bytes] = [_shared(ber.enc_oid(o)) for o in self.oids]
        self.values: list[Value] = [merged[o] for o in self.oids]
        self.vbs: list[bytes | None] = [
            _shared(ber.varbind(e, v)) if type(v) is bytes else None
            for e, v in zip(self.enc, self.values, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.oids)

    def value_at(self, i: int, now: float) -> bytes:
        """The encoded value at index i, computing it when dynamic."""
        v = self.values[i]
        if type(v) is bytes:
            return v
        if type(v) is tuple:
            fn, arg = v
            return fn(arg, now)
        assert callable(v)
        return v(now)

    def index(self, oid: Oid) -> int:
        """Index of oid, or -1."""
        i = bisect_left(self.oids, oid)
        return i if i < len(self.oids) and self.oids[i] == oid else -1

    def next_index(self, oid: Oid) -> int:
        """Index of the first OID strictly after oid (len(view) at the end)."""
        return bisect_right(self.oids, oid)

    def get(self, oid: Oid, now: float) -> bytes:
        """The varbind answering GET for oid."""
        i = self.index(oid)
        if i >= 0:
            return self.varbind_at(i, now)
        j = bisect_left(self.oids, oid[:-1])
        has_object = j < len(self.oids) and self.oids[j][: len(oid) - 1] == oid[:-1]
        miss = ber.NO_SUCH_INSTANCE_VALUE if has_object else ber.NO_SUCH_OBJECT_VALUE
        return ber.varbind(ber.enc_oid(oid), miss)

    def varbind_at(self, i: int, now: float) -> bytes:
        """The varbind for index i."""
        vb = self.vbs[i]
        if vb is not None:
            return vb
        v = self.values[i]
        value = v[0](v[1], now) if type(v) is tuple else v(now)  # type: ignore[operator]
        content = self.enc[i] + value
        n = len(content)
        if n < 0x80:
            return b"\x30" + n.to_bytes(1, "big") + content
        return ber.tlv(ber.SEQUENCE, content)

    def varbinds(self, start: int, count: int, now: float) -> list[bytes]:
        """The varbinds of indices start .. start+count-1 (clipped to the view): one GETBULK column."""
        vbs, values, enc = self.vbs, self.values, self.enc
        out: list[bytes] = []
        for i in range(start, min(start + count, len(vbs))):
            vb = vbs[i]
            if vb is None:
                v = values[i]
                value = v[0](v[1], now) if type(v) is tuple else v(now)  # type: ignore[operator]
                content = enc[i] + value
                n = len(content)
                vb = b"\x30" + n.to_bytes(1, "big") + content if n < 0x80 else ber.tlv(ber.SEQUENCE, content)
            out.append(vb)
        return out

    def walk(self, prefix: Oid, now: float) -> list[tuple[Oid, bytes]]:
        """(oid, encoded value) under a prefix (for tests and tools)."""
        i = bisect_left(self.oids, prefix)
        out = []
        n = len(prefix)
        while i < len(self.oids) and self.oids[i][:n] == prefix:
            out.append((self.oids[i], self.value_at(i, now)))
            i += 1
        return out
