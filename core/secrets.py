"""Secrets are references (`env:NAME`, `file:PATH`), resolved late and never printed."""

from __future__ import annotations

import os
import re
from pathlib import Path

_REF = re.compile(r"^(env|file):(.+)$")


class SecretError(ValueError):
    """A secret reference is malformed or cannot be resolved."""


class Secret:
    """A reference to a secret; `str()` and `repr()` never show the value."""

    __slots__ = ("_base", "ref")

    def __init__(self, ref: str, base: Path | None = None) -> None:
        if not isinstance(ref, str) or not _REF.match(ref):
            raise SecretError("a secret must be a reference 'env:NAME' or 'file:PATH', not a literal value")
        self.ref = ref
        self._base = base

    @property
    def scheme(self) -> str:
        """`env` or `file`."""
        return self.ref.split(":", 1)[0]

    @property
    def target(self) -> str:
        """The variable name or file path referred to (not secret itself)."""
        return self.ref.split(":", 1)[1]

    def resolve(self) -> str:
        """Read the secret value now; raises SecretError naming the reference, not the value."""
        if self.scheme == "env":
            value = os.environ.get(self.target)
            if value is None:
                raise SecretError(f"environment variable {self.target} is not set")
            return value
        path = Path(self.target)
        if not path.is_absolute() and self._base is not None:
            path = self._base / path
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None

    def __repr__(self) -> str:
        return f"Secret({self.ref!r})"

    def __str__(self) -> str:
        return self.ref

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(self.ref)
