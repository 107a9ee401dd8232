"""TLS: contexts that trust the system store or a configured CA, the handshake, and the leaf certificate."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import ssl
import time
import warnings
from functools import lru_cache

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from collectors.services.result import CertInfo

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


@lru_cache(maxsize=64)
def verifying_context(ca_file: str | None, check_hostname: bool = True) -> ssl.SSLContext:
    """A client context verifying against `ca_file` (PEM) or the system trust store (cached: loading
    the store costs milliseconds of CPU per context)."""
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = check_hostname
    _allow_old_versions(ctx)
    return ctx


def _allow_old_versions(ctx: ssl.SSLContext) -> None:
    # Old government servers still speak TLS 1.0/1.1: report the version (and fail a check that sets
    # `min_version`) rather than fail the handshake. Python warns that these versions are deprecated.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1


@lru_cache(maxsize=1)
def unverified_context() -> ssl.SSLContext:
    """A context that accepts any certificate: used only to read what the server presents."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _allow_old_versions(ctx)
    return ctx


def version_below(protocol: str, minimum: str | None) -> bool:
    """True when the negotiated `protocol` is older than `minimum` (e.g. TLSv1.1 < TLSv1.2)."""
    if minimum is None or protocol not in _VERSIONS:
        return False
    return _VERSIONS[protocol] < _VERSIONS[minimum]


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return ()
    assert isinstance(san, x509.SubjectAlternativeName)
    dns = san.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return tuple([*dns, *ips])


def hostname_matches(names: tuple[str, ...], host: str) -> bool:
    """RFC 6125 matching of `host` against subjectAltName entries (one left-most wildcard label)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return any(_same_ip(n, ip) for n in names)
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == name[2:] and "." in rest:
                return True
    return False


def _same_ip(name: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(name) == ip
    except ValueError:
        return False


def cert_info(der: bytes, host: str, protocol: str, chain_ok: bool, chain_error: str) -> CertInfo:
    """Parse a DER leaf certificate (CPU work: call from a thread when many run at once)."""
    cert = x509.load_der_x509_certificate(der)
    names = _names(cert)
    return CertInfo(
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        subject=cert.subject.rfc4514_string()[:256],
        issuer=cert.issuer.rfc4514_string()[:256],
        names=names[:100],
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        chain_ok=chain_ok,
        chain_error=chain_error,
        hostname_ok=hostname_matches(names, host),
        protocol=protocol,
    )


async def handshake(
    address: str, port: int, server_name: str, ca_file: str | None
) -> tuple[bytes, str, bool, str]:
    """Handshake with `address:port` for `server_name`: (leaf DER, protocol, chain ok, chain error).

    First with verification (chain only: the host name is judged apart, so an expired and a
    misnamed certificate give distinct reasons); when that fails, again without, to read the
    certificate. Raises OSError/ssl.SSLError when no handshake completes at all. The caller bounds time.
    """
    sni = None if _is_ip(server_name) else server_name
    try:
        der, protocol = await _read_cert(address, port, sni, verifying_context(ca_file, False))
        return der, protocol, True, ""
    except ssl.SSLCertVerificationError as exc:
        error = exc.verify_message or exc.reason or "certificate verify failed"
    der, protocol = await _read_cert(address, port, sni, unverified_context())
    return der, protocol, False, str(error)


async def _read_cert(address: str, port: int, sni: str | None, ctx: ssl.SSLContext) -> tuple[bytes, str]:
    _reader, writer = await asyncio.open_connection(address, port, ssl=ctx, server_hostname=sni or "")
    try:
        obj = writer.get_extra_info("ssl_object")
        der = obj.getpeercert(binary_form=True) if obj is not None else None
        if not der:
            raise ssl.SSLError("the server presented no certificate")
        return der, str(obj.version() or "")
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def seconds_left(cert: CertInfo, now: float | None = None) -> float:
    """Seconds until the certificate expires (negative once expired)."""
    return cert.not_after - (time.time() if now is None else now)
