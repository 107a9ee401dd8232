"""The checks themselves (asyncio): HTTP(S) with phase timings, TLS on any port, DNS answers, TCP.

Every check runs under one deadline (`timeout` of the service) that cancels whatever it is doing
(a slow-drip server, a resolver that never answers); bodies are read up to `expect.max_body`.
CPU work (certificate parsing) goes to a thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype
import httpx

from collectors.services.content import decode_page
from collectors.services.result import CertInfo, CheckResult
from collectors.services.tls import cert_info, handshake, verifying_context, version_below
from inventory.services import (
    DnsService,
    HttpService,
    ServiceCheck,
    TcpService,
    TlsOptions,
    TlsService,
    split_host_port,
)

USER_AGENT = "govnet-service-check/1"
TCP_READ_LIMIT = 64 * 1024


def resolve_path(ca_file: str | None, base: Path | None) -> str | None:
    """A CA file relative to the inventory folder, as an absolute path."""
    if ca_file is None:
        return None
    p = Path(ca_file)
    return str(p if p.is_absolute() or base is None else base / p)


async def run_check(check: ServiceCheck, base: Path | None = None) -> CheckResult:
    """Run one check under its deadline; never raises for network or server faults."""
    start = time.perf_counter()
    result = CheckResult(up=True)
    try:
        async with asyncio.timeout(check.timeout):
            if isinstance(check, HttpService):
                await _http(check, result, base)
            elif isinstance(check, TlsService):
                host, port = split_host_port(check.target)
                address = await _resolve_one(host, result)
                await _tls(host, address, port, check.tls, result, base)
            elif isinstance(check, DnsService):
                await _dns(check, result)
            else:
                await _tcp(check, result)
    except TimeoutError:
        result.fail(f"timeout: no complete answer within {check.timeout:g}s")
    except (OSError, ssl.SSLError, httpx.HTTPError, dns.exception.DNSException) as exc:
        result.fail(_describe(exc))
    result.phases["total"] = time.perf_counter() - start
    return result


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception (httpx wraps httpcore's, which wraps the socket's or ssl's)."""
    seen = 0
    while seen < 10 and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.ProtocolError):
        inner = _root_cause(exc)
        if inner is not exc and isinstance(inner, OSError | ssl.SSLError):
            return _describe(inner)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"name not resolved: {exc.strerror}"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return f"malformed HTTP answer: {str(exc)[:120]}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:160]}"


# -- name resolution --------------------------------------------------------------------------------


async def _resolve_one(host: str, result: CheckResult, resolvers: list[str] | None = None) -> str:
    """The address to connect to: the host itself when it is an IP, else resolved (timed as `dns`)."""
    try:
        ipaddress.ip_address(host)
        result.phases["dns"] = 0.0
        return host
    except ValueError:
        pass
    t0 = time.perf_counter()
    try:
        if resolvers:
            for server in resolvers:
                answers = await _query(host, "A", server)
                if answers:
                    return answers[0]
            raise socket.gaierror(socket.EAI_NONAME, "no A record from the given resolvers")
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return str(infos[0][4][0])
    finally:
        result.phases["dns"] = time.perf_counter() - t0


async def _query(name: str, record: str, server: str) -> list[str]:
    """Answers of one server for `name`/`record` (UDP, TCP when truncated), sorted, as text."""
    host, port = split_host_port(server, 53)
    q = dns.message.make_query(name, dns.rdatatype.from_text(record))
    resp, _ = await dns.asyncquery.udp_with_fallback(q, host, port=port)
    rtype = dns.rdatatype.from_text(record)
    out = []
    for rrset in resp.answer:
        if rrset.rdtype == rtype:
            out += [r.to_text() for r in rrset]
    return sorted(out)


# -- HTTP -------------------------------------------------------------------------------------------


class _Trace:
    """Collects httpcore's trace events into connect / TLS / first-byte durations."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.ssl_object: ssl.SSLObject | None = None

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        self.t[event] = time.perf_counter()
        if event == "connection.start_tls.complete":
            stream = info.get("return_value")
            if stream is not None:
                self.ssl_object = stream.get_extra_info("ssl_object")

    def span(self, a: str, b: str) -> float:
        return self.t[b] - self.t[a] if a in self.t and b in self.t else 0.0


async def _http(check: HttpService, result: CheckResult, base: Path | None) -> None:
    url = check.target
    seen = {url}
    ca = resolve_path(check.tls.ca_file, base)
    ctx: ssl.SSLContext = verifying_context(ca, True)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=0)
    # httpx's own timeouts (default 5 s per phase) only as a backstop past the check's deadline, which
    # bounds every phase and reports one clear "timeout" reason.
    backstop = httpx.Timeout(check.timeout + 1.0)
    async with httpx.AsyncClient(
        verify=ctx, trust_env=False, limits=limits, follow_redirects=False, timeout=backstop
    ) as client:
        while True:
            parts = urlsplit(url)
            host = parts.hostname or ""
            if check.address is not None and host == urlsplit(check.target).hostname:
                address = check.address
                result.phases.setdefault("dns", 0.0)
            else:
                dns_before = result.phases.get("dns", 0.0)
                address = await _resolve_one(host, result, check.resolvers or None)
                result.phases["dns"] += dns_before
            response_ok = await _hop(client, check, url, host, address, result, base)
            if not response_ok:
                return
            status = result.status or 0
            location = result.final_url
            # max_redirects 0: do not follow; the redirect itself is judged (expect.status: [301]).
            if 300 <= status < 400 and location and check.expect.max_redirects > 0:
                nxt = urljoin(url, location)
                if nxt in seen:
                    result.fail(f"redirect loop: {url} -> {nxt}")
                    return
                if result.redirects >= check.expect.max_redirects:
                    result.fail(f"more than {check.expect.max_redirects} redirects")
                    return
                result.redirects += 1
                seen.add(nxt)
                if urlsplit(nxt).scheme not in ("http", "https"):
                    result.fail("redirect to a non-HTTP URL")
                    return
                url = nxt
                continue
            result.final_url = url
            break
    _judge_http(check, result)


async def _hop(
    client: httpx.AsyncClient,
    check: HttpService,
    url: str,
    host: str,
    address: str,
    result: CheckResult,
    base: Path | None,
) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    netloc = f"[{address}]" if ":" in address else address
    direct = urlunsplit((parts.scheme, f"{netloc}:{port}", parts.path or "/", parts.query, ""))
    trace = _Trace()
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
    }
    ext: dict[str, Any] = {"trace": trace}
    sni = check.tls.server_name or host
    if parts.scheme == "https":
        ext["sni_hostname"] = sni
    try:
        async with client.stream("GET", direct, headers=headers, extensions=ext) as resp:
            _add_phases(result, trace)
            result.status = resp.status_code
            result.final_url = resp.headers.get("location", "") if 300 <= resp.status_code < 400 else url
            if trace.ssl_object is not None:
                der = trace.ssl_object.getpeercert(binary_form=True)
                if der:
                    protocol = str(trace.ssl_object.version() or "")
                    result.cert = await asyncio.to_thread(cert_info, der, sni, protocol, True, "")
            body = bytearray()
            limit = int(check.expect.max_body)
            async for chunk in resp.aiter_raw():
                body += chunk
                if len(body) > limit:
                    result.fail(f"response body larger than {limit} bytes (page not read further)")
                    return False
            result.body = bytes(body)
            result.charset = resp.charset_encoding
            result.body_text = decode_page(result.body, resp.charset_encoding)
        return True
    except httpx.ConnectError as exc:
        cause = _root_cause(exc)
        if parts.scheme == "https" and isinstance(cause, ssl.SSLCertVerificationError):
            # Say why, and still report the certificate (expiry, issuer) the server presents.
            await _tls(sni, address, port, check.tls, result, base)
            result.fail(f"certificate not trusted: {cause.verify_message or cause.reason}")
            return False
        raise


def _add_phases(result: CheckResult, trace: _Trace) -> None:
    for phase, a, b in (
        ("connect", "connection.connect_tcp.started", "connection.connect_tcp.complete"),
        ("tls", "connection.start_tls.started", "connection.start_tls.complete"),
        ("first_byte", "http11.send_request_headers.started", "http11.receive_response_headers.complete"),
    ):
        result.phases[phase] = result.phases.get(phase, 0.0) + trace.span(a, b)


def _judge_http(check: HttpService, result: CheckResult) -> None:
    exp = check.expect
    if result.status not in exp.status:
        result.fail(f"HTTP status {result.status}, expected {', '.join(map(str, exp.status))}")
    text = result.body_text
    missing = [k for k in exp.contains if k not in text]
    if missing:
        result.fail(f"required keyword missing: {missing[0][:60]}")
    present = [k for k in exp.forbids if k in text]
    if present:
        result.fail(f"forbidden keyword present: {present[0][:60]}")
    took = sum(result.phases.get(p, 0.0) for p in ("dns", "connect", "tls", "first_byte"))
    if exp.max_response_time is not None and took > exp.max_response_time:
        result.fail(f"answered in {took:.2f}s, more than {exp.max_response_time:g}s")
    if result.cert is not None:
        _judge_cert(result.cert, check.tls, result)


# -- TLS --------------------------------------------------------------------------------------------


async def _tls(
    host: str, address: str, port: int, opts: TlsOptions, result: CheckResult, base: Path | None
) -> None:
    name = opts.server_name or host
    t0 = time.perf_counter()
    der, protocol, chain_ok, error = await handshake(address, port, name, resolve_path(opts.ca_file, base))
    result.phases["tls"] = time.perf_counter() - t0
    result.cert = await asyncio.to_thread(cert_info, der, name, protocol, chain_ok, error)
    _judge_cert(result.cert, opts, result)


def _judge_cert(
    cert: CertInfo, opts: TlsOptions, result: CheckResult, now: Callable[[], float] = time.time
) -> None:
    if not cert.chain_ok:
        result.fail(f"certificate not trusted: {cert.chain_error}")
    elif cert.not_after <= now():
        result.fail("certificate expired")
    if not cert.hostname_ok:
        result.fail("certificate does not name the host")
    if version_below(cert.protocol, opts.min_version):
        result.fail(f"protocol {cert.protocol} older than {opts.min_version}")


# -- DNS and TCP ------------------------------------------------------------------------------------


async def _dns(check: DnsService, result: CheckResult) -> None:
    expected = sorted(_norm(a, check.record) for a in check.expect.answers)
    t0 = time.perf_counter()

    async def one(server: str) -> None:
        try:
            answers = await _query(check.target, check.record, server)
        except (OSError, dns.exception.DNSException) as exc:
            result.fail(f"DNS server {server} did not answer: {type(exc).__name__}")
            return
        got = sorted(_norm(a, check.record) for a in answers)
        result.dns_answers[server] = got
        result.dns_ok[server] = got == expected

    await asyncio.gather(*(one(s) for s in check.servers))
    result.phases["dns"] = time.perf_counter() - t0


def _norm(answer: str, record: str) -> str:
    if record in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(answer))
        except ValueError:
            return answer
    return answer.lower().rstrip(".") if record != "TXT" else answer


async def _tcp(check: TcpService, result: CheckResult) -> None:
    host, port = split_host_port(check.target)
    address = await _resolve_one(host, result)
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(address, port)
    result.phases["connect"] = time.perf_counter() - t0
    try:
        if check.expect.send is not None:
            writer.write(check.expect.send.encode("utf-8"))
            await writer.drain()
        if check.expect.contains is not None:
            t1 = time.perf_counter()
            data = b""
            want = check.expect.contains.encode()
            while want not in data and len(data) < TCP_READ_LIMIT:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                data += chunk
            result.phases["first_byte"] = time.perf_counter() - t1
            if want not in data:
                result.fail(f"answer lacks {check.expect.contains[:60]!r}")
    finally:
        writer.close()
