"""Users, passwords (scrypt), API tokens and sessions (SHA-256 of 256-bit secrets) with expiry, in SQLite."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from api.policy import Role

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MIN_PASSWORD = 12
# scrypt cost: n=2^15, r=8 -> 32 MiB and ~50-100 ms per check here; RFC 7914 interactive-login range.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SESSION_SECONDS = 8 * 3600.0
TOKEN_PREFIX = "gvn"  # noqa: S105 - a label, not a secret

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, role TEXT NOT NULL, pw_hash TEXT NOT NULL, created REAL NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), kind TEXT NOT NULL,
  hash TEXT NOT NULL, label TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (user);
"""


class AuthError(ValueError):
    """Bad input to a user or token operation (message never contains a password or token)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: user, role, and the id of the token or session used."""

    user: str
    role: Role
    token_id: str
    kind: str  # "session" (console cookie) or "api" (Bearer token)


def hash_password(password: str) -> str:
    """scrypt hash in the form `scrypt$n$r$p$salt_hex$hash_hex`."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a stored scrypt hash."""
    try:
        alg, n, r, p, salt, want = stored.split("$")
        if alg != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=32,
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got.hex(), want)


# Checked when the user does not exist, so an unknown name costs as much time as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


def _token_hash(secret: str) -> str:
    # Tokens are 256-bit random values, not guessable passwords: one SHA-256 is enough, and cheap per request.
    return hashlib.sha256(secret.encode()).hexdigest()


def check_password_strength(password: str) -> None:
    """Refuse short passwords (no defaults exist: every password is chosen when the user is created)."""
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"password must have at least {MIN_PASSWORD} characters")


class AuthDB:
    """Users and tokens; every write is committed before returning; safe to share between threads."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        self.lock = threading.Lock()
        self.path.chmod(0o600)

    def close(self) -> None:
        """Close the database."""
        with self.lock:
            self.conn.close()

    # -- users ---------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str) -> None:
        """Create a user (refuses duplicates, bad names, unknown roles and short passwords)."""
        if not USERNAME.match(name):
            raise AuthError("user name: letters, digits, '_', '.', '-' (at most 64)")
        try:
            role_v = Role(role)
        except ValueError:
            raise AuthError(f"role must be one of {', '.join(r.value for r in Role)}") from None
        check_password_strength(password)
        pw = hash_password(password)
        with self.lock:
            try:
                self.conn.execute(
                    "INSERT INTO users (name, role, pw_hash, created) VALUES (?, ?, ?, ?)",
                    (name, role_v.value, pw, self.clock()),
                )
            except sqlite3.IntegrityError:
                raise AuthError(f"user {name} exists") from None

    def users(self) -> list[dict[str, object]]:
        """Every user (without hashes)."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT name, role, created, disabled FROM users ORDER BY name"
            ).fetchall()
        return [{"name": n, "role": r, "created": c, "disabled": bool(d)} for n, r, c, d in rows]

    def count_users(self) -> int:
        """How many users exist."""
        with self.lock:
            return int(self.conn.execute("SELECT count(*) FROM users").fetchone()[0])

    def disable_user(self, name: str) -> bool:
        """Disable a user and revoke every token and session of theirs; False if no such user."""
        with self.lock:
            cur = self.conn.execute("UPDATE users SET disabled = 1 WHERE name = ?", (name,))
            self.conn.execute("UPDATE tokens SET revoked = 1 WHERE user = ?", (name,))
        return cur.rowcount > 0

    def verify_login(self, name: str, password: str) -> Role | None:
        """The user's role when the password is right and the user enabled, else None."""
        with self.lock:
            row = self.conn.execute(
                "SELECT role, pw_hash, disabled FROM users WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            check_password(password, _DUMMY_HASH)
            return None
        ok = check_password(password, row[1])
        return Role(row[0]) if ok and not row[2] else None

    # -- tokens and sessions -------------------------------------------------------------------

    def issue(self, user: str, kind: str, ttl: float, label: str = "") -> tuple[str, str]:
        """A new token for `user`: returns (token id, the token text shown once)."""
        if ttl <= 0:
            raise AuthError("expiry must be in the future")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        with self.lock:
            if self.conn.execute("SELECT 1 FROM users WHERE name = ?", (user,)).fetchone() is None:
                raise AuthError(f"no user {user}")
            self.conn.execute(
                "INSERT INTO tokens (id, user, kind, hash, label, created, expires) VALUES (?,?,?,?,?,?,?)",
                (token_id, user, kind, _token_hash(secret), label[:100], now, now + ttl),
            )
        return token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def authenticate(self, token: str, kind: str) -> Principal | None:
        """The principal for a token of this kind, if it is well-formed, known, unexpired and unrevoked."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not re.fullmatch(r"[0-9a-f]{16}", parts[1]):
            return None
        with self.lock:
            row = self.conn.execute(
                "SELECT t.user, u.role, t.hash, t.expires, t.revoked, u.disabled FROM tokens t "
                "JOIN users u ON u.name = t.user WHERE t.id = ? AND t.kind = ?",
                (parts[1], kind),
            ).fetchone()
        if row is None:
            _token_hash(parts[2])
            return None
        user, role, want, expires, revoked, disabled = row
        if not hmac.compare_digest(_token_hash(parts[2]), want):
            return None
        if revoked or disabled or self.clock() >= expires:
            return None
        return Principal(user, Role(role), parts[1], kind)

    def revoke(self, token_id: str) -> bool:
        """Revoke a token or session; False if unknown."""
        with self.lock:
            cur = self.conn.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,))
        return cur.rowcount > 0

    def tokens(self) -> list[dict[str, object]]:
        """API tokens (not sessions), without their hashes."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT id, user, label, created, expires, revoked FROM tokens "
                "WHERE kind = 'api' ORDER BY created"
            ).fetchall()
        return [
            {"id": i, "user": u, "label": lab, "created": c, "expires": e, "revoked": bool(r)}
            for i, u, lab, c, e, r in rows
        ]


class LoginLimiter:
    """Failed logins per user name and per client address in a sliding window (time passed in).

    The client address is the TCP peer: X-Forwarded-For is never read, so a header cannot reset it.
    """

    def __init__(self, per_user: int = 5, per_client: int = 20, window: float = 300.0) -> None:
        self.per_user, self.per_client, self.window = per_user, per_client, window
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked(self, user: str, client: str, now: float) -> bool:
        """True when this user name or this client failed too often recently."""
        with self._lock:
            return (
                len(self._recent("u:" + user, now)) >= self.per_user
                or len(self._recent("c:" + client, now)) >= self.per_client
            )

    def failed(self, user: str, client: str, now: float) -> None:
        """Count a failed attempt."""
        with self._lock:
            self._recent("u:" + user, now).append(now)
            self._recent("c:" + client, now).append(now)
            if len(self._fails) > 100_000:  # bounded memory under a spray of random names
                self._fails.clear()

    def succeeded(self, user: str) -> None:
        """A successful login clears the user's failures (not the client's)."""
        with self._lock:
            self._fails.pop("u:" + user, None)
