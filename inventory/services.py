"""Service checks in the inventory (`services:`): government websites, TLS endpoints, DNS names, TCP ports."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import re2
from pydantic import (
    AfterValidator,
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    RootModel,
    field_validator,
    model_validator,
)

from inventory.fields import Duration, Name, parse_duration

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_\-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_]"
                       r"([A-Za-z0-9_\-]{0,61}[A-Za-z0-9])?\.?$")  # fmt: skip
TlsVersion = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def valid_host(host: str) -> bool:
    """True for an IPv4/IPv6 address or a DNS host name."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(host))


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """`host:port`, `[v6]:port` (or a bare host when a default port is given) -> (host, port)."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("unclosed '[' in an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("expected [address]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        raise ValueError("write an IPv6 address with a port as [address]:port")
    if not port_text:
        if default_port is None:
            raise ValueError("expected host:port")
        port = default_port
    elif not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("the port must be a number from 1 to 65535")
    else:
        port = int(port_text)
    if not valid_host(host):
        raise ValueError("expected a host name or an IP address")
    return host, port


def _host_port(value: str) -> str:
    split_host_port(value)
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]  # host:port, [v6]:port


def _endpoints(values: list[str], default_port: int) -> list[str]:
    for v in values:
        split_host_port(v, default_port)
    return values


def compile_volatile(pattern: str) -> Any:
    """A volatile pattern compiled by RE2; ValueError when RE2 cannot run it in linear time."""
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        why = exc.args[0] if exc.args else b""
        text = why.decode(errors="replace") if isinstance(why, bytes) else str(why)
        raise ValueError(f"not a linear-time (RE2) pattern: {text}") from None


class Owner(_Strict):
    """Who answers for a service: the government unit and the site it belongs to."""

    unit: str = Field(min_length=1, max_length=128)
    site: str


class TlsOptions(_Strict):
    """How a certificate is judged: trust anchors, expected name, oldest acceptable protocol."""

    ca_file: str | None = None  # PEM bundle of government CAs; absent = the system trust store
    server_name: str | None = None  # SNI and the name the certificate must carry (default: target host)
    min_version: TlsVersion | None = None

    @field_validator("server_name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not valid_host(v):
            raise ValueError("expected a DNS host name")
        return v


class HttpExpect(_Strict):
    """What a healthy HTTP(S) answer looks like."""

    status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    max_redirects: int = Field(5, ge=0, le=20)
    contains: list[str] = Field(default_factory=list)  # required keywords (page text)
    forbids: list[str] = Field(default_factory=list)  # keywords that must not appear
    max_response_time: Duration | None = None
    max_body: ByteSize = Field(ByteSize(5 * 1024 * 1024), ge=1024, le=64 * 1024 * 1024)

    @field_validator("status")
    @classmethod
    def _codes(cls, v: list[int]) -> list[int]:
        if any(not 100 <= c <= 599 for c in v):
            raise ValueError("HTTP status codes are 100..599")
        return v


class ContentWatch(_Strict):
    """Defacement watch of a page: volatile parts, allowed external domains, forbidden words."""

    enabled: bool = True
    volatile_selectors: list[str] = Field(default_factory=list)  # CSS selectors removed before comparing
    volatile_patterns: list[str] = Field(default_factory=list)  # regexes replaced by '…' before comparing
    allow_domains: list[str] = Field(default_factory=list)  # external script/iframe hosts allowed
    forbidden_words: list[str] = Field(default_factory=list)  # added to the built-in list
    builtin_words: bool = True  # false: only `forbidden_words`

    @field_validator("volatile_patterns")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pattern in v:
            if len(pattern) > 1000:
                raise ValueError("a volatile pattern is at most 1000 characters")
            try:
                compile_volatile(pattern)
            except ValueError as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return v

    @field_validator("volatile_selectors")
    @classmethod
    def _selectors(cls, v: list[str]) -> list[str]:
        from selectolax.lexbor import LexborHTMLParser

        probe = LexborHTMLParser("<p></p>")
        for selector in v:
            try:
                probe.css(selector)
            except Exception:  # lexbor raises plain exceptions for bad selectors
                raise ValueError(f"invalid CSS selector {selector!r}") from None
        return v

    @field_validator("allow_domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        for d in v:
            if not valid_host(d.removeprefix("*.")):
                raise ValueError(f"expected domain names (optionally *.domain), got {d!r}")
        return [d.lower() for d in v]


class _Base(_Strict):
    name: Name
    owner: Owner
    interval: Duration = 60.0
    timeout: Duration = 10.0  # the whole check, every phase and redirect included
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, data: Any) -> Any:
        # Without an explicit timeout, a check faster than every 10 s gets its interval as deadline.
        if isinstance(data, dict) and "timeout" not in data and "interval" in data:
            try:
                interval = parse_duration(data["interval"])
            except ValueError:
                return data  # the field validator reports it
            if interval < 10.0:
                return {**data, "timeout": interval}
        return data

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> _Base:
        if self.timeout > self.interval:
            raise ValueError("timeout must not exceed interval (one check at a time per service)")
        return self


class HttpService(_Base):
    """An HTTP or HTTPS check of one URL, with an optional defacement watch."""

    type: Literal["http", "https"]
    target: str
    address: str | None = None  # connect here instead of resolving the host (a load balancer's member)
    resolvers: Annotated[list[str], Field(max_length=4)] = Field(default_factory=list)  # DNS servers
    expect: HttpExpect = Field(default_factory=HttpExpect)
    tls: TlsOptions = Field(default_factory=TlsOptions)
    content: ContentWatch | None = None

    @model_validator(mode="after")
    def _url(self) -> HttpService:
        parts = urlsplit(self.target)
        if parts.scheme != self.type:
            raise ValueError(f"a {self.type} check needs a target URL starting with {self.type}://")
        if not parts.hostname or not valid_host(parts.hostname):
            raise ValueError("the target URL has no valid host")
        if parts.username or parts.password:
            raise ValueError("no credentials in the target URL")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("the target URL has an invalid port") from None
        if self.address is not None:
            try:
                ipaddress.ip_address(self.address)
            except ValueError:
                raise ValueError("address must be an IP address") from None
        _endpoints(self.resolvers, 53)
        return self


class TlsService(_Base):
    """A TLS handshake on any TCP port: certificate expiry, issuer, chain, host name, protocol."""

    type: Literal["tls"]
    target: HostPort
    tls: TlsOptions = Field(default_factory=TlsOptions)


class DnsExpect(_Strict):
    """The answers every listed server must give (order ignored)."""

    answers: list[str] = Field(min_length=1)


class DnsService(_Base):
    """A DNS name asked of given servers; each server's answer must equal the expected set."""

    type: Literal["dns"]
    target: str  # the name to resolve
    servers: list[str] = Field(min_length=1, max_length=16)  # ip or ip:port
    record: Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT"] = "A"
    expect: DnsExpect

    @field_validator("target")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _HOSTNAME.match(v):
            raise ValueError("expected a DNS name")
        return v

    @field_validator("servers")
    @classmethod
    def _servers(cls, v: list[str]) -> list[str]:
        for s in v:
            host, _ = split_host_port(s, 53)
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(
                    f"a DNS server is an IP address (optionally with :port), got {s!r}"
                ) from None
        return v


class TcpExpect(_Strict):
    """Optional dialogue after connecting: send a line, expect text in the answer."""

    send: str | None = Field(None, max_length=4096)
    contains: str | None = Field(None, max_length=4096)


class TcpService(_Base):
    """A TCP connect to host:port (optionally a send/expect exchange)."""

    type: Literal["tcp"]
    target: HostPort
    expect: TcpExpect = Field(default_factory=TcpExpect)


ServiceCheck = HttpService | TlsService | DnsService | TcpService


class ServiceEntry(RootModel[Annotated[ServiceCheck, Field(discriminator="type")]]):
    """One `services[]` entry; `type` selects http, https, tls, dns or tcp."""

    model_config = ConfigDict(frozen=True)
