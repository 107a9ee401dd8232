"""What a page shows and loads: visible text, hidden text, external resource hosts, forbidden words.

Pure CPU work on bytes (selectolax/lexbor): the runner calls it from a worker thread.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml
from selectolax.lexbor import LexborHTMLParser, LexborNode

from inventory.services import ContentWatch, compile_volatile

WORDS_FILE = Path(__file__).with_name("forbidden_words.yaml")
# Not text a visitor sees: code, styles, templates, and elements the page hides itself.
_INVISIBLE = "script, style, noscript, template, svg, head"
_HIDDEN = (
    "[hidden], [aria-hidden=true], [style*='display:none' i], [style*='display: none' i], "
    "[style*='visibility:hidden' i], [style*='visibility: hidden' i]"
)
# Resources that run or render inside the page; `link` covers stylesheets, icons, preloads.
_RESOURCES = (("script", "src"), ("iframe", "src"), ("frame", "src"), ("embed", "src"), ("object", "data"),
              ("link", "href"))  # fmt: skip
ACTIVE_KINDS = frozenset({"script", "iframe", "frame", "embed", "object"})  # a new host here is an alert
HIDDEN_LINKS = "hidden_a"  # `resources` key: external hosts linked from hidden elements (暗链)
_SPACE = re.compile(r"\s+")
MAX_DIFF_LINES = 200
MAX_LINE = 300


@dataclass(frozen=True, slots=True)
class Page:
    """A page reduced to what the defacement watch compares."""

    text: str  # visible text, one block per line, volatile parts removed or masked
    hidden: str  # text of hidden elements, titles, alt texts and meta descriptions (暗链 hide here)
    resources: dict[str, list[str]] = field(default_factory=dict)  # kind -> sorted external hosts

    def hidden_link_hosts(self) -> set[str]:
        """External hosts that hidden elements link to."""
        return set(self.resources.get(HIDDEN_LINKS, []))

    def external_active_hosts(self) -> set[str]:
        """Hosts of external scripts, iframes, frames, embeds and objects."""
        return {h for kind, hosts in self.resources.items() if kind in ACTIVE_KINDS for h in hosts}

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping (the stored baseline)."""
        return {"text": self.text, "hidden": self.hidden, "resources": self.resources}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Page:
        """Inverse of to_json."""
        res = data.get("resources") or {}
        assert isinstance(res, dict)
        return cls(str(data.get("text", "")), str(data.get("hidden", "")),
                   {str(k): [str(h) for h in v] for k, v in res.items()})  # fmt: skip


def decode_page(body: bytes, charset: str | None = None) -> str:
    """Page bytes as text: the declared charset, else UTF-8, else GB18030 (a superset of GBK/GB2312,
    which many government sites declare only in a <meta> tag)."""
    for enc in (charset, "utf-8", "gb18030"):
        if enc:
            try:
                return body.decode(enc)
            except (LookupError, UnicodeDecodeError):
                continue
    return body.decode("utf-8", errors="replace")


def _lines(node: LexborNode | None) -> list[str]:
    if node is None:
        return []
    out = []
    for line in node.text(separator="\n").splitlines():
        line = _SPACE.sub(" ", line).strip()
        if line:
            out.append(line[:MAX_LINE])
    return out


def analyse(body: bytes, page_url: str, watch: ContentWatch, charset: str | None = None) -> Page:
    """Reduce an HTML page to its visible text, hidden text and external resource hosts."""
    tree = LexborHTMLParser(decode_page(body, charset))
    page_host = (urlsplit(page_url).hostname or "").lower()
    hosts: dict[str, set[str]] = {}
    for tag, attr in _RESOURCES:
        for node in tree.css(f"{tag}[{attr}]"):
            ref = (node.attributes.get(attr) or "").strip()
            host = (urlsplit(urljoin(page_url, ref)).hostname or "").lower() if ref else ""
            if host and host != page_host:
                hosts.setdefault(tag, set()).add(host)
    hidden: list[str] = []
    for node in tree.css("title, meta[name=keywords], meta[name=description], [title], img[alt]"):
        if node.tag == "title":
            hidden += _lines(node)
        for attr in ("content", "title", "alt"):
            value = node.attributes.get(attr) if node.tag != "title" else None
            if value:
                hidden.append(_SPACE.sub(" ", value).strip()[:MAX_LINE])
    hidden_links: set[str] = set()
    for node in tree.css(_HIDDEN):
        hidden += _lines(node)
        # 暗链: links a visitor cannot see, planted for search engines. The page's own host is no news.
        for a in node.css("a[href]"):
            host = (
                urlsplit(urljoin(page_url, (a.attributes.get("href") or "").strip())).hostname or ""
            ).lower()
            if host and host != page_host:
                hidden_links.add(host)
        node.decompose()
    if hidden_links:
        hosts[HIDDEN_LINKS] = hidden_links
    for selector in watch.volatile_selectors:
        for node in tree.css(selector):
            node.decompose()
    for node in tree.css(_INVISIBLE):
        node.decompose()
    lines = _lines(tree.body)
    for pattern in _patterns(tuple(watch.volatile_patterns)):
        lines = [pattern.sub(_MASK, line) for line in lines]
    return Page("\n".join(lines), "\n".join(hidden), {k: sorted(v) for k, v in sorted(hosts.items())})


def _MASK(_match: Any) -> str:
    return "…"


@lru_cache(maxsize=256)
def _patterns(patterns: tuple[str, ...]) -> list[Any]:
    # RE2: the page is written by whoever controls the site (a defacer, too), the pattern by the
    # administrator; linear-time matching keeps one bad pair from pinning a worker thread.
    return [compile_volatile(p) for p in patterns]


@lru_cache(maxsize=1)
def builtin_words() -> tuple[str, ...]:
    """The built-in forbidden words (forbidden_words.yaml), Chinese and English."""
    data = yaml.safe_load(WORDS_FILE.read_text(encoding="utf-8"))
    return tuple(str(w) for key in ("zh", "en") for w in data.get(key, []))


@lru_cache(maxsize=256)
def word_matcher(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for a word list: ASCII words whole-word and case-insensitive, others anywhere."""
    parts = []
    for w in sorted(set(words), key=len, reverse=True):
        esc = re.escape(w)
        parts.append(rf"(?<![A-Za-z0-9]){esc}(?![A-Za-z0-9])" if w.isascii() else esc)
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def forbidden_found(page: Page, watch: ContentWatch) -> list[str]:
    """Forbidden words present in the visible or hidden text (sorted, lower-cased, each once)."""
    words = (*(builtin_words() if watch.builtin_words else ()), *watch.forbidden_words)
    matcher = word_matcher(tuple(words))
    if matcher is None:
        return []
    found = {m.group(0).lower() for m in matcher.finditer(page.text + "\n" + page.hidden)}
    return sorted(found)


def allowed(host: str, allow: list[str]) -> bool:
    """True when `host` is on the allow-list (`*.example.gov.cn` allows its subdomains)."""
    for entry in allow:
        if entry.startswith("*.") and (host == entry[2:] or host.endswith(entry[1:])):
            return True
        if host == entry:
            return True
    return False


def text_diff(old: str, new: str) -> list[str]:
    """Unified diff of two page texts, bounded in lines."""
    lines = list(
        difflib.unified_diff(old.splitlines(), new.splitlines(), "baseline", "current", lineterm="", n=1)
    )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines"]
    return lines
