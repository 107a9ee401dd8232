"""Sandboxed Jinja2 rendering of rule summaries and notification text; device text is escaped data."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES = Path(__file__).parent / "templates"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
# Characters that make markup in the Markdown of WeCom/DingTalk robots or in HTML mail (tags, links,
# code, emphasis). `_` stays: it is common in device names and harmless without `*`.
_SPECIAL = str.maketrans({"<": "＜", ">": "＞", "&": "＆", "`": "'", "*": "＊", "[": "［", "]": "］"})
MAX_VALUE = 200


def escape_text(value: object) -> str:
    """Make untrusted text (device names, sysDescr, interface aliases) inert in chat, mail and terminals."""
    text = _CONTROL.sub(" ", str(value)).translate(_SPECIAL)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _finalize(value: Any) -> Any:
    # Every {{ expression }} result passes here: strings are escaped; numbers stay numbers.
    if isinstance(value, bool | int | float) or value is None:
        return "" if value is None else value
    return escape_text(value)


@cache
def _env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        finalize=_finalize,
        autoescape=False,  # escaping is done by _finalize for chat and mail alike
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["humanize"] = humanize
    return env


def humanize(value: float) -> str:
    """A short number: 0.934 -> '0.934', 1234567 -> '1.23M'."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def template_problem(source: str) -> str | None:
    """None if `source` compiles as a sandboxed template, else the parser's message."""
    try:
        _env().from_string(source)
    except TemplateError as exc:
        return f"template error: {exc.message}"
    return None


def render_string(source: str, **context: Any) -> str:
    """Render a rule's summary/description; label values are data, never re-parsed as templates."""
    try:
        return _env().from_string(source).render(**context)
    except TemplateError as exc:
        return f"<模板错误: {escape_text(exc.message or type(exc).__name__)}>"


def render_file(name: str, **context: Any) -> str:
    """Render a notification template from alerts/templates/."""
    return _env().get_template(name).render(**context)
