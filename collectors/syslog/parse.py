"""Turn one received syslog frame into a normalised store record; never raises, never drops."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from collectors.syslog.decode import decode, strip_trailer
from collectors.syslog.formats import CompiledFormat
from collectors.syslog.rfc import parse_header
from logstore.record import Record, iso_utc, new_record

MAX_TEXT = 64 * 1024  # parse at most this much text; the raw bytes are kept whole anyway


def parse_frame(
    raw: bytes,
    recv_ts: float,
    source: str,
    transport: str,
    formats: Sequence[CompiledFormat],
    devices: Mapping[str, str],
) -> Record:
    """Normalise a frame; `devices` maps source address to inventory device name."""
    host_addr = source.rsplit(":", 1)[0].strip("[]")
    device = devices.get(host_addr)
    rec = new_record(
        recv_ts=iso_utc(recv_ts),
        source=source,
        transport=transport,
        device=device,
        raw=base64.b64encode(raw).decode("ascii"),
    )
    if device is None:
        rec["flags"].append("unknown_source")
    try:
        _fill(rec, raw, recv_ts, formats)
    except Exception as exc:  # a parser bug must not lose the line: keep it raw and say so
        rec["flags"].append(f"parse_error:{type(exc).__name__}")
    return rec


def _fill(rec: Record, raw: bytes, recv_ts: float, formats: Sequence[CompiledFormat]) -> None:
    text, encoding = decode(strip_trailer(raw)[:MAX_TEXT])
    rec["encoding"] = encoding
    year = _year_of(recv_ts)
    hdr = parse_header(text, year)
    if (
        hdr.dev_ts
        and hdr.rfc == "rfc3164"
        and hdr.dev_ts[:4] == str(year)
        and hdr.dev_ts > iso_utc(recv_ts + 2 * 86400)
    ):
        # A yearless BSD stamp from late December received in January belongs to last year.
        hdr.dev_ts = str(year - 1) + hdr.dev_ts[4:]
    rec.update(
        facility=hdr.facility,
        severity=hdr.severity,
        dev_ts=hdr.dev_ts,
        host=hdr.host,
        app=hdr.app,
        msg=hdr.msg,
        format=hdr.rfc,
    )
    if hdr.rfc == "none":
        rec["flags"].append("unparsed")
    for fmt in formats:
        fields = fmt.apply(hdr.msg)
        if fields is not None:
            rec["format"] = fmt.spec.name
            rec.update(fields)
            break
    if hdr.sd:
        _from_structured_data(rec, hdr.sd)


_years: dict[int, int] = {}


def _year_of(ts: float) -> int:
    """UTC year of a receive time (cached per day: a datetime per line is measurable)."""
    day = int(ts // 86400)
    year = _years.get(day)
    if year is None:
        if len(_years) > 64:
            _years.clear()
        year = _years[day] = datetime.fromtimestamp(day * 86400, UTC).year
    return year


_SD_KEYS = {
    "src": "src_ip", "srcip": "src_ip", "src_ip": "src_ip", "dst": "dst_ip", "dstip": "dst_ip",
    "dst_ip": "dst_ip", "spt": "src_port", "src_port": "src_port", "dpt": "dst_port", "dst_port": "dst_port",
    "user": "user", "action": "action", "outcome": "outcome", "proto": "protocol", "protocol": "protocol",
}  # fmt: skip


def _from_structured_data(rec: Record, sd: dict[str, dict[str, str]]) -> None:
    """Fill empty fields from RFC 5424 structured data with common parameter names."""
    for params in sd.values():
        for key, value in params.items():
            target = _SD_KEYS.get(key.lower())
            if target and rec.get(target) is None:
                if target.endswith("_port"):
                    rec[target] = int(value) if value.isdigit() and int(value) <= 65535 else None
                else:
                    rec[target] = value[:256]
    rec["rule"] = rec["rule"] or None
