"""How govnet reaches a database node: psql over SSH on the DB host, or a read-only SQL connection."""

from __future__ import annotations

import shlex
from typing import Literal, Protocol

from pydantic import Field

from collectors.db.status import STATUS_SQL, NodeStatus, StatusError, parse_status
from collectors.ssh.client import SshError, Target
from collectors.ssh.exec import SshExec
from core.config import Duration, SecretRef, Section
from core.secrets import SecretError

# conninfo values are written unquoted, so they are restricted to characters that need no quoting.
_WORD = r"^[A-Za-z0-9_./\-]+$"


class DbAccess(Section):
    """Per-node access settings (section `ssh.db.access`); `ssh` runs psql on the host, `sql` connects."""

    transport: Literal["ssh", "sql"] = "ssh"
    host: str | None = Field(None, pattern=_WORD)  # ssh: socket dir or address seen from the DB host
    port: int = Field(5432, ge=1, le=65535)
    dbname: str = Field("postgres", pattern=_WORD)
    user: str = Field("govnet_monitor", pattern=_WORD)
    password: SecretRef | None = None  # sql only; over ssh the host's own auth (.pgpass, peer) applies
    psql: str = Field("psql", pattern=_WORD)
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    timeout: Duration = 10.0


class DbError(Exception):
    """A node could not be read; `kind` says how. The message never carries secrets."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class NodeReader(Protocol):
    """Reads one node's status."""

    async def read(self) -> NodeStatus:
        """The node's status now (DbError when unreachable or unreadable)."""
        ...


def conninfo(access: DbAccess, address: str | None) -> str:
    """A libpq conninfo string without the password; every session forced read-only."""
    parts = [f"dbname={access.dbname}", f"user={access.user}", f"port={access.port}",
             f"connect_timeout={max(1, int(access.timeout))}", "application_name=govnet"]  # fmt: skip
    host = access.host or address
    if host:
        parts.insert(0, f"host={host}")
    return " ".join(parts)


class PsqlOverSsh:
    """Runs psql on the DB host over SSH exec; SQL goes on stdin, so nothing needs shell quoting but argv."""

    def __init__(self, ssh: SshExec, target: Target, access: DbAccess) -> None:
        self.ssh, self.target, self.access = ssh, target, access

    def command(self) -> str:
        """The remote command line (no secret in it: the host's own auth applies)."""
        info = conninfo(self.access, None) + " options='-c default_transaction_read_only=on'"
        argv = [self.access.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", info, "-f", "-"]
        return " ".join(shlex.quote(a) for a in argv)

    async def read(self) -> NodeStatus:
        """Status via `psql -At` on the host."""
        try:
            text = await self.ssh.run(self.target, self.command(), stdin=STATUS_SQL + ";\n",
                                      timeout_s=self.access.timeout)  # fmt: skip
            return parse_status(text)
        except SshError as exc:
            raise DbError(exc.kind, str(exc)) from None
        except StatusError as exc:
            raise DbError("error", str(exc)) from None


class SqlReader:
    """A read-only psycopg connection per read (monitoring rate is low; no idle sessions held)."""

    def __init__(self, address: str, access: DbAccess) -> None:
        self.address, self.access = address, access

    async def read(self) -> NodeStatus:
        """Status via psycopg 3 (async), session read-only."""
        import psycopg

        try:
            password = self.access.password.resolve() if self.access.password else None
        except SecretError as exc:
            raise DbError("credentials", str(exc)) from None
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo(self.access, self.address),
                password=password,
                sslmode=self.access.sslmode,
                options="-c default_transaction_read_only=on",
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            # libpq's text can echo connection parameters; keep only the kind of failure.
            low = str(exc).lower()
            kind = "auth" if "password" in low or "authentication" in low else "refused"
            if "timeout" in low:
                kind = "timeout"
            raise DbError(kind, f"cannot connect ({kind})") from None
        try:
            async with conn.cursor() as cur:
                await cur.execute(STATUS_SQL)
                row = await cur.fetchone()
            if row is None:
                raise DbError("error", "empty status")
            return parse_status(str(row[0]))
        except psycopg.Error as exc:
            raise DbError("error", f"status query failed ({type(exc).__name__})") from None
        except StatusError as exc:
            raise DbError("error", str(exc)) from None
        finally:
            await conn.close()
