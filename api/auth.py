"""Users, passwords (scrypt), API tokens and sessions (SHA-256 of 256-bit secrets) with expiry, in SQLite."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from api.policy import Role

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MIN_PASSWORD = 12
# scrypt cost: n=2^15, r=8 -> 32 MiB and ~50-100 ms per check here; RFC 7914 interactive-login range.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SESSION_SECONDS = 8 * 3600.0
SESSION_IDLE_SECONDS = 30 * 60.0  # a console/API session unused this long is no longer accepted
TOUCH_EVERY = 30.0  # seconds between writes of a session's last use (one write per request is too many)
MIN_DISTINCT = 6  # distinct characters a password needs ("aaaaaaaaaaaa" has one)
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
MIGRATIONS = ("ALTER TABLE tokens ADD COLUMN last_used REAL",)


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


def _runs(password: str) -> bool:
    """True if the password is one ascending or descending run ("123456789012", "abcdefghijkl")."""
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(password)}
    return steps in ({1}, {-1})


def check_password_strength(password: str, user: str = "") -> None:
    """Refuse short, repetitive and sequential passwords and ones containing the user name.

    No defaults exist: every password is chosen when the user is created.
    """
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"password must have at least {MIN_PASSWORD} characters")
    if len(set(password.lower())) < MIN_DISTINCT or _runs(password.lower()):
        raise AuthError(f"password too weak: use at least {MIN_DISTINCT} different characters, not a run")
    if user and len(user) >= 4 and user.lower() in password.lower():
        raise AuthError("password too weak: it contains the user name")


class AuthDB:
    """Users and tokens; every write is committed before returning; safe to share between threads."""

    def __init__(
        self, path: Path, clock: Callable[[], float] = time.time, idle_seconds: float = SESSION_IDLE_SECONDS
    ) -> None:
        self.idle_seconds = idle_seconds  # sessions (console and API login) unused this long end
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(tokens)")}
        if "last_used" not in columns:
            for statement in MIGRATIONS:
                self.conn.execute(statement)
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
        check_password_strength(password, name)
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
                "INSERT INTO tokens (id, user, kind, hash, label, created, expires, last_used) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (token_id, user, kind, _token_hash(secret), label[:100], now, now + ttl, now),
            )
        return token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def authenticate(self, token: str, kind: str) -> Principal | None:
        """The principal for a token of this kind, if it is well-formed, known, unexpired and unrevoked."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not re.fullmatch(r"[0-9a-f]{16}", parts[1]):
            return None
        with self.lock:
            row = self.conn.execute(
                "SELECT t.user, u.role, t.hash, t.expires, t.revoked, u.disabled, t.last_used, t.label "
                "FROM tokens t JOIN users u ON u.name = t.user WHERE t.id = ? AND t.kind = ?",
                (parts[1], kind),
            ).fetchone()
        if row is None:
            _token_hash(parts[2])
            return None
        user, role, want, expires, revoked, disabled, last_used, label = row
        if not hmac.compare_digest(_token_hash(parts[2]), want):
            return None
        now = self.clock()
        if revoked or disabled or now >= expires:
            return None
        if kind == "session" or label == "login":
            # Sessions (console cookie, API login) end after `idle_seconds` unused; tokens an
            # administrator made for a script are not sessions and only expire.
            if last_used is not None and now - last_used > self.idle_seconds:
                return None
            if last_used is None or now - last_used > min(TOUCH_EVERY, self.idle_seconds / 4):
                with self.lock:
                    self.conn.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (now, parts[1]))
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


@dataclass
class _Pair:
    failures: int = 0
    next_allowed: float = 0.0  # no attempt from this client for this user before this time
    last: float = 0.0  # last failure
    throttled: int = 0  # refused attempts not yet written to the audit trail
    audited: float = float("-inf")  # when the last rate_limited record was written


class LoginLimiter:
    """Failed logins per (user name, client) with growing delays, plus a cap per client across names.

    No global per-user lockout: a stranger failing with a user's name delays only their own address,
    and the user still logs in from theirs. The first `per_user` failures of a pair are free; each
    further failure doubles the wait (1 s, 2 s, 4 s ... up to `max_delay`). Memory is bounded: at
    most `max_keys` pairs and clients (least recently seen forgotten first). The client address is
    the TCP peer: X-Forwarded-For is never read, so a header cannot reset it.
    """

    def __init__(
        self,
        per_user: int = 5,
        per_client: int = 20,
        window: float = 300.0,
        max_delay: float = 300.0,
        max_keys: int = 10_000,
        audit_every: float = 60.0,
    ) -> None:
        self.per_user, self.per_client, self.window = per_user, per_client, window
        self.max_delay, self.max_keys, self.audit_every = max_delay, max_keys, audit_every
        self._pairs: OrderedDict[tuple[str, str], _Pair] = OrderedDict()
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pairs) + len(self._clients)

    def _client(self, client: str, now: float) -> deque[float]:
        q = self._clients.get(client)
        if q is None:
            q = self._clients[client] = deque()
            while len(self._clients) > self.max_keys:
                self._clients.popitem(last=False)
        self._clients.move_to_end(client)
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked(self, user: str, client: str, now: float) -> float:
        """Seconds this client must wait before trying this user name again (0.0: it may try now)."""
        with self._lock:
            pair = self._pairs.get((user, client))
            wait = max(0.0, pair.next_allowed - now) if pair is not None else 0.0
            q = self._clients.get(client)
            if q is not None:
                while q and q[0] <= now - self.window:
                    q.popleft()
                if len(q) >= self.per_client:
                    wait = max(wait, q[0] + self.window - now)
            return wait

    def failed(self, user: str, client: str, now: float) -> None:
        """Count a failed attempt of this client for this user name."""
        with self._lock:
            key = (user, client)
            pair = self._pairs.get(key)
            if pair is None or now >= max(pair.last, pair.next_allowed) + self.window:  # quiet for a window
                pair = self._pairs[key] = _Pair()
                while len(self._pairs) > self.max_keys:
                    self._pairs.popitem(last=False)
            self._pairs.move_to_end(key)
            pair.failures += 1
            pair.last = now
            over = pair.failures - self.per_user + 1  # the per_user-th failure starts the delays
            if over > 0:
                pair.next_allowed = now + min(self.max_delay, 2.0 ** (over - 1))
            self._client(client, now).append(now)

    def throttled(self, user: str, client: str, now: float) -> int | None:
        """Note a refused attempt; the count to write in ONE audit record when one is due, else None.

        At most one `rate_limited` record per pair every `audit_every` seconds, however fast the
        attempts come: the trail records the attack without the attacker filling the store.
        """
        with self._lock:
            pair = self._pairs.get((user, client))
            if pair is None:  # refused by the per-client cap: aggregate under the client
                pair = self._pairs.setdefault(("", client), _Pair())
                while len(self._pairs) > self.max_keys:
                    self._pairs.popitem(last=False)
            pair.throttled += 1
            if now - pair.audited < self.audit_every:
                return None
            count, pair.throttled, pair.audited = pair.throttled, 0, now
            return count

    def succeeded(self, user: str, client: str) -> None:
        """A successful login clears this pair's failures only (never other clients' counters)."""
        with self._lock:
            self._pairs.pop((user, client), None)
