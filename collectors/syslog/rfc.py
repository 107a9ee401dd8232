"""Syslog header parsing for what devices really send: RFC 5424, RFC 3164 and the vendor variants between.

Taken in order, each part optional: `<PRI>` (a space may follow), a sequence number (`008407:`), the
unsynchronised-clock mark `*`, a timestamp (BSD with or without year, H3C `%Mon dd hh:mm:ss:ms yyyy`,
ISO/RFC 3339 with `T` or a space, `/` dates, offsets glued or zone names), a host (optionally followed by
`:`, a `(vsys)` suffix, or quoted), then a collector's relay prefix is recognised when a second
timestamp follows. Zone-less times are taken in the device's zone (inventory, default Asia/Shanghai).
Every pattern here is anchored and free of nested quantifiers, so the work is linear in the line length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TZ: Final = "Asia/Shanghai"

# Module constants are Final: mypyc then keeps them in C statics instead of looking them up per use.
_SEQ: Final = re.compile(r"\d{1,10}: +")
_MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_ZONE_WORDS: Final = {  # zone names devices print after the time (CST is China Standard Time on this network)
    "UTC": 0, "GMT": 0, "Z": 0, "CST": 480, "HKT": 480, "JST": 540, "KST": 540, "SGT": 480, "CET": 60,
    "CEST": 120, "EST": -300, "EDT": -240, "CDT": -300, "MST": -420, "MDT": -360, "PST": -480, "PDT": -420,
}  # fmt: skip
_ZONE_ALT: Final = "|".join(sorted(_ZONE_WORDS, key=len, reverse=True))
_OFFSET: Final = r"(?P<off>Z|[+-]\d{2}:?\d{2})"
# BSD: "Mar  1 10:00:00", "Mar 1 2024 10:00:00" (Huawei, ASA), "%Mar  1 10:00:00:123 2024" (H3C),
# "Jan 8 2013 3:58:15+07:00" (VRP), "Apr 15 2014 09:34:34 EDT" (ASA), "*Mar 19 20:16:00:" (Ruijie).
_BSD: Final = re.compile(
    r"%?(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(?P<day>\d{1,2})"
    r"(?: (?P<y1>\d{4}))? (?P<h>\d{1,2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:[:.](?P<frac>\d{1,6}))?"
    r"(?: (?P<y2>\d{4})(?![:\d]))?" + _OFFSET.replace("off", "boff") + r"?"
    r"(?: (?P<zone>" + _ZONE_ALT + r")(?=[\s:]))?:?(?= |$)"
)
# ISO-like: "2018-10-05 10:52:13", "2018-7-23 01:00:34.270.1", "2018/10/05 09:52:14",
# "2013-10-30T14:51:30.267401+01:00", "2020-03-23 08:14:32.766049-0700", "2000-02-05 01:51:21,".
_ISO: Final = re.compile(
    r"(?P<y>\d{4})(?P<sep>[-/])(?P<mo>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?P<t>[T ])(?P<h>\d{1,2}):(?P<mi>\d{2})"
    r":(?P<s>\d{2})(?:[.,](?P<frac>\d{1,9})(?:\.\d{1,3})?)?" + _OFFSET + r"?"
    r"(?: (?P<zone>" + _ZONE_ALT + r")(?=[\s:]))?[,:]?(?= |$)"
)
_YEAR_ONLY: Final = re.compile(r"(?P<y>\d{4}) (?=\S+ +%%)")  # old VRP behind a relay: "2015 HOST %% 01 ..."
_HOST: Final = re.compile(r'(?P<host>"[^"\s]{1,255}"|[^\s"]{1,255}?)(?P<colon> ?:)?(?: +|$)')
_VSYS: Final = re.compile(r"(?P<host>.+?)\((?P<vsys>[^()\s]{1,64})\)")
_TAG: Final = re.compile(r"(?P<tag>[A-Za-z0-9_./()-]{1,48}?)(?:\[(?P<pid>\d{1,10})\])?:(?: +|$)")
_SD_PARAM: Final = re.compile(r'\s*([^\s=\]"]{1,32})="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE: Final = re.compile(r"\\([\"\\\]])")


_TS_FIRST: Final = frozenset("%" + "".join(_MONTHS)[::3])  # first characters of a BSD timestamp
_ts_cache: Final[dict[tuple[str, str | None, int], tuple[str | None, str]]] = {}


class Header:
    """What the header says: priority, device time, host, app, structured data, message."""

    # A plain class with its own __init__, not a dataclass: compiled, a dataclass's __init__ is the one
    # the dataclasses module writes at run time, interpreted (~0.35 us a line for one Header).
    def __init__(self) -> None:
        self.facility: int | None = None
        self.severity: int | None = None
        self.pri: int | None = None
        self.dev_ts: str | None = None
        self.time_text: str | None = None
        self.time_kind: str | None = None  # "bsd", "iso", "rfc3339" (ISO with T, fraction and offset), "year"
        self.host: str | None = None
        self.relay_host: str | None = None
        self.vsys: str | None = None
        self.app: str | None = None
        self.pid: int | None = None
        self.body = ""  # the text after the host (tag included): what vendor formats read
        self.msg = ""  # the text after the tag
        self.rfc = "none"
        self.sd: dict[str, dict[str, str]] | None = None  # RFC 5424 structured data, when there is any

    def __repr__(self) -> str:
        return f"Header({', '.join(f'{k}={getattr(self, k)!r}' for k in _HEADER_FIELDS)})"


_HEADER_FIELDS: Final = (
    "facility", "severity", "pri", "dev_ts", "time_text", "time_kind", "host", "relay_host", "vsys", "app",
    "pid", "body", "msg", "rfc", "sd",
)  # fmt: skip


@lru_cache(maxsize=64)
def zone(name: str | None) -> tzinfo:
    """The tzinfo of an IANA zone name (the default zone when unknown)."""
    try:
        return ZoneInfo(name or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


def parse_header(text: str, recv_ts: float, tz: str | None = None) -> Header:
    """Split PRI and header from `text`; `tz` is the device's zone for zone-less times."""
    hdr = Header()
    day = int(recv_ts // 86400)
    pos = _known_front(text, tz, day, hdr)
    if pos < 0:
        pos = _front(text, recv_ts, tz, day, hdr)
        if pos < 0:
            return hdr  # RFC 5424, read whole
    if hdr.time_kind is not None:
        # A collector's prefix ("receive time, sender address") in front of the device's own header.
        save = (hdr.dev_ts, hdr.time_text, hdr.time_kind, hdr.host)
        hdr.time_kind = None
        nxt = _timestamp(text, pos, hdr, recv_ts, tz, relayed=True)
        if nxt != pos:
            hdr.relay_host = save[3]
            hdr.host = None
            pos = _host(text, nxt, hdr)
        else:
            hdr.dev_ts, hdr.time_text, hdr.time_kind, hdr.host = save
            if text[pos : pos + 1].isdecimal():  # only then can a sequence number follow
                pos = _sequenced_time(text, pos, hdr, recv_ts, tz)
    hdr.body = text[pos:]
    if not text.startswith("%", pos):
        m = _TAG.match(text, pos)
        if m:
            hdr.app = m.group("tag")
            pid = m.group("pid")
            hdr.pid = int(pid) if pid else None
            pos = m.end()
    hdr.msg = text[pos:]
    if hdr.rfc == "none" and hdr.time_kind is not None:
        hdr.rfc = "rfc3164"
    return hdr


@dataclass(slots=True)
class _Front:
    """What the front of a header (PRI, sequence number, time, host) gave for a line, kept for the next
    lines that begin with the same `key`: the text before the body and the body's first three characters.

    Every test the front makes reads only that text. The time patterns end before the host and look at
    most into it; the host pattern is the one that reads into the body: its trailing spaces stop at the
    body's first character, and its colon alternative (" :" then spaces or the end) may read the second
    and, through `$` (which also matches before a final newline), ask whether a third follows. So for
    equal keys (and equal device zone and receive day, which the time depends on) the front is the same,
    and only what reads the body is done again: the sysname-with-a-space check, the relay check and the
    tag. Fronts whose tests read further are not kept: an RFC 5424 attempt, a host token refused (the
    body then starts at it), a body shorter than three characters, a host ended by the end of the text,
    the time of a failed RFC 5424 header.
    """

    key: str
    body_at: int  # where the body starts (the key's last three characters are its first)
    tz: str | None
    day: int
    pri: int | None
    facility: int | None
    severity: int | None
    rfc: str
    dev_ts: str | None
    time_text: str | None
    time_kind: str | None
    host: str | None
    vsys: str | None
    named: bool  # the host is a token of the line (the sysname check follows it)


_FRONTS_KEPT: Final = 8  # a flood comes from a few devices, each repeating its front for a second
_fronts: Final[list[_Front]] = []  # newest first; a list, not a dict: the key's length is not known yet


def clear_caches() -> None:
    """Forget remembered fronts and converted timestamps (tests compare lines parsed cold and warm)."""
    _fronts.clear()
    _ts_cache.clear()


def _known_front(text: str, tz: str | None, day: int, hdr: Header) -> int:
    """Fill `hdr` from a remembered front `text` begins with; the body's position, or -1 when none."""
    for front in _fronts:
        if front.day == day and front.tz == tz and text.startswith(front.key):
            hdr.pri, hdr.facility, hdr.severity, hdr.rfc = (
                front.pri,
                front.facility,
                front.severity,
                front.rfc,
            )
            hdr.dev_ts, hdr.time_text, hdr.time_kind = front.dev_ts, front.time_text, front.time_kind
            hdr.host, hdr.vsys = front.host, front.vsys
            return _sysname(text, front.body_at, hdr) if front.named else front.body_at
    return -1


def _front(text: str, recv_ts: float, tz: str | None, day: int, hdr: Header) -> int:
    """Read PRI, sequence number, time and host; the body's position, or -1 for an RFC 5424 line."""
    pos = 0
    keep = True
    # "<PRI>" read by hand (as the regex "<(\d{1,3})> ?" would): one regex call less on every line.
    if text.startswith("<"):
        close = text.find(">", 1, 5)
        if close > 1 and text[1:close].isdecimal():
            pri = int(text[1:close])
            hdr.pri = pri
            if pri <= 191:
                hdr.facility, hdr.severity = pri >> 3, pri & 7
            pos = close + 1
            if text.startswith(" ", pos):
                pos += 1
            if text.startswith(("1 ", "0 "), pos):
                if _rfc5424(text, pos + 2, hdr, tz):
                    return -1
                keep = False
            hdr.rfc = "rfc3164"
    if text[pos : pos + 1].isdecimal():  # a sequence number starts with a digit (as \d does)
        m = _SEQ.match(text, pos)
        if m:
            pos = m.end()
    if text.startswith("*", pos) or text.startswith(".", pos):  # clock not synchronised (IOS-style)
        pos += 1
        while text.startswith(" ", pos):
            pos += 1
    nxt = _timestamp(text, pos, hdr, recv_ts, tz)
    # A timestamp here (every match consumes a character), or the one of a `<PRI>1 ` header that
    # turned out not to be RFC 5424 (its time was read before the rest failed).
    if nxt == pos and hdr.time_kind is None:
        return _origin_id(text, pos, hdr, recv_ts, tz) if text.startswith(": ", pos) else pos
    end, named = _host_token(text, nxt, hdr)
    if keep and nxt > pos and nxt < end and end + 3 <= len(text) and (not named or text[end - 1] == " "):
        front = _Front(
            text[: end + 3], end, tz, day, hdr.pri, hdr.facility, hdr.severity, hdr.rfc, hdr.dev_ts,
            hdr.time_text, hdr.time_kind, hdr.host, hdr.vsys, named,
        )  # fmt: skip
        _fronts.insert(0, front)
        del _fronts[_FRONTS_KEPT:]
    return _sysname(text, end, hdr) if named else end


def _sequenced_time(text: str, pos: int, hdr: Header, recv_ts: float, tz: str | None) -> int:
    """IOS behind a collector ("TIME HOST seq: DEVICE-TIME: %FAC-SEV-MNEMONIC: ..."): the device's own
    time after its sequence number replaces the collector's; the body's position (`pos` when none).

    The collector's host stays the host (it is the address the device sent from) unless the device's
    part names one of its own, which then wins and leaves the collector's as `relay_host`.
    """
    m = _SEQ.match(text, pos)
    if m is None:
        return pos
    at = _unsynced(text, m.end())
    host = hdr.host
    nxt = _timestamp(text, at, hdr, recv_ts, tz)
    if nxt == at:
        return pos
    end, named = _host_token(text, nxt, hdr)  # replaces hdr.host only when the device names one
    if not named:
        return end
    hdr.relay_host = host
    return _sysname(text, end, hdr)


def _origin_id(text: str, pos: int, hdr: Header, recv_ts: float, tz: str | None) -> int:
    """IOS `logging origin-id` after the PRI ("<PRI>: HOST: [seq: ][*]TIME: %..."): the host and time when
    a time follows the host (`pos` otherwise: a lone colon and a word are too little to name a host)."""
    at = pos + 1
    while text.startswith(" ", at):
        at += 1
    m = _HOST.match(text, at)
    if m is None or m.group("colon") is None:
        return pos
    token = m.group("host")
    if token[0] in '%<["' or "=" in token or "[" in token:
        return pos
    at = m.end()
    seq = _SEQ.match(text, at) if text[at : at + 1].isdecimal() else None
    at = _unsynced(text, seq.end() if seq is not None else at)
    nxt = _timestamp(text, at, hdr, recv_ts, tz)
    if nxt == at:
        return pos
    hdr.host = token
    return nxt


def _unsynced(text: str, pos: int) -> int:
    """After IOS's unsynchronised-clock mark (`*` or `.`) and its spaces, when there is one."""
    if text.startswith("*", pos) or text.startswith(".", pos):
        pos += 1
        while text.startswith(" ", pos):
            pos += 1
    return pos


def read_time(text: str, recv_ts: float, tz: str | None = None) -> str | None:
    """UTC ISO-8601 of a timestamp text on its own (a body's `date= time=` or `GenTime=`), else None."""
    hdr = Header()
    _timestamp(text.strip() + " ", 0, hdr, recv_ts, tz)
    return hdr.dev_ts


def _timestamp(
    text: str, pos: int, hdr: Header, recv_ts: float, tz: str | None, relayed: bool = False
) -> int:
    """Parse a timestamp at `pos`; set dev_ts/time_text/time_kind and return the position after it
    (`pos` itself when there is none: every timestamp consumes at least one character)."""
    # A BSD timestamp starts with a month's initial or "%" and then one ("%%01" of a Huawei body is not
    # a time), an ISO one (and a relay's lone year) with a digit: only the one pattern that can match
    # is tried, and nothing on the common bodies.
    first = text[pos : pos + 1]
    if first == "%":
        first = text[pos + 1 : pos + 2]
        if first not in _TS_FIRST or first == "%":
            return pos
        bsd = True
    elif not first:
        return pos
    elif first in _TS_FIRST:
        bsd = True
    elif first.isdecimal():
        bsd = False
    else:
        return pos
    m = _BSD.match(text, pos) if bsd else _ISO.match(text, pos)
    if m is None:
        if relayed and not bsd:
            y = _YEAR_ONLY.match(text, pos)  # old VRP behind a relay: "2015 HOST %% 01 ..."
            if y is not None:
                hdr.dev_ts, hdr.time_text, hdr.time_kind = None, y.group("y"), "year"
                return y.end()
        return pos
    stamp = m.group(0)
    # A sender repeats the same stamp for every line of a second: convert each one once.
    key = (stamp, tz, int(recv_ts // 86400))
    cached = _ts_cache.get(key)
    if cached is not None:
        hdr.dev_ts, hdr.time_kind = cached
    else:
        if bsd:
            year = m.group("y1") or m.group("y2")
            dt = _mk(int(year) if year else 0, _MONTHS[m.group("mon")], m.group("day"), m, m.group("boff"))
            kind = "bsd"
        else:
            year = m.group("y")
            dt = _mk(int(year), int(m.group("mo")), m.group("d"), m, m.group("off"))
            kind = "rfc3339" if m.group("t") == "T" and m.group("off") and m.group("frac") else "iso"
        hdr.time_kind = kind
        hdr.dev_ts = to_utc(dt, m.group("zone"), tz, recv_ts, has_year=bool(year)) if dt else None
        if len(_ts_cache) > 4096:
            _ts_cache.clear()
        _ts_cache[key] = (hdr.dev_ts, kind)
    hdr.time_text = stamp.rstrip(",: ")
    end = m.end()
    while text.startswith(" ", end):
        end += 1
    return end


def _mk(year: int, month: int, day: str, m: re.Match[str], off: str | None) -> datetime | None:
    """A datetime from the matched parts (None when the date does not exist)."""
    frac = m.group("frac")
    micro = int(frac.ljust(6, "0")[:6]) if frac else 0
    tzi: tzinfo | None = None
    try:
        if off:
            if off == "Z":
                tzi = UTC
            else:
                # An offset of 24 h or more ("+99:00") is no zone: the time is unknown, not the line.
                sign = -1 if off[0] == "-" else 1
                digits = off[1:].replace(":", "")
                tzi = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        return datetime(
            year or 2000, month, int(day), int(m.group("h")), int(m.group("mi")), int(m.group("s")),
            micro, tzinfo=tzi,
        )  # fmt: skip
    except ValueError:
        return None


def to_utc(dt: datetime, zone_word: str | None, tz: str | None, recv_ts: float, has_year: bool) -> str | None:
    """UTC ISO-8601 of a device time: its own offset or zone name, else the device's zone.

    A year-less time is put in the year that makes it the latest not more than two days after the
    receive time (a December stamp received in January belongs to last year).
    """
    if dt.tzinfo is None:
        if zone_word:
            dt = dt.replace(tzinfo=timezone(timedelta(minutes=_ZONE_WORDS[zone_word])))
        else:
            dt = dt.replace(tzinfo=zone(tz))
    if not has_year:
        recv = datetime.fromtimestamp(recv_ts, dt.tzinfo)
        try:
            dt = dt.replace(year=recv.year)
            if dt > recv + timedelta(days=2):
                dt = dt.replace(year=recv.year - 1)
        except ValueError:  # 29 February in a year without one
            return None
    try:
        return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError):
        return None


def _host(text: str, pos: int, hdr: Header) -> int:
    """The host after a timestamp, unless what follows is a tag, a mnemonic or a key=value body."""
    end, named = _host_token(text, pos, hdr)
    return _sysname(text, end, hdr) if named else end


def _host_token(text: str, pos: int, hdr: Header) -> tuple[int, bool]:
    """The host token at `pos` into `hdr.host`: (position after it, True), or (after a lone colon, False),
    or (`pos`, False) when what follows is no host."""
    if text.startswith(":", pos):  # "TIME: %ASA-..." (no host)
        pos += 1
        while text.startswith(" ", pos):
            pos += 1
        return pos, False
    m = _HOST.match(text, pos)
    if not m:
        return pos, False
    token = m.group("host")
    if (
        (token[0] in "%<[" and token != "<IP>")  # noqa: S105 (a sanitised host, not a password)
        or "=" in token
        or (
            "@" in token and m.group("colon") and token.split("@", 1)[0].isupper()
        )  # StoneOS "WARNING@LOGIN:"
        or (m.group("colon") is not None and "[" in token)  # "prog[pid]:" right after the time
    ):
        return pos, False
    token = token.strip('"')
    vm = _VSYS.fullmatch(token) if token.endswith(")") else None
    if vm:  # StoneOS "serial(vsys)"
        token, hdr.vsys = vm.group("host"), vm.group("vsys")
    if token.startswith("src@"):  # Sangfor AD: "src@NAME :"
        token = token[4:]
    hdr.host = token
    return m.end(), True


def _sysname(text: str, end: int, hdr: Header) -> int:
    """H3C/Huawei sysnames may contain a space: everything up to the "%%vv" tag is the sysname."""
    pct = text.find(" %%", end - 1, end + 64)
    if (
        pct >= end - 1
        and " " not in text[end:pct].strip()
        and text[end:pct].strip()
        and "=" not in text[end:pct]
    ):
        hdr.host = f"{hdr.host} {text[end:pct].strip()}"
        end = pct + 1
    return end


def _rfc5424(text: str, pos: int, hdr: Header, tz: str | None) -> bool:
    """RFC 5424 after `<PRI>1 `; False when the rest is not a 5424 header."""
    parts = text[pos:].split(" ", 5)
    if len(parts) < 5:
        return False
    ts = parts[0]
    if ts != "-":
        hdr.time_text = ts
        hdr.time_kind = "rfc3339"
        hdr.dev_ts = _iso_to_utc(ts, tz)
        if hdr.dev_ts is None:
            return False
    hdr.rfc = "rfc5424"
    host, app, procid = parts[1], parts[2], parts[3]
    tail = parts[5] if len(parts) > 5 else ""
    hdr.host = None if host == "-" else host
    hdr.app = None if app == "-" else app
    hdr.pid = int(procid) if procid.isdigit() and len(procid) < 10 else None
    msg = tail[1:] if tail.startswith("-") else _structured_data(tail, hdr)
    msg = msg.lstrip(" ").removeprefix("\ufeff")
    hdr.msg = hdr.body = msg
    return True


def _iso_to_utc(ts: str, tz: str | None) -> str | None:
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone(tz))
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _structured_data(tail: str, hdr: Header) -> str:
    """Parse `[id k="v" ...]...` elements; return what follows them."""
    pos = 0
    while pos < len(tail) and tail[pos] == "[":
        end_id = pos + 1
        while end_id < len(tail) and tail[end_id] not in " ]":
            end_id += 1
        sd_id = tail[pos + 1 : end_id]
        params: dict[str, str] = {}
        sd = hdr.sd if hdr.sd is not None else {}
        pos = end_id
        while True:
            pm = _SD_PARAM.match(tail, pos)
            if not pm:
                break
            value = pm.group(2)
            # Unescaped only where there is a backslash (the same text without a `sub` call per
            # parameter: a Junos IDP line has ~40).
            params[pm.group(1)] = _SD_UNESCAPE.sub(r"\1", value) if "\\" in value else value
            pos = pm.end()
        if pos >= len(tail) or tail[pos] != "]":
            break  # malformed: keep the rest as message
        pos += 1
        sd[sd_id] = params
        hdr.sd = sd
    return tail[pos:]
