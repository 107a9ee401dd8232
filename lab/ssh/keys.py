"""Lab SSH credentials: the login password, a client key pair, per-device host keys and known_hosts."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncssh

USERNAME = "govnet"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class LabCredentials:
    """Where the lab's SSH secrets live; the password itself is read only where it is checked."""

    username: str
    password_file: Path
    client_key_file: Path
    authorized_keys_file: Path
    known_hosts_file: Path


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file created 0600 from the start (no window where it is world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, text: str) -> None:
    """Write a public file atomically so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="ascii")
    os.replace(tmp, path)


def ensure_credentials(run_dir: Path) -> LabCredentials:
    """Create (once) the lab password and client key pair under run_dir and return their paths."""
    secrets_dir = run_dir / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    password_file = secrets_dir / "ssh_password"
    if not password_file.exists():
        _write_private(password_file, (secrets.token_urlsafe(24) + "\n").encode("ascii"))
    client_key_file = secrets_dir / "ssh_client_key"
    authorized = run_dir / "ssh_authorized_keys"
    if not client_key_file.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment="govnet-lab-client")
        _write_private(client_key_file, key.export_private_key("openssh"))
        _write_public(authorized, key.export_public_key("openssh").decode("ascii"))
    elif not authorized.exists():
        key = asyncssh.read_private_key(str(client_key_file))
        _write_public(authorized, key.export_public_key("openssh").decode("ascii"))
    return LabCredentials(
        username=USERNAME,
        password_file=password_file,
        client_key_file=client_key_file,
        authorized_keys_file=authorized,
        known_hosts_file=run_dir / "known_hosts",
    )


def read_password(creds: LabCredentials) -> str:
    """The lab password (first line of the 0600 file)."""
    return creds.password_file.read_text(encoding="utf-8").splitlines()[0].strip()


def host_key(run_dir: Path, device: str) -> asyncssh.SSHKey:
    """The device's ed25519 host key, generated on first use and reused so known_hosts stays valid."""
    if not _SAFE_NAME.match(device):
        raise ValueError("device name is not safe to use as a file name")
    path = run_dir / "ssh_host_keys" / device
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"{device}-host-key")
    _write_private(path, key.export_private_key("openssh"))
    _write_public(path.with_name(device + ".pub"), key.export_public_key("openssh").decode("ascii"))
    return key


def known_hosts_line(address: str, port: int, key: asyncssh.SSHKey) -> str:
    """One OpenSSH known_hosts entry; `[addr]:port` form, which paramiko and ssh use for non-22 ports."""
    host = address if port == 22 else f"[{address}]:{port}"
    public = key.export_public_key("openssh").decode("ascii").split()
    return f"{host} {public[0]} {public[1]}\n"


def write_known_hosts(path: Path, lines: list[str]) -> None:
    """Replace the lab's known_hosts file with these entries."""
    _write_public(path, "".join(lines))
