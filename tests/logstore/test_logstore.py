"""The tamper-evident store: durability, torn tails, rotation, retention; tampering detected and located."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from logstore.batch import number
from logstore.record import iso_utc, new_record
from logstore.search import index_rows
from logstore.store import LogStore, StoreConfig
from logstore.verify import Problem
from tests.support.require import require_root

N = 21_500  # records in the tamper fixture: several sealed gzip segments plus an active one
T0 = 1_760_000_000.0


class Clock:
    """A settable clock (seconds since the epoch)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fill(store: LogStore, count: int, clock: Clock, batch: int = 1000, step: float = 0.01) -> None:
    """Append `count` realistic firewall records in batches, advancing the clock."""
    done = 0
    while done < count:
        recs = []
        for i in range(done, min(count, done + batch)):
            clock.now += step
            recs.append(
                new_record(
                    device=f"fw{i % 3}",
                    event_type="policy_deny" if i % 2 else "policy_permit",
                    src_ip=f"10.0.{i % 250}.{i % 200}",
                    dst_port=443,
                    msg=f"policy {'deny' if i % 2 else 'permit'} rule r{i % 17} message {i}",
                    raw="PDE5MD4=",
                )
            )
        store.append_batch(recs)
        done += len(recs)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    clock = Clock(T0)
    store = LogStore(root, StoreConfig(max_segment_bytes=1_000_000), clock=clock)
    fill(store, N, clock)
    store.close()
    return root


@pytest.fixture
def copy(template: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(template, dst)
    return dst


def active_file(root: Path) -> Path:
    return sorted((root / "segments").glob("seg-*.ndjson"))[-1]


def first_sealed(root: Path) -> Path:
    return sorted((root / "segments").glob("seg-*.ndjson.gz"))[0]


def rewrite(path: Path, edit: object) -> None:
    """Apply edit(lines) -> lines to a plain or gzip segment file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        lines = fh.read().splitlines(keepends=True)
    lines = edit(lines)  # type: ignore[operator]
    with opener(path, "wb") as fh:
        fh.write(b"".join(lines))


def problems_of(root: Path) -> list[Problem]:
    store = LogStore(root)
    try:
        return store.verify()
    finally:
        store.close()


def test_fixture_is_clean_and_rotated(template: Path) -> None:
    store = LogStore(template)
    try:
        segs = store.segments()
        assert len(segs) >= 4, "expected several sealed segments"
        assert all(s.file.endswith(".gz") for s in segs[:-1])
        assert store.last_seq == N
        assert store.verify() == []
        seqs = [rec["seq"] for rec, _ in store.iter_records()]
        assert seqs == list(range(1, N + 1))
    finally:
        store.close()


def test_flip_one_byte_is_detected_and_located(copy: Path) -> None:
    k = 123
    path = active_file(copy)

    def edit(lines: list[bytes]) -> list[bytes]:
        line = bytearray(lines[k])
        pos = line.index(b"message ") + len(b"message ")
        line[pos] = ord("9") if line[pos] != ord("9") else ord("8")  # one byte, JSON stays valid
        lines[k] = bytes(line)
        return lines

    rewrite(path, edit)
    problems = problems_of(copy)
    assert problems, "a flipped byte went unnoticed"
    first = problems[0]
    assert first.where == path.name.removesuffix(".ndjson")
    assert first.index == k
    assert "modified" in first.what


def test_flip_byte_in_sealed_compressed_segment(copy: Path) -> None:
    path = first_sealed(copy)

    def edit(lines: list[bytes]) -> list[bytes]:
        lines[500] = lines[500].replace(b'"dst_port":443', b'"dst_port":444')
        return lines

    rewrite(path, edit)
    problems = problems_of(copy)
    assert problems[0].index == 500 and problems[0].seq == 501
    assert any("Merkle root" in p.what for p in problems)


def test_deleted_record_is_detected_and_located(copy: Path) -> None:
    path = active_file(copy)
    first_seq = int(path.name.split("-")[1].split(".")[0])
    rewrite(path, lambda lines: lines[:200] + lines[201:])
    problems = problems_of(copy)
    assert problems[0].index == 200
    assert problems[0].seq == first_seq + 201
    assert f"seq {first_seq + 200} deleted" in problems[0].what


def test_swapped_records_are_detected_and_located(copy: Path) -> None:
    path = active_file(copy)
    first_seq = int(path.name.split("-")[1].split(".")[0])

    def edit(lines: list[bytes]) -> list[bytes]:
        lines[300], lines[301] = lines[301], lines[300]
        return lines

    rewrite(path, edit)
    problems = problems_of(copy)
    assert problems[0].index == 300
    assert "reordered" in problems[0].what and str(first_seq + 300) in problems[0].what


def test_inserted_record_is_detected_and_located(copy: Path) -> None:
    path = active_file(copy)

    def edit(lines: list[bytes]) -> list[bytes]:
        forged = json.loads(lines[400])
        forged["r"]["msg"] = "forged entry"
        return [*lines[:401], json.dumps(forged).encode() + b"\n", *lines[401:]]

    rewrite(path, edit)
    problems = problems_of(copy)
    assert problems[0].index == 401
    assert "inserted" in problems[0].what


def test_torn_tail_is_cut_and_recorded(copy: Path) -> None:
    path = active_file(copy)
    with path.open("ab") as fh:
        fh.write(b'{"h":"abc","r":{"seq":999999,"ms')  # a write torn by a crash
    store = LogStore(copy)
    try:
        assert store.verify() == []
        events = [rec for rec, _ in store.iter_records() if rec["event_type"] == "store"]
        assert [e["action"] for e in events] == ["torn_tail"]
        assert events[0]["seq"] == N + 1  # the gap-free sequence continues after the last durable record
    finally:
        store.close()


def test_unclean_shutdown_is_recorded(tmp_path: Path) -> None:
    clock = Clock(T0)
    store = LogStore(tmp_path, clock=clock)
    fill(store, 10, clock)
    # no close(): as after kill -9 (which also drops the process's writer lock)
    store._fh.close()
    assert store._writer_lock is not None
    store._writer_lock.release()
    reopened = LogStore(tmp_path, clock=clock)
    try:
        recs = [rec for rec, _ in reopened.iter_records()]
        assert recs[-1]["action"] == "unclean_shutdown" and recs[-1]["seq"] == 11
        assert reopened.verify() == []
    finally:
        reopened.close()


def test_acknowledged_seqs_are_gap_free_and_durable(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    got = []
    for _ in range(5):
        got += store.append_batch([new_record(msg=str(i)) for i in range(7)])
    assert got == list(range(1, 36))
    assert store.metrics["fsyncs_total"] == 5  # one fsync per batch (group commit)
    store.close()


def test_retention_by_age_keeps_chain_verifiable(tmp_path: Path) -> None:
    clock = Clock(T0)
    store = LogStore(tmp_path, StoreConfig(max_segment_bytes=50_000, retention_days=180), clock=clock)
    fill(store, 2000, clock, batch=100, step=0.01)
    old_segments = len(store.sealed)
    clock.now += 200 * 86400  # 200 days later: everything so far is too old
    fill(store, 100, clock, batch=100)
    notes = store.housekeeping(clock.now)
    assert old_segments >= 3 and notes
    cutoff = iso_utc(clock.now - 180 * 86400)
    assert all(seg.max_ts >= cutoff for seg in store.sealed)
    assert len(store.sealed) < old_segments
    removed = [rec for rec, _ in store.iter_records() if rec["action"] == "segment_removed"]
    assert len(removed) == len(notes) and "older than 180 days" in removed[0]["msg"]
    assert store.verify() == []
    store.close()
    assert LogStore(tmp_path).verify() == []


def test_budget_warns_before_removing(tmp_path: Path) -> None:
    clock = Clock(T0)
    store = LogStore(tmp_path, StoreConfig(max_segment_bytes=30_000, budget_bytes=10**9), clock=clock)
    fill(store, 1000, clock, batch=100)
    used = store.disk_bytes()
    store.config.budget_bytes = int(used / 0.85)  # 85% used: warn, remove nothing
    assert store.housekeeping(clock.now)
    actions = [rec["action"] for rec, _ in store.iter_records() if rec["event_type"] == "store"]
    assert actions == ["budget_warning"]
    assert store.metrics["budget_warning"] == 1
    store.config.budget_bytes = used // 2  # now over budget: oldest sealed segments go, each recorded
    store.housekeeping(clock.now)
    assert store.disk_bytes() <= used // 2 or not store.sealed
    actions = [rec["action"] for rec, _ in store.iter_records() if rec["event_type"] == "store"]
    assert "segment_removed" in actions
    assert store.verify() == []
    store.close()


def test_disk_full_fails_the_batch_and_keeps_the_store_consistent(tmp_path: Path) -> None:
    """A real full filesystem (a 256 KiB tmpfs): the failing batch is not acknowledged, nothing is torn."""
    require_root()
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    try:
        store = LogStore(mnt / "store", StoreConfig(compress=False))
        acked: list[int] = []
        with pytest.raises(OSError):
            for i in range(10_000):
                acked += store.append_batch([new_record(msg=f"line {i} " + "x" * 200) for _ in range(10)])
        assert acked == list(range(1, len(acked) + 1)) and acked
        assert store.last_seq == acked[-1]
        assert store.verify() == []
        # Give the filesystem room again: the same store object must carry on without a gap.
        subprocess.run(["mount", "-o", "remount,size=2m", str(mnt)], check=True)
        more = store.append_batch([new_record(msg="after recovery")])
        assert more == [acked[-1] + 1]
        store.close()
        reopened = LogStore(mnt / "store")
        assert reopened.verify() == [] and reopened.last_seq == more[0]
        reopened.close()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_query_by_time_device_type_uses_segment_index(template: Path) -> None:
    store = LogStore(template)
    try:
        start, end = iso_utc(T0 + 50.0), iso_utc(T0 + 60.0)  # records 5000..5999 (0.01 s apart)
        got = list(store.iter_records(start, end, device="fw1", event_type="policy_deny"))
        assert got and all(r["device"] == "fw1" and r["event_type"] == "policy_deny" for r, _ in got)
        assert all(start <= r["recv_ts"] < end for r, _ in got)
        skipped = [s for s in store.segments() if not s.may_hold(start, end, "fw1", "policy_deny")]
        assert len(skipped) >= len(store.segments()) - 2  # the index rules out the other segments
        assert not any(s.may_hold(start, end, "no-such-device", None) for s in store.segments())
    finally:
        store.close()


def test_canonical_bytes_equal_the_standard_library_encoding() -> None:
    """The store hashes orjson's bytes; an auditor recomputes them with `json.dumps`: they must agree."""
    from logstore.record import canonical, canonical_stdlib, meta_bytes

    tricky = "".join(chr(c) for c in range(0x80)) + "\u2028\u2029\ufeff\x7f中文\U0001f600\ue000\uffff\\\"'"
    for i in range(0, len(tricky), 7):
        rec = new_record(
            seq=2**63 - 1 - i, recv_ts=iso_utc(1.7e9 + i), msg=tricky[i:] + tricky[:i],
            user=tricky[i : i + 3], flags=["unknown_source", tricky[i : i + 5]], src_port=i, severity=-i,
        )  # fmt: skip
        assert canonical(rec) == canonical_stdlib(rec)
        meta = [rec["seq"], rec["recv_ts"], rec["msg"], None]
        assert meta_bytes(meta) == json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode()
    huge = new_record(seq=2**70, msg="beyond 64 bits: the standard library encodes it")
    assert canonical(huge) == canonical_stdlib(huge)


def test_numbered_runs_are_stored_as_records_are(tmp_path: Path) -> None:
    """Runs numbered ahead (as parse workers number them) give the store the bytes, chain, segment
    index and Merkle roots the same records appended whole give, also when the seqs they were numbered
    with moved on (an audit record appended in between): the writer renumbers them."""
    clock_a, clock_b = Clock(T0), Clock(T0)
    a = LogStore(tmp_path / "a", StoreConfig(max_segment_bytes=30_000), clock=clock_a)
    b = LogStore(tmp_path / "b", StoreConfig(max_segment_bytes=30_000), clock=clock_b)

    def recs(k: int, n: int) -> list[dict[str, object]]:
        return [
            new_record(recv_ts=iso_utc(T0 + k + i / 7), device=f"fw{i % 3}" if i % 5 else None,
                       event_type=("policy_deny", "store", "audit", "system")[i % 4],
                       src_ip=f"10.0.0.{i % 4}", user="" if i % 2 else "张三", msg=f"m {k} {i}")
            for i in range(n)
        ]  # fmt: skip

    moved = 0
    for k in range(40):
        batch = recs(k, 1 + k % 9)
        ahead = b.last_seq + 1  # the seqs the run is numbered with when it is handed out
        run = number([dict(r) for r in batch], ahead)
        if k % 3 == 0:  # an audit record lands between hand-out and commit, in both stores
            audit = new_record(recv_ts=iso_utc(T0 + k), event_type="audit", action="export", msg="x")
            a.append(dict(audit))
            b.append(dict(audit))
            moved += len(batch)
        a.append_batch(batch)
        b.append_batch([run])
    assert b.metrics["renumbered_total"] == moved > 0
    assert (a.last_seq, a.last_hash) == (b.last_seq, b.last_hash)
    a.close()
    b.close()
    files_a = sorted(p.name for p in (tmp_path / "a" / "segments").iterdir())
    assert len([f for f in files_a if f.endswith(".gz")]) >= 3
    assert files_a == sorted(p.name for p in (tmp_path / "b" / "segments").iterdir())
    for name in files_a:
        path_a, path_b = tmp_path / "a" / "segments" / name, tmp_path / "b" / "segments" / name
        data_a, data_b = path_a.read_bytes(), path_b.read_bytes()
        if name.endswith(".gz"):
            data_a, data_b = gzip.decompress(data_a), gzip.decompress(data_b)
        if name.endswith(".idx"):  # SQLite files may differ in page layout, not in rows
            assert index_rows(path_a) == index_rows(path_b)
        else:
            assert data_a == data_b, name
    for root in (tmp_path / "a", tmp_path / "b"):
        reader = LogStore(root, readonly=True)
        assert reader.verify() == []
        seqs = [rec["seq"] for rec, _ in reader.iter_records()]
        assert seqs == list(range(1, len(seqs) + 1))
