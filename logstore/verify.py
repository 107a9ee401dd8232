"""Check a run of chained records and say precisely where the first (and later) problems are."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from logstore.record import chain_hash


@dataclass(slots=True)
class Problem:
    """One integrity problem: where (segment/file, index within it, seq) and what."""

    where: str
    index: int
    seq: int | None
    what: str

    def __str__(self) -> str:
        seq = "?" if self.seq is None else str(self.seq)
        return f"{self.where}: record #{self.index} (seq {seq}): {self.what}"


@dataclass(slots=True)
class Entry:
    """One record as read back: its seq, the chain hash stored with it and its recomputed leaf."""

    seq: int | None
    stored_hash: str | None
    leaf: str | None
    error: str | None = None  # unreadable line


@dataclass(slots=True)
class ChainCheck:
    """Result of checking a run: problems, leaves, and the chain state at the end."""

    problems: list[Problem] = field(default_factory=list)
    leaves: list[str] = field(default_factory=list)
    last_hash: str = ""
    last_seq: int = 0
    count: int = 0


def check_chain(
    entries: Iterable[Entry], where: str, prev_hash: str, prev_seq: int, max_problems: int = 20
) -> ChainCheck:
    """Walk entries in file order; after a problem, resynchronise on the stored hash to locate the next."""
    items = list(entries)
    out = ChainCheck(last_hash=prev_hash, last_seq=prev_seq)
    later: dict[int, int] = {}
    for i, entry in enumerate(items):
        if entry.seq is not None:
            later[entry.seq] = i
    for i, entry in enumerate(items):
        out.count += 1
        if len(out.problems) >= max_problems:
            break
        if entry.error is not None or entry.seq is None or entry.leaf is None or entry.stored_hash is None:
            out.problems.append(Problem(where, i, entry.seq, f"unreadable record ({entry.error})"))
            out.last_seq += 1
            continue
        out.leaves.append(entry.leaf)
        expected = out.last_seq + 1
        if entry.seq != expected:
            out.problems.append(Problem(where, i, entry.seq, _seq_problem(entry.seq, expected, i, later)))
        else:
            linked = chain_hash(out.last_hash, entry.leaf)
            if linked != entry.stored_hash:
                what = "content modified (record does not match its chain hash)"
                out.problems.append(Problem(where, i, entry.seq, what))
        out.last_hash = entry.stored_hash
        out.last_seq = max(out.last_seq, entry.seq)
    return out


def _seq_problem(seq: int, expected: int, index: int, later: dict[int, int]) -> str:
    if seq < expected:
        return f"inserted or duplicated record (seq {seq} after {expected - 1})"
    found = later.get(expected)
    if found is not None and found > index:
        return f"records reordered (seq {expected} expected here, found at #{found})"
    if found is not None:
        return f"inserted or duplicated record (seq {seq} after {expected - 1})"
    if seq == expected + 1:
        return f"record seq {expected} deleted"
    return f"records seq {expected}..{seq - 1} deleted"
