"""Real components for the DB, backup and SSH-service tests: a PostgreSQL 15 pair and an OpenSSH sshd.

Not a test module (no tests inside); the others import its fixtures. Loopback range 127.31.0.0/16.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port as free_port  # re-exported for this harness's users
from tests.support.procs import stop
from tests.support.require import require, require_cmd, require_root

PG_ADDR = ("127.31.0.2", "127.31.0.3")
SSH_ADDR = "127.31.0.1"


def pg_bin() -> Path | None:
    """The newest PostgreSQL server bin directory of the Debian packages."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def require_postgres() -> Path:
    """PostgreSQL server binaries and a `postgres` system user (we are root: initdb must not be)."""
    require_root()
    require_cmd("runuser", "psql")
    bindir = pg_bin()
    require(bindir is not None, "PostgreSQL server (apt install postgresql-15)")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        require(False, "system user postgres (created by the postgresql package)")
    assert bindir is not None
    return bindir


def as_postgres(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command as the unprivileged postgres user."""
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *argv],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


@dataclass
class PgNode:
    """One PostgreSQL server in a private data directory on a loopback address."""

    bindir: Path
    datadir: Path
    sockdir: Path
    address: str
    port: int

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        opts = f"-p {self.port} -c listen_addresses={self.address} -c unix_socket_directories={self.sockdir}"
        as_postgres(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.datadir.parent / f"{self.datadir.name}.log"),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop (no error when already stopped)."""
        as_postgres(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False
        )

    def promote(self) -> None:
        """Promote a standby (waits until it is a primary)."""
        as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "promote")

    def sql(self, query: str) -> str:
        """Run SQL as the superuser over the unix socket; stdout (-At)."""
        out = as_postgres(
            "psql",
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.sockdir),
            "-p",
            str(self.port),
            "-d",
            "postgres",
            "-c",
            query,
        )
        return out.stdout.strip()


@dataclass
class PgPair:
    """A primary and its streaming hot standby (replication slot `standby1`)."""

    primary: PgNode
    standby: PgNode
    base: Path
    monitor_password: str

    def wait_caught_up(self, timeout: float = 20.0) -> None:
        """Wait until the standby replayed everything the primary wrote."""
        target = self.primary.sql("SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.standby.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t":
                return
            time.sleep(0.1)
        raise AssertionError("standby did not catch up")


_CONF = """
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
fsync = off
synchronous_commit = off
full_page_writes = on
shared_buffers = 16MB
max_connections = 30
logging_collector = off
wal_receiver_status_interval = 1s
"""

_HBA = """
local all all trust
host replication postgres 127.0.0.0/8 trust
host all postgres 127.0.0.0/8 trust
host all all 127.0.0.0/8 scram-sha-256
"""


def make_pg_pair(with_standby: bool = True) -> Iterator[PgPair]:
    """Build, start and finally remove a PostgreSQL pair (generator for fixtures); or a primary alone."""
    bindir = require_postgres()
    base = Path(tempfile.mkdtemp(prefix="govnet-pg-", dir="/tmp"))
    os.chmod(base, 0o755)
    shutil.chown(base, "postgres", "postgres")
    sock = base / "sock"
    sock.mkdir()
    shutil.chown(sock, "postgres", "postgres")
    primary = PgNode(bindir, base / "a", sock, PG_ADDR[0], free_port(PG_ADDR[0]))
    standby = PgNode(bindir, base / "b", sock, PG_ADDR[1], free_port(PG_ADDR[1]))
    password = "mon-" + os.urandom(6).hex()
    try:
        as_postgres(
            str(bindir / "initdb"),
            "-D",
            str(primary.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        with open(primary.datadir / "postgresql.conf", "a") as f:
            f.write(_CONF)
        (primary.datadir / "pg_hba.conf").write_text(_HBA)
        primary.start()
        primary.sql(f"CREATE ROLE govnet_monitor LOGIN PASSWORD '{password}' IN ROLE pg_monitor")
        primary.sql("CREATE TABLE t (id serial primary key, v text)")
        pair = PgPair(primary, standby, base, password)
        if not with_standby:
            yield pair
            return
        as_postgres(
            str(bindir / "pg_basebackup"),
            "-h",
            primary.address,
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(standby.datadir),
            "-R",
            "-X",
            "stream",
            "-C",
            "-S",
            "standby1",
            "--no-sync",
        )
        standby.start()
        pair.wait_caught_up()
        yield pair
    finally:
        standby.stop("immediate")
        primary.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_pair() -> Iterator[PgPair]:
    """A fresh PostgreSQL primary + hot standby (about 3 s)."""
    yield from make_pg_pair()


@dataclass
class Sshd:
    """A real OpenSSH server on a loopback address, root login with one key only."""

    address: str
    port: int
    client_key: Path  # private key file (for `key_file: file:...`)
    dir: Path


def make_sshd(extra: tuple[str, ...] = ()) -> Iterator[Sshd]:
    """Start and finally stop an sshd (generator for fixtures)."""
    require_root()
    require_cmd("sshd", "ssh-keygen")
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    d = Path(tempfile.mkdtemp(prefix="govnet-sshd-", dir="/tmp"))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    for name in ("host_ed25519", "client_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_ed25519.pub").read_text())
    port = free_port(SSH_ADDR)
    conf = d / "sshd_config"
    conf.write_text(
        f"Port {port}\n"
        + "".join(f"ListenAddress {a}\n" for a in (SSH_ADDR, *extra))
        + f"HostKey {d / 'host_ed25519'}\nPidFile {d / 'sshd.pid'}\n"
        f"UsePAM no\nPermitRootLogin prohibit-password\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 50\nMaxSessions 20\n"
    )
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(conf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((SSH_ADDR, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("sshd did not start") from None
                time.sleep(0.05)
        yield Sshd(SSH_ADDR, port, d / "client_ed25519", d)
    finally:
        stop(proc, 5)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    """One sshd for a test module, also listening on the PostgreSQL addresses (the DB hosts)."""
    yield from make_sshd(PG_ADDR)
