"""Run a private net-snmp `snmpd` (own config and persistent dir) for tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def free_udp_port(host: str) -> int:
    """A UDP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class NetSnmpd:
    """A real snmpd on `host:port` with a v2c community and one SHA-256/AES-128 v3 user."""

    def __init__(
        self,
        host: str,
        *,
        community: str = "public",
        user: str = "govnet",
        auth_key: str = "authpass-123",
        priv_key: str = "privpass-123",
        extra: str = "",
    ) -> None:
        self.host = host
        self.port = free_udp_port(host)
        self.community, self.user, self.auth_key, self.priv_key = community, user, auth_key, priv_key
        self.extra = extra
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str | None:
        """Path of snmpd, if installed."""
        return shutil.which("snmpd") or shutil.which("snmpd", path="/usr/sbin:/sbin")

    def start(self) -> NetSnmpd:
        """Start snmpd and wait until it answers."""
        exe = self.binary()
        if exe is None:
            raise FileNotFoundError("snmpd")
        self._dir = tempfile.TemporaryDirectory(prefix="govnet-snmpd-")
        d = Path(self._dir.name)
        (d / "persist").mkdir()
        conf = d / "snmpd.conf"
        conf.write_text(
            f"agentAddress udp:{self.host}:{self.port}\n"
            f"rocommunity {self.community} 127.0.0.0/8\n"
            f"createUser {self.user} SHA-256 {self.auth_key} AES {self.priv_key}\n"
            f"rouser {self.user} priv\n"
            "sysLocation govnet-test\nsysContact govnet\n"
            f"{self.extra}\n",
            encoding="utf-8",
        )
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(d / "persist"), "MIBS": ""}
        self._proc = subprocess.Popen(
            [
                exe,
                "-f",
                "-C",
                "-c",
                str(conf),
                "-Lf",
                str(d / "snmpd.log"),
                "-p",
                str(d / "snmpd.pid"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        # A v2c GET of sysUpTime.0, hand-encoded, so readiness does not depend on the code under test.
        comm = self.community.encode()
        oid = bytes([0x06, 0x08, 0x2B, 6, 1, 2, 1, 1, 3, 0])
        vb = bytes([0x30, len(oid) + 2]) + oid + b"\x05\x00"
        vbl = bytes([0x30, len(vb)]) + vb
        pdu_body = b"\x02\x01\x01\x02\x01\x00\x02\x01\x00" + vbl
        pdu = bytes([0xA0, len(pdu_body)]) + pdu_body
        msg_body = b"\x02\x01\x01" + bytes([0x04, len(comm)]) + comm + pdu
        msg = bytes([0x30, len(msg_body)]) + msg_body
        end = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            while time.monotonic() < end:
                if self._proc is not None and self._proc.poll() is not None:
                    raise RuntimeError(f"snmpd exited: {self.log()[-2000:]}")
                s.sendto(msg, (self.host, self.port))
                try:
                    s.recvfrom(4096)
                    return
                except OSError:
                    continue
        raise RuntimeError(f"snmpd did not answer: {self.log()[-2000:]}")

    def log(self) -> str:
        """The agent's log so far."""
        if self._dir is None:
            return ""
        p = Path(self._dir.name) / "snmpd.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self) -> None:
        """Stop the agent (by its own PID) and remove its directory."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> NetSnmpd:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
