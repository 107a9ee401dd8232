"""asyncssh servers for the lab: one listener per device, VTY-line cap, dead/slow behaviour, vendor shells."""

from __future__ import annotations

import asyncio
import codecs
import hmac
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

from lab.ssh.cli import Interpreter, LineEditor, Reply
from lab.ssh.keys import (
    USERNAME,
    ensure_credentials,
    host_key,
    known_hosts_line,
    read_password,
    write_known_hosts,
)
from lab.ssh.profiles import VendorProfile, load_profile
from lab.ssh.render import ChangeClock, context
from lab.state import LabDevice

log = logging.getLogger(__name__)

LOGIN_TIMEOUT_S = 30.0  # an unauthenticated connection holds a VTY line at most this long
IDLE_TIMEOUT_S = 600.0  # like `idle-timeout 10` on a VTY
MAX_HELD_DEAD = 64  # silent sockets kept open per dead device before new ones are just closed
MAX_QUEUED_INPUT = 64 * 1024  # typed-ahead characters buffered before the channel is paused


class _Session(asyncssh.SSHServerSession[bytes]):
    """One shell or exec request on a device: echo, line editing, command output, prompt."""

    def __init__(self, server: DeviceServer) -> None:
        self._server = server
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._queued = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._writable = asyncio.Event()
        self._writable.set()
        self._exec: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.width = 80

    # asyncssh callbacks -------------------------------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any) -> bool:
        self.width = term_size[0] or 80
        return True

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.width = width or self.width  # outputs are not wrapped; the width is only remembered

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self._exec = command
        return True

    def session_started(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        text = self._decoder.decode(data)
        if text:
            self._queued += len(text)
            self._queue.put_nowait(text)
            if self._queued > MAX_QUEUED_INPUT and self._chan is not None:
                self._chan.pause_reading()

    def eof_received(self) -> bool:
        self._queue.put_nowait(None)
        # An exec request answers after the client's EOF (`ssh -n host cmd`): keep the channel open
        # until the answer and exit status are sent; an interactive shell hangs up on EOF.
        return self._exec is not None

    def break_received(self, msec: int) -> bool:
        self._queue.put_nowait("\x03")
        return True

    def signal_received(self, signal: str) -> None:
        if signal == "INT":
            self._queue.put_nowait("\x03")

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.sessions -= 1
        if self._task is not None:
            self._task.cancel()

    # the shell ----------------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        if self._chan is not None and not self._server.device.dead:
            self._chan.write(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8"))

    async def _answer(self, text: str) -> bool:
        """Wait like the device would, then print; a device that died meanwhile prints nothing."""
        await self._server.answer_delay()
        if self._server.device.dead:
            return False
        self._write(text)
        await self._writable.wait()
        return True

    async def _next_input(self) -> str | None:
        try:
            text = await asyncio.wait_for(self._queue.get(), IDLE_TIMEOUT_S)
        except TimeoutError:
            return None  # idle VTY: the device hangs up
        if text is not None:
            self._queued -= len(text)
            if self._queued <= MAX_QUEUED_INPUT and self._chan is not None:
                self._chan.resume_reading()
        return text

    async def _run(self) -> None:
        chan = self._chan
        assert chan is not None
        interp = self._server.interpreter()
        try:
            if self._exec is not None:
                reply = interp.execute(self._exec[: self._server.profile.max_line])
                await self._answer(reply.text)
                chan.exit(0)
                return
            await self._answer(interp.banner() + interp.prompt())
            editor = LineEditor(self._server.profile.max_line)
            while (text := await self._next_input()) is not None:
                if self._server.device.dead:
                    continue  # a dead device swallows everything
                for kind, payload in editor.feed(text):
                    if kind == "echo":
                        self._write(payload)
                    elif kind == "interrupt":
                        self._write("^C\r\n" + interp.prompt())
                    else:
                        self._write("\r\n")
                        reply = interp.execute(payload) if payload.strip() else Reply("")
                        if reply.close:
                            await self._answer(reply.text)
                            chan.exit(0)
                            return
                        await self._answer(reply.text + interp.prompt())
            chan.exit(0)
        except asyncio.CancelledError:
            raise
        except (BrokenPipeError, ConnectionError):
            return  # the client hung up while the device was still talking: normal for netmiko's exit
        except Exception as exc:  # one broken session must not take the device down
            log.warning("lab ssh session on %s failed: %s", self._server.device.name, type(exc).__name__)
            chan.close()


class _AuthServer(asyncssh.SSHServer):
    """Password or public-key login for the single lab user; one shell per connection."""

    def __init__(self, server: DeviceServer) -> None:
        self._server = server
        self._conn: asyncssh.SSHServerConnection | None = None
        self._open = 0

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def begin_auth(self, username: str) -> bool:
        if username == USERNAME and self._conn is not None and self._server.authorized_keys is not None:
            self._conn.set_authorized_keys(self._server.authorized_keys)
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        # Compare both parts in constant time so neither the user name nor the password leaks by timing.
        user_ok = hmac.compare_digest(username.encode(), USERNAME.encode())
        pass_ok = hmac.compare_digest(password.encode(), self._server.password.encode())
        return user_ok and pass_ok

    def public_key_auth_supported(self) -> bool:
        return self._server.authorized_keys is not None

    def session_requested(self) -> asyncssh.SSHServerSession[bytes] | bool:
        if self._open >= 1:
            return False
        self._open += 1
        self._server.sessions += 1
        return _Session(self._server)


class DeviceServer:
    """The SSH endpoint of one lab device."""

    def __init__(
        self,
        device: LabDevice,
        profile: VendorProfile,
        key: asyncssh.SSHKey,
        password: str,
        authorized_keys: asyncssh.SSHAuthorizedKeys | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device = device
        self.profile = profile
        self.password = password
        self.authorized_keys = authorized_keys
        self.sessions = 0
        self.key = key
        self._clock = clock
        self._changes = ChangeClock.start(device)
        self._listen: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._conns: dict[asyncio.Task[None], asyncssh.SSHServerConnection | None] = {}
        self._held: set[asyncio.Task[None]] = set()
        self._options = asyncssh.SSHServerConnectionOptions(
            server_factory=lambda: _AuthServer(self),
            server_host_keys=[key],
            server_version=profile.ssh_version,
            encoding=None,
            login_timeout=LOGIN_TIMEOUT_S,
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_pty=True,
            line_editor=False,  # echo and editing are the device's job (LineEditor), as on a real VTY
        )

    @property
    def port(self) -> int:
        """The bound TCP port."""
        assert self._listen is not None
        return int(self._listen.getsockname()[1])

    def interpreter(self) -> Interpreter:
        """A CLI interpreter reading this device's live state."""

        def values() -> dict[str, Any]:
            return context(self.device, self.profile, self._changes, self._clock(), self.sessions)

        return Interpreter(self.profile, self.device.role, values)

    async def answer_delay(self) -> None:
        """The slow fault: every answer waits slow_s seconds (read at each answer)."""
        if self.device.slow_s > 0:
            await asyncio.sleep(self.device.slow_s)

    async def start(self) -> None:
        """Bind address:ssh_port (port 0 picks a free one and writes it back to the device) and accept."""
        family = socket.AF_INET6 if ":" in self.device.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.device.address, self.device.ssh_port or 0))
            sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._listen = sock
        self.device.ssh_port = self.port
        self._accept_task = asyncio.get_running_loop().create_task(self._accept_loop())

    async def _accept_loop(self) -> None:
        assert self._listen is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(self._listen)
            except OSError as exc:
                log.warning("lab ssh accept on %s failed: %s", self.device.name, exc.strerror)
                await asyncio.sleep(0.1)
                continue
            client.setblocking(False)
            if self.device.dead:
                self._hold(client)
            elif len(self._conns) >= self.profile.max_sessions:
                client.close()  # all VTY lines busy: the peer sees the connection closed before the banner
            else:
                task = loop.create_task(self._serve(client))
                self._conns[task] = None

    def _hold(self, client: socket.socket) -> None:
        """A dead device: the socket stays open and silent, so clients run into their own timeouts."""
        if len(self._held) >= MAX_HELD_DEAD:
            client.close()
            return

        async def drain() -> None:
            loop = asyncio.get_running_loop()
            try:
                while await loop.sock_recv(client, 4096):
                    pass
            except OSError:
                pass
            finally:
                client.close()

        task = asyncio.get_running_loop().create_task(drain())
        self._held.add(task)
        task.add_done_callback(self._held.discard)

    async def _serve(self, client: socket.socket) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            conn = await asyncssh.run_server(client, options=self._options)
            self._conns[task] = conn
            await conn.wait_closed()
        except asyncio.CancelledError:
            conn_now = self._conns.get(task)
            if conn_now is not None:
                conn_now.abort()
            raise
        except Exception as exc:  # failed logins and vanished peers are normal, not errors
            log.debug("lab ssh connection to %s ended: %s", self.device.name, type(exc).__name__)
            client.close()
        finally:
            self._conns.pop(task, None)

    async def close(self) -> None:
        """Stop accepting, drop every connection, and wait until all of it is gone."""
        tasks: list[asyncio.Task[None]] = [*self._conns, *self._held]
        if self._accept_task is not None:
            tasks.append(self._accept_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._listen is not None:
            self._listen.close()
            self._listen = None


class SshLab:
    """The running SSH side of the lab; `await close()` stops every device server."""

    def __init__(self, servers: list[DeviceServer], known_hosts: Path, password_file: Path) -> None:
        self.servers = servers
        self.known_hosts = known_hosts
        self.password_file = password_file

    async def close(self) -> None:
        """Stop all servers (idempotent)."""
        servers, self.servers = self.servers, []
        await asyncio.gather(*(s.close() for s in servers), return_exceptions=True)

    async def __call__(self) -> None:
        await self.close()


async def start_ssh_servers(devices: list[LabDevice], run_dir: Path) -> SshLab:
    """Start one vendor SSH CLI per device that has an ssh_port and a vendor profile; write known_hosts."""
    creds = await asyncio.to_thread(ensure_credentials, run_dir)
    password = await asyncio.to_thread(read_password, creds)
    authorized = asyncssh.read_authorized_keys(str(creds.authorized_keys_file))
    servers: list[DeviceServer] = []
    try:
        for device in devices:
            if device.ssh_port is None:
                continue
            profile = load_profile(device.vendor)
            if profile is None:
                log.info("lab device %s: no SSH CLI for vendor %s", device.name, device.vendor)
                continue
            key = await asyncio.to_thread(host_key, run_dir, device.name)
            server = DeviceServer(device, profile, key, password, authorized)
            await server.start()
            servers.append(server)
        lines = [known_hosts_line(s.device.address, s.port, s.key) for s in servers]
        await asyncio.to_thread(write_known_hosts, creds.known_hosts_file, lines)
    except BaseException:
        await asyncio.gather(*(s.close() for s in servers), return_exceptions=True)
        raise
    return SshLab(servers, creds.known_hosts_file, creds.password_file)
