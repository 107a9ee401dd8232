"""Turn a fetched configuration into a stable, secret-free text: drop volatile lines, mask secrets."""

from __future__ import annotations

import hashlib
import hmac
import re

from collectors.ssh.platform import MAX_LINE, Platform

MASK_PREFIX = "<secret:"


class Masker:
    """Replaces secrets by a keyed fingerprint, so a changed secret shows in a diff without revealing it.

    A plain hash of a short SNMP community could be brute-forced; an HMAC with a per-deployment key
    that lives outside the git repository cannot.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("mask key too short")
        self._key = key

    def mask(self, secret: str) -> str:
        """`<secret:xxxxxxxx>` for a secret value (already masked values are kept)."""
        if secret.startswith(MASK_PREFIX):
            return secret
        digest = hmac.new(self._key, secret.encode("utf-8", "replace"), hashlib.sha256).hexdigest()
        return f"{MASK_PREFIX}{digest[:10]}>"

    def line(self, text: str, patterns: tuple[re.Pattern[str], ...]) -> str:
        """One line with every `secret` group of every pattern masked."""
        for pattern in patterns:

            def repl(m: re.Match[str]) -> str:
                start, end = m.span("secret")
                if start < 0:
                    return m.group(0)
                base = m.start()
                whole = m.group(0)
                return whole[: start - base] + self.mask(m.group("secret")) + whole[end - base :]

            text = pattern.sub(repl, text)
        return text


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _is_prompt_echo(line: str, platform: Platform, command: str | None) -> bool:
    if platform.prompt is None or not (m := platform.prompt.match(line)):
        return False
    rest = line[m.end() :].strip()
    return not rest or (command is not None and rest == command)


def strip_prompts(lines: list[str], platform: Platform, command: str | None) -> list[str]:
    """Drop blank lines and prompt lines (bare or with the echoed command) at both ends of an output."""
    start, end = 0, len(lines)
    while start < end and (not lines[start].strip() or _is_prompt_echo(lines[start], platform, command)):
        start += 1
    while end > start and (not lines[end - 1].strip() or _is_prompt_echo(lines[end - 1], platform, command)):
        end -= 1
    return lines[start:end]


def normalize_config(raw: str, platform: Platform, masker: Masker, command: str | None = None) -> str:
    """The configuration as stored: LF line ends, no trailing blanks, no volatile lines, secrets masked."""
    out: list[str] = []
    lines = [
        _CONTROL.sub("?", ln[:MAX_LINE]).rstrip()
        for ln in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ]
    for line in strip_prompts(lines, platform, command or platform.command("config")):
        if any(p.search(line) for p in platform.volatile):
            continue
        out.append(masker.line(line, platform.secrets))
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out) + "\n" if out else ""
