"""The append path's byte-exactness: segments written with O_DIRECT blocks hold exactly the bytes plain
appends give, and segments compressed as they are appended equal `compress_segment` of their file."""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import pytest

from logstore.record import new_record
from logstore.segment import BLOCK, DIRECT_MIN, Appender, compress_segment
from logstore.store import LogStore, StoreConfig

SIZES = [0, 1, 100, BLOCK - 1, BLOCK, BLOCK + 1, 5000, DIRECT_MIN - 1, DIRECT_MIN + 7, 200_000]


@pytest.mark.parametrize("seed", range(4))
def test_appender_writes_what_plain_appends_write(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    path = tmp_path / "seg.ndjson"
    appender = Appender(path)
    # The direct path is what is under test: a filesystem refusing O_DIRECT (tmpfs) would test only
    # the buffered fallback, so say so instead of passing.
    assert appender._direct >= 0, f"{tmp_path} refuses O_DIRECT: run the tests with TMPDIR on a disk"
    want = bytearray()
    directs = 0
    for _ in range(25):
        pieces: list[bytes | bytearray | memoryview] = [
            os.urandom(rnd.choice(SIZES)) for _ in range(rnd.randint(1, 4))
        ]
        if rnd.random() < 0.3:
            pieces = [memoryview(bytearray(p)) for p in pieces]  # the writer hands views of its buffers
        appender.write(pieces)
        directs += appender.staged is not None
        want += b"".join(pieces)
        assert appender.size == len(want)
        if rnd.random() < 0.3:  # reopened (a restart): the partial last block is read back
            appender.sync()
            appender.close()
            appender = Appender(path)
        assert path.read_bytes() == want  # what a reader sees after each append, durable or not
    appender.sync()
    appender.close()
    assert path.read_bytes() == want
    assert directs > 0  # some appends went out as direct blocks


@pytest.mark.parametrize("seed", range(3))
def test_segments_compressed_on_append_equal_compress_segment(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    root = tmp_path / "store"
    store = LogStore(root, StoreConfig(max_segment_bytes=1_000_000, compress_in_background=seed % 2 == 0))
    for _ in range(40):
        # Batches below and above the direct-write threshold; lines longer than a compression block.
        size = rnd.choice([10, 300, 900, 5000, 70_000, 300_000])
        count = min(rnd.choice([1, 5, 60, 200, 2000]), 1 + 600_000 // size)
        store.append_batch([new_record(msg="m" * size + str(i), event_type="other") for i in range(count)])
    store.close()
    sealed = sorted((root / "segments").glob("seg-*.ndjson.gz"))
    assert len(sealed) >= 4
    for gz in sealed:
        plain = tmp_path / "plain"
        plain.write_bytes(gzip.decompress(gz.read_bytes()))
        ref = tmp_path / "ref.gz"
        blocks = compress_segment(plain, ref, 1)
        meta = json.loads((gz.parent / gz.name.replace(".ndjson.gz", ".meta.json")).read_text())
        assert ref.read_bytes() == gz.read_bytes(), gz.name
        assert meta["blocks"] == blocks, gz.name
    assert not list((root / "segments").glob("*.tmp"))  # the active segment's partial output is gone
    reopened = LogStore(root)
    try:
        assert reopened.verify() == []
    finally:
        reopened.close()
