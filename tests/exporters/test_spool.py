"""The durable spool on its own: order, ack persistence, torn tails, the byte cap and exact drop counts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exporters.spool import MAGIC, Spool, SpoolError


def lines(start: int, n: int) -> list[bytes]:
    return [f"m,device=d{i % 3} value={i} {1_000_000 + i}".encode() for i in range(start, start + n)]


def drain(spool: Spool) -> list[bytes]:
    got: list[bytes] = []
    while (rec := spool.peek()) is not None:
        got.extend(rec.body.split(b"\n"))
        spool.ack(rec.ref)
    return got


def test_fifo_order_across_segments_and_segments_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    for i in range(0, 1000, 50):
        assert spool.append(lines(i, 50)) == 50
    assert spool.points == 1000
    assert len(list(tmp_path.glob("seg-*.spool"))) > 3
    assert drain(spool) == lines(0, 1000)
    assert spool.points == 0 and spool.bytes == 0 and spool.acked_points == 1000
    assert len(list(tmp_path.glob("seg-*.spool"))) == 1  # only the active one remains
    spool.close()


def test_reopen_resumes_after_last_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    for i in range(0, 300, 30):
        spool.append(lines(i, 30))
    for _ in range(4):
        rec = spool.peek()
        assert rec is not None
        spool.ack(rec.ref)
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    assert again.points == 180
    assert drain(again) == lines(120, 180)
    again.close()


def test_torn_tail_is_cut_off_and_earlier_records_survive(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(lines(0, 10))
    spool.append(lines(10, 10))
    spool.close()
    [seg] = sorted(tmp_path.glob("seg-*.spool"))
    size = seg.stat().st_size
    with open(seg, "r+b") as fh:  # a crash in the middle of the second record's write
        fh.truncate(size - 7)
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert again.points == 10
    assert again.discarded_tail_bytes > 0
    assert drain(again) == lines(0, 10)
    again.close()


def test_flipped_byte_fails_crc(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(lines(0, 5))
    spool.append(lines(5, 5))
    spool.close()
    [seg] = sorted(tmp_path.glob("seg-*.spool"))
    data = bytearray(seg.read_bytes())
    data[-3] ^= 0xFF
    seg.write_bytes(bytes(data))
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert drain(again) == lines(0, 5)
    again.close()


def test_cap_drops_oldest_and_counts_points_exactly(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=20_000, segment_bytes=2_000)
    total = 0
    for i in range(0, 3000, 25):
        spool.append(lines(i, 25))
        total += 25
        assert spool.bytes <= 20_000
    kept = drain(spool)
    assert spool.dropped_points > 0
    assert len(kept) + spool.dropped_points == total
    # What survives is the newest, contiguous, in order.
    assert kept == lines(3000 - len(kept), len(kept))
    spool.close()


def test_inflight_record_dropped_by_cap_counts_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=6_000, segment_bytes=1_000)
    spool.append(lines(0, 20))
    rec = spool.peek()
    assert rec is not None
    for i in range(20, 400, 20):  # overflow while the first record is being sent
        spool.append(lines(i, 20))
    dropped_before = spool.dropped_points
    spool.release(rec.ref)  # the send failed: now it is lost, and counted
    assert spool.dropped_points == dropped_before + 20
    kept = drain(spool)
    assert len(kept) + spool.dropped_points == 400

    rec2_spool = Spool(tmp_path / "b", max_bytes=6_000, segment_bytes=1_000)
    rec2_spool.append(lines(0, 20))
    rec2 = rec2_spool.peek()
    assert rec2 is not None
    for i in range(20, 400, 20):
        rec2_spool.append(lines(i, 20))
    rec2_spool.ack(rec2.ref)  # the send succeeded: written, not dropped
    kept2 = drain(rec2_spool)
    assert 20 + len(kept2) + rec2_spool.dropped_points == 400
    spool.close()
    rec2_spool.close()


def test_batch_bigger_than_cap_is_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=65_536)
    assert spool.append([b"x" * 100] * 1000) == 0
    assert spool.dropped_points == 1000 and spool.points == 0
    spool.close()


def test_one_process_per_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path, max_bytes=1 << 20)
    spool.close()
    Spool(tmp_path, max_bytes=1 << 20).close()


def test_segment_header_and_fsync_visible_to_a_reader(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(lines(0, 3))
    [seg] = sorted(tmp_path.glob("seg-*.spool"))
    raw = seg.read_bytes()
    assert raw.startswith(MAGIC) and raw.endswith(lines(0, 3)[-1])
    assert os.stat(seg).st_mode & 0o077 == 0
    spool.close()
