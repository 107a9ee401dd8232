"""Real components for the service-check tests: certificates made here, nginx, dnsmasq, blackbox_exporter.

Everything binds 127.0.0.1 on ephemeral ports, lives in a temporary folder, and is stopped by PID.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.procs import stop
from tests.support.prometheus import exposition
from tests.support.require import require_cmd

HOST = "127.0.0.1"
NAME = "portal.gov.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Issued:
    """A key and certificate (PEM files written by `write`)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govnet test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # fmt: skip


def issue(
    cn: str,
    issuer: Issued | None,
    *,
    ca: bool = False,
    names: tuple[str, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A certificate for `cn` signed by `issuer` (self-signed when None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    nb = not_before or now - dt.timedelta(days=30)
    na = not_after or now + dt.timedelta(days=365)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(nb)
        .not_valid_after(na)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    cert = b.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(key, cert)


class Pki:
    """A root CA, an intermediate, and leaves: good, expired, expiring in 10 days, wrong host name."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.root = issue("govnet test root CA", None, ca=True)
        self.inter = issue("govnet test issuing CA", self.root, ca=True)
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(self.root.pem())
        now = dt.datetime.now(dt.UTC)
        self.leaves = {
            "good": issue(NAME, self.inter, names=(NAME,)),
            "expired": issue(
                NAME,
                self.inter,
                names=(NAME,),
                not_before=now - dt.timedelta(days=400),
                not_after=now - dt.timedelta(days=2),
            ),
            "soon": issue(NAME, self.inter, names=(NAME,), not_after=now + dt.timedelta(days=10)),
            "wrongname": issue("other.gov.test", self.inter, names=("other.gov.test",)),
        }

    def write(self, which: str) -> tuple[Path, Path]:
        """Chain file (leaf + intermediate) and key file of a leaf."""
        leaf = self.leaves[which]
        chain = self.folder / f"{which}.chain.pem"
        key = self.folder / f"{which}.key"
        chain.write_bytes(leaf.pem() + self.inter.pem())
        key.write_bytes(leaf.key_pem())
        return chain, key


class Nginx:
    """A real nginx serving a folder over HTTPS (and HTTP) on loopback; the certificate is swappable."""

    def __init__(self, folder: Path, pki: Pki, cert: str = "good") -> None:
        self.folder = folder
        self.www = folder / "www"
        self.www.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.https_port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.cert = cert

    def _conf(self) -> Path:
        chain, key = self.pki.write(self.cert)
        tmp = self.folder / "tmp"
        tmp.mkdir(exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(
            f"""
worker_processes 1;
daemon off;
{"user root;" if os.geteuid() == 0 else ""}
pid {self.folder}/nginx.pid;
error_log {self.folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  default_type text/html;
  charset utf-8;
  absolute_redirect off;
  server {{
    listen {HOST}:{self.https_port} ssl;
    listen {HOST}:{self.http_port};
    server_name {NAME};
    ssl_certificate {chain};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2;  # fixed, so a check with min_version TLSv1.3 has a known answer
    root {self.www};
    location = /loop {{ return 302 /loop2; }}
    location = /loop2 {{ return 302 /loop; }}
    location = /moved {{ return 301 /index.html; }}
  }}
}}
""",
            encoding="utf-8",
        )
        return conf

    def start(self) -> None:
        require_cmd("nginx")
        conf = self._conf()
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(self.folder), "-e", str(self.folder / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.https_port, self.proc)

    def use_cert(self, which: str) -> None:
        """Swap the certificate: rewrite the config and restart (a fresh master, no reload races)."""
        self.stop()
        self.cert = which
        self.start()

    def stop(self) -> None:
        stop(self.proc, 10, signal.SIGQUIT)  # nginx: graceful
        self.proc = None
        _wait_closed(self.https_port)

    def page(self, html: str, name: str = "index.html") -> None:
        (self.www / name).write_text(html, encoding="utf-8")


class Dnsmasq:
    """A real dnsmasq answering from a hosts file on loopback (SIGHUP re-reads it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.hosts = folder / "hosts"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def set(self, records: dict[str, str]) -> None:
        self.hosts.write_text("".join(f"{ip} {name}\n" for name, ip in records.items()), encoding="utf-8")
        if self.proc is not None:
            self.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)  # dnsmasq re-reads on its next loop turn; the test then re-queries

    def start(self) -> None:
        require_cmd("dnsmasq")
        # dnsmasq binds UDP and TCP: a port free for TCP when chosen may be taken for UDP (or taken
        # since) by another test's ephemeral socket; it then exits at once, and another port is tried.
        for _ in range(5):
            self.proc = subprocess.Popen(
                ["dnsmasq", "--keep-in-foreground", "--no-daemon", f"--port={self.port}",
                 f"--listen-address={HOST}", "--bind-interfaces", "--no-resolv", "--no-hosts",
                 f"--addn-hosts={self.hosts}", "--no-ping", f"--pid-file={self.folder}/dnsmasq.pid",
                 "--user=root", "--log-facility=-", "--cache-size=0"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(0.3)
            if self.proc.poll() is None:
                return
            self.port = free_port()
        raise AssertionError("dnsmasq did not start on any of 5 free ports")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    @property
    def server(self) -> str:
        return f"{HOST}:{self.port}"


def blackbox_modules(ca_file: Path, keyword: str = "政务公开") -> str:
    """blackbox_exporter modules probing what govnet's checks of the same kind check.

    `https`/`http`: status 2xx after redirects, certificate chain against `ca_file` and host name
    `NAME` (sent as Host and SNI); `https_keyword` also requires `keyword` in the body; `tls`: a
    TCP connect and TLS handshake; `dns`: an A query for `NAME` whose answers must include `HOST`.
    """
    host_re = "\\\\s" + HOST.replace(".", "[.]") + "$"  # the RR's address at the end of its text
    return f"""\
modules:
  https:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      headers: {{Host: {NAME}}}
      tls_config: {{ca_file: {ca_file}, server_name: {NAME}}}
  https_keyword:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      headers: {{Host: {NAME}}}
      fail_if_body_not_matches_regexp: ["{keyword}"]
      tls_config: {{ca_file: {ca_file}, server_name: {NAME}}}
  http:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      headers: {{Host: {NAME}}}
  tls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config: {{ca_file: {ca_file}, server_name: {NAME}}}
  dns:
    prober: dns
    timeout: 5s
    dns:
      query_name: {NAME}
      query_type: A
      preferred_ip_protocol: ip4
      validate_answer_rrs: {{fail_if_none_matches_regexp: ["{host_re}"]}}
"""


class Blackbox:
    """prometheus-blackbox-exporter from Debian with a module file the test writes."""

    def __init__(self, folder: Path, modules: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "blackbox.yml"
        self.config.write_text(modules, encoding="utf-8")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        require_cmd("prometheus-blackbox-exporter")
        binary = shutil.which("prometheus-blackbox-exporter")
        assert binary is not None
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config}", f"--web.listen-address={HOST}:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, self.proc)

    def probe(self, module: str, target: str) -> dict[str, float]:
        """One /probe: metric name (with labels folded in) -> value."""
        from urllib.parse import urlencode

        url = f"http://{HOST}:{self.port}/probe?{urlencode({'module': module, 'target': target})}"
        with urllib.request.urlopen(url, timeout=30) as resp:
            return exposition(resp.read().decode())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def _wait_closed(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) != 0:
                return
        time.sleep(0.05)


def environ_without_proxies() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
