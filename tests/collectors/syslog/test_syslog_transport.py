"""The parse workers' answers through shared memory (or the pipe, when they do not fit) are exactly what
numbering the same frames in this process makes: store lines, leaves, tally and terms, byte for byte.

A seeded fuzz hands the pool random batches (several runs each, lists of frames and read blocks, with
up to three batches in flight, as the writer's pipeline has two) with regions small enough that some
answers take the pipe, and compares every answer with `logstore.batch.number` over `parse_frame`."""

from __future__ import annotations

import asyncio
import mmap
import random
from pathlib import Path

import pytest

from collectors.syslog.formats import load_formats
from collectors.syslog.framing import Framer, Lines
from collectors.syslog.parse import parse_frame
from collectors.syslog.parse_pool import Frames, Group, ParsePool, Pending, Run
from collectors.syslog.receiver import Ingest
from logstore.batch import Numbered, number
from logstore.store import LogStore
from tests.support import syslog_corpus

FORMATS = load_formats()
DEVICES = {"10.0.0.1": "fw1", "::1": "v6dev"}
ZONES = {"10.0.0.1": "Europe/Berlin"}
NOW = 1_719_806_400.0


def _groups(rnd: random.Random, texts: list[str], n: int) -> list[Group]:
    """`n` groups of frames: lists of corpus lines, or blocks of bench lines as a read makes them."""
    out: list[Group] = []
    for k in range(n):
        source = rnd.choice(syslog_corpus.SOURCES)
        ts = NOW + k * 0.25
        if rnd.random() < 0.4:
            lines = [
                syslog_corpus.BENCH.format(a=rnd.randrange(3), b=rnd.randrange(250), sp=1024 + i, n=i % 97)
                for i in range(rnd.randrange(1, 120))
            ]
            block = Framer().feed_block("".join(line + "\n" for line in lines).encode())
            assert isinstance(block, Lines) and len(block) == len(lines)
            # A block as the writer hands it out: whole, or the frames of it a batch took.
            frames: Frames = block
            if rnd.random() < 0.5:
                start = rnd.randrange(len(block))
                stop = rnd.randrange(start + 1, len(block) + 1)
                frames = block[start:stop]
                assert list(frames) == [line.encode() for line in lines[start:stop]]
        else:
            count = rnd.randrange(1, 60)
            frames = [rnd.choice(texts).encode("utf-8", "surrogateescape") for _ in range(count)]
        out.append((frames, ts, source, rnd.choice(("tcp", "udp"))))
    return [group for group in out if len(group[0])]


def _runs(rnd: random.Random, groups: list[Group], first: int) -> tuple[list[Run], int]:
    """The groups as runs of consecutive seqs from `first`, with a gap (an event's seq) between runs."""
    runs: list[Run] = []
    seq = first
    at = 0
    while at < len(groups):
        take = groups[at : at + rnd.randrange(1, 5)]
        runs.append((seq, take))
        seq += sum(len(group[0]) for group in take) + rnd.randrange(2)
        at += len(take)
    return runs, seq


def _expected(runs: list[Run]) -> list[Numbered]:
    out = []
    for first, groups in runs:
        recs = [
            parse_frame(raw, ts, source, transport, FORMATS, DEVICES, ZONES)
            for frames, ts, source, transport in groups
            for raw in frames
        ]
        out.append(number(recs, first))
    return out


def _flat(runs: list[Numbered]) -> list[tuple[object, ...]]:
    """One (first, lines, starts, leaves, tally, terms) per record-consecutive stretch: the workers
    split a batch's runs where its chunks end, so runs are compared record by record."""
    rows: list[tuple[object, ...]] = []
    for run in runs:
        lines = bytes(run.lines)
        ends = [*run.starts[1:], len(lines)]
        for k, (start, end) in enumerate(zip(run.starts, ends, strict=True)):
            rows.append((run.first + k, lines[start:end], bytes(run.leaves[32 * k : 32 * k + 32])))
    return rows


def _terms(runs: list[Numbered]) -> dict[str, list[int]]:
    merged: dict[str, list[int]] = {}
    for run in runs:
        for term, seqs in run.terms.items():
            merged.setdefault(term, []).extend(seqs)
    return {term: sorted(seqs) for term, seqs in merged.items()}


def _devices(runs: list[Numbered]) -> dict[str, int]:
    total: dict[str, int] = {}
    for run in runs:
        for name, n in run.tally.types.items():
            total[name] = total.get(name, 0) + n
    return total


@pytest.mark.parametrize("seed", [1, 2])
def test_answers_through_shared_memory_equal_numbering_in_process(seed: int) -> None:
    rnd = random.Random(seed)
    texts = syslog_corpus.texts(mutations=400, seed=seed)
    # 48 KiB regions: a chunk of a few dozen records fits, a larger one takes the pipe.
    pool = ParsePool(2, FORMATS, DEVICES, ZONES, region_size=48 * 1024)
    routes = {"region": 0, "pipe": 0}
    try:
        seq = 1
        for _ in range(12):
            depth = rnd.randrange(1, 4)  # batches in flight before the first of them is collected
            inflight: list[tuple[Pending, list[Run]]] = []
            for _ in range(depth):
                runs, seq = _runs(rnd, _groups(rnd, texts, rnd.randrange(1, 12)), seq)
                inflight.append((pool.submit(runs), runs))
            answers = []
            for pending, runs in inflight:
                got = pool.collect_numbered(pending)
                runs_got = [run for run in got if isinstance(run, Numbered)]
                assert len(runs_got) == len(got)
                for run in runs_got:
                    owner = run.lines.obj if isinstance(run.lines, memoryview) else run.lines
                    if isinstance(owner, mmap.mmap):
                        routes["region"] += 1
                    else:  # read into the slot's reused buffer: valid until its next collect
                        routes["pipe"] += 1
                        run.lines = bytearray(run.lines)
                answers.append((runs_got, runs))
            # The answers in regions stay intact while the later batches in flight are parsed (and
            # written to the worker's other region) and collected: until the next submit.
            for runs_got, runs in answers:
                want = _expected(runs)
                assert _flat(runs_got) == _flat(want)
                assert _terms(runs_got) == _terms(want)
                assert _devices(runs_got) == _devices(want)
                assert sum(run.count for run in runs_got) == sum(run.count for run in want)
        assert (pool.timeouts, pool.crashes, pool.restarts) == (0, 0, 0)
    finally:
        pool.close()
    assert routes["region"] > 0 and routes["pipe"] > 0, routes  # both transports were exercised


def _store_bytes(tmp_path: Path, name: str, groups: list[Group], workers: int) -> bytes:
    store = LogStore(tmp_path / name)

    async def main() -> None:
        ingest = Ingest(store, FORMATS, DEVICES, zones=ZONES, batch_max=300, parse_workers=workers)
        ingest.start()
        for k, (frames, ts, source, transport) in enumerate(groups):
            ingest.clock = lambda ts=ts: ts  # type: ignore[misc]  # the group's receive time
            ingest.submit_many(frames, source, transport)
            if k % 7 == 0:
                await asyncio.sleep(0)  # let the writer take batches of differing sizes
        await ingest.drain()
        await ingest.close()

    try:
        asyncio.run(main())
        assert store.verify() == [] and not store.sealed
        return (store.seg_dir / store.active.file).read_bytes()
    finally:
        store.close()


def test_a_store_written_from_worker_answers_is_byte_identical(tmp_path: Path) -> None:
    """The whole path (shared regions, the writer's chain filled in place) stores the same bytes as
    parsing in the writer's thread."""
    rnd = random.Random(5)
    groups = _groups(rnd, syslog_corpus.texts(mutations=200, seed=5), 120)
    in_thread = _store_bytes(tmp_path, "thread", groups, 0)
    assert in_thread.count(b"\n") >= sum(len(g[0]) for g in groups)
    assert _store_bytes(tmp_path, "workers", groups, 2) == in_thread
