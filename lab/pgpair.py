"""A PostgreSQL primary and hot standby on two lab addresses: the data centre's 双机热备 pair for the demo."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian layout), if any."""
    for version in ("17", "16", "15", "14", "13"):
        d = Path(f"/usr/lib/postgresql/{version}/bin")
        if (d / "initdb").exists() and (d / "pg_basebackup").exists():
            return d
    return None


class PgPair:
    """A PostgreSQL primary and hot standby on the database servers' lab addresses (the 双机热备 pair)."""

    def __init__(self, bindir: Path, primary: tuple[str, int], standby: tuple[str, int]) -> None:
        self.bin, self.primary, self.standby = bindir, primary, standby
        # Under /tmp, world-traversable: the postgres user cannot enter a root-only checkout or test dir.
        self.root = Path(tempfile.mkdtemp(prefix="govnet-demo-pg-", dir="/tmp"))
        self.started: list[Path] = []
        self.password = ""

    def _run(self, *cmd: str, input_: str | None = None) -> None:
        user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*user, *cmd], check=True, capture_output=True, timeout=120, input=input_, text=True)

    def start(self) -> None:
        """initdb, start the primary, base-backup the standby with a slot, start it; a monitor role."""
        os.chmod(self.root, 0o755)  # noqa: S103 (the postgres user must enter it; nothing secret inside)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        p, s = self.root / "primary", self.root / "standby"
        self._run(str(self.bin / "initdb"), "-D", str(p), "-A", "trust", "-U", "postgres", "--no-sync")
        with (p / "postgresql.conf").open("a") as f:
            f.write(
                f"listen_addresses = '{self.primary[0]}'\nport = {self.primary[1]}\n"
                f"unix_socket_directories = '{self.root}'\nwal_level = replica\nfsync = off\n"
            )
        with (p / "pg_hba.conf").open("a") as f:
            f.write(
                f"host replication postgres {self.standby[0]}/32 trust\n"
                f"host replication postgres {self.primary[0]}/32 trust\n"
                "host all govnet_monitor 127.0.0.0/8 scram-sha-256\n"
            )
        self._pg_ctl(p, self.primary[1])
        self.password = secrets.token_urlsafe(18)
        self._run(
            str(self.bin / "psql"),
            "-h",
            str(self.root),
            "-p",
            str(self.primary[1]),
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-f",
            "-",
            input_=f"SET password_encryption = 'scram-sha-256';\n"
            f"CREATE ROLE govnet_monitor LOGIN IN ROLE pg_monitor PASSWORD '{self.password}';\n",
        )
        self._run(
            str(self.bin / "pg_basebackup"),
            "-h",
            self.primary[0],
            "-p",
            str(self.primary[1]),
            "-U",
            "postgres",
            "-D",
            str(s),
            "-R",
            "-X",
            "stream",
            "-C",
            "-S",
            "govnet_demo",
        )
        with (s / "postgresql.conf").open("a") as f:
            f.write(f"listen_addresses = '{self.standby[0]}'\nport = {self.standby[1]}\nhot_standby = on\n")
        self._pg_ctl(s, self.standby[1])

    def _pg_ctl(self, data: Path, port: int) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port}",
            "start",
        )
        self.started.append(data)

    def stop(self) -> None:
        """Fast shutdown of both (standby first)."""
        for data in reversed(self.started):
            with contextlib.suppress(Exception):
                self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop")
        self.started.clear()
        shutil.rmtree(self.root, ignore_errors=True)
