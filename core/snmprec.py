"""The one reader of snmpsim `.snmprec` recordings (`OID|TAG|VALUE` lines), for the lab and the profile tests.

The lab encodes the records to BER and serves them; the SNMP profile tests turn them into the values the
poller's engine returns. Both read the same tags the same way through here: `2` INTEGER, `4` OCTET
STRING, `5` NULL, `6` OBJECT IDENTIFIER, `64` IpAddress, `65` Counter32, `66` Gauge32, `67` TimeTicks,
`70` Counter64, each also in its hex form (`4x`, `2x`, ...). A malformed line is an error naming
file:line, never silently skipped.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

INTEGER_TAGS = frozenset({"2", "65", "66", "67", "70"})
TAGS = INTEGER_TAGS | {"4", "5", "6", "64"}


class SnmprecError(ValueError):
    """A recording line that cannot be read (the message names file:line)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded varbind: numeric OID (no leading dot), base tag, and the value's bytes.

    `raw` is the hex-decoded value for the `x` forms, else the recorded text as bytes (undecodable
    bytes of the file kept as they were).
    """

    oid: str
    tag: str
    raw: bytes
    hexed: bool

    def integer(self) -> int:
        """The value of an integer-typed record (INTEGER signed, the others unsigned)."""
        if self.hexed:
            return int.from_bytes(self.raw, "big", signed=self.tag == "2")
        return int(self.raw.decode("ascii"))

    def text(self) -> str:
        """The value as text (an OID or a dotted IPv4 address)."""
        if self.tag == "64" and self.hexed:
            if len(self.raw) != 4:
                raise ValueError("IpAddress needs 4 octets")
            return ".".join(str(b) for b in self.raw)
        return self.raw.decode("ascii").strip().lstrip(".")


def unhex(value: str) -> bytes:
    """Hex digits to bytes as snmpsim reads them: an odd trailing nibble becomes a byte of its own.

    Real recordings carry `4x` values with an odd number of digits ("4142a" is b"AB\\x0a"); snmpsim
    serves them that way, so the lab and the offline tests do the same. ValueError on a non-hex digit.
    """
    value = value.strip()
    if len(value) % 2:
        return binascii.unhexlify(value[:-1]) + bytes([int(value[-1], 16)])
    return binascii.unhexlify(value)


def _record(line: str) -> Record:
    oid, tag, value = line.split("|", 2)
    hexed = tag.endswith("x")
    base = tag[:-1] if hexed else tag
    if base not in TAGS:
        raise ValueError(f"unsupported snmprec type {tag!r}")
    oid = oid.strip().lstrip(".")
    if not oid or not all(part.isdigit() for part in oid.split(".")):
        raise ValueError(f"not a numeric OID: {oid[:40]!r}")
    raw = unhex(value) if hexed else value.encode("utf-8", "surrogateescape")
    record = Record(oid, base, raw, hexed)
    if base in INTEGER_TAGS:
        record.integer()  # refuse a non-number now, where the line is known
    elif base in ("6", "64"):
        record.text()
    return record


def read_records(text: str, source: str = "<snmprec>") -> Iterator[Record]:
    """The records of recording text, in file order (blank lines and `#` comments skipped)."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            yield _record(line)
        except (ValueError, binascii.Error) as exc:
            raise SnmprecError(f"{source}:{lineno}: {exc}") from None


def load_records(path: Path) -> list[Record]:
    """The records of a recording file (SnmprecError naming file:line for a malformed line)."""
    return list(read_records(path.read_bytes().decode("utf-8", "surrogateescape"), path.name))
