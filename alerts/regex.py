"""Linear-time regular expressions (RE2, the engine Prometheus and Alertmanager matchers use).

Silence, maintenance and rule matchers are written by users; Python's backtracking `re` can take
exponential time on a short pattern, so these go through RE2, whose matching time is linear in the
input. Patterns RE2 cannot run in linear time (back-references, look-around) are refused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN = 1000  # characters; matcher values are bounded in the API too
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the caller's error, not a line on stderr
_OPTIONS.max_mem = 8 << 20  # bytes of compiled program per pattern (RE2's default)


class RegexError(ValueError):
    """A pattern that is not valid RE2 syntax (or is too long)."""


@lru_cache(maxsize=4096)
def compile_linear(pattern: str) -> Any:
    """The compiled RE2 pattern; RegexError when RE2 refuses it."""
    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"pattern longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        why = exc.args[0] if exc.args else ""
        why = why.decode(errors="replace") if isinstance(why, bytes) else str(why)
        raise RegexError(f"not a linear-time (RE2) pattern: {why}") from None


def full_match(pattern: str, text: str) -> bool:
    """True if `pattern` matches all of `text` (anchored like Prometheus label matchers)."""
    return compile_linear(pattern).fullmatch(text) is not None
