"""Where backup files are read: a local directory, or a host over SFTP (listing) and SSH exec (hashing)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import os
import re
import shlex
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

import asyncssh

from collectors.ssh.client import SshError, Target
from collectors.ssh.exec import SshExec

SIDECAR_SUFFIXES = (".sha256", ".sha256sum", ".md5", ".sig", ".asc")
SUMS_FILES = ("SHA256SUMS", "sha256sums.txt")
# Files a backup tool is still writing, or our own sidecars: never counted as backups.
IGNORED = re.compile(r"^\.|\.(tmp|part|partial|inprogress)$", re.IGNORECASE)
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
SIDECAR_MAX = 64 * 1024


@dataclass(frozen=True)
class FileEntry:
    """A regular file in the backup directory."""

    name: str
    size: int
    mtime: float


def split_path(path: str) -> tuple[str, str]:
    """(directory, glob) from a job path: `/b/daily` means every file in it, `/b/pg-*.dump` a pattern."""
    p = PurePosixPath(path)
    if any(c in p.name for c in "*?["):
        return str(p.parent), p.name
    return str(p), "*"


def is_backup_name(name: str, pattern: str) -> bool:
    """Whether a directory entry is a backup of this job (pattern match, not a sidecar or partial file)."""
    if IGNORED.search(name) or name in SUMS_FILES or name.endswith(SIDECAR_SUFFIXES):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def sidecar_digest(name: str, texts: dict[str, str]) -> str | None:
    """The SHA-256 the backup tool wrote for `name` (`name.sha256` or a SHA256SUMS line), if any."""
    own = texts.get(name + ".sha256") or texts.get(name + ".sha256sum")
    if own is not None:
        first = own.split()[0] if own.split() else ""
        return first.lower() if _HEX64.match(first) else "invalid"
    for sums in SUMS_FILES:
        for line in texts.get(sums, "").splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].lstrip("*").strip() == name and _HEX64.match(parts[0]):
                return parts[0].lower()
    return None


class Session(Protocol):
    """An open view of one backup directory."""

    async def list(self) -> list[FileEntry]:
        """Regular files in the directory."""
        ...

    async def sha256(self, name: str) -> str:
        """SHA-256 (hex) of one file."""
        ...

    async def read_small(self, name: str) -> str | None:
        """A small text file (checksum sidecar), None when absent or too big."""
        ...

    async def test_restore(self, name: str) -> str | None:
        """Read the whole backup with its format's own tool; a problem text, or None (fine / no tool)."""
        ...


class Source(Protocol):
    """Opens sessions on a backup directory."""

    directory: str

    def open(self) -> contextlib.AbstractAsyncContextManager[Session]:
        """A session (raises SshError/OSError when the place cannot be reached)."""
        ...


# Test restores by format (magic bytes -> argv before the path). Exit 127 = tool absent: skipped.
# `pg_restore -f /dev/null` reads every data block of a custom-format dump without any database,
# so a dump cut short or with a damaged compressed block fails even when its TOC is intact.
RESTORE_TOOLS: tuple[tuple[bytes, tuple[str, ...]], ...] = (
    (b"PGDMP", ("pg_restore", "-f", "/dev/null", "--")),
    (b"\x1f\x8b", ("gzip", "-t", "--")),
)
RESTORE_TIMEOUT_S = 3600.0


def restore_argv(head: bytes) -> tuple[str, ...] | None:
    """The test-restore command for a file starting with `head` (None for unknown formats)."""
    for magic, argv in RESTORE_TOOLS:
        if head.startswith(magic):
            return argv
    return None


def _head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(8)


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _read_small(path: str) -> str | None:
    try:
        if os.path.getsize(path) > SIDECAR_MAX:
            return None
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


class LocalSession:
    """A directory on this machine (a mounted backup share, or the govnet host itself)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    async def list(self) -> list[FileEntry]:
        """Regular files (symlinks not followed: a backup is a file, not a pointer)."""

        def scan() -> list[FileEntry]:
            out = []
            with os.scandir(self.directory) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        out.append(FileEntry(e.name, st.st_size, st.st_mtime))
            return out

        return await asyncio.to_thread(scan)

    async def sha256(self, name: str) -> str:
        """Hash in a thread (large files)."""
        return await asyncio.to_thread(_hash_file, os.path.join(self.directory, name))

    async def read_small(self, name: str) -> str | None:
        """Read a sidecar."""
        return await asyncio.to_thread(_read_small, os.path.join(self.directory, name))

    async def test_restore(self, name: str) -> str | None:
        """Run the format's tool here."""
        path = os.path.join(self.directory, name)
        argv = restore_argv(await asyncio.to_thread(_head, path))
        if argv is None:
            return None
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
        except FileNotFoundError:
            return None
        try:
            code = await asyncio.wait_for(proc.wait(), RESTORE_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return f"{argv[0]} timed out"
        return None if code == 0 else f"test restore with {argv[0]} failed"


class LocalSource:
    """Backups in a local directory."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Session]:
        """A session (OSError when the directory is gone)."""
        if not await asyncio.to_thread(os.path.isdir, self.directory):
            raise FileNotFoundError("backup directory does not exist")
        yield LocalSession(self.directory)


class SshSession:
    """A directory on a remote host: SFTP lists it, `sha256sum` on the host hashes (no bulk transfer)."""

    def __init__(self, ssh: SshExec, conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient,
                 directory: str) -> None:  # fmt: skip
        self.ssh, self.conn, self.sftp, self.directory = ssh, conn, sftp, directory

    async def list(self) -> list[FileEntry]:
        """Regular files per SFTP attributes (lstat: symlinks are not backups)."""
        out = []
        for entry in await self.sftp.readdir(self.directory):
            name = str(entry.filename)
            attrs = entry.attrs
            if attrs.permissions is None or not stat.S_ISREG(attrs.permissions) or name in (".", ".."):
                continue
            out.append(FileEntry(name, int(attrs.size or 0), float(attrs.mtime or 0)))
        return out

    async def sha256(self, name: str) -> str:
        """`sha256sum` on the host; the path is quoted for the remote shell."""
        path = str(PurePosixPath(self.directory) / name)
        out = await self.ssh.run_on(self.conn, f"sha256sum -b -- {shlex.quote(path)}", timeout_s=3600)
        digest = out.split()[0] if out.split() else ""
        if not _HEX64.match(digest.lstrip("\\")):
            raise SshError("error", "unexpected sha256sum output")
        return digest.lstrip("\\").lower()

    async def read_small(self, name: str) -> str | None:
        """Read a sidecar over SFTP."""
        path = str(PurePosixPath(self.directory) / name)
        try:
            async with self.sftp.open(path, "rb") as f:
                data = await f.read(SIDECAR_MAX + 1)
        except (asyncssh.SFTPError, OSError):
            return None
        raw = data if isinstance(data, bytes) else str(data).encode()
        return None if len(raw) > SIDECAR_MAX else raw.decode("utf-8", errors="replace")

    async def test_restore(self, name: str) -> str | None:
        """Run the format's tool on the host."""
        path = str(PurePosixPath(self.directory) / name)
        try:
            async with self.sftp.open(path, "rb") as f:
                head = await f.read(8)
        except (asyncssh.SFTPError, OSError):
            return None
        argv = restore_argv(head if isinstance(head, bytes) else str(head).encode())
        if argv is None:
            return None
        command = " ".join(shlex.quote(a) for a in (*argv, path))
        try:
            await self.ssh.run_on(self.conn, command, timeout_s=RESTORE_TIMEOUT_S)
        except SshError as exc:
            if str(exc).startswith("exit status 127"):
                return None  # the tool is not installed on that host
            return f"test restore with {argv[0]} failed"
        return None


class SshSource:
    """Backups on a host reached over SSH (strict host keys, govnet's known_hosts)."""

    def __init__(self, ssh: SshExec, target: Target, directory: str) -> None:
        self.ssh, self.target, self.directory = ssh, target, directory

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Session]:
        """One SSH connection with an SFTP channel for the whole check."""
        async with self.ssh.connect(self.target) as conn:
            try:
                sftp = await asyncio.wait_for(conn.start_sftp_client(), self.ssh.timeout_s)
            except (asyncssh.Error, OSError, TimeoutError) as exc:
                raise SshError("error", f"sftp unavailable ({type(exc).__name__})") from None
            try:
                yield SshSession(self.ssh, conn, sftp, self.directory)
            finally:
                sftp.exit()
