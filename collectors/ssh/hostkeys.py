"""The known-hosts file govnet manages: `trust` records a host key; connections accept no other."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import paramiko  # type: ignore[import-untyped]

_LOCK = threading.Lock()  # one writer at a time inside this process; the file is replaced atomically

TrustStatus = Literal["added", "unchanged", "replaced", "refused"]


def host_entry(address: str, port: int) -> str:
    """The known_hosts name OpenSSH and paramiko use: `addr` on port 22, else `[addr]:port`."""
    return address if port == 22 else f"[{address}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style `SHA256:...` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def fetch_host_key(
    address: str, port: int, timeout_s: float, preferred: list[str] | None = None
) -> paramiko.PKey:
    """Ask the server for its host key (key exchange only, no login); raises OSError/SSHException."""
    sock = socket.create_connection((address, port), timeout=timeout_s)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout_s
        if preferred:
            transport.get_security_options().key_types = preferred
        transport.start_client(timeout=timeout_s)
        key: paramiko.PKey = transport.get_remote_server_key()
        return key
    finally:
        transport.close()
        sock.close()


@dataclass(frozen=True)
class TrustResult:
    """What `trust` did: the key now recorded and, when it differed, the one seen before."""

    status: TrustStatus
    fingerprint: str
    previous: str | None = None


class KnownHosts:
    """An OpenSSH-format known_hosts file owned by govnet (never the user's ~/.ssh/known_hosts)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _load(self) -> paramiko.HostKeys:
        keys = paramiko.HostKeys()
        if self.path.exists():
            keys.load(str(self.path))
        return keys

    def lookup(self, address: str, port: int) -> list[paramiko.PKey]:
        """Keys recorded for address:port (empty when the device was never trusted)."""
        entry = self._load().lookup(host_entry(address, port))
        return list(entry.values()) if entry else []

    def record(self, address: str, port: int, key: paramiko.PKey, replace: bool = False) -> TrustResult:
        """Record `key`; a different key already recorded is kept (status refused) unless `replace`."""
        name = host_entry(address, port)
        new_fp = fingerprint(key)
        with _LOCK:
            keys = self._load()
            known = keys.lookup(name)
            old = list(known.values()) if known else []
            if any(k.asbytes() == key.asbytes() for k in old):
                return TrustResult("unchanged", new_fp)
            previous = fingerprint(old[0]) if old else None
            if old and not replace:
                return TrustResult("refused", new_fp, previous)
            if old:
                # Drop every key type for this host: after a re-key only the new key is valid.
                while True:
                    try:
                        del keys[name]  # removes one entry per call
                    except KeyError:
                        break
            keys.add(name, key.get_name(), key)
            self._write(keys)
            return TrustResult("replaced" if old else "added", new_fp, previous)

    def _write(self, keys: paramiko.HostKeys) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=self.path.parent)
        try:
            os.close(fd)
            keys.save(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
