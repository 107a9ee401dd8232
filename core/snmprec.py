"""The one reader of snmpsim `.snmprec` recordings (`OID|TAG|VALUE` lines), for the lab and the profile tests.

The lab encodes the records to BER and serves them; the SNMP profile tests turn them into the values the
poller's engine returns. Both read the same tags the same way through here: `2` INTEGER, `4` OCTET
STRING, `5` NULL, `6` OBJECT IDENTIFIER, `64` IpAddress, `65` Counter32, `66` Gauge32, `67` TimeTicks,
`68` Opaque, `70` Counter64; each also hex-encoded (`4x`, `2x`, ...) and the octet types also in
snmpsim's escaped form (`4e`: Python escapes such as `\\x07`, `\\t`).

The rule is snmpsim's own (snmpsim/grammar/snmprec.py, record/snmprec.py, record/search/database.py):
a line is split on `\\n` only and stripped of surrounding whitespace; a line that is not `OID|TAG|VALUE`
makes snmpsim refuse the whole file, so it is an error here naming file:line. A line snmpsim indexes
but cannot serve (a sanitised `4x` value `346288XXYYZZ`, `<private>` as a number, `<IPADDR>` in an
OID, an unknown type, a variation-module tag) answers nothing there; here that one variable is
skipped, counted by kind in `Recording.skipped` and one `SnmprecWarning` per file. Right or absent:
a sanitised value is never served as made-up bytes or as its placeholder text. (snmpsim answers such
a GET with noSuchInstance and a GETNEXT with endOfMibView, which ends a walk early; skipping the one
variable is kinder and loses nothing it could serve.)

Where this reader deliberately differs from snmpsim: a 4-character IpAddress text (`<IP>`, which
pysnmp would take as 4 raw octets, 60.73.80.62) and `e` values with a dangling `\\` or `\\x` are
skipped; hex forms of the integer and OID types (`2x`, `6x`, ...), which snmpsim cannot serve, are
read; only ASCII whitespace is stripped (snmpsim strips Latin-1 0x85/0xA0 too, cutting UTF-8 text).
"""

from __future__ import annotations

import binascii
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

INTEGER_TAGS = frozenset({"2", "65", "66", "67", "70"})
OCTET_TAGS = frozenset({"4", "64", "68"})
TAGS = INTEGER_TAGS | OCTET_TAGS | {"5", "6"}
# The ranges pysnmp's types enforce: snmpsim cannot serve a value outside them.
_RANGE = {"2": (-(2**31), 2**31 - 1), "65": (0, 2**32 - 1), "66": (0, 2**32 - 1), "67": (0, 2**32 - 1)}
_RANGE["70"] = (0, 2**64 - 1)
# snmpsim's `e` escapes (SnmprecRecord.ESCAPE_CHARS): \\ \' \" \a \b \f \n \r \t \v, and \xHH.
_ESCAPES = {92: 92, 39: 39, 34: 34, 97: 7, 98: 8, 102: 12, 110: 10, 114: 13, 116: 9, 118: 11}
_WHITESPACE = " \t\r\n\v\f"
_ZERO_PADDED = re.compile(r"(?:^|\.)0\d")

# Kinds of skipped line (the names the warning and Recording.skipped use).
NOT_HEX = "not hex"
BAD_ESCAPE = "bad escape"
NOT_A_NUMBER = "not a number"
OUT_OF_RANGE = "out of range"
NOT_AN_OID = "OBJECT IDENTIFIER value not an OID"
NOT_AN_ADDRESS = "IpAddress value not 4 octets"
NULL_WITH_VALUE = "NULL with a value"
UNKNOWN_TYPE = "unknown type"
VARIATION = "variation module"
BAD_OID = "non-numeric OID"


class SnmprecError(ValueError):
    """A file that is not a recording: a line that is not `OID|TAG|VALUE` (the message names file:line)."""


class SnmprecWarning(UserWarning):
    """Variables of a recording skipped because snmpsim could not serve them either (counted by kind)."""


class _Skip(ValueError):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded varbind: numeric OID (no leading dot), base tag, and the value's bytes.

    `raw` is the decoded value for the `x` and `e` forms (`hexed` true: the octets themselves), else the
    recorded text as bytes (undecodable bytes of the file kept as they were).
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
        return _canonical_oid(self.raw.decode("ascii").strip().strip("."))


@dataclass(frozen=True, slots=True)
class Skipped:
    """A recorded variable left out: where, which OID, the kind (one of the module's kind names), why."""

    lineno: int
    oid: str
    kind: str
    detail: str


@dataclass(slots=True)
class Recording:
    """The records of a recording in file order, and the variables skipped."""

    records: list[Record] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self, source: str) -> str:
        """One line naming the skipped count by kind, with the first line of each kind."""
        counts = Counter(s.kind for s in self.skipped)
        first: dict[str, Skipped] = {}
        for s in self.skipped:
            first.setdefault(s.kind, s)
        kinds = ", ".join(
            f"{kind} {n} (first {source}:{first[kind].lineno}: {first[kind].detail})"
            for kind, n in counts.most_common()
        )
        return f"{source}: {len(self.skipped)} variable(s) skipped that snmpsim cannot serve either: {kinds}"


def unhex(value: str) -> bytes:
    """Hex digits to bytes as snmpsim reads them (pyasn1 `fromHexString`): an odd trailing nibble is the
    high half of a last byte ("4142a" is b"AB\\xa0").

    Some real recordings carry `4x` values with an odd number of digits (a truncated capture); snmpsim
    serves them that way, so LibreNMS's expectations do too. ValueError on a non-hex digit or inner
    whitespace.
    """
    value = value.strip()
    if len(value) % 2:
        value += "0"
    return binascii.unhexlify(value)


def unescape(value: str) -> bytes:
    """snmpsim's `e` form (SnmprecRecord.evaluate_raw_string) to bytes; ValueError on a bad escape.

    A trailing lone `\\` or a `\\x` without two hex digits (which snmpsim silently drops) is refused:
    the value is then not known for sure.
    """
    data = value.encode("utf-8", "surrogateescape")
    if b"\\" not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c != 92:
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("trailing backslash")
        e = data[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e == 120 and _is_hex(data[i + 2 : i + 4]):
            out.append(int(data[i + 2 : i + 4], 16))
            i += 4
        else:
            raise ValueError(f"unknown escape {data[i : i + 4]!r}")
    return bytes(out)


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


def _numeric_oid(text: str) -> bool:
    # Digits and single inner dots only (str methods, not a loop over the arcs: this runs per line).
    return (
        text.isascii()
        and text.replace(".", "").isdigit()
        and ".." not in text
        and text[0] != "."
        and text[-1] != "."
    )


def _canonical_oid(text: str) -> str:
    # snmpsim reads each arc as a number: `...16.0.02.0` is served as `...16.0.2.0`.
    if (".0" in text or text.startswith("0")) and _ZERO_PADDED.search(text):
        return ".".join(str(int(part)) for part in text.split("."))
    return text


def _record(oid: str, tag: str, value: str) -> Record:
    if ":" in tag:
        raise _Skip(VARIATION, f"tag {tag!r} needs snmpsim's variation module")
    encoding = tag[-1] if tag[-1:] in ("x", "e") else ""
    base = tag[:-1] if encoding else tag
    if base not in TAGS:
        raise _Skip(UNKNOWN_TYPE, f"type {tag!r}")
    oid = oid.strip(".")
    if not _numeric_oid(oid):
        raise _Skip(BAD_OID, f"OID {oid[:40]!r}")
    oid = _canonical_oid(oid)
    if encoding == "x":
        try:
            raw = unhex(value)
        except (ValueError, binascii.Error):
            raise _Skip(NOT_HEX, f"{tag} value {value[:24]!r}") from None
    elif encoding == "e":
        if base not in OCTET_TAGS:
            raise _Skip(UNKNOWN_TYPE, f"escaped form of a non-string type {tag!r}")
        try:
            raw = unescape(value)
        except ValueError as exc:
            raise _Skip(BAD_ESCAPE, f"{tag} value {value[:24]!r}: {exc}") from None
    else:
        raw = value.encode("utf-8", "surrogateescape")
    record = Record(oid, base, raw, bool(encoding))
    if base in INTEGER_TAGS:
        _check_integer(record, value)
    elif base == "6":
        text = raw.decode("ascii", "replace").strip().strip(".")
        if not _numeric_oid(text) or "." not in text:
            raise _Skip(NOT_AN_OID, f"value {value[:24]!r}")
    elif base == "64":
        if encoding:
            if len(raw) != 4:
                raise _Skip(NOT_AN_ADDRESS, f"{len(raw)} octets")
        else:
            parts = value.split(".")
            if len(parts) != 4 or not all(p.isascii() and p.isdigit() and int(p) < 256 for p in parts):
                raise _Skip(NOT_AN_ADDRESS, f"value {value[:24]!r}")
    elif base == "5" and value:
        raise _Skip(NULL_WITH_VALUE, f"value {value[:24]!r}")
    return record


def _check_integer(record: Record, value: str) -> None:
    if record.hexed:
        number = record.integer()
    else:
        # int() as pysnmp applies it (it also takes " 5", "+5"); ASCII only, as snmpsim reads latin-1.
        try:
            if not value.isascii():
                raise ValueError
            number = int(value)
        except ValueError:
            raise _Skip(NOT_A_NUMBER, f"{record.tag} value {value[:24]!r}") from None
    low, high = _RANGE[record.tag]
    if not low <= number <= high:
        raise _Skip(OUT_OF_RANGE, f"{record.tag} value {number}")


def read_recording(text: str, source: str = "<snmprec>") -> Recording:
    """The records of recording text and what was skipped (blank lines and `#` comments ignored).

    SnmprecError names file:line of a line that is not `OID|TAG|VALUE`, or says that no line could
    be served: that is not a recording.
    """
    recording = Recording()
    records, skipped = recording.records, recording.skipped
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.strip(_WHITESPACE)
        if not line or line[0] == "#":
            continue
        parts = line.split("|", 2)
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise SnmprecError(f"{source}:{lineno}: not an OID|TAG|VALUE line: {line[:40]!r}")
        oid, tag, value = parts
        # The common cases inline, kept fast: a plain string needs no check, a plain number its range.
        if tag == "4" and _numeric_oid(oid):
            records.append(Record(_canonical_oid(oid), "4", value.encode("utf-8", "surrogateescape"), False))
            continue
        if tag in _RANGE and value.isdigit() and value.isascii() and _numeric_oid(oid):
            low, high = _RANGE[tag]
            if low <= int(value) <= high:
                records.append(Record(_canonical_oid(oid), tag, value.encode("ascii"), False))
                continue
        try:
            records.append(_record(oid, tag, value))
        except _Skip as exc:
            skipped.append(Skipped(lineno, oid.strip(".")[:80], exc.kind, str(exc)))
    if skipped and not records:
        raise SnmprecError(f"{source}: no line can be served ({recording.summary(source)})")
    return recording


def read_records(text: str, source: str = "<snmprec>") -> list[Record]:
    """The servable records of recording text; a SnmprecWarning counts any variable skipped."""
    recording = read_recording(text, source)
    if recording.skipped:
        warnings.warn(SnmprecWarning(recording.summary(source)), stacklevel=2)
    return recording.records


def load_recording(path: Path) -> Recording:
    """A recording file's records and skipped variables (SnmprecError if it is not a recording)."""
    return read_recording(path.read_bytes().decode("utf-8", "surrogateescape"), path.name)


def load_records(path: Path) -> list[Record]:
    """The servable records of a recording file; a SnmprecWarning counts any variable skipped."""
    return read_records(path.read_bytes().decode("utf-8", "surrogateescape"), path.name)
