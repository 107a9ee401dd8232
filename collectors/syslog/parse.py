"""Turn one received syslog frame into a normalised store record; never raises, never drops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pybase64 import b64encode_as_string

from collectors.syslog.decode import decode, strip_trailer
from collectors.syslog.formats import CompiledFormat, FormatSet, normalise, normalise_into, to_port, valid_ip
from collectors.syslog.rfc import Header, parse_header, read_time
from logstore.record import Record, iso_utc, new_record

MAX_TEXT: Final = 64 * 1024  # parse at most this much text; the raw bytes are kept whole anyway

# Syslog severity words as vendors print them (FortiGate level=, Topsec pri=, StoneOS "WARNING@").
SEVERITY_WORDS: Final = {
    "emerg": 0, "emergency": 0, "emergencies": 0, "panic": 0, "alert": 1, "alerts": 1, "crit": 2,
    "critical": 2, "err": 3, "error": 3, "errors": 3, "warning": 4, "warnings": 4, "warn": 4, "notice": 5,
    "notification": 5, "notifications": 5, "info": 6, "information": 6, "informational": 6, "debug": 7,
    "debugging": 7,
}  # fmt: skip
# The store's empty record (every field None, event_type "other"), copied per line: one dict copy
# instead of a keyword call of new_record. Its `flags` list is replaced on every copy.
_EMPTY: Final = new_record()
# A sender's "address:port" repeats on every line of its connection: its address is cut once.
_hosts: Final[dict[str, str]] = {}
# The frames of one read share their receive time (receiver.submit_many): its text is made once.
_recv_texts: Final[dict[float, str]] = {}


def parse_frame(
    raw: bytes,
    recv_ts: float,
    source: str,
    transport: str,
    formats: Sequence[CompiledFormat],
    devices: Mapping[str, str],
    zones: Mapping[str, str] | None = None,
) -> Record:
    """Normalise a frame; `devices` maps source address to device name, `zones` to its IANA zone."""
    host_addr = _hosts.get(source)
    if host_addr is None:
        colon = source.rfind(":")
        host_addr = (source[:colon] if colon >= 0 else source).strip("[]")
        if len(_hosts) >= 4096:
            _hosts.clear()
        _hosts[source] = host_addr
    device = devices.get(host_addr)
    flags: list[str] = [] if device is not None else ["unknown_source"]
    rec: Record = _EMPTY.copy()
    recv_text = _recv_texts.get(recv_ts)
    if recv_text is None:
        if len(_recv_texts) >= 64:
            _recv_texts.clear()
        recv_text = _recv_texts[recv_ts] = iso_utc(recv_ts)
    rec["recv_ts"] = recv_text
    rec["source"] = source
    rec["transport"] = transport
    rec["device"] = device
    # pybase64 (SIMD): the text base64.b64encode gives, in ~0.2 us less than binascii and one object.
    rec["raw"] = b64encode_as_string(raw)
    rec["flags"] = flags
    try:
        _fill(rec, flags, raw, recv_ts, formats, zones.get(host_addr) if zones else None)
    except Exception as exc:  # a parser bug must not lose the line: keep it raw and say so
        flags.append(f"parse_error:{type(exc).__name__}")
    return rec


def _fill(
    rec: Record,
    flags: list[str],
    raw: bytes,
    recv_ts: float,
    formats: Sequence[CompiledFormat],
    tz: str | None,
) -> None:
    text, encoding = decode(strip_trailer(raw)[:MAX_TEXT])
    rec["encoding"] = encoding
    hdr = parse_header(text, recv_ts, tz)
    rec["facility"] = hdr.facility
    rec["severity"] = hdr.severity
    rec["dev_ts"] = hdr.dev_ts
    rec["host"] = _clean_host(hdr.host)
    rec["app"] = hdr.app
    rec["msg"] = hdr.msg
    rec["format"] = hdr.rfc
    if hdr.rfc == "none":
        flags.append("unparsed")
    # RFC 5424: formats also see MSGID and structured data ("APP PROCID MSGID [SD] MSG").
    body = hdr.body if hdr.rfc != "rfc5424" else text
    # A collector's RFC 3339 stamp and address in front of a vendor body that names its own device.
    relay = hdr.time_kind == "rfc3339" and hdr.rfc != "rfc5424" and _is_ip(hdr.host)
    unused = _UNUSED[
        (hdr.pri is not None)
        | (rec["host"] is not None and not relay) << 1
        | (rec["app"] is not None) << 2
        | (rec["dev_ts"] is not None and not relay) << 3
    ]
    if isinstance(formats, FormatSet):
        found = formats.predictor.first(body, unused)
    else:
        found = _first(formats, body, unused)
    if found is not None:
        fmt, fields = found
        rec["format"] = fmt.spec.name
        normalise_into(fields, rec)
        _header_fields(rec, hdr, fields, recv_ts, tz, relay)
    if hdr.sd:
        _from_structured_data(rec, hdr.sd)


def _first(
    formats: Sequence[CompiledFormat], body: str, unused: frozenset[str]
) -> tuple[CompiledFormat, dict[str, Any]] | None:
    data = body.encode("utf-8", "surrogateescape")
    for fmt in formats:
        fields = fmt.apply(body, data, False, None, unused)
        if fields is not None:
            return fmt, fields
    return None


def _header_fields(
    rec: Record, hdr: Header, fields: dict[str, Any], recv_ts: float, tz: str | None, relay: bool
) -> None:
    """What a format read that belongs to the header: the device's severity, host, program and time
    (what is read here only under a condition is in `_UNUSED` when the condition does not hold)."""
    if hdr.pri is None:  # no PRI: the vendor's own level (%%01X/4/Y, %ASA-4-, level=notice) stands in
        rec["severity"] = _severity(fields.get("vendor_severity"))
    device_host = _clean_host(fields.get("device_host"))
    host = _clean_host(fields.get("host"))
    relayed = False  # the body's device name replaced another host: the header was a collector's
    if device_host:
        relayed = rec["host"] is not None and rec["host"] != device_host
        rec["host"] = device_host
    elif host and (rec["host"] is None or relay):
        rec["host"] = host
    if fields.get("app") and rec["app"] is None:
        rec["app"] = str(fields["app"])[:64]
    # The time of a header whose host gave way to the body's device name (`device_host`) was the
    # collector's too: the body's own time, when it gives one, wins as in the RFC 3339 relay case (a BSD
    # stamp and address in front of Topsec's `id=tos time="2020-07-10 16:26:55" fw=NAME`).
    if rec["dev_ts"] is None or relay or relayed:
        body_ts = _body_time(fields, recv_ts, tz)
        if body_ts is not None:
            rec["dev_ts"] = body_ts


# The header fields a format may read that `_header_fields` will not look at, by what the header gave
# (bit 0: a PRI, 1: a host and no relay, 2: a program, 3: a time and no relay): formats skip the
# `extract` patterns that could only add these (Huawei's "/6/" severity behind a PRI: ~0.8 us a line).
_UNUSED: Final = [
    frozenset(
        (["vendor_severity"] if bits & 1 else [])
        + (["host"] if bits & 2 else [])
        + (["app"] if bits & 4 else [])
        + (["dev_ts_text", "dev_date", "dev_time", "dev_tz"] if bits & 8 else [])
    )
    for bits in range(16)
]


def _body_time(fields: dict[str, Any], recv_ts: float, tz: str | None) -> str | None:
    """Device time from a key=value body (`date= time= tz=`, `time="..."`, `GenTime=`)."""
    text = fields.get("dev_ts_text")
    if not text and fields.get("dev_date") and fields.get("dev_time"):
        text = f"{fields['dev_date']} {fields['dev_time']}"
    if not isinstance(text, str):
        return None
    offset = fields.get("dev_tz")
    if isinstance(offset, str) and offset.strip():
        text = text.strip() + offset.strip()
    return read_time(text, recv_ts, tz)


def _severity(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    v = value.strip().lower()
    if v.isdigit() and len(v) == 1 and int(v) <= 7:
        return int(v)
    return SEVERITY_WORDS.get(v)


def _clean_host(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    v = value.strip().strip('"')
    return v[:255] or None


def _is_ip(value: str | None) -> bool:
    # formats.valid_ip accepts exactly what ipaddress.ip_address does, and caches: an RFC 3339 header's
    # host is checked on every line, and ipaddress raises (slowly, in Python) for every host name.
    return valid_ip(value or "") is not None


_SD_KEYS: Final = {
    "src": "src_ip", "srcip": "src_ip", "src_ip": "src_ip", "ip": "src_ip", "source-address": "src_ip",
    "dst": "dst_ip", "dstip": "dst_ip", "dst_ip": "dst_ip", "destination-address": "dst_ip",
    "spt": "src_port", "src_port": "src_port", "source-port": "src_port", "dpt": "dst_port",
    "dst_port": "dst_port", "destination-port": "dst_port", "user": "user", "username": "user",
    "action": "action", "outcome": "outcome", "proto": "protocol", "protocol": "protocol",
    "protocol-id": "protocol", "protocol-name": "protocol", "policy-name": "rule", "rule": "rule",
}  # fmt: skip


def _from_structured_data(rec: Record, sd: dict[str, dict[str, str]]) -> None:
    """Fill empty fields from RFC 5424 structured data with common parameter names."""
    raw: dict[str, Any] = {}
    for sd_id, params in sd.items():
        if sd_id in ("origin", "meta", "timeQuality"):  # RFC 5424's own elements describe the sender
            continue
        for key, value in params.items():
            target = _SD_KEYS.get(key.lower())
            if target and target not in raw:
                raw[target] = value
    if not raw:
        return
    raw.pop("outcome", None)  # an outcome comes only from a format's explicit wording
    for field, found in normalise({**raw, "event_type": rec["event_type"]}).items():
        if rec.get(field) is None:
            rec[field] = found
    for port in ("src_port", "dst_port"):
        if rec[port] is not None:
            rec[port] = to_port(rec[port])
