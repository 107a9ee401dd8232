"""Blocking netmiko sessions pushed to a bounded thread pool, with per-device limits and hard deadlines."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import paramiko  # type: ignore[import-untyped]

from collectors.ssh.platform import Platform, platform_for
from core.secrets import Secret, SecretError
from inventory.model import Device, Inventory

log = logging.getLogger(__name__)


def quiet_device_text_logs() -> None:
    """Keep netmiko's DEBUG channel logging (every byte read: whole configs with secrets) out of logs.

    Set on netmiko's own logger, so a root logger at DEBUG cannot turn it back on by accident.
    """
    netmiko_log = logging.getLogger("netmiko")
    if netmiko_log.getEffectiveLevel() < logging.INFO or netmiko_log.level == logging.NOTSET:
        netmiko_log.setLevel(logging.INFO)


ErrorKind = Literal[
    "timeout",
    "auth",
    "hostkey_mismatch",
    "hostkey_unknown",
    "refused",
    "credentials",
    "no_platform",
    "incomplete",
    "error",
]


class SshError(Exception):
    """An SSH session failed; `kind` says how. The message never carries secrets or device text."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


@dataclass(frozen=True)
class SshSettings:
    """Limits for SSH sessions (seconds); every stage has its own bound and the whole session a deadline."""

    max_workers: int = 16  # threads for all SSH sessions of this process
    per_device: int = 1  # concurrent sessions to one device (devices have few VTY lines)
    conn_timeout_s: float = 5.0
    banner_timeout_s: float = 10.0
    auth_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    deadline_s: float = 90.0


@dataclass(frozen=True)
class Target:
    """Where and how to log in to one device or host; secrets stay references until the session uses them.

    One type for both kinds of session: a device CLI (netmiko, `platform` says how to talk to it) and
    a command on a Linux host (asyncssh exec, collectors/ssh/exec.py, no platform).
    """

    name: str
    address: str
    port: int
    username: str
    platform: Platform | None = None
    password: Secret | None = None
    key_file: Secret | None = None

    @property
    def cli(self) -> Platform:
        """The CLI platform (SshError no_platform for a target without one)."""
        if self.platform is None:
            raise SshError("no_platform", f"{self.name}: no SSH CLI platform")
        return self.platform


def target_for(inventory: Inventory, device: Device, *, cli: bool = True) -> Target:
    """The SSH target of an inventory device (SshError credentials when it has no ssh block; with `cli`,
    SshError no_platform when its vendor has no CLI platform)."""
    creds = inventory.ssh_of(device)
    if creds is None:
        raise SshError("credentials", f"{device.name}: no ssh credentials in the inventory")
    platform = platform_for(device.vendor.value, creds.platform) if cli else None
    if cli and platform is None:
        raise SshError("no_platform", f"{device.name}: no SSH platform for vendor {device.vendor.value}")
    return Target(
        name=device.name,
        address=device.address,
        port=creds.port,
        username=creds.username,
        platform=platform,
        password=creds.password,
        key_file=creds.key_file,
    )


def _private_key(text: str) -> paramiko.PKey:
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise SshError("credentials", "the SSH key_file does not hold a usable private key")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def classify(exc: BaseException) -> tuple[ErrorKind, str]:
    """Map a netmiko/paramiko failure to a kind and a short message free of device text and secrets."""
    from netmiko.exceptions import NetmikoAuthenticationException

    chain = _chain(exc)
    for e in chain:
        if isinstance(e, paramiko.BadHostKeyException):
            return "hostkey_mismatch", "host key does not match the one recorded by govnet ssh trust"
        if isinstance(e, paramiko.SSHException) and "not found in known_hosts" in str(e):
            return "hostkey_unknown", "host key not recorded: run govnet ssh trust first"
        if isinstance(e, NetmikoAuthenticationException | paramiko.AuthenticationException):
            return "auth", "authentication failed"
        if isinstance(e, ConnectionRefusedError):
            return "refused", "connection refused"
        if isinstance(e, SecretError):
            return "credentials", str(e)  # SecretError names the reference, never the value
    for e in chain:
        if isinstance(e, TimeoutError | socket.timeout) or "timeout" in type(e).__name__.lower():
            return "timeout", "timed out"
        if "banner" in str(e).lower() or "timed out" in str(e).lower():
            return "timeout", "timed out"
    return "error", f"ssh session failed ({type(exc).__name__})"


def run_session(
    target: Target, commands: Sequence[str], known_hosts: Path, settings: SshSettings
) -> list[str]:
    """Log in (strict host key), run `commands`, log out; blocking, meant for a worker thread."""
    from netmiko import ConnectHandler

    params: dict[str, Any] = {
        "device_type": target.cli.device_type,
        "host": target.address,
        "port": target.port,
        "username": target.username,
        # Strict host keys: only govnet's own file, no system/user files, unknown or changed keys refused.
        "ssh_strict": True,
        "system_host_keys": False,
        "alt_host_keys": True,
        "alt_key_file": str(known_hosts),
        "allow_agent": False,
        "use_keys": False,
        "conn_timeout": settings.conn_timeout_s,
        "banner_timeout": settings.banner_timeout_s,
        "auth_timeout": settings.auth_timeout_s,
        "read_timeout_override": None,
        "fast_cli": True,
    }
    try:
        if target.password is not None:
            params["password"] = target.password.resolve()
        if target.key_file is not None:
            params["pkey"] = _private_key(target.key_file.resolve())
            params["use_keys"] = True
            params.setdefault("password", "")
    except SecretError as exc:
        raise SshError("credentials", str(exc)) from None
    if not known_hosts.is_file():
        # netmiko silently skips a missing alt_key_file; be explicit (the result is the same: refused).
        raise SshError("hostkey_unknown", "no govnet known_hosts file: run govnet ssh trust first")
    try:
        conn = ConnectHandler(**params)
    except Exception as exc:
        kind, message = classify(exc)
        raise SshError(kind, message) from None
    try:
        out: list[str] = []
        for command in commands:
            text = conn.send_command(command, read_timeout=settings.read_timeout_s)
            out.append(text if isinstance(text, str) else str(text))
        return out
    except Exception as exc:
        kind, message = classify(exc)
        raise SshError(kind, message) from None
    finally:
        try:
            conn.disconnect()
        except Exception as exc:  # the answers are in; a messy logout is not a failure
            log.debug("ssh logout from %s failed: %s", target.name, type(exc).__name__)


class SshRunner:
    """Runs SSH sessions for the asyncio core: a bounded pool, N sessions per device, a deadline each."""

    def __init__(self, known_hosts: Path, settings: SshSettings | None = None) -> None:
        quiet_device_text_logs()
        self.known_hosts = Path(known_hosts)
        self.settings = settings or SshSettings()
        self._pool = ThreadPoolExecutor(self.settings.max_workers, thread_name_prefix="govnet-ssh")
        self._limits: dict[str, asyncio.Semaphore] = {}

    async def run(self, target: Target, commands: Sequence[str]) -> list[str]:
        """Outputs of `commands` in order; raises SshError (timeout when the deadline passes)."""
        sem = self._limits.setdefault(target.name, asyncio.Semaphore(self.settings.per_device))
        await sem.acquire()
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        fut = loop.run_in_executor(
            self._pool, run_session, target, list(commands), self.known_hosts, self.settings
        )
        try:
            result = await asyncio.wait_for(asyncio.shield(fut), self.settings.deadline_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if fut.done():
                sem.release()
            else:
                # The thread cannot be killed; it ends at netmiko's own timeouts. Keep the device's
                # slot busy until then so the per-device limit holds.
                fut.add_done_callback(lambda _f: sem.release())
                fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.warning("ssh session to %s passed its %.0fs deadline", target.name, self.settings.deadline_s)
            raise SshError("timeout", f"no answer within {self.settings.deadline_s:.0f}s") from None
        except BaseException:
            sem.release()
            raise
        sem.release()
        log.debug("ssh session to %s took %.2fs", target.name, time.monotonic() - start)
        return result

    def close(self) -> None:
        """Stop accepting sessions; running ones finish at their own timeouts."""
        self._pool.shutdown(wait=False, cancel_futures=True)
