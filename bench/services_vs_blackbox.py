"""Service checks: govnet's CPU per 1,000 checks against blackbox_exporter's, same targets, same run.

A real nginx (HTTPS with a certificate chain made here, a ~50 KB government-style page) and a real
dnsmasq on loopback; both checkers run the same checks with the same concurrency, and every verdict is
compared. CPU is the operating system's accounting: govnet's whole process (event loop and worker
threads) against blackbox_exporter's process (read from /proc; the HTTP client that drives /probe is
not counted). Usage: `python -m bench.services_vs_blackbox [--checks 1000] [--concurrency 32]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from collectors.services.checks import run_check  # noqa: E402
from collectors.services.content import analyse  # noqa: E402
from inventory.services import ServiceEntry  # noqa: E402
from tests.support.services_env import HOST, NAME, Blackbox, Dnsmasq, Nginx, Pki, blackbox_modules  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _page() -> str:
    items = "".join(
        f"<li><a href='/news/{i}.html'>关于做好第{i}批政务服务事项办理工作的通知</a></li>" for i in range(400)
    )
    return (
        "<!doctype html><html><head><title>某区人民政府门户网站</title>"
        "<link rel='stylesheet' href='https://cdn.gov.test/site.css'></head><body>"
        f"<h1>某区人民政府</h1><p>政务公开 · 办事服务 · 互动交流</p><ul>{items}</ul></body></html>"
    )


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _govnet(checks: list[Any], n: int, concurrency: int, content: bool) -> tuple[float, float, int]:
    sem = asyncio.Semaphore(concurrency)
    ups = 0

    async def one(i: int) -> None:
        nonlocal ups
        c = checks[i % len(checks)]
        async with sem:
            r = await run_check(c)
        if content and r.body is not None:
            await asyncio.to_thread(analyse, r.body, r.final_url, c.content)
        ups += r.up

    await one(0)  # warm-up: imports, trust store, first connection
    ups = 0
    t0, c0 = time.perf_counter(), _self_cpu()
    await asyncio.gather(*(one(i) for i in range(n)))
    return _self_cpu() - c0, time.perf_counter() - t0, ups


def _blackbox(
    bb: Blackbox, module: str, targets: list[str], n: int, concurrency: int
) -> tuple[float, float, int]:
    assert bb.proc is not None
    bb.probe(module, targets[0])
    t0, c0 = time.perf_counter(), _proc_cpu(bb.proc.pid)
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda i: bb.probe(module, targets[i % len(targets)]), range(n)))
    cpu = _proc_cpu(bb.proc.pid) - c0
    return cpu, time.perf_counter() - t0, sum(1 for r in results if r.get("probe_success") == 1.0)


def _days(ts: float | None) -> str:
    return "" if ts is None else f"{(ts - time.time()) / 86400:.1f}"


def _verdicts(ng: Nginx, dns: Dnsmasq, bb: Blackbox, mk: Any, ca: dict[str, str]) -> list[tuple[str, ...]]:
    """One row per case: what govnet and blackbox_exporter say about the same target."""
    out: list[tuple[str, ...]] = []
    cases = [("good", "/"), ("good", "/moved"), ("good", "/missing"), ("good", "/loop"), ("soon", "/"),
             ("expired", "/"), ("wrongname", "/"), ("stopped", "/")]  # fmt: skip
    for cert, path in cases:
        if cert == "stopped":
            ng.stop()
        elif ng.cert != cert or ng.proc is None:
            ng.use_cert(cert)
        check = mk(type="https", target=f"https://{NAME}:{ng.https_port}{path}", address=HOST, tls=ca)
        r = asyncio.run(run_check(check))
        b = bb.probe("https", f"https://{HOST}:{ng.https_port}{path}")
        b_up = b.get("probe_success") == 1.0
        b_status = int(b.get("probe_http_status_code", 0))
        b_exp = b.get("probe_ssl_earliest_cert_expiry")
        agree = r.up == b_up and (not r.up or r.status == b_status)
        if b_exp is not None and r.cert is not None:
            agree = agree and abs(r.cert.not_after - b_exp) <= 1.0
        out.append((
            f"https {cert} cert, {path}", "1" if r.up else "0", str(r.status or ""),
            _days(r.cert.not_after if r.cert else None), r.reason.replace("|", "/")[:70],
            "1" if b_up else "0", str(b_status or ""), _days(b_exp), "yes" if agree else "NO",
        ))  # fmt: skip
    ng.use_cert("good")
    for answer in ("127.0.0.1", "127.0.0.77"):
        dns.set({NAME: answer})
        r = asyncio.run(
            run_check(mk(type="dns", target=NAME, servers=[dns.server], expect={"answers": [HOST]}))
        )
        b = bb.probe("dns", dns.server)
        ok = r.up and r.dns_ok.get(dns.server, False)
        b_ok = b.get("probe_success") == 1.0
        answers = ", ".join(r.dns_answers.get(dns.server, []))
        out.append((f"dns answer {answer}", "1" if ok else "0", "", "", answers,
                    "1" if b_ok else "0", "", "", "yes" if ok == b_ok else "NO"))  # fmt: skip
    dns.set({NAME: HOST})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--checks", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="govnet-svc-bench-") as tmp:
        root = Path(tmp)
        pki = Pki(root / "pki")
        ng = Nginx(root / "nginx", pki)
        ng.page(_page())
        ng.start()
        dns = Dnsmasq(root / "dns")
        dns.set({NAME: HOST})
        dns.start()
        bb = Blackbox(root / "bb", blackbox_modules(pki.ca_file))
        bb.start()
        owner = {"unit": "bench", "site": "ncc"}
        ca = {"ca_file": str(pki.ca_file)}
        url = f"https://{NAME}:{ng.https_port}/"

        def mk(**kw: Any) -> Any:
            return ServiceEntry.model_validate({"name": "b", "owner": owner, "timeout": "5s", **kw}).root

        https = mk(type="https", target=url, address=HOST, tls=ca, expect={"contains": ["政务公开"]})
        watched = mk(
            type="https", target=url, address=HOST, tls=ca, expect={"contains": ["政务公开"]}, content={}
        )
        tls = mk(type="tls", target=f"{HOST}:{ng.https_port}", tls={**ca, "server_name": NAME})
        dnsq = mk(type="dns", target=NAME, servers=[dns.server], expect={"answers": [HOST]})
        rows = []
        try:
            verdicts = _verdicts(ng, dns, bb, mk, ca)
            for label, check, module, target, content in (
                (
                    "https (status, keyword, certificate)",
                    https,
                    "https_keyword",
                    f"https://{HOST}:{ng.https_port}/",
                    False,
                ),
                ("https + defacement watch", watched, None, None, True),
                ("tls handshake (tcp + tls)", tls, "tls", f"{HOST}:{ng.https_port}", False),
                ("dns (A from dnsmasq)", dnsq, "dns", dns.server, False),
            ):
                g_cpu, g_wall, g_up = asyncio.run(_govnet([check], args.checks, args.concurrency, content))
                if module is not None and target is not None:
                    b_cpu, b_wall, b_up = _blackbox(bb, module, [target], args.checks, args.concurrency)
                else:
                    b_cpu, b_wall, b_up = float("nan"), float("nan"), -1
                rows.append((label, g_cpu, g_wall, g_up, b_cpu, b_wall, b_up))
        finally:
            bb.stop()
            dns.stop()
            ng.stop()
    print("# verdicts, same targets (blackbox: probe_success, probe_http_status_code, "
          "probe_ssl_earliest_cert_expiry)")  # fmt: skip
    print("| case | govnet up | govnet status | govnet cert days | govnet reason | blackbox up | "
          "blackbox status | blackbox cert days | agree |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for v in verdicts:
        print("| " + " | ".join(v) + " |")
    print()
    n = args.checks
    print(
        f"# {n} checks each, concurrency {args.concurrency}, "
        f"page {len(_page().encode()) // 1024} KB, loopback"
    )
    print("| check | govnet CPU per 1,000 | blackbox_exporter CPU per 1,000 | ratio govnet/blackbox | "
          "govnet up | blackbox up | wall govnet / blackbox |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, g_cpu, g_wall, g_up, b_cpu, b_wall, b_up in rows:
        per_g = g_cpu * 1000 / n
        if b_up < 0:
            print(f"| {label} | {per_g:.2f} s | (no equivalent) | | {g_up}/{n} | | {g_wall:.1f} s / - |")
            continue
        per_b = b_cpu * 1000 / n
        ratio = per_g / per_b if per_b else float("inf")
        print(f"| {label} | {per_g:.2f} s | {per_b:.2f} s | {ratio:.1f}x | {g_up}/{n} | {b_up}/{n} | "
              f"{g_wall:.1f} s / {b_wall:.1f} s |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
