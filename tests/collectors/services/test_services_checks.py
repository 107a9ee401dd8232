"""Service checks: inventory errors, page analysis, bad targets (bounded time and memory, the loop goes on),
and agreement with prometheus-blackbox-exporter on the same nginx targets."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.services.checks import run_check
from collectors.services.content import analyse, forbidden_found
from collectors.services.tls import hostname_matches
from inventory.load import InventoryError, load_inventory
from inventory.services import ContentWatch, ServiceEntry
from tests.support.paths import EXAMPLES
from tests.support.services_env import HOST, NAME, Blackbox, Dnsmasq, Nginx, Pki, blackbox_modules

OWNER = {"unit": "区大数据中心", "site": "ncc"}


def check(**kw: Any) -> Any:
    return ServiceEntry.model_validate({"name": "svc", "owner": OWNER, "timeout": "3s", **kw}).root


# -- inventory ------------------------------------------------------------------------------------------


def test_inventory_errors_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(
        textwrap.dedent("""\
        sites:
          - {name: ncc}
        services:
          - name: portal
            owner: {unit: 区政府办公室, site: ncc}
            type: https
            target: https://portal.gov.test/
          - name: portal
            owner: {unit: x, site: nowhere}
            type: htps
            target: x
          - name: mail
            owner: {unit: x, site: ncc}
            type: tcp
            target: mail.gov.test
          - name: dns1
            owner: {unit: x, site: ncc}
            type: dns
            target: portal.gov.test
            servers: [10.0.0.53]
          - name: web2
            owner: {unit: x, site: nowhere}
            type: http
            target: https://web2.gov.test/
            tls: {ca_file: missing-ca.pem}
          - name: web3
            owner: {unit: x, site: ncc}
            type: http
            target: http://web3.gov.test/
            content:
              volatile_patterns: ['(a+)\\1']
        """),
        encoding="utf-8",
    )
    with pytest.raises(InventoryError) as exc:
        load_inventory(f)
    got = [(p.line, p.path, p.message) for p in exc.value.problems]
    assert (
        10,
        "services[1]",
        "unknown type 'htps'; expected one of 'http', 'https', 'tls', 'dns', 'tcp'",
    ) in got
    assert (15, "services[2].target", "expected host:port") in got
    assert (16, "services[3]", "missing required field 'expect'") in [
        (a, b.rsplit(".", 1)[0], c) for a, b, c in got
    ]
    assert any(
        line == 21 and "http check needs a target URL starting with http://" in m for line, _, m in got
    )


def test_valid_services_load(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    f = tmp_path / "inv.yaml"
    f.write_text(
        textwrap.dedent("""\
        sites: [{name: ncc}]
        services:
          - {name: portal, owner: {unit: 区政府办公室, site: ncc}, type: https,
             target: "https://portal.gov.test/", tls: {ca_file: ca.pem},
             content: {volatile_selectors: [".clock"]}}
          - {name: dns, owner: {unit: x, site: ncc}, type: dns, target: portal.gov.test,
             servers: ["10.0.0.53:5353"], expect: {answers: [10.1.1.1]}}
          - {name: smtp, owner: {unit: x, site: ncc}, type: tcp, target: "mail.gov.test:25",
             expect: {contains: "220"}}
          - {name: vpn, owner: {unit: x, site: ncc}, type: tls, target: "[2001:db8::1]:443", interval: 5s}
        """),
        encoding="utf-8",
    )
    inv = load_inventory(f)
    assert [s.type for s in inv.services] == ["https", "dns", "tcp", "tls"]
    assert [(s.interval, s.timeout) for s in inv.services][2:] == [(60.0, 10.0), (5.0, 5.0)]
    example = load_inventory(EXAMPLES / "services.yaml")
    assert {s.type for s in example.services} == {"https", "tls", "dns", "tcp"}


# -- page analysis ---------------------------------------------------------------------------------------


def test_page_analysis() -> None:
    html = """<html><head><title>政府网站</title><meta name="keywords" content="政务,Casino">
    <script src="https://cdn.gov.test/a.js"></script><script src="/local.js"></script>
    <link rel="stylesheet" href="//static.gov.test/s.css"></head><body>
    <p>政务  公开</p><span class="t">2026-12-04 10:00</span><p>访问量 12345 次</p>
    <div hidden><a href="https://x.example/">百家乐</a></div><iframe src="https://ads.example/f"></iframe>
    <p>cialisfoo and xxxy are not words here</p></body></html>"""
    watch = ContentWatch(volatile_selectors=[".t"], volatile_patterns=[r"\d+ 次"])
    page = analyse(html.encode(), "https://portal.gov.test/", watch)
    assert page.text.splitlines() == [
        "政务 公开",
        "访问量 … 次".replace(" … 次", " …"),
        "cialisfoo and xxxy are not words here",
    ]
    assert page.resources == {
        "hidden_a": ["x.example"],  # the hidden link (暗链)
        "iframe": ["ads.example"],
        "link": ["static.gov.test"],
        "script": ["cdn.gov.test"],
    }
    assert page.hidden_link_hosts() == {"x.example"}
    assert page.external_active_hosts() == {"ads.example", "cdn.gov.test"}
    assert forbidden_found(page, watch) == ["casino", "百家乐"]
    assert forbidden_found(page, ContentWatch(builtin_words=False, forbidden_words=["访问量"])) == ["访问量"]


def test_gbk_page_is_decoded() -> None:
    page = analyse("<p>政务公开</p>".encode("gbk"), "http://a.gov.test/", ContentWatch(), "gbk")
    assert page.text == "政务公开"


def test_hostname_matching() -> None:
    assert hostname_matches(("*.gov.test",), "portal.gov.test")
    assert not hostname_matches(("*.gov.test",), "a.b.gov.test")
    assert not hostname_matches(("*.test",), "gov.test")
    assert hostname_matches(("127.0.0.1",), "127.0.0.1")
    assert not hostname_matches(("portal.gov.test",), "127.0.0.1")


# -- bad targets -----------------------------------------------------------------------------------------


class Misbehaving:
    """Loopback TCP servers that drip, talk nonsense or never answer (threads; stopped at the end)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.socks: list[socket.socket] = []

    def serve(self, handler: Any) -> int:
        srv = socket.socket()
        srv.bind((HOST, 0))
        srv.listen(16)
        srv.settimeout(0.2)
        self.socks.append(srv)

        def loop() -> None:
            while not self.stop.is_set():
                try:
                    conn, _ = srv.accept()
                except OSError:
                    continue
                threading.Thread(target=self._guard, args=(handler, conn), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        return int(srv.getsockname()[1])

    def _guard(self, handler: Any, conn: socket.socket) -> None:
        try:
            handler(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        for s in self.socks:
            s.close()


def _drip(conn: socket.socket, stop: threading.Event) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while not stop.wait(0.05):
        conn.sendall(b"x")


def _garbage(conn: socket.socket, stop: threading.Event) -> None:
    conn.recv(4096)
    conn.sendall(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n")


def _silent(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(30)


@pytest.fixture(scope="module")
def bad() -> Iterator[Misbehaving]:
    m = Misbehaving()
    yield m
    m.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    root = tmp_path_factory.mktemp("svc-nginx")
    pki = Pki(root / "pki")
    ng = Nginx(root / "nginx", pki)
    ng.page("<html><body><p>政务公开</p></body></html>")
    with (ng.www / "big.html").open("wb") as f:
        chunk = b"<p>" + b"a" * 1020 + b"</p>"
        for _ in range(50 * 1024):
            f.write(chunk)  # 50 MiB
    ng.start()
    yield ng
    ng.stop()


def _http(url: str, **kw: Any) -> Any:  # connect to loopback, keep the name for Host and SNI
    return check(type=url.split(":")[0], target=url, address=HOST, **kw)


def test_bad_targets_give_clear_results(bad: Misbehaving, site: Nginx) -> None:
    ca = {"ca_file": str(site.pki.ca_file)}
    drip = bad.serve(_drip)
    garbage = bad.serve(_garbage)
    silent = bad.serve(_silent)
    closed = socket.socket()
    closed.bind((HOST, 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    cases = {
        "big": (_http(f"https://{NAME}:{site.https_port}/big.html", tls=ca), "response body larger than"),
        "loop": (_http(f"https://{NAME}:{site.https_port}/loop", tls=ca), "redirect loop"),
        "drip": (_http(f"http://{NAME}:{drip}/"), "timeout: no complete answer within 3s"),
        "garbage": (_http(f"http://{NAME}:{garbage}/"), "malformed HTTP answer"),
        "silent": (check(type="tcp", target=f"{HOST}:{silent}", expect={"contains": "220"}), "timeout"),
        # Longer than httpx's default 5 s: the service's own deadline decides, with its own message.
        "silent-http": (
            check(type="http", target=f"http://{NAME}:{silent}/", address=HOST, timeout="7s", interval="1m"),
            "timeout: no complete answer within 7s",
        ),
        "refused": (_http(f"http://{NAME}:{closed_port}/"), "connection refused"),
        "unresolvable": (check(type="http", target="http://nowhere.invalid/"), "name not resolved"),
        "tls-on-plain": (check(type="tls", target=f"{HOST}:{site.http_port}", tls=ca), "SSL"),
    }

    async def all_checks() -> dict[str, Any]:
        results = await asyncio.gather(*(run_check(c) for c, _ in cases.values()))
        return dict(zip(cases, results, strict=True))

    tracemalloc.start()
    try:
        results = asyncio.run(all_checks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for name, (_, expected) in cases.items():
        r = results[name]
        assert not r.up and expected in r.reason, (name, r.reason)
    # The 50 MiB page was read only up to expect.max_body (5 MiB) and then dropped.
    assert peak < 25 * 1024 * 1024, peak


def test_expectations(site: Nginx) -> None:
    ca = {"ca_file": str(site.pki.ca_file)}
    base = f"https://{NAME}:{site.https_port}"

    def run(**kw: Any) -> Any:
        return asyncio.run(run_check(_http(**kw)))

    ok = run(url=f"{base}/moved", tls=ca, expect={"contains": ["政务公开"]})
    assert ok.up and ok.status == 200 and ok.redirects == 1 and ok.cert is not None and ok.cert.chain_ok
    assert set(ok.phases) == {"dns", "connect", "tls", "first_byte", "total"}
    assert run(url=f"{base}/moved", tls=ca, expect={"status": [301], "max_redirects": 0}).up
    # A GB2312 page (declared only in <meta>, while the server's header says utf-8) still matches.
    (site.www / "gbk.html").write_bytes('<meta charset="gb2312"><p>政务公开 网上信访</p>'.encode("gbk"))
    assert run(url=f"{base}/gbk.html", tls=ca, expect={"contains": ["网上信访"]}).up
    missing = run(url=f"{base}/", tls=ca, expect={"contains": ["网上信访"]})
    assert not missing.up and missing.reason == "required keyword missing: 网上信访"
    banned = run(url=f"{base}/", tls=ca, expect={"forbids": ["政务"]})
    assert not banned.up and banned.reason == "forbidden keyword present: 政务"
    old = run(url=f"{base}/", tls={**ca, "min_version": "TLSv1.3"})
    assert not old.up and old.reason == "protocol TLSv1.2 older than TLSv1.3"  # services_env: TLS 1.2 only
    plain = run(url=f"{base}/")  # the system trust store does not know the test CA
    assert not plain.up and plain.reason.startswith("certificate not trusted: unable to get local issuer")
    assert plain.cert is not None and not plain.cert.chain_ok and plain.cert.hostname_ok
    smtp_like = check(type="tcp", target=f"{HOST}:{site.http_port}",
                      expect={"send": "HEAD / HTTP/1.0\r\n\r\n", "contains": "HTTP/1.1 200 OK"})  # fmt: skip
    assert asyncio.run(run_check(smtp_like)).up


def test_slow_target_never_stalls_other_checks(bad: Misbehaving, site: Nginx) -> None:
    drip = bad.serve(_drip)
    slow = _http(f"http://{NAME}:{drip}/")
    fast = _http(f"http://{NAME}:{site.http_port}/")

    async def scenario() -> tuple[int, bool, Any]:
        slow_task = asyncio.create_task(run_check(slow))
        done = 0
        while not slow_task.done() and done < 200:
            r = await run_check(fast)
            assert r.up, r.reason
            done += 1
        return done, slow_task.done(), await slow_task

    done, _, slow_result = asyncio.run(scenario())
    assert done >= 2  # the fast service kept being checked while the slow one dripped
    assert not slow_result.up and slow_result.reason.startswith("timeout")


# -- side by side with blackbox_exporter ----------------------------------------------------------------


@pytest.mark.parametrize("cert", ["good", "soon", "expired", "wrongname", "stopped"])
@pytest.mark.parametrize("path", ["/", "/moved", "/missing", "/loop"])
def test_agrees_with_blackbox_exporter(tmp_path: Path, cert: str, path: str) -> None:
    pki = Pki(tmp_path / "pki")
    ng = Nginx(tmp_path / "nginx", pki, cert if cert != "stopped" else "good")
    ng.page("<html><body><p>政务公开</p></body></html>")
    bb = Blackbox(tmp_path / "bb", blackbox_modules(pki.ca_file))
    bb.start()
    try:
        if cert != "stopped":
            ng.start()
        ca = {"ca_file": str(pki.ca_file)}
        ours = asyncio.run(run_check(_http(f"https://{NAME}:{ng.https_port}{path}", tls=ca)))
        theirs = bb.probe("https", f"https://{HOST}:{ng.https_port}{path}")
        assert ours.up == (theirs["probe_success"] == 1.0), (ours.reason, theirs)
        if ours.up:
            assert ours.status == theirs["probe_http_status_code"]
        plain = asyncio.run(run_check(_http(f"http://{NAME}:{ng.http_port}{path}")))
        plain_bb = bb.probe("http", f"http://{HOST}:{ng.http_port}{path}")
        assert plain.up == (plain_bb["probe_success"] == 1.0), (plain.reason, plain_bb)
        if plain.status is not None and plain_bb["probe_http_status_code"]:
            assert plain.status == plain_bb["probe_http_status_code"]
        ours_tls = asyncio.run(
            run_check(check(type="tls", target=f"{HOST}:{ng.https_port}", tls={**ca, "server_name": NAME}))
        )
        theirs_tls = bb.probe("tls", f"{HOST}:{ng.https_port}")
        assert ours_tls.up == (theirs_tls["probe_success"] == 1.0), (ours_tls.reason, theirs_tls)
        if "probe_ssl_earliest_cert_expiry" in theirs_tls:
            assert ours_tls.cert is not None
            assert abs(ours_tls.cert.not_after - theirs_tls["probe_ssl_earliest_cert_expiry"]) <= 1.0
    finally:
        bb.stop()
        ng.stop()


@pytest.mark.parametrize("state", ["right", "wrong", "stopped"])
def test_dns_agrees_with_blackbox_exporter(tmp_path: Path, state: str) -> None:
    dns = Dnsmasq(tmp_path / "dns")
    dns.set({NAME: HOST if state != "wrong" else "127.0.0.77"})
    bb = Blackbox(tmp_path / "bb", blackbox_modules(tmp_path / "unused-ca.pem"))
    bb.start()
    try:
        if state != "stopped":
            dns.start()
        ours = asyncio.run(
            run_check(check(type="dns", target=NAME, servers=[dns.server], expect={"answers": [HOST]}))
        )
        theirs = bb.probe("dns", dns.server)
        agree = ours.up and ours.dns_ok.get(dns.server, False)
        assert agree == (theirs["probe_success"] == 1.0), (ours, theirs)
        assert ours.up == (state != "stopped")
    finally:
        bb.stop()
        dns.stop()
