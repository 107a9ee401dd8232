"""Inventory problems: where (file, line, path), what was found, and what is expected."""

from __future__ import annotations

import re
from dataclasses import dataclass

SECRET_HIDDEN = "<literal secret hidden>"  # noqa: S105 - the placeholder, not a secret

# Control characters (incl. ESC, DEL, C1) and bidi overrides are escaped so user text cannot
# repaint a terminal or disguise itself when printed.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def safe_text(text: str, limit: int = 200) -> str:
    """User text made printable: control characters escaped, long values cut."""
    out = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an inventory; never carries a secret value."""

    file: str
    line: int  # 1-based; 0 when the problem concerns the whole file
    path: str  # where in the document, e.g. `devices[3].snmp.auth_key`
    value: str | None  # what was found, already made safe (secrets hidden); None if not shown
    message: str  # what is wrong and what is expected

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f"{self.path}: {self.message}" if self.path else self.message
        got = f" (got '{self.value}')" if self.value is not None else ""
        return safe_text(f"{where}: {what}{got}", limit=2000)


class InventoryError(Exception):
    """An inventory is invalid; `.problems` lists every problem found, in file and line order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        n = len(problems)
        lines = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {n - 20} more" if n > 20 else ""
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in inventory:\n{lines}{more}")
