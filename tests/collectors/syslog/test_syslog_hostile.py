"""Hostile syslog input cannot freeze the monitor (issue 21 item 1).

Three layers: every shipped format compiles to RE2 (linear time by construction, a backtracking pattern
is refused at load); every format is fed adversarial lines up to 64 KiB and each parse stays within a
generous CPU budget that a backtracking pattern exceeds by orders of magnitude (the pre-RE2 Hillstone
pattern took 35 s on 48 KB); and a parse that still runs long (a hanging or dying worker) is cut off:
the line is stored raw and counted, the worker replaced, the other lines parsed. Finally the real
`govnet run` keeps answering /metrics within 1 s while hostile datagrams arrive.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from collectors.syslog.formats import VendorFormat, compile_format, load_formats
from collectors.syslog.parse import parse_frame
from collectors.syslog.parse_pool import Group, ParsePool
from tests.support.procs import stop
from tests.support.syslog_hostile_parser import parse_or_hang

FORMATS = load_formats()
NOW = 1_773_312_000.0
MAX = 64 * 1024
BUDGET_S = 1.0  # CPU seconds per 64 KiB line: linear parsing takes milliseconds, backtracking minutes
# Fragments that make naive patterns backtrack: separators of address:port, key=value, key:value,
# quoted values, brackets, vendor tags and the StoneOS/H3C/ASA shapes, each repeated to 64 KiB.
TOKENS = [
    "1:", "a=", 'a="', "a=1, ", "(", "1.1.1.1:", "->", "From 1.1.1.1(", ":1(", "日志类型:", "源IP:1，",
    "%%01A/1/B:", '[junos@1 a="', '\\"', " ", "Mar 1 ", "2018-", "1", "%ASA-1-106100: ", "@", "[a:",
]  # fmt: skip
# A line each format accepts, as the head of its hostile lines (the pattern must be tried, not skipped).
HEADS = {
    "cisco_asa": "<166>Mar 12 2024 10:46:04 asa : %ASA-6-106100: access-list ",
    "fortigate": "date=2024-03-12 time=10:46:04 devname=f devid=x logid=0000000013 type=traffic ",
    "h3c": "<190>Mar 12 10:46:04 2024 sw %%10FILTER/6/FILTER_ZONE_IPV4_EXECUTION: ",
    "hillstone": "<190>Mar 12 10:48:00 x 44243630 Traffic@FLOW: SESSION: ",
    "huawei": "<190>Mar 12 2024 10:46:04 h %%01POLICY/6/POLICYDENY(l):",
    "ios": "<189>20: *Mar 12 10:46:04: %SYS-5-CONFIG_I: ",
    "junos": '<14>1 2024-03-12T10:46:04Z srx RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1 a="1" ',
    "linux": "<86>Mar 12 10:46:04 h sshd[1]: Failed password for ",
    "sangfor": "<134>Mar 12 10:46:04 localhost fwlog: 日志类型:IPS防护日志, ",
    "topsec": 'id="NGTOS" time="2024-03-12 10:46:04" dev="t" pri="6" type="ac" ',
    "venustech": '<318>Mar 12 10:46:04 fw FILTER: SerialNum=1 GenTime="2024-03-12 10:46:04" ',
}


def hostile_lines(head: str) -> list[bytes]:
    out = []
    for token in TOKENS:
        body = head + token * ((MAX - len(head.encode())) // len(token.encode()))
        out.append(body.encode()[:MAX])
    return out


def cpu_parse(raw: bytes) -> float:
    start = time.process_time()
    rec = parse_frame(raw, NOW, "10.0.0.1:1", "udp", FORMATS, {})
    spent = time.process_time() - start
    assert base64.b64decode(rec["raw"]) == raw  # whatever happens, the raw bytes are the record
    return spent


def test_every_shipped_format_has_a_hostile_head_that_it_accepts() -> None:
    names = {f.spec.name for f in FORMATS}
    assert names == set(HEADS), "add a head for the new format to HEADS"
    for fmt in FORMATS:
        rec = parse_frame(HEADS[fmt.spec.name].encode() + b"x", NOW, "10.0.0.1:1", "udp", FORMATS, {})
        assert rec["format"] == fmt.spec.name


def test_backtracking_constructs_are_refused_at_load() -> None:
    for pattern in (r"(a)\1", r"a(?=b)", r"(?<!x)y"):
        spec = VendorFormat.model_validate({"name": "x", "vendor": "x", "detect": pattern})
        with pytest.raises(ValueError, match="RE2"):
            compile_format(spec)


def test_hostile_64k_lines_parse_in_bounded_time() -> None:
    worst: dict[str, tuple[float, int]] = {}
    issue_repro = [
        ("<190>Mar 12 10:48:00 x Traffic@FLOW: " + "1:" * 24000).encode(),  # issue 21's datagram
        b"<190>Mar 12 2024 10:46:04 h %%01IPS/4/DETECT(l):" + b"a=" * 20_000 + b"(" * 10_000,
    ]
    for name, head in HEADS.items():
        for raw in hostile_lines(head) + (issue_repro if name in ("hillstone", "huawei") else []):
            spent = cpu_parse(raw)
            if spent > worst.get(name, (0.0, 0))[0]:
                worst[name] = (spent, len(raw))
    for raw in (b"<1>" + b"Mar 1 " * 10000, b"1" * MAX, b"<13>1 " + b'[a b="' * 10000, b"%" * MAX):
        spent = cpu_parse(raw)  # the header parser on its own
        worst["header"] = max(worst.get("header", (0.0, 0)), (spent, len(raw)))
    print(f"\nformat        worst CPU ms   line bytes   (budget {BUDGET_S * 1000:.0f} ms)")
    for name, (spent, size) in sorted(worst.items()):
        print(f"{name:<12}{spent * 1000:>14.1f}{size:>13}")
    over = {n: s for n, (s, _) in worst.items() if s > BUDGET_S}
    assert not over, over


def test_line_over_budget_is_stored_raw_counted_and_the_worker_replaced() -> None:
    frames = [
        (b"<189>Mar 12 2024 10:49:00 sw %%01SHELL/5/CMDRECORD(s):Recorded. (Ip=10.1.1.1, User=a)", NOW,
         "10.0.0.1:1", "udp"),
        (b"<190>Mar 12 10:48:00 x Traffic@FLOW: HANG " + b"1:" * 100, NOW, "10.0.0.1:2", "udp"),
        (b"<86>Mar 12 10:46:04 h sshd[1]: Failed password for root from 10.2.2.2 port 22 ssh2", NOW,
         "10.0.0.1:3", "udp"),
        (b"<86>Mar 12 10:46:04 h sshd[1]: DIE here", NOW, "10.0.0.1:4", "udp"),
        (b"<86>Mar 12 10:46:04 h sshd[1]: Accepted password for root from 10.2.2.3 port 22 ssh2", NOW,
         "10.0.0.1:5", "udp"),
    ]  # fmt: skip
    pool = ParsePool(1, FORMATS, {"10.0.0.1": "fw-1"}, line_budget=1.0,
                     parser=parse_or_hang)  # fmt: skip
    try:
        first = pool.pids()
        groups: list[Group] = [([raw], ts, source, transport) for raw, ts, source, transport in frames]
        recs = pool.collect(pool.submit([(7, groups[:2]), (9, groups[2:])]))
        assert [base64.b64decode(r["raw"]) for r in recs] == [f[0] for f in frames]
        # Lines parsed by the replacement workers keep the seqs they were handed with; the writer
        # numbers the raw ones.
        assert [r["seq"] for r in recs] == [7, None, 9, None, 11]
        assert [r["source"] for r in recs] == [f[2] for f in frames]
        assert recs[1]["flags"] == ["parse_timeout"] and recs[1]["device"] == "fw-1"
        assert recs[3]["flags"] == ["parse_crash"]
        assert recs[0]["event_type"] == "config_change"
        assert (recs[2]["outcome"], recs[4]["outcome"]) == ("failure", "success")
        assert (pool.timeouts, pool.crashes, pool.restarts) == (1, 1, 2)
        assert pool.pids() != first and pool.workers == 1
        # the replacement keeps working
        again = pool.collect(pool.submit([(1, groups[:1])]))
        assert again[0]["event_type"] == "config_change"
    finally:
        pool.close()


def _free_port(host: str, kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def test_govnet_run_answers_metrics_while_hostile_datagrams_arrive(tmp_path: Path) -> None:
    host = "127.38.21.1"
    (tmp_path / "inv.yaml").write_text(
        yaml.safe_dump(
            {
                "sites": [{"name": "s"}],
                "devices": [
                    {
                        "name": "fw-1",
                        "site": "s",
                        "role": "firewall",
                        "vendor": "hillstone",
                        "address": "127.0.0.1",
                    }
                ],
            }
        )
    )
    udp_port = _free_port(host, socket.SOCK_DGRAM)
    http_port = _free_port(host, socket.SOCK_STREAM)
    cfg = {
        "inventory": "inv.yaml",
        "prometheus": {"listen": f"{host}:{http_port}"},
        "syslog": {"store": "logs", "listen": host, "udp_port": udp_port, "tcp_port": None},
    }
    (tmp_path / "govnet.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "govnet", "run", "--config", str(tmp_path / "govnet.yaml")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "MIBS": ""},
    )  # fmt: skip
    url = f"http://{host}:{http_port}/metrics"

    def scrape() -> tuple[float, str]:
        start = time.monotonic()
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read().decode()
        return time.monotonic() - start, body

    hostile = [raw[:65000] for head in HEADS.values() for raw in hostile_lines(head)[:6]]
    hostile.insert(0, ("<190>Mar 12 10:48:00 x Traffic@FLOW: " + "1:" * 24000).encode()[:65000])
    try:
        end = time.monotonic() + 60
        while True:  # wait for the listener and the metrics endpoint
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < end, "govnet run did not come up"
            try:
                if "govnet_syslog_received_total" in scrape()[1]:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        latencies = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(3):
                for raw in hostile:
                    tx.sendto(raw, (host, udp_port))
                    time.sleep(0.005)
                latencies.append(scrape()[0])
        durable = 0.0
        end = time.monotonic() + 60
        while time.monotonic() < end:
            spent, body = scrape()
            latencies.append(spent)
            for line in body.splitlines():
                if line.startswith("govnet_syslog_durable_total "):
                    durable = float(line.split()[1])
            if durable >= 3 * len(hostile):
                break
            time.sleep(0.2)
        worst_ms = max(latencies) * 1000
        print(
            f"\n{3 * len(hostile)} hostile datagrams of up to 64 KiB; /metrics latency max {worst_ms:.0f} ms"
        )
        print(f"over {len(latencies)} scrapes; durable {durable:.0f}")
        assert max(latencies) < 1.0, latencies
        assert durable >= 0.9 * 3 * len(hostile)  # UDP on loopback: the kernel may drop a few under load
    finally:
        stop(proc, 30)
