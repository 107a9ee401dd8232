"""Command bodies for `govnet user add` and `govnet token add` (the lead wires them into govnet/cli.py).

There is no default password: the first admin is created here, with a password typed twice or given
by reference (`env:NAME` / `file:PATH`), never on the command line.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from api.audit import SqliteAudit
from api.auth import AuthDB, AuthError
from core.secrets import Secret, SecretError


def _audit(state_dir: Path, action: str, target: str, outcome: str, detail: str) -> None:
    SqliteAudit(state_dir / "audit.db").record(getpass.getuser(), action, target, outcome, "cli", detail)


def user_add_command(state_dir: Path, name: str, role: str, password_ref: str | None = None) -> int:
    """Create a user in STATE_DIR/users.db; 0 on success, 2 on bad input (message on stderr)."""
    try:
        if password_ref:
            password = Secret(password_ref).resolve().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {name}: ")
            if getpass.getpass("again: ") != password:
                raise AuthError("the passwords differ")
        state_dir.mkdir(parents=True, exist_ok=True)
        db = AuthDB(state_dir / "users.db")
        try:
            db.add_user(name, role, password)
        finally:
            db.close()
    except (AuthError, SecretError) as exc:
        print(f"user add: {exc}", file=sys.stderr)
        _audit(state_dir, "user_add", name, "failure", str(exc)) if state_dir.is_dir() else None
        return 2
    _audit(state_dir, "user_add", name, "success", f"role={role}")
    print(f"user {name} created with role {role}")
    return 0


def token_add_command(state_dir: Path, user: str, days: float, label: str = "") -> int:
    """Create an API token for USER valid DAYS days and print it once; 0 on success, 2 on bad input."""
    db = AuthDB(state_dir / "users.db")
    try:
        token_id, token = db.issue(user, "api", days * 86400.0, label)
    except AuthError as exc:
        print(f"token add: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    _audit(state_dir, "token_add", token_id, "success", f"user={user} days={days:g}")
    print(token)
    return 0
