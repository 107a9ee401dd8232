"""Plain SSH exec and SFTP for Linux hosts (DB servers, backup hosts): asyncssh, strict host keys.

Vendor CLIs need netmiko's prompt handling; a Linux host does not. An exec channel gives a clean
stdout, a separate stderr and an exit status, runs in the asyncio core without a thread, and can
really be cancelled at its deadline. Host keys come only from govnet's known_hosts file (the one
`govnet ssh trust` writes); an unknown or changed key is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh

from collectors.ssh.client import SshError, Target
from collectors.ssh.hostkeys import KnownHosts
from core.secrets import SecretError

log = logging.getLogger(__name__)

MAX_OUTPUT = 4 * 1024 * 1024  # device text is untrusted: a runaway command cannot fill memory


def printable(text: str, limit: int = 160) -> str:
    """A short, single-line, printable excerpt of untrusted text for error messages."""
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    return "".join(c if c.isprintable() else " " for c in first)[:limit]


class SshExec:
    """Opens strict-host-key SSH connections to Linux hosts and runs commands or SFTP on them."""

    def __init__(self, known_hosts: Path, timeout_s: float = 10.0, per_host: int = 2) -> None:
        self.known_hosts = Path(known_hosts)
        self.timeout_s = timeout_s
        self.per_host = per_host
        self._limits: dict[str, asyncio.Semaphore] = {}

    def _options(self, target: Target) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "host": target.address,
            "port": target.port,
            "username": target.username,
            "known_hosts": str(self.known_hosts),
            "config": None,  # no ~/.ssh/config, no default identities, no agent: only what is configured
            "agent_path": None,
            "client_keys": None,
            "gss_auth": False,
            "gss_kex": False,
            "connect_timeout": self.timeout_s,
            "login_timeout": self.timeout_s,
            "keepalive_interval": 0,
        }
        try:
            if target.key_file is not None:
                opts["client_keys"] = [asyncssh.import_private_key(target.key_file.resolve())]
            if target.password is not None:
                opts["password"] = target.password.resolve()
        except SecretError as exc:
            raise SshError("credentials", str(exc)) from None
        except (asyncssh.KeyImportError, ValueError):
            raise SshError("credentials", "the SSH key_file does not hold a usable private key") from None
        return opts

    def _classify(self, target: Target, exc: BaseException) -> SshError:
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            if KnownHosts(self.known_hosts).lookup(target.address, target.port):
                return SshError(
                    "hostkey_mismatch", "host key does not match the one recorded by govnet ssh trust"
                )
            return SshError("hostkey_unknown", "host key not recorded: run govnet ssh trust first")
        if isinstance(exc, asyncssh.PermissionDenied):
            return SshError("auth", "authentication failed")
        if isinstance(exc, ConnectionRefusedError):
            return SshError("refused", "connection refused")
        if isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return SshError("timeout", "timed out")
        return SshError("error", f"ssh session failed ({type(exc).__name__})")

    @contextlib.asynccontextmanager
    async def connect(self, target: Target) -> AsyncIterator[asyncssh.SSHClientConnection]:
        """An open connection to `target` (at most `per_host` at a time per host); SshError on failure."""
        if not self.known_hosts.is_file():
            raise SshError("hostkey_unknown", "no govnet known_hosts file: run govnet ssh trust first")
        sem = self._limits.setdefault(target.name, asyncio.Semaphore(self.per_host))
        async with sem:
            opts = self._options(target)
            try:
                conn = await asyncio.wait_for(asyncssh.connect(**opts), self.timeout_s * 2)
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                raise self._classify(target, exc) from None
            try:
                yield conn
            finally:
                conn.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.wait_closed(), 2.0)

    async def run_on(
        self,
        conn: asyncssh.SSHClientConnection,
        command: str,
        stdin: str | None = None,
        timeout_s: float | None = None,
    ) -> str:
        """stdout of `command` on an open connection; SshError unless it exits 0 within the timeout."""
        try:
            result = await asyncio.wait_for(
                conn.run(command, input=stdin, check=False, encoding="utf-8", errors="replace"),
                timeout_s or self.timeout_s,
            )
        except TimeoutError:
            raise SshError("timeout", "remote command timed out") from None
        except (OSError, asyncssh.Error) as exc:
            raise SshError("error", f"remote command failed ({type(exc).__name__})") from None
        stdout = str(result.stdout or "")[:MAX_OUTPUT]
        if result.exit_status != 0:
            raise SshError(
                "error", f"exit status {result.exit_status}: {printable(str(result.stderr or ''))}"
            )
        return stdout

    async def run(
        self, target: Target, command: str, stdin: str | None = None, timeout_s: float | None = None
    ) -> str:
        """Connect, run one command, disconnect (see `run_on`)."""
        async with self.connect(target) as conn:
            return await self.run_on(conn, command, stdin, timeout_s)
