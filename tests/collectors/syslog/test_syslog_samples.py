"""Every real sample line in tests/data/syslog-samples through the parser, scored field by field.

One generic test for all vendors: a new family or line is data (samples.jsonl), not test code. The
expected values are what a careful reader takes from each line (see the samples' README); they are
compared with what the stored record carries. A field is right, wrong (a value that differs) or
missing (absent). Targets: at least 95 % of the expected fields right and no wrong outcome.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser

from collectors.syslog.formats import load_formats
from collectors.syslog.parse import SEVERITY_WORDS, parse_frame
from tests.support.paths import DATA

# samples.jsonl: the development set; more.jsonl: other real lines of the same families, gathered later to
# check that the formats were built for the vendor and not for the file (same record layout).
SAMPLE_FILES = (DATA / "syslog-samples" / "samples.jsonl", DATA / "syslog-samples" / "more.jsonl")
FORMATS = load_formats()
RECV = datetime(2024, 7, 1, 4, 0, tzinfo=UTC).timestamp()  # fixed receive time: year-less stamps -> 2024/2023
DEVICE_TZ = ZoneInfo("Asia/Shanghai")  # the inventory default for zone-less device times
# Record fields scored, with the sample key each one is read from.
SCORED = ("host", "time", "severity", "event_type", "src_ip", "src_port", "dst_ip", "dst_port", "user",
          "action", "outcome", "protocol", "rule", "app")  # fmt: skip
_ZONES = {"EDT": -4 * 3600, "EST": -5 * 3600, "CST": 8 * 3600, "UTC": 0, "GMT": 0}


def load() -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in SAMPLE_FILES
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def expected_instant(text: str) -> datetime | None:
    """The instant a sample's literal time names (independent of the parser under test)."""
    t = text.strip().lstrip("*%").strip()
    if re.fullmatch(r"\d{4}", t):
        return None  # a year alone names no instant
    t = re.sub(r"date=(\S+) time=(\S+) ?(\S+)?", lambda m: f"{m[1]} {m[2]}{m[3] or ''}", t)
    t = re.sub(r"(\d{2}:\d{2}:\d{2}):(\d{3})", r"\1.\2", t)  # H3C milliseconds after a colon
    t = re.sub(r"(\.\d+)\.\d+", r"\1", t)  # VRP ".270.1"
    t = re.sub(r"^(\d{4})/(\d{1,2})/(\d{1,2})", r"\1-\2-\3", t)
    has_year = bool(re.search(r"\b\d{4}\b", t))
    default = datetime(2024, 1, 1)
    dt = dateparser.parse(t, default=default, tzinfos=_ZONES)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=DEVICE_TZ)
    if not has_year:
        recv = datetime.fromtimestamp(RECV, dt.tzinfo)
        dt = dt.replace(year=recv.year)
        if dt > recv + timedelta(days=2):
            dt = dt.replace(year=recv.year - 1)
    return dt.astimezone(UTC)  # type: ignore[no-any-return]  # dateutil is untyped


def expected_value(field: str, exp: dict[str, Any]) -> tuple[bool, Any]:
    """(scored?, value) of one record field from a sample's `expect`."""
    if field == "time":
        if "time" not in exp:
            return False, None
        text = exp["time"]
        if "timezone" in exp and "date=" in text:  # FortiOS tz= next to date= time=
            text = f"{text} {exp['timezone']}"
        return True, expected_instant(text)
    if field == "severity":
        sev = exp.get("severity")
        if not sev:
            return False, None
        if "level" in sev:
            return True, sev["level"]
        if "pri" in sev:  # PRI above 191: no level can be derived, none may be invented
            return True, None
        vendor, where = str(sev.get("vendor", "")), str(sev.get("vendor_field", ""))
        if (
            vendor.isdigit()
            and int(vendor) <= 7
            and (where.startswith("%") or "/" in where or "pri" in where.lower())
        ):
            return True, int(vendor)
        if vendor.lower() in SEVERITY_WORDS and ("=" in where or "@" in where or "." not in vendor):
            return True, SEVERITY_WORDS[vendor.lower()]
        return False, None  # a threat level (高, Medium, EventLevel), not a syslog severity
    if field == "app":
        for key in ("program", "app_name"):
            if key in exp:
                return True, None if exp[key] == "-" else exp[key]
        return False, None
    if field not in exp:
        return False, None
    value = exp[field]
    if field == "protocol":
        return True, str(value).split()[0].lower()
    if field in ("src_ip", "dst_ip"):
        try:
            return True, str(ipaddress.ip_address(value))
        except ValueError:
            return True, value  # not an address (masked by the source): the parser cannot give it
    return True, value


def got_value(field: str, rec: dict[str, Any]) -> Any:
    if field == "time":
        ts = rec["dev_ts"]
        return (
            None if ts is None else datetime.fromisoformat(ts.replace("Z", "+00:00")).replace(microsecond=0)
        )
    return rec[field]


def score() -> tuple[dict[str, Counter[str]], dict[str, Counter[str]], list[str], list[str], list[str]]:
    fam: dict[str, Counter[str]] = defaultdict(Counter)
    per_field: dict[str, Counter[str]] = defaultdict(Counter)
    wrong: list[str] = []
    bad_outcomes: list[str] = []
    missing: list[str] = []
    for s in load():
        rec = parse_frame(s["raw"].encode("utf-8"), RECV, "192.0.2.1:514", "udp", FORMATS, {})
        f = fam[s["family"]]
        f["lines"] += 1
        f["recognised"] += rec["format"] not in ("none", "rfc3164", "rfc5424") or (
            rec["format"] == "rfc5424" and rec["event_type"] != "other"
        )
        exp = s["expect"]
        for field in SCORED:
            scored, want = expected_value(field, exp)
            if not scored:
                if field == "outcome" and rec["outcome"] is not None:
                    bad_outcomes.append(f"{s['id']}: outcome {rec['outcome']!r} where the line states none")
                continue
            got = got_value(field, rec)
            if field == "time" and want is not None:
                want = want.replace(microsecond=0)
            f["expected"] += 1
            per_field[field]["expected"] += 1
            if got == want:
                verdict = "right"
            elif got is None:
                verdict = "missing"
                missing.append(f"{s['id']}: {field} want {want!r}")
            else:
                verdict = "wrong"
                wrong.append(f"{s['id']}: {field} got {got!r} want {want!r}")
                if field == "outcome":
                    bad_outcomes.append(f"{s['id']}: outcome {got!r} want {want!r}")
            f[verdict] += 1
            per_field[field][verdict] += 1
    return fam, per_field, wrong, bad_outcomes, missing


def table(rows: dict[str, Counter[str]], cols: tuple[str, ...], first: str) -> str:
    head = f"{first:<12}" + "".join(f"{c:>11}" for c in cols) + f"{'right %':>9}"
    lines = [head]
    total: Counter[str] = Counter()
    for name, c in sorted(rows.items()):
        total.update(c)
        pct = 100 * c["right"] / max(1, c["expected"])
        lines.append(f"{name:<12}" + "".join(f"{c[k]:>11}" for k in cols) + f"{pct:>8.1f}%")
    pct = 100 * total["right"] / max(1, total["expected"])
    lines.append(f"{'total':<12}" + "".join(f"{total[k]:>11}" for k in cols) + f"{pct:>8.1f}%")
    return "\n".join(lines)


def test_samples_fields_right_or_absent() -> None:
    fam, per_field, wrong, bad_outcomes, missing = score()
    print("\n" + table(fam, ("lines", "recognised", "expected", "right", "wrong", "missing"), "family"))
    print("\n" + table(per_field, ("expected", "right", "wrong", "missing"), "field"))
    print("\nwrong values:\n  " + "\n  ".join(wrong))
    print("\nmissing values:\n  " + "\n  ".join(missing))
    total: Counter[str] = Counter()
    for c in fam.values():
        total.update(c)
    assert total["lines"] == 181 + 134  # samples.jsonl + more.jsonl: no file may silently lose lines
    assert not bad_outcomes, bad_outcomes
    assert total["right"] >= 0.95 * total["expected"], f"{total['right']}/{total['expected']} right"


def test_raw_bytes_are_kept_for_every_sample() -> None:
    import base64

    for s in load():
        raw = s["raw"].encode("utf-8")
        rec = parse_frame(raw, RECV, "192.0.2.1:514", "udp", FORMATS, {})
        assert base64.b64decode(rec["raw"]) == raw, s["id"]


def test_zone_less_time_uses_the_device_zone_from_the_inventory() -> None:
    raw = b"<190>Jun 11 06:46:20 2022 sw1 %%10SHELL/5/SHELL_LOGIN: admin logged in from 10.0.0.1."
    default = parse_frame(raw, RECV, "192.0.2.1:514", "udp", FORMATS, {})
    utc = parse_frame(raw, RECV, "192.0.2.1:514", "udp", FORMATS, {}, zones={"192.0.2.1": "UTC"})
    assert default["dev_ts"] == "2022-06-10T22:46:20.000000Z"  # Asia/Shanghai
    assert utc["dev_ts"] == "2022-06-11T06:46:20.000000Z"
    assert datetime.fromisoformat(utc["dev_ts"].replace("Z", "+00:00")).tzinfo == UTC
