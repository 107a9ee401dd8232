"""Vendor log formats as data: YAML files of linear-time (RE2) patterns and field maps.

A format is tried on the text after the syslog host (`body`, tag included). Its `extract` patterns and
`kv` pair patterns yield raw fields by group name; its first matching `rules` entry classifies the
event. Values are then normalised and validated here, for every vendor alike ("right or absent, never
wrong"): IP addresses must parse, ports are integers 0-65535 (an `ip:port` value is split), protocols
and actions map to one vocabulary, and an outcome exists only where a rule read it from explicit words.

Patterns are compiled with google-re2 (the engine Alertmanager's matchers use): matching time is linear
in the input for every pattern, so no line can make a parser backtrack. RE2 has no look-around and no
back-references; a format file that uses them fails to load. A `kv` entry may also declare its pair
shape as `scan` (KvScanner): the same pairs read by a compiled loop over the bytes, no regex engine at
all, tested against its RE2 `pattern` on every sample, example and a seeded fuzz.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import FunctionType
from typing import Any, Final

import re2
import yaml
from mypy_extensions import i64, mypyc_attr
from re2 import _Anchor

from collectors.syslog.format_spec import FORMATS_DIR, KeyValues, Rule
from collectors.syslog.format_spec import VendorFormat as VendorFormat  # parse_pool and tests import it here

_OPTS: Final = re2.Options()
_OPTS.max_mem = 8 << 20  # RE2's DFA memory per pattern; beyond it RE2 falls back to its (still linear) NFA
_OPTS.log_errors = False
_UNANCHORED: Final = _Anchor.UNANCHORED  # a bad pattern is reported as a ValueError naming it, not on stderr


def compile_re(pattern: str) -> Any:
    """Compile with RE2 (raises ValueError naming the pattern when RE2 rejects it)."""
    try:
        return re2.compile(pattern, _OPTS)
    except re2.error as exc:
        raise ValueError(f"pattern {pattern!r} is not RE2 syntax (linear time): {exc}") from None


class Pattern:
    """One RE2 pattern run on UTF-8 bytes through RE2's own matcher (the wrapper's per-call cost is most
    of the time on a 300-byte line); named groups come back decoded."""

    __slots__ = ("_re", "groups", "pattern")

    def __init__(self, pattern: str) -> None:
        compiled = compile_re(pattern)
        self.pattern = pattern
        self._re = compiled._regexp
        index = {(k.decode() if isinstance(k, bytes) else k): v for k, v in self._re.NamedCapturingGroups()}
        self.groups = [(name, index[name]) for name in sorted(index, key=index.__getitem__)]

    def spans(self, data: bytes, pos: int = 0) -> Any:
        """Group spans of the first match at or after `pos` (span 0 is (-1, -1) when none)."""
        return self._re.Match(_UNANCHORED, data, pos, len(data))

    def named(self, data: bytes) -> dict[str, str] | None:
        """Named groups of the first match (None when no match); unmatched groups are left out."""
        out: dict[str, Any] = {}
        return out if self.named_into(data, out, True) else None

    def named_into(
        self, data: bytes, out: dict[str, Any], replace: bool = False, text: str | None = None
    ) -> bool:
        """Put the named groups of the first match into `out` (keys already there are kept unless
        `replace`); False when there is no match. Only the groups written are cut and decoded.
        `text`: `data` decoded, when it is ASCII (`ascii_text`): groups are cut from it instead."""
        spans: list[tuple[int, int]] = self._re.Match(_UNANCHORED, data, 0, len(data))
        if spans[0][0] < 0:
            return False
        for name, i in self.groups:
            a, b = spans[i]
            if a >= 0 and (replace or name not in out):
                out[name] = text[a:b] if text is not None else data[a:b].decode("utf-8", "replace")
        return True

    def pair_spans(self, data: bytes) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
        """Spans of groups 1 and 2 of every non-overlapping match, left to right ((-1, -1) when a group
        did not take part): callers cut only the bytes they need."""
        pos, end, match, re_ = 0, len(data), _UNANCHORED, self._re
        while pos <= end:
            spans = re_.Match(match, data, pos, end)
            (a0, e0), key, value = spans[0], spans[1], spans[2]
            if a0 < 0:
                return
            pos = e0 if e0 > pos else pos + 1
            yield key, value

    def pairs(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """Groups 1 and 2 of every non-overlapping match, left to right."""
        return [
            (data[a1:e1] if a1 >= 0 else b"", data[a2:e2] if a2 >= 0 else b"")
            for (a1, e1), (a2, e2) in self.pair_spans(data)
        ]


def char_table(spec: str) -> bytes:
    """A 256-entry membership table (1 = in the class) of a regex-style class body of ASCII characters:
    single characters and `a-z` ranges (a `-` first or last is itself); ValueError for anything else."""
    if not spec.isascii():
        raise ValueError(f"character class {spec!r}: ASCII only")
    table = bytearray(256)
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            lo, hi = ord(spec[i]), ord(spec[i + 2])
            if lo > hi:
                raise ValueError(f"character class {spec!r}: range {spec[i : i + 3]!r} is backwards")
            table[lo : hi + 1] = b"\x01" * (hi - lo + 1)
            i += 3
        else:
            table[ord(spec[i])] = 1
            i += 1
    return bytes(table)


_SPACE: Final = "\t\n\f\r "  # RE2's \s (ASCII whitespace without \v)


class CharClass:
    """A regex-style class body read for KvScanner: `char_table`'s syntax, plus a leading `^` (every
    character but those listed), `\\s` (RE2's whitespace) and `\\X` for a literal X. Non-ASCII
    characters may be listed where `non_ascii` allows."""

    def __init__(self, spec: str, non_ascii: bool) -> None:
        self.negated = spec.startswith("^")
        body = spec[1:] if self.negated else spec
        plain: list[str] = []
        escaped: list[str] = []  # listed with a backslash: never part of a range
        others: set[str] = set()
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                ch = body[i + 1]
                i += 2
                if ch.isalnum() and ch != "s":  # \d, \w, \t ...: not read here (a letter would be wrong)
                    raise ValueError(f"character class {spec!r}: only \\s and escaped punctuation")
                listed, into = _SPACE if ch == "s" else ch, escaped
            else:
                listed, into = ch, plain
                i += 1
            for one in listed:
                if one.isascii():
                    into.append(one)
                elif non_ascii:
                    others.add(one)
                else:
                    raise ValueError(f"character class {spec!r}: ASCII only")
        table = bytearray(char_table("".join(plain)))
        for one in escaped:
            table[ord(one)] = 1
        self.table = bytes(table)  # the ASCII characters listed
        self.others = frozenset(others)  # the non-ASCII characters listed

    def has(self, ch: str) -> bool:
        """Whether the class holds character `ch`."""
        listed = self.table[ord(ch)] == 1 if ch.isascii() else ch in self.others
        return listed != self.negated


class KvScanner:
    """The pairs of a `kv` entry's `scan` shape, read by a hand loop over the bytes (mypyc-compiled)
    instead of a regex: `(FIRST KEY*)=("..."|VALUE*)` where the key starts with a `key_first` character
    followed by `key` characters, then `=`, then a quoted value (`quote`, optionally with `escape`
    pairs that may not escape a newline) or else a run of bytes not in `value_end`; without `value_end`,
    `(FIRST KEY*)="(...)"`: only quoted values, the value being the text between the quotes.

    On UTF-8 text it yields exactly the spans of RE2's leftmost-first search of that regex, match after
    match (tests compare it with the entry's RE2 `pattern` on every sample, example and a seeded fuzz):
    "=" is never a key character, so the first "=" after a run holding a key_first character ends the
    next match. One pass, each byte read once (a quoted value that fails to close is read once more as
    a plain one): linear, with no regex engine. ~0.6 us for the 10 pairs of a Huawei policy line, where
    RE2 costs ~0.4 us per pair in calls and the stdlib pattern it replaces ~3 us.
    """

    __slots__ = (
        "between", "between_len", "chain", "ends", "escape", "heads", "indexed", "keys", "lead", "mask",
        "names", "quote", "quoted_only", "stops", "strip_for", "targets", "token_kinds", "tokens", "trim",
        "trim_bytes",
    )  # fmt: skip

    def __init__(
        self,
        key_first: str,
        key: str,
        value_end: str | None,
        quote: str | None,
        escape: str | None,
        separator: str = "=",
        between: str | None = None,
    ) -> None:
        first, keys = CharClass(key_first, True), CharClass(key, True)
        if value_end is None and quote is None:
            raise ValueError("kv scan: a value needs a value_end or a quote")
        # Without value_end a value must be quoted, and is the text between the quotes.
        self.quoted_only = value_end is None
        end = CharClass(value_end or "", True)
        if end.negated:
            raise ValueError(f"kv scan: value_end {value_end!r} lists the characters that end a value")
        for cls, spec in ((first, key_first), (keys, key)):
            if not cls.negated and cls.others:
                raise ValueError(f"character class {spec!r}: ASCII only")
        # `between`: the fixed text after a key instead of a separator character ("\\d" one digit):
        # H3C's "Name(1003)=". Its first character is no key character, so a key run ends where it starts.
        shape = _shape(between) if between else []
        if shape and any(keys.has(chr(c)) or first.has(chr(c)) for c in range(128) if shape[0][c]):
            raise ValueError(f"kv scan: between {between!r} starts with a key character")
        self.between = b"".join(shape)
        self.between_len: i64 = len(shape)
        seps = set() if shape else set(separator)
        # A separator in a key would let a key run across it (the one-pass reading relies on it not);
        # every key_first character must be a key character.
        ascii_first = any(first.has(chr(c)) and not keys.has(chr(c)) for c in range(128))
        if (
            not (seps or shape)
            or any(keys.has(ch) or first.has(ch) for ch in seps)
            or ascii_first
            or (first.negated and not keys.negated)
            or any(first.has(ch) and not keys.has(ch) for ch in first.others | keys.others)
        ):
            raise ValueError(f"kv scan: key {key!r} must hold every key_first character and no {separator!r}")
        if any(ch is not None and (len(ch) != 1 or not ch.isascii()) for ch in (quote, escape)) or (
            quote is not None and quote == escape
        ):
            raise ValueError("kv scan: quote and escape are two different ASCII characters")
        # keys: a byte's kind, 0 (not a key character), 1 (a key character), 2 (also key_first),
        # 3 (the first byte of a non-ASCII character named in a class or separator: `tokens` tell which)
        # or 4 (a separator). The bytes of other non-ASCII characters are key characters when the
        # classes are negated (`lead`), else not.
        lead = int(first.negated) + int(keys.negated)
        named = sorted(first.others | keys.others | {ch for ch in seps if not ch.isascii()})
        kinds = bytearray(
            4 if chr(c) in seps else int(first.has(chr(c))) + int(keys.has(chr(c))) for c in range(128)
        )
        kinds += bytes([lead]) * 128
        tokens: list[bytes] = []
        token_kinds: list[int] = []
        for ch in named:
            raw = ch.encode()
            kinds[raw[0]] = 3
            tokens.append(raw)
            token_kinds.append(4 if ch in seps else int(first.has(ch)) + int(keys.has(ch)))
        self.keys = bytes(kinds)
        self.lead: i64 = lead
        self.tokens = tokens
        self.token_kinds = bytes(token_kinds)
        # stops: 0 for the value_end bytes, 2 for the first byte of a non-ASCII value_end character
        # (`ends` tell which), else 1.
        stops = bytearray(0 if c < 128 and end.has(chr(c)) else 1 for c in range(256))
        self.ends = [ch.encode() for ch in sorted(end.others)]
        for raw in self.ends:
            stops[raw[0]] = 2
        self.stops = bytes(stops)
        self.quote: i64 = ord(quote) if quote else -1
        self.escape: i64 = ord(escape) if escape else -1
        # The mapping and strip characters `read` was last given, indexed (`index`).
        self.indexed: dict[bytes, str] | None = None
        self.strip_for = ""
        self.heads = b""
        self.chain = b""
        self.names: list[bytes] = []
        self.targets: list[str] = []
        self.mask: i64 = 0
        self.trim = bytes(256)
        self.trim_bytes = True

    def index(self, mapping: dict[bytes, str], strip: str) -> None:
        """Index `mapping` for `read`: a chained hash table of its keys under `_key_hash` (so a key that
        maps to nothing costs no bytes object and no dictionary lookup), and the strip characters as a
        byte table when they are ASCII."""
        size = 64
        while size < 4 * len(mapping):
            size *= 2
        heads = [0] * size
        chain, names, targets = [0], [b""], [""]  # entry 0: none
        for key, target in mapping.items():
            if target and key:  # `read` skips an empty target, as mapping.get's falsy answer
                slot = _key_hash(key) & (size - 1)
                names.append(key)
                targets.append(target)
                chain.append(heads[slot])
                heads[slot] = len(names) - 1
        if len(names) > 0xFFFF:
            raise ValueError(f"kv scan: {len(names) - 1} keys, at most {0xFFFF - 1}")
        # Slots and chain links as 16-bit little-endian entry numbers in bytes: compiled, reading a
        # byte is inline, reading a list item a call and an integer object.
        self.heads, self.chain = _u16(heads), _u16(chain)
        self.names, self.targets, self.mask = names, targets, size - 1
        # Trimming ASCII characters off the bytes before decoding gives the text that decoding then
        # stripping gives: an ASCII byte is never part of a UTF-8 sequence, nor of an invalid one that
        # "replace" turns into U+FFFD. Other strip characters are stripped from the decoded text.
        self.trim_bytes = strip.isascii()
        self.trim = bytes(1 if chr(c) in strip else 0 for c in range(256)) if self.trim_bytes else bytes(256)
        self.indexed, self.strip_for = mapping, strip

    def spans(self, data: bytes) -> list[int]:
        """Key start, key end, value start, value end of every pair, left to right, flat."""
        out: list[int] = []
        self.read(data, out, None, "", None)
        return out

    def read(
        self,
        data: bytes,
        spans: list[int] | None,
        mapping: dict[bytes, str] | None,
        strip: str,
        fields: dict[str, Any] | None,
        text: str | None = None,
    ) -> None:
        """Every pair, left to right: its spans appended to `spans`, or, with `mapping`, the value of
        each mapped key put in `fields` under its field name unless already there (cut and decoded only
        then: most pairs of a firewall line map to nothing). `text`: `data` decoded, when the caller
        has it: on an ASCII line a value is cut from it instead of decoded from the bytes (the same
        text, ~40 ns less a value: no bytes object and no decoder call)."""
        if mapping is not None and (mapping is not self.indexed or strip is not self.strip_for):
            self.index(mapping, strip)
        if text is not None:
            text = ascii_text(text, data)
        keys, stops, quote, escape, quoted_only = (
            self.keys,
            self.stops,
            self.quote,
            self.escape,
            self.quoted_only,
        )
        heads, chain, names, targets, mask, trim = (
            self.heads,
            self.chain,
            self.names,
            self.targets,
            self.mask,
            self.trim,
        )
        trim_bytes = self.trim_bytes
        # Native 64-bit integers (i64): compiled, the loop works on machine words instead of tagged ints.
        n: i64 = len(data)
        i: i64 = 0
        k: i64 = -1  # the first key_first character of the key run being read (-1: none yet)
        h: i64 = 0
        c: i64 = 0
        v: i64 = 0
        e: i64 = 0
        j: i64 = 0
        t: i64 = 0
        size: i64 = 0
        entry: i64 = 0
        a: i64 = 0
        b: i64 = 0
        tokens, token_kinds, lead, ends = self.tokens, self.token_kinds, self.lead, self.ends
        between, nbetween = self.between, self.between_len
        step: i64 = 1  # the length of the character at i when it is a named non-ASCII one
        while i < n:
            c = data[i]
            kind: i64 = keys[c]
            step = 1
            if kind == 3:  # a non-ASCII character: one named in a class or separator, or another
                kind = lead
                for t in range(len(tokens)):
                    if _at(data, i, tokens[t]):
                        kind = token_kinds[t]
                        step = len(tokens[t])
                        break
            if kind == 4:
                if k < 0:  # a separator with no key before it
                    i += step
                    continue
                v = i + step
            elif kind == 0 and k >= 0 and nbetween and _shape_at(data, i, between, nbetween):
                v = i + nbetween
            else:
                if kind == 0:
                    k = -1
                elif kind == 2 and k < 0:
                    k = i
                i += step
                continue
            e = -1
            if v < n and data[v] == quote:
                j = v + 1
                while j < n:
                    c = data[j]
                    if c == quote:
                        e = j + 1
                        break
                    if c == escape:
                        if j + 1 < n and data[j + 1] != 10:  # RE2's `\\.` after the escape: not a newline
                            j += 2
                            continue
                        break
                    j += 1
            if quoted_only:
                if e < 0:  # no quoted value: no pair at this separator, the search goes on after it
                    k = -1
                    i += step
                    continue
                v += 1
                e -= 1
            elif e < 0:
                e = v
                while e < n:
                    c = stops[data[e]]
                    if c == 1:
                        e += 1
                    elif c == 0 or _at_any(data, e, ends):
                        break
                    else:
                        e += 1
            if spans is not None:
                spans += (k, i, v, e)
            elif mapping is not None and fields is not None:
                if not COMPILED:  # interpreted, a dictionary lookup beats the byte loops below
                    target = mapping.get(data[k:i])
                    if target and target not in fields:
                        fields[target] = data[v:e].decode("utf-8", "replace").strip(strip)
                    i = e + 1 if quoted_only else e
                    k = -1
                    continue
                # mapping.get(data[k:i]) through the index: the entry whose key has these bytes.
                h = 0
                for t in range(k, i):
                    h = (h * 31 + data[t]) & 0xFFFFFFFF
                size = i - k
                t = (h & mask) * 2
                entry = heads[t] | heads[t + 1] << 8
                while entry:
                    name = names[entry]
                    if len(name) == size:
                        t = 0
                        while t < size and name[t] == data[k + t]:
                            t += 1
                        if t == size:
                            break
                    entry = chain[entry * 2] | chain[entry * 2 + 1] << 8
                if entry:
                    target = targets[entry]
                    if target not in fields:
                        if trim_bytes:
                            a, b = v, e
                            while a < b and trim[data[a]]:
                                a += 1
                            while b > a and trim[data[b - 1]]:
                                b -= 1
                            if text is not None:
                                fields[target] = text[a:b]
                            else:
                                fields[target] = data[a:b].decode("utf-8", "replace")
                        elif text is not None:
                            fields[target] = text[v:e].strip(strip)
                        else:
                            fields[target] = data[v:e].decode("utf-8", "replace").strip(strip)
            i = e + 1 if quoted_only else e
            k = -1


def ascii_text(text: str, data: bytes) -> str | None:
    """`text` when it is ASCII and `data` its bytes' length, else None: then a span of the bytes is the
    same span of the text, cut without decoding. (A lone surrogate from surrogateescape is one byte
    too, but no ASCII character: such a line's values are decoded from its bytes, as U+FFFD.)"""
    return text if len(text) == len(data) and text.isascii() else None


def _at(data: bytes, i: i64, token: bytes) -> bool:
    """Whether `token` occurs in `data` at `i` (data.startswith(token, i), without the method call)."""
    size: i64 = len(token)
    if i + size > len(data):
        return False
    j: i64 = 0
    while j < size:
        if data[i + j] != token[j]:
            return False
        j += 1
    return True


def _shape(text: str) -> list[bytes]:
    """A fixed text of ASCII characters and `\\d` (one digit) as one 256-entry membership table per
    character (ValueError for anything else)."""
    out: list[bytes] = []
    i = 0
    while i < len(text):
        if text.startswith("\\d", i):
            out.append(char_table("0-9"))
            i += 2
        elif text[i] == "\\" or not text[i].isascii():
            raise ValueError(f"kv scan: between {text!r}: ASCII characters and \\d only")
        else:
            out.append(char_table(text[i]))
            i += 1
    return out


def _shape_at(data: bytes, i: i64, shape: bytes, size: i64) -> bool:
    """Whether the `size` characters of `shape` (`_shape`'s tables, joined) occur in `data` at `i`."""
    if i + size > len(data):
        return False
    j: i64 = 0
    while j < size:
        if shape[j * 256 + data[i + j]] == 0:
            return False
        j += 1
    return True


def _at_any(data: bytes, i: i64, tokens: list[bytes]) -> bool:
    """Whether one of `tokens` occurs in `data` at `i`."""
    for token in tokens:  # noqa: SIM110 (a loop, not any(): compiled, a generator is built as a list)
        if _at(data, i, token):
            return True
    return False


def _u16(values: list[int]) -> bytes:
    """`values` (each below 65,536) as 16-bit little-endian bytes."""
    return b"".join(v.to_bytes(2, "little") for v in values)


def _key_hash(key: bytes) -> int:
    """The hash KvScanner.read computes over a key's bytes as it reads them."""
    h = 0
    for c in key:
        h = (h * 31 + c) & 0xFFFFFFFF
    return h


# Whether this module runs compiled (mypyc makes its functions builtins): KvScanner.read then looks keys
# up through its own index (~0.3 us less a Huawei line), which interpreted would cost more than it saves.
COMPILED: Final = not isinstance(_key_hash, FunctionType)


# A pattern that matches every text (the empty string), put last in a set so that its answer is never
# empty: RE2 answers "no match" also when the set's DFA runs out of memory, which this tells apart.
SENTINEL: Final = ""


def pattern_set(patterns: list[str]) -> Any:
    """An RE2 set: one pass tells which of `patterns` occur in a text (`Match(bytes)` -> the indices).

    The wrapper's own set is returned, not the wrapper: its Python `Match` costs an interpreted frame
    per call (three calls a line), for an isinstance test on bytes the caller always passes.
    """
    rs = re2.Set.SearchSet(_OPTS)
    for p in patterns:
        if rs.Add(p) < 0:
            raise ValueError(f"pattern {p!r} is not RE2 syntax (linear time)")
    rs.Compile()
    return rs._set


@dataclass(slots=True)
class CompiledFormat:
    """A VendorFormat with its patterns compiled (RE2), run on the UTF-8 bytes of the body."""

    spec: VendorFormat
    detect: Pattern
    extract: list[Pattern]
    extract_set: Any
    kv: list[tuple[Pattern, dict[bytes, str], str, KvScanner | None]]
    rules: list[tuple[Pattern, Rule]]
    rule_set: Any
    values: dict[str, dict[str, str]]
    contains: tuple[bytes, ...]
    # The `extract` patterns then the `rules` matches in one RE2 set: one DFA pass (and one call, ~0.7 us
    # of wrapper and setup) answers both. Last comes SENTINEL, which always matches: an empty answer
    # then only means that RE2 ran out of memory. None when the format has neither.
    scan_set: Any = None

    def apply(
        self,
        body: str,
        data: bytes | None = None,
        detected: bool = False,
        hits: list[int] | None = None,
        unused: frozenset[str] = frozenset(),
    ) -> dict[str, Any] | None:
        """Raw fields read from `body` (`data`: its UTF-8 bytes), or None when this format does not apply;
        `hits`: `scan_set`'s answer when a larger set already gave it (FormatSet.first).

        `unused`: fields the caller will not read (a header's own severity, host, time): an `extract`
        pattern that could only add such fields is not run. The other fields are the same either way:
        a pattern writes only fields not yet read, so skipping one changes nothing but those."""
        if data is None:
            data = body.encode("utf-8", "surrogateescape")
        if self.contains and not any(lit in data for lit in self.contains):
            return None
        if not detected and self.detect.spans(data)[0][0] < 0:
            return None
        out: dict[str, Any] = {}
        # An ASCII body's spans are its bytes' spans: values are cut from it instead of decoded.
        text = ascii_text(body, data)
        n_extract = len(self.extract)
        if self.scan_set is None:
            hits = []
        else:
            if hits is None:
                hits = self.scan_set.Match(data)
            if not hits:  # the sentinel always matches: an empty answer is RE2 out of memory
                hits = self._separately(data)
            hits.sort()
        first_rule = -1
        for i in hits:  # ascending: extract patterns in file order, then the first rule that matched
            if i >= n_extract:
                if i < n_extract + len(self.rules):  # not the sentinel
                    first_rule = i - n_extract
                break
            pattern = self.extract[i]
            # Earlier patterns' fields are kept: a pattern whose every field is already read is not run.
            for name, _ in pattern.groups:
                if name not in out and name not in unused:
                    pattern.named_into(data, out, False, text)
                    break
        for pattern, mapping, strip, scanner in self.kv:
            if scanner is not None:
                scanner.read(data, None, mapping, strip, out, text)
                continue
            # Only the values of mapped keys not yet read are cut and decoded (most pairs of a firewall
            # line map to nothing; cutting and decoding them all was ~a quarter of a line's time).
            for (a1, e1), (a2, e2) in pattern.pair_spans(data):
                name = mapping.get(data[a1:e1] if a1 >= 0 else b"")
                if name and name not in out:
                    out[name] = (data[a2:e2] if a2 >= 0 else b"").decode("utf-8", "replace").strip(strip)
        if first_rule >= 0:
            rule_pattern, rule = self.rules[first_rule]
            if rule_pattern.groups:
                rule_pattern.named_into(data, out, True, text)
            out["event_type"] = rule.event_type
            if rule.action is not None:
                out["action"] = rule.action
            if rule.outcome is not None:
                out["outcome"] = rule.outcome
        if "event_type" not in out:
            out["event_type"] = "other"
        for field, table in self.values.items():
            given = out.get(field)
            if isinstance(given, str):
                mapped = table.get(given.strip().lower())
                if mapped is not None:
                    out[field] = mapped
        return out

    def _separately(self, data: bytes) -> list[int]:
        """`scan_set`'s answer (without the sentinel) from the two smaller sets, asked when it gave none.

        RE2::Set::Match answers "no match" when its DFA runs out of memory (the wrapper drops the
        error, and RE2 clears the hits first, so the answer is empty, never partial); with the
        sentinel in the set, an empty answer means exactly that, and the two smaller sets (each with
        the whole memory budget for fewer patterns) are asked instead.
        """
        hits: list[int] = list(self.extract_set.Match(data) or []) if self.extract_set is not None else []
        if self.rule_set is not None:
            n_extract = len(self.extract)
            hits += [n_extract + i for i in self.rule_set.Match(data) or []]
        return hits


class Predictor:
    """What FormatSet.first does per line, in a native class: its state is read and written as C fields
    (on the list subclass each was a dictionary lookup, and the method call a Python one)."""

    def __init__(self, formats: list[CompiledFormat], predict: bool) -> None:
        self.formats = formats
        detects = [f.spec.detect for f in formats]
        self.detect: Any = pattern_set(detects) if formats else None
        # Per format: every detect, then the format's extract and rules, then the sentinel.
        self.combos: list[Any] = [
            pattern_set([*detects, *f.spec.extract, *(r.match for r in f.spec.rules), SENTINEL])
            for f in (formats if predict else [])
        ]
        self.last = -1  # the format of the previous line that had one (a hint: any value is safe)

    def first(self, body: str, unused: frozenset[str]) -> tuple[CompiledFormat, dict[str, Any]] | None:
        """FormatSet.first."""
        if self.detect is None:
            return None
        data = body.encode("utf-8", "surrogateescape")
        last = self.last
        formats = self.formats
        if last >= 0:
            hits: list[int] = self.combos[last].Match(data)
            if hits:  # never empty (the sentinel) unless RE2 ran out of memory: then the plain path
                hits.sort()
                count = len(formats)
                for i in hits:
                    if i >= count:
                        break
                    fmt = formats[i]
                    own = [h - count for h in hits if h >= count] if i == last else None
                    fields = fmt.apply(body, data, True, own, unused)
                    if fields is not None:
                        self.last = i
                        return fmt, fields
                return None
        for i in sorted(self.detect.Match(data) or []):
            fmt = formats[i]
            fields = fmt.apply(body, data, True, None, unused)
            if fields is not None:
                if self.combos:
                    self.last = i
                return fmt, fields
        return None


@mypyc_attr(native_class=False)  # a list subclass cannot be a native class
class FormatSet(list[CompiledFormat]):
    """All formats, tried in order; one RE2 set pass finds the formats whose `detect` occurs.

    With `predict`, a line is first asked of a set holding every format's `detect` and the extract and
    rule patterns of the format the previous line had (a device floods in one format): when that
    format is again the first that applies, one pass answers what two did (the detect set, then the
    format's `scan_set`). Otherwise the format's own set is asked as before: the answers, so the
    fields, are the same either way (a set answers for each of its patterns on its own). The work is
    `predictor`'s (parse calls it directly).
    """

    def __init__(self, formats: list[CompiledFormat], predict: bool = True) -> None:
        super().__init__(formats)
        self.formats = formats
        self.predictor = Predictor(formats, predict)

    def first(
        self, body: str, unused: frozenset[str] = frozenset()
    ) -> tuple[CompiledFormat, dict[str, Any]] | None:
        """The first format that applies to `body`, with its raw fields (`unused`: see apply)."""
        return self.predictor.first(body, unused)


def normalise(fields: dict[str, Any]) -> dict[str, Any]:
    """Validated record fields from a format's raw fields (anything doubtful is left out)."""
    out: dict[str, Any] = {}
    normalise_into(fields, out)
    return out


def normalise_into(fields: dict[str, Any], out: dict[str, Any]) -> None:
    """`normalise`, written straight into `out` (a record: no dict in between)."""
    _address(fields, "src_ip", "src_port", out)
    _address(fields, "dst_ip", "dst_port", out)
    proto = fields.get("protocol")
    if isinstance(proto, str):
        name = proto.strip()
        if name:
            name = name.lower()
            out["protocol"] = _PROTOCOLS.get(name, name)[:32]
    action = fields.get("action")
    if isinstance(action, str):
        word = action.strip()
        if word:
            word = word.lower()
            out["action"] = ACTIONS.get(word, word)[:64]
    _text(fields, "user", out)
    _text(fields, "rule", out)
    outcome = fields.get("outcome")
    if outcome == "success" or outcome == "failure":
        out["outcome"] = outcome
    out["event_type"] = fields.get("event_type", "other")


def _address(fields: dict[str, Any], ip_key: str, port_key: str, out: dict[str, Any]) -> None:
    """An address field and its port (a port written into the address counts when none is given)."""
    ip, port = ip_and_port(fields.get(ip_key))
    if ip is not None:
        out[ip_key] = ip
    given = fields.get(port_key)
    p = to_port(given)
    if p is None and (given is None or given == "") and ip is not None:
        p = port
    if p is not None:
        out[port_key] = p


def _text(fields: dict[str, Any], key: str, out: dict[str, Any]) -> None:
    """A free-text field (user, rule): unquoted, `-` and `N/A` meaning none, at most 256 characters."""
    value = fields.get(key)
    if isinstance(value, str):
        text = value.strip().strip('"').strip()
        if text and text != "-" and text != "N/A":
            out[key] = text[:256]


# Protocol numbers (IANA) and names as devices print them.
_PROTOCOLS: Final = {"1": "icmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp", "51": "ah",
                     "58": "icmpv6", "89": "ospf", "103": "pim", "132": "sctp"}  # fmt: skip
# One action vocabulary for every vendor (the vendor's own word stays in the raw bytes).
ACTIONS: Final = {
    "permit": "permit", "permitted": "permit", "accept": "permit", "accepted": "permit", "allow": "permit",
    "allowed": "permit", "policy_permit": "permit", "允许": "permit", "放行": "permit", "通过": "permit",
    "deny": "deny", "denied": "deny", "reject": "deny", "rejected": "deny", "policy_deny": "deny",
    "拒绝": "deny", "联动拒绝": "deny", "阻止": "block", "阻断": "block", "block": "block",
    "blocked": "block",
    "drop": "drop", "dropped": "drop", "丢弃": "drop", "discard": "drop", "reset": "reset",
    "重置连接": "reset", "重置": "reset", "alert": "alert", "告警": "alert", "报警": "alert", "log": "log",
    "记录": "log", "被记录": "log", "仅记录": "log-only", "log-only": "log-only", "pass": "pass",
    "detected": "detected", "none": "none",
}  # fmt: skip


def to_port(value: Any) -> int | None:
    """A port number 0-65535 from an int or a string of digits, else None."""
    if isinstance(value, int):
        return value if 0 <= value <= 65535 else None
    if isinstance(value, str):
        v = value.strip()
        if v.isascii() and v.isdigit() and len(v) <= 5:
            port = int(v)
            return port if port <= 65535 else None
    return None


def ip_and_port(value: Any) -> tuple[str | None, int | None]:
    """A validated IP address (and a port when written `ip:port`, `[v6]:port` or `ip/port`)."""
    if not isinstance(value, str):
        return None, None
    found = _addresses.get(value)
    if found is None:
        found = _ip_and_port(value)
        if len(value) <= 96:  # longer is no address: not worth an entry (the cache stays small)
            if len(_addresses) >= 65536:
                _addresses.clear()
            _addresses[value] = found
    return found


# Addresses repeat from line to line: each text is read once. A plain dict, emptied when full, instead
# of an lru_cache: a compiled dict lookup costs a fraction of a call through the cache's wrapper.
_addresses: Final[dict[str, tuple[str | None, int | None]]] = {}


def _ip_and_port(value: str) -> tuple[str | None, int | None]:
    v = value.strip().strip('"').rstrip(".")
    if not v or len(v) > 64:
        return None, None
    port: int | None = None
    if v.startswith("["):
        host, _, rest = v[1:].partition("]")
        v, port = host, (to_port(rest[1:]) if rest.startswith(":") else None)
    elif "/" in v:
        host, _, rest = v.partition("/")
        v, port = host, to_port(rest)
    elif v.count(":") == 1:
        host, _, rest = v.partition(":")
        v, port = host, to_port(rest)
    return valid_ip(v), port


@lru_cache(maxsize=65536)  # addresses repeat from line to line
def valid_ip(text: str) -> str | None:
    """`text` as a canonical IP address, or None (dotted quads checked without ipaddress: it is slow)."""
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() and len(p) <= 3 for p in parts):
        if all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in parts):
            return text
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _compile_kv(kv: KeyValues) -> tuple[Pattern, dict[bytes, str], str, KvScanner | None]:
    scan = kv.scan
    scanner = (
        KvScanner(
            scan.key_first, scan.key, scan.value_end, scan.quote, scan.escape, scan.separator, scan.between
        )
        if scan
        else None
    )
    mapping = {k.encode(): v for k, v in kv.fields.items()}
    if scanner is not None:  # indexed here, not by the first line's `read` (threads may share formats)
        scanner.index(mapping, kv.strip)
    return Pattern(kv.pattern), mapping, kv.strip, scanner


def compile_format(spec: VendorFormat) -> CompiledFormat:
    """Compile patterns (raises ValueError naming one RE2 rejects)."""
    scanned = bool(spec.extract or spec.rules)
    return CompiledFormat(
        spec,
        Pattern(spec.detect),
        [Pattern(p) for p in spec.extract],
        pattern_set(spec.extract) if spec.extract else None,
        [_compile_kv(kv) for kv in spec.kv],
        [(Pattern(rule.match), rule) for rule in spec.rules],
        pattern_set([rule.match for rule in spec.rules]) if spec.rules else None,
        {k: {raw.lower(): v for raw, v in table.items()} for k, table in spec.values.items()},
        tuple(lit.encode() for lit in spec.contains),
        pattern_set([*spec.extract, *(rule.match for rule in spec.rules), SENTINEL]) if scanned else None,
    )


def load_formats(folder: Path = FORMATS_DIR) -> FormatSet:
    """Load every *.yaml vendor format in `folder`, in the order they are tried."""
    specs = [
        VendorFormat.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for path in sorted(folder.glob("*.yaml"))
    ]
    return FormatSet([compile_format(s) for s in sorted(specs, key=lambda s: (s.order, s.name))])
