"""Minimal BER codec for SNMP v2c/v3: values are pre-encoded bytes, responses are byte concatenation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# Universal and SNMP application tags.
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_ID = 0x06
SEQUENCE = 0x30
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

GET = 0xA0
GETNEXT = 0xA1
RESPONSE = 0xA2
SET = 0xA3
GETBULK = 0xA5
INFORM = 0xA6
TRAP2 = 0xA7
REPORT = 0xA8

Oid = tuple[int, ...]


class BerError(ValueError):
    """The bytes are not the BER we expect (the datagram is dropped)."""


def enc_len(n: int) -> bytes:
    """BER definite length."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    return b"\x83" + n.to_bytes(3, "big")


def tlv(tag: int, content: bytes) -> bytes:
    """Tag, length, value."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    return bytes((tag,)) + enc_len(n) + content


def enc_int(value: int, tag: int = INTEGER) -> bytes:
    """A signed INTEGER (two's complement, minimal length)."""
    if 0 <= value < 0x80:
        return bytes((tag, 1, value))
    n = (value.bit_length() + 8) // 8
    return tlv(tag, value.to_bytes(n, "big", signed=True))


def enc_uint(value: int, tag: int) -> bytes:
    """An unsigned application integer (Counter32/Gauge32/TimeTicks/Counter64)."""
    if 0 <= value < 0x80:
        return bytes((tag, 1, value))
    if value < 0:
        raise ValueError("unsigned SNMP value is negative")
    n = value.bit_length() // 8 + 1  # a leading 0 keeps the top bit clear
    if n < 0x80:  # always, for 64-bit values: skip tlv()'s general length
        return bytes((tag, n)) + value.to_bytes(n, "big")
    return tlv(tag, value.to_bytes(n, "big"))


def counter32(value: int) -> bytes:
    """Counter32 (wrapped modulo 2**32)."""
    return enc_uint(value & 0xFFFFFFFF, COUNTER32)


def gauge32(value: int) -> bytes:
    """Gauge32 (clamped to 0..2**32-1)."""
    return enc_uint(min(max(value, 0), 0xFFFFFFFF), GAUGE32)


def timeticks(value: int) -> bytes:
    """TimeTicks (hundredths of a second, wrapped modulo 2**32)."""
    return enc_uint(value & 0xFFFFFFFF, TIMETICKS)


def counter64(value: int) -> bytes:
    """Counter64 (wrapped modulo 2**64)."""
    return enc_uint(value & 0xFFFFFFFFFFFFFFFF, COUNTER64)


def octets(value: bytes | str) -> bytes:
    """OCTET STRING from bytes, or from text as UTF-8."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return tlv(OCTET_STRING, value)


def ip_address(dotted: str) -> bytes:
    """IpAddress from dotted quad."""
    parts = bytes(int(p) for p in dotted.split("."))
    if len(parts) != 4:
        raise ValueError("IpAddress needs 4 octets")
    return tlv(IP_ADDRESS, parts)


NULL_VALUE = b"\x05\x00"
NO_SUCH_OBJECT_VALUE = b"\x80\x00"
NO_SUCH_INSTANCE_VALUE = b"\x81\x00"
END_OF_MIB_VIEW_VALUE = b"\x82\x00"


def parse_oid(text: str) -> Oid:
    """`1.3.6.1...` or `.1.3.6.1...` to a tuple."""
    text = text.strip().lstrip(".")
    if not text:
        raise ValueError("empty OID")
    return tuple(int(p) for p in text.split("."))


def oid_str(oid: Oid) -> str:
    """Dotted text of an OID."""
    return ".".join(map(str, oid))


def _sub_id(v: int) -> bytes:
    if v < 0x80:
        return bytes((v,))
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    return bytes(reversed(out))


def _oid_content(oid: Oid) -> bytes:
    if len(oid) < 2:
        oid = (*oid, 0) if oid else (0, 0)
    if oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise ValueError("invalid OID arcs")
    return _sub_id(oid[0] * 40 + oid[1]) + b"".join(_sub_id(v) for v in oid[2:])


@lru_cache(maxsize=8192)
def _prefix_content(prefix: Oid) -> bytes:
    return _oid_content(prefix)


def enc_oid_content(oid: Oid) -> bytes:
    """The content octets of an OBJECT IDENTIFIER (table columns share a cached prefix)."""
    if len(oid) <= 3:
        return _oid_content(oid)
    return _prefix_content(oid[:-1]) + _sub_id(oid[-1])


def enc_oid(oid: Oid) -> bytes:
    """A tagged OBJECT IDENTIFIER."""
    return tlv(OBJECT_ID, enc_oid_content(oid))


def dec_oid(buf: bytes, start: int, end: int) -> Oid:
    """OID content octets to a tuple."""
    if start >= end:
        raise BerError("empty OID")
    out: list[int] = []
    v = 0
    for i in range(start, end):
        b = buf[i]
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            out.append(v)
            v = 0
    if buf[end - 1] & 0x80:
        raise BerError("truncated OID sub-identifier")
    first = out[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *out[1:])


def read_tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read a TLV at pos: (tag, content start, content end); BerError on anything malformed."""
    if pos + 2 > end:
        raise BerError("truncated TLV")
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > end:
            raise BerError("bad length")
        n = int.from_bytes(buf[pos : pos + k], "big")
        pos += k
    if pos + n > end:
        raise BerError("length beyond buffer")
    return tag, pos, pos + n


def expect(buf: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """Read a TLV that must carry `tag`: (content start, content end)."""
    t, s, e = read_tlv(buf, pos, end)
    if t != tag:
        raise BerError(f"expected tag 0x{tag:02x}, got 0x{t:02x}")
    return s, e


def dec_int(buf: bytes, start: int, end: int) -> int:
    """Signed integer content."""
    if start >= end or end - start > 9:
        raise BerError("bad INTEGER")
    return int.from_bytes(buf[start:end], "big", signed=True)


def read_int(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read an INTEGER TLV: (value, next position)."""
    s, e = expect(buf, pos, end, INTEGER)
    return dec_int(buf, s, e), e


def read_octets(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """Read an OCTET STRING TLV: (value, next position)."""
    s, e = expect(buf, pos, end, OCTET_STRING)
    return buf[s:e], e


@dataclass(slots=True)
class Pdu:
    """A decoded request PDU: type, request id, the two integer fields and the requested OIDs."""

    tag: int
    request_id: int
    non_repeaters: int  # error-status for non-bulk PDUs
    max_repetitions: int  # error-index for non-bulk PDUs
    oids: list[Oid]


def decode_pdu(buf: bytes, pos: int, end: int) -> Pdu:
    """Decode a GET/GETNEXT/GETBULK (or other) PDU starting at pos."""
    tag, s, e = read_tlv(buf, pos, end)
    if tag not in (GET, GETNEXT, GETBULK, SET, RESPONSE, REPORT, INFORM, TRAP2):
        raise BerError("not a PDU")
    reqid, p = read_int(buf, s, e)
    a, p = read_int(buf, p, e)
    b, p = read_int(buf, p, e)
    vs, ve = expect(buf, p, e, SEQUENCE)
    oids: list[Oid] = []
    p = vs
    while p < ve:
        bs, be = expect(buf, p, ve, SEQUENCE)
        os_, oe = expect(buf, bs, be, OBJECT_ID)
        oids.append(dec_oid(buf, os_, oe))
        read_tlv(buf, oe, be)  # the value must at least be well-formed
        p = be
        if len(oids) > 4096:
            raise BerError("too many varbinds")
    return Pdu(tag, reqid, a, b, oids)


def encode_pdu(tag: int, request_id: int, status: int, index: int, varbinds: list[bytes]) -> bytes:
    """A PDU from already-encoded varbinds (each `SEQUENCE {oid, value}`)."""
    return tlv(
        tag,
        enc_int(request_id) + enc_int(status) + enc_int(index) + tlv(SEQUENCE, b"".join(varbinds)),
    )


def varbind(enc_oid_tlv: bytes, value: bytes) -> bytes:
    """One varbind from an encoded OID TLV and an encoded value TLV."""
    return tlv(SEQUENCE, enc_oid_tlv + value)


@dataclass(slots=True)
class V2cMessage:
    """A decoded v1/v2c message."""

    version: int  # 0 = v1, 1 = v2c
    community: bytes
    pdu: Pdu


def decode_v2c(buf: bytes) -> V2cMessage:
    """Decode a v1/v2c message (BerError when it is not one)."""
    s, e = expect(buf, 0, len(buf), SEQUENCE)
    version, p = read_int(buf, s, e)
    if version not in (0, 1):
        raise BerError("not v1/v2c")
    community, p = read_octets(buf, p, e)
    return V2cMessage(version, community, decode_pdu(buf, p, e))


def encode_v2c(version: int, community: bytes, pdu: bytes) -> bytes:
    """A v1/v2c message around an encoded PDU."""
    return tlv(SEQUENCE, enc_int(version) + tlv(OCTET_STRING, community) + pdu)


def message_version(buf: bytes) -> int:
    """The msgVersion field of any SNMP message (BerError when not SNMP)."""
    s, e = expect(buf, 0, len(buf), SEQUENCE)
    return read_int(buf, s, e)[0]


def decode_value(buf: bytes, pos: int, end: int) -> tuple[int, bytes | int | Oid | None, int]:
    """Decode one value TLV: (tag, python value, next position) — for clients and tests."""
    tag, s, e = read_tlv(buf, pos, end)
    value: bytes | int | Oid | None
    if tag == INTEGER:
        value = dec_int(buf, s, e)
    elif tag in (COUNTER32, GAUGE32, TIMETICKS, COUNTER64):
        value = int.from_bytes(buf[s:e], "big")
    elif tag == OBJECT_ID:
        value = dec_oid(buf, s, e)
    elif tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        value = None
    else:
        value = buf[s:e]
    return tag, value, e


def decode_varbinds(buf: bytes, pos: int, end: int) -> list[tuple[Oid, int, bytes | int | Oid | None]]:
    """Decode a response PDU's varbind list (for clients and tests)."""
    out: list[tuple[Oid, int, bytes | int | Oid | None]] = []
    vs, ve = expect(buf, pos, end, SEQUENCE)
    p = vs
    while p < ve:
        bs, be = expect(buf, p, ve, SEQUENCE)
        os_, oe = expect(buf, bs, be, OBJECT_ID)
        tag, value, _ = decode_value(buf, oe, be)
        out.append((dec_oid(buf, os_, oe), tag, value))
        p = be
    return out
