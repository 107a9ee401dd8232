"""The vendor CLI without I/O: a line editor for raw terminal input and an interpreter for command lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.ssh.profiles import Command, VendorProfile

_TOKENS = re.compile(r"\S+")
EventKind = Literal["echo", "line", "interrupt"]


@dataclass
class LineEditor:
    """Raw terminal bytes -> echo text, complete lines and interrupts (Ctrl-C/Ctrl-Z), like a VTY."""

    max_line: int
    _buf: list[str] = field(default_factory=list)
    _after_cr: bool = False
    _escape: int = 0  # 0 none, 1 after ESC, 2 inside a CSI/SS3 sequence

    def feed(self, text: str) -> list[tuple[EventKind, str]]:
        """Process typed characters; consecutive echo is merged into one event."""
        events: list[tuple[EventKind, str]] = []

        def echo(s: str) -> None:
            if events and events[-1][0] == "echo":
                events[-1] = ("echo", events[-1][1] + s)
            else:
                events.append(("echo", s))

        for ch in text:
            after_cr, self._after_cr = self._after_cr, False
            if self._escape:
                # Arrow keys and other escape sequences are swallowed, not echoed as garbage.
                if self._escape == 1:
                    self._escape = 2 if ch in "[O" else 0
                elif "@" <= ch <= "~":
                    self._escape = 0
                continue
            if ch == "\x1b":
                self._escape = 1
            elif ch == "\r" or (ch == "\n" and not after_cr):
                self._after_cr = ch == "\r"
                events.append(("line", "".join(self._buf)))
                self._buf.clear()
            elif ch == "\n":
                continue  # the LF of a CR LF pair
            elif ch in "\x7f\x08":
                if self._buf:
                    self._buf.pop()
                    echo("\b \b")
            elif ch == "\x15":  # Ctrl-U kills the line
                echo("\b \b" * len(self._buf))
                self._buf.clear()
            elif ch in "\x03\x1a":
                self._buf.clear()
                events.append(("interrupt", ""))
            elif ch < " ":
                continue  # tab completion, Ctrl-D and the rest are not offered
            elif len(self._buf) < self.max_line:
                self._buf.append(ch)
                echo(ch)
        return events


@dataclass(frozen=True)
class _Failure:
    kind: str  # unrecognized / incomplete / ambiguous
    col: int  # where the caret goes, counted from the start of the command line


@dataclass(frozen=True)
class Reply:
    """What the device prints for one command line (without the next prompt), and whether it hangs up."""

    text: str
    close: bool = False


class Interpreter:
    """Resolves abbreviated command lines against a vendor profile and renders their output."""

    def __init__(self, profile: VendorProfile, role: str, values: Callable[[], dict[str, Any]]) -> None:
        self._profile = profile
        self._commands = profile.commands_for(role)
        self._values = values  # fresh device values for each command

    def prompt(self, values: dict[str, Any] | None = None) -> str:
        """The prompt as it is now (it can change with the HA role)."""
        return self._profile.prompt.render(values or self._values())

    def banner(self) -> str:
        """Text printed once after login, before the first prompt."""
        return self._profile.banner.render(self._values())

    def execute(self, line: str) -> Reply:
        """Run one command line."""
        values = self._values()
        prompt_len = len(self.prompt(values))
        command_part, _, pipe_part = line.partition("|")
        tokens = [(m.group(), m.start()) for m in _TOKENS.finditer(command_part)]
        if not tokens:
            return Reply("")
        resolved = self._resolve(tokens)
        if isinstance(resolved, _Failure):
            return Reply(self._error(resolved.kind, prompt_len + resolved.col, values))
        command, args = resolved
        text = command.output.render({**values, "args": args})
        if "|" in line:
            filtered = self._filter(text, pipe_part)
            if filtered is None:
                col = len(command_part) + 1 + (len(pipe_part) - len(pipe_part.lstrip()))
                return Reply(self._error("unrecognized", prompt_len + col, values))
            text = filtered
        return Reply(text, close=command.exits)

    def _error(self, kind: str, col: int, values: dict[str, Any]) -> str:
        return self._profile.errors[kind].render({**values, "caret": " " * col + "^"})

    def _resolve(self, tokens: list[tuple[str, int]]) -> tuple[Command, list[str]] | _Failure:
        """Walk the command words like a CLI parse tree: unique prefixes of keywords are enough."""
        candidates = self._commands
        args: list[str] = []
        for i, (tok, col) in enumerate(tokens):
            low = tok.lower()
            keyword_hits = {
                c.words[i].text
                for c in candidates
                if len(c.words) > i and not c.words[i].is_param and c.words[i].text.startswith(low)
            }
            if low in keyword_hits:
                keyword_hits = {low}
            if len(keyword_hits) > 1:
                return _Failure("ambiguous", col)
            if keyword_hits:
                word = keyword_hits.pop()
                candidates = [c for c in candidates if len(c.words) > i and c.words[i].text == word]
                continue
            candidates = [c for c in candidates if len(c.words) > i and c.words[i].accepts(tok)]
            if not candidates:
                return _Failure("unrecognized", col)
            args.append(tok)
        complete = [c for c in candidates if len(c.words) == len(tokens)]
        if not complete:
            last, col = tokens[-1]
            return _Failure("incomplete", col + len(last) + 1)
        return complete[0], args

    def _filter(self, text: str, pipe: str) -> str | None:
        """`| include X`, `| exclude X`, `| begin X`: plain substring match (no regex: input is untrusted)."""
        keyword, _, needle = pipe.strip().partition(" ")
        needle = needle.strip()
        hits = [kind for kw, kind in self._profile.pipe_filters.items() if kw.startswith(keyword.lower())]
        if not keyword or not needle or len(set(hits)) != 1:
            return None
        lines = text.splitlines(keepends=True)
        if hits[0] == "include":
            lines = [ln for ln in lines if needle in ln]
        elif hits[0] == "exclude":
            lines = [ln for ln in lines if needle not in ln]
        else:
            start = next((i for i, ln in enumerate(lines) if needle in ln), len(lines))
            lines = lines[start:]
        return "".join(lines)
