"""RFC 5424 and RFC 3164 (BSD) header parsing, tolerant of vendor variants of the timestamp."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

_PRI = re.compile(r"<(\d{1,3})>")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
# BSD timestamps seen in the field: "Mar  1 10:00:00", "Mar 1 2024 10:00:00" (Huawei),
# "%Mar  1 10:00:00:123 2024" (H3C), optionally followed by a hostname.
_BSD_TS = re.compile(
    r"%?(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2})"
    r"(?: +(?P<year1>\d{4}))? +(?P<time>\d{2}:\d{2}:\d{2})(?:[:.](?P<frac>\d{1,6}))?(?: +(?P<year2>\d{4}))?"
    r"(?: +(?:[+-]\d{2}:?\d{2}|UTC|CST|GMT)(?=\s))? +"
)
_ISO_TS = re.compile(r"(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) +")
_HOST = re.compile(r"(?P<host>[^\s:\[]+)(?: +|$)")
_TAG = re.compile(r"(?P<tag>[A-Za-z0-9_./-]{1,48})(?:\[(?P<pid>[^\]]{0,32})\])?: ?")
_SD_PARAM = re.compile(r'\s*([^\s=\]"]{1,32})="((?:[^"\\]|\\.)*)"')


@dataclass(slots=True)
class Header:
    """What the syslog header says: priority, device time, host, app, structured data, message."""

    facility: int | None = None
    severity: int | None = None
    dev_ts: str | None = None
    host: str | None = None
    app: str | None = None
    msg: str = ""
    rfc: str = "none"
    sd: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_header(text: str, recv_year: int) -> Header:
    """Split PRI and header; the message is the text after it (whole text when there is no header)."""
    m = _PRI.match(text)
    if not m:
        return Header(msg=text)
    pri = int(m.group(1))
    hdr = Header(facility=pri >> 3, severity=pri & 7) if pri <= 191 else Header()
    rest = text[m.end() :]
    if rest.startswith("1 "):
        _rfc5424(rest[2:], hdr)
    else:
        _rfc3164(rest, hdr, recv_year)
    return hdr


def _rfc5424(rest: str, hdr: Header) -> None:
    hdr.rfc = "rfc5424"
    parts = rest.split(" ", 5)
    if len(parts) < 6:
        hdr.msg = rest
        return
    ts, host, app, _procid, _msgid, tail = parts
    hdr.dev_ts = _iso_to_utc(ts) if ts != "-" else None
    hdr.host = None if host == "-" else host
    hdr.app = None if app == "-" else app
    msg = tail[1:] if tail.startswith("-") else _structured_data(tail, hdr)
    msg = msg[1:] if msg.startswith(" ") else msg
    hdr.msg = msg.removeprefix("\ufeff")


def _structured_data(tail: str, hdr: Header) -> str:
    """Parse `[id k="v" ...]...` elements; return what follows them."""
    pos = 0
    while pos < len(tail) and tail[pos] == "[":
        end_id = pos + 1
        while end_id < len(tail) and tail[end_id] not in " ]":
            end_id += 1
        sd_id = tail[pos + 1 : end_id]
        params: dict[str, str] = {}
        pos = end_id
        while True:
            pm = _SD_PARAM.match(tail, pos)
            if not pm:
                break
            params[pm.group(1)] = re.sub(r"\\([\"\\\]])", r"\1", pm.group(2))
            pos = pm.end()
        if pos >= len(tail) or tail[pos] != "]":
            break  # malformed: keep the rest as message
        pos += 1
        hdr.sd[sd_id] = params
    return tail[pos:]


def _iso_to_utc(ts: str) -> str | None:
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return dt.isoformat()
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_bsd_cache: dict[tuple[str, int], str | None] = {}


def _bsd_to_iso(m: re.Match[str], recv_year: int) -> str | None:
    """Device time of a BSD stamp match, naive ISO-8601 (None when the date does not exist)."""
    year = int(m.group("year1") or m.group("year2") or recv_year)
    frac = (m.group("frac") or "0").ljust(6, "0")[:6] if m.group("frac") else None
    try:
        hh, mm, ss = (int(x) for x in m.group("time").split(":"))
        dt = datetime(year, _MONTHS[m.group("mon")], int(m.group("day")), hh, mm, ss)
    except ValueError:
        return None
    # Device-local time without zone: kept naive (the device's zone is not in the message).
    return dt.isoformat() + (f".{frac}" if frac else "")


def _rfc3164(rest: str, hdr: Header, recv_year: int) -> None:
    hdr.rfc = "rfc3164"
    m = _BSD_TS.match(rest)
    if m:
        key = (m.group(0), recv_year)
        try:
            hdr.dev_ts = _bsd_cache[key]
        except KeyError:
            # Converting the stamp costs more than the rest of the header; a sender repeats the same
            # stamp for every line of a second, so remember the last few thousand.
            if len(_bsd_cache) > 4096:
                _bsd_cache.clear()
            hdr.dev_ts = _bsd_cache[key] = _bsd_to_iso(m, recv_year)
        rest = rest[m.end() :]
    else:
        iso = _ISO_TS.match(rest)
        if iso:
            hdr.dev_ts = _iso_to_utc(iso.group("ts").replace(" ", "T"))
            rest = rest[iso.end() :]
        else:
            hdr.msg = rest
            return
    hm = _HOST.match(rest)
    if hm:
        hdr.host = hm.group("host")
        rest = rest[hm.end() :]
    tm = _TAG.match(rest)
    if tm:
        hdr.app = tm.group("tag")
        rest = rest[tm.end() :]
    hdr.msg = rest
