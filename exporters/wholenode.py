"""The whole node's `/metrics` page streamed family by family from the compact store.

prometheus_client built every series of every device as objects before writing the first byte (+931 MB
for 964k series); this writes the same text (format 0.0.4) in ~64 kB chunks: for each metric family,
its HELP/TYPE once, then that family's lines from every device in turn, read from each device's
SampleSet through its layout's plan (exporters.targets). A family stays one contiguous group
with one HELP/TYPE, as the text format requires (Go's expfmt parser rejects a second TYPE line for a
name), and memory is bounded by one chunk, the scrape's list of sets and their plans (the last
PLAN_CACHE_SIZE layouts' plans stay for the next scrape and for `?device=`), not by the fleet's
text. Duplicate series are dropped within a device's set (as before); across devices they cannot
occur, the `device` label differs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence

from core.samples import Sample, SampleSet
from exporters.targets import family_lines, go_float, plan_of, render

CHUNK = 64 * 1024  # characters gathered before a write: big enough for few syscalls, small in memory
GZIP_LEVEL = 6  # zlib's default: ~8x smaller for this text at a fraction of the render's CPU

INVALID_NAME = "govnet_exporter_invalid_samples_total"


class NodePage:
    """One scrape of the whole node: iterate it for the text in chunks. The samples left out (bad name
    or label, duplicate) go to `count_invalid`, which returns the running total the page ends with."""

    def __init__(
        self,
        sets: Sequence[SampleSet],
        internal: Iterable[Sample],
        invalid_help: str,
        count_invalid: Callable[[int], int],
    ) -> None:
        self.sets = sets
        self.internal = list(internal)
        self.invalid_help = invalid_help
        self.count_invalid = count_invalid
        self.invalid = 0

    def _internal_families(self) -> dict[str, tuple[str, str]]:
        # The node's own samples are few: rendered whole, then split into (HELP/TYPE, lines) per family
        # so one whose name a device family also has joins that family instead of repeating its head.
        text, self.invalid = render(self.internal)
        out: dict[str, tuple[str, str]] = {}
        name, head = "", ""
        lines: list[str] = []
        # Newlines in HELP and label values are escaped: a line starting "# HELP " opens a family.
        for line in text.decode("utf-8").splitlines(keepends=True):
            if line.startswith("# HELP "):
                if name:
                    out[name] = (head, "".join(lines))
                name, head, lines = line[7:].split(" ", 1)[0], line, []
            elif line.startswith("# TYPE "):
                head += line
            else:
                lines.append(line)
        if name:
            out[name] = (head, "".join(lines))
        return out

    def __iter__(self) -> Iterator[str]:
        own = self._internal_families()
        plans = [plan_of(s.layout) for s in self.sets]
        # Families in order of first appearance, device by device (prometheus_client's order).
        order: dict[str, str] = {}
        for families, invalid, _index in plans:
            self.invalid += invalid
            for fam in families:
                order.setdefault(fam[1], fam[0])
        parts: list[str] = []
        size = 0
        for metric, head in order.items():
            parts.append(head)
            for samples, (families, _invalid, index) in zip(self.sets, plans, strict=True):
                at = index.get(metric)
                if at is not None:
                    text = family_lines(families[at], samples.values)
                    parts.append(text)
                    size += len(text)
                    if size >= CHUNK:
                        yield "".join(parts)
                        parts, size = [], 0
            extra = own.pop(metric, None)
            if extra is not None:
                parts.append(extra[1])
        for head, lines in own.values():
            parts += (head, lines)
        total = self.count_invalid(self.invalid)
        parts.append(
            f"# HELP {INVALID_NAME} {self.invalid_help}\n# TYPE {INVALID_NAME} counter\n"
            f"{INVALID_NAME} {go_float(float(total))}\n"
        )
        yield "".join(parts)


def accepts_gzip(header: str) -> bool:
    """True if an Accept-Encoding header allows gzip (listed, or `*`, with a q-value above 0)."""
    allowed: dict[str, bool] = {}
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        allowed[coding.strip().lower()] = q > 0
    return allowed.get("gzip", allowed.get("*", False))


def encode(chunks: Iterable[str], gzip: bool) -> Iterator[bytes]:
    """The chunks as UTF-8, gzip-compressed as a stream when asked (one gzip member)."""
    if not gzip:
        for c in chunks:
            yield c.encode("utf-8")
        return
    z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for c in chunks:
        out = z.compress(c.encode("utf-8"))
        if out:
            yield out
    yield z.flush()
