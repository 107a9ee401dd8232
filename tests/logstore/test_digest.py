"""The store's SHA-256 work (logstore/digest.c with OpenSSL, logstore/digest.py its reference): byte for
byte the formulas of logstore/record.py that verification recomputes with hashlib, on random input; the
same exceptions for malformed arguments with nothing written; a whole store identical from both builds;
and the C module run under AddressSanitizer."""

from __future__ import annotations

import filecmp
import hashlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.native import EXT_SUFFIX
from logstore import digest
from logstore.batch import HASH_AT
from logstore.merkle import EMPTY_ROOT, merkle_root, merkle_root_of_digests
from logstore.native import NATIVE
from logstore.record import chain_hash, leaf_hash, meta_bytes
from logstore.store import LogStore
from tests.support.paths import ROOT
from tests.support.store_writer import write

STRICT = os.environ.get("GOVNET_STRICT") == "1"
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


REFERENCE = NATIVE.reference("digest")  # logstore/digest.py itself, whichever module logstore.digest is
BUILDS = {"imported": digest, "reference": REFERENCE}


def test_the_c_module_is_the_one_imported_when_built() -> None:
    """Under GOVNET_STRICT=1 (make test) the fresh C module is what the store uses, or this fails."""
    built = NATIVE.check().state == "compiled"
    if STRICT:
        assert built, NATIVE.check().reason
    if built and os.environ.get("GOVNET_NATIVE") != "0":
        assert str(digest.__file__).endswith(EXT_SUFFIX)
        assert digest.IMPLEMENTATION.startswith("C, OpenSSL 3")
    else:
        assert str(digest.__file__).endswith("digest.py")
    assert REFERENCE.IMPLEMENTATION == "Python, hashlib"


seqs = st.one_of(
    st.integers(min_value=0, max_value=10**6), st.integers(min_value=-(2**63), max_value=2**63 - 1)
)
texts = st.text(max_size=40)
bodies = st.one_of(st.binary(max_size=300), st.binary(min_size=9_000, max_size=10_000))


@SETTINGS
@given(seqs, texts, st.one_of(st.none(), texts), texts, bodies, st.binary(max_size=40))
def test_leaf_is_the_records_leaf_hash(
    seq: int, ts: str, device: str | None, event_type: str, body: bytes, before: bytes
) -> None:
    """leaf_into appends record.leaf_hash(meta, body_hash) as a digest, with the tail batch.Numberer
    passes (the leaf metadata's JSON after the seq), to whatever `out` held."""
    tail = meta_bytes([0, ts, device, event_type])[2:]
    want = leaf_hash([seq, ts, device, event_type], hashlib.sha256(body).hexdigest())
    for build in BUILDS.values():
        out = bytearray(before)
        build.leaf_into(out, seq, tail, body)
        assert out == before + bytes.fromhex(want)
        build.leaf_into(out, seq, memoryview(tail), bytearray(body))  # any bytes-like object
        assert out[-32:] == bytes.fromhex(want) and len(out) == len(before) + 64


@st.composite
def runs(draw: Any) -> tuple[bytes, bytes, bytearray, list[int], int]:
    """A run to chain: prev, leaves, lines and the offsets of each line's hash (anywhere in range,
    overlapping or not), and hash_at."""
    hash_at = draw(st.sampled_from((0, HASH_AT, 17)))
    size = draw(st.one_of(st.integers(64 + hash_at, 400), st.integers(5_000, 6_000)))
    lines = bytearray(draw(st.binary(min_size=size, max_size=size)))
    starts = draw(st.lists(st.integers(0, size - 64 - hash_at), max_size=200))
    leaves = draw(st.binary(min_size=32 * len(starts), max_size=32 * len(starts)))
    prev = draw(st.binary(min_size=32, max_size=32))
    return prev, leaves, lines, starts, hash_at


@SETTINGS
@given(runs())
def test_chain_is_record_chain_hash_written_into_the_lines(
    run: tuple[bytes, bytes, bytearray, list[int], int],
) -> None:
    prev, leaves, lines, starts, hash_at = run
    want_lines = bytearray(lines)
    link = prev.hex()
    for i, start in enumerate(starts):
        link = chain_hash(link, leaves[32 * i : 32 * i + 32].hex())
        want_lines[start + hash_at : start + hash_at + 64] = link.encode()
    for build in BUILDS.values():
        got_lines = bytearray(lines)
        assert build.chain(prev, leaves, got_lines, starts, hash_at).hex() == link
        assert got_lines == want_lines
        view = memoryview(bytearray(lines))  # Numbered.lines may be a writable memoryview
        assert build.chain(bytearray(prev), bytearray(leaves), view, list(starts), hash_at).hex() == link
        assert view == want_lines


@SETTINGS
@given(st.one_of(st.integers(0, 70), st.sampled_from((127, 128, 129, 1000, 4097))), st.randoms())
def test_merkle_root_packed_is_the_merkle_root(n: int, rng: Any) -> None:
    """Every leaf count (odd ones promote their last node at each level), against merkle.py's hashlib
    tree over the digests and over their hex."""
    leaves = [rng.randbytes(32) for _ in range(n)]
    want = merkle_root_of_digests(leaves)
    assert merkle_root([leaf.hex() for leaf in leaves]) == want
    if n == 0:
        assert want == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()
    packed = b"".join(leaves)
    for build in BUILDS.values():
        assert build.merkle_root_packed(packed) == want
        assert build.merkle_root_packed(bytearray(packed)) == want


_P, _L = bytes(32), bytes(64)


def _lines() -> bytearray:
    return bytearray(b"x" * 300)


# (function, arguments, exception): each argument wrong in one way; `lines` must stay as it was.
MALFORMED: list[tuple[str, tuple[Any, ...], type[Exception]]] = [
    ("leaf_into", (b"", 1, b"", b""), TypeError),  # out is not a bytearray
    ("leaf_into", (bytearray(), 1.0, b"", b""), TypeError),
    ("leaf_into", (bytearray(), "1", b"", b""), TypeError),
    ("leaf_into", (bytearray(), 2**63, b"", b""), ValueError),
    ("leaf_into", (bytearray(), -(2**63) - 1, b"", b""), ValueError),
    ("leaf_into", (bytearray(), 1, "tail", b""), TypeError),
    ("leaf_into", (bytearray(), 1, b"", "body"), TypeError),
    ("leaf_into", (bytearray(), 1, b"", None), TypeError),
    ("leaf_into", (bytearray(), 1, memoryview(b"abcd")[::2], b""), TypeError),  # not contiguous
    ("chain", (_P, _L, _lines(), (0, 1), 6), TypeError),  # starts not a list
    ("chain", (_P, _L, _lines(), [0, 1.0], 6), TypeError),
    ("chain", (_P, _L, _lines(), [0, None], 6), TypeError),
    ("chain", (_P, _L, _lines(), [0, 1], 6.0), TypeError),
    ("chain", (_P, _L, _lines(), [0, 1], -1), ValueError),
    ("chain", (_P, _L, _lines(), [0, 1], 2**64), ValueError),
    ("chain", (_P, _L, _lines(), [0, 300 - 64 - 6 + 1], 6), ValueError),  # the hash would run past the end
    ("chain", (_P, _L, _lines(), [0, -1], 6), ValueError),
    ("chain", (_P, _L, _lines(), [0, 2**64], 6), ValueError),
    ("chain", (_P, _L, _lines(), [0, -(2**64)], 6), ValueError),
    ("chain", (_P, _L, _lines(), [0, 1], 300 - 64 + 1), ValueError),
    ("chain", (_P, _L, bytearray(10), [0, 1], 0), ValueError),  # lines shorter than one hash
    ("chain", (_P[:31], _L, _lines(), [0, 1], 6), ValueError),
    ("chain", (_P + b"x", _L, _lines(), [0, 1], 6), ValueError),
    ("chain", (_P, _L[:63], _lines(), [0, 1], 6), ValueError),  # not 32 bytes a leaf
    ("chain", (_P, _L + _P, _lines(), [0, 1], 6), ValueError),  # a leaf more than starts
    ("chain", (_P, _L, _lines(), [0], 6), ValueError),  # a start fewer than leaves
    ("chain", ("x" * 32, _L, _lines(), [0, 1], 6), TypeError),
    ("chain", (_P, "x" * 64, _lines(), [0, 1], 6), TypeError),
    ("chain", (_P, _L, bytes(300), [0, 1], 6), TypeError),  # read-only lines
    ("chain", (_P, _L, memoryview(bytes(300)), [0, 1], 6), TypeError),
    ("chain", (_P, _L, memoryview(bytearray(600))[::2], [0, 1], 6), TypeError),  # not contiguous
    ("chain", (_P, _L, "x" * 300, [0, 1], 6), TypeError),
    ("merkle_root_packed", (bytes(33),), ValueError),
    ("merkle_root_packed", (bytes(31),), ValueError),
    ("merkle_root_packed", ("x" * 64,), TypeError),
    ("merkle_root_packed", (None,), TypeError),
]


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize(("name", "args", "error"), MALFORMED)
def test_malformed_arguments_raise_and_write_nothing(
    build: str, name: str, args: tuple[Any, ...], error: type[Exception]
) -> None:
    before = [bytes(arg) if isinstance(arg, bytearray) else None for arg in args]
    with pytest.raises(error):
        getattr(BUILDS[build], name)(*args)
    after = [bytes(arg) if isinstance(arg, bytearray) else None for arg in args]
    assert after == before  # an error leaves `lines` (and `out`) as they were


@pytest.mark.parametrize("build", BUILDS)
def test_wrong_argument_counts_raise_type_error(build: str) -> None:
    for name, args in (
        ("leaf_into", (bytearray(), 1, b"")),
        ("chain", (_P, _L, _lines(), [0, 1])),
        ("merkle_root_packed", ()),
        ("merkle_root_packed", (b"", b"")),
    ):
        with pytest.raises(TypeError):
            getattr(BUILDS[build], name)(*args)


@pytest.mark.parametrize("build", BUILDS)
def test_an_exported_bytearray_is_not_resized(build: str) -> None:
    """`out` with a live memoryview cannot grow (as `+=` on it fails): BufferError, nothing appended."""
    out = bytearray(b"abc")
    view = memoryview(out)
    with pytest.raises(BufferError):
        BUILDS[build].leaf_into(out, 1, b"", b"")
    view.release()
    assert out == b"abc"


def test_a_store_is_byte_identical_from_both_builds(tmp_path: Path) -> None:
    """The same records through every append path (records, runs numbered ahead, renumbered runs,
    sealing and compression) give the same files from this process's build and from the Python
    sources (GOVNET_NATIVE=0), and both verify."""
    here, there = tmp_path / "imported", tmp_path / "python"
    write(here)
    env = {**os.environ, "GOVNET_NATIVE": "0"}
    subprocess.run(
        [sys.executable, "-m", "tests.support.store_writer", str(there)], cwd=ROOT, env=env, check=True
    )
    names = sorted(p.name for p in (here / "segments").iterdir())
    assert names == sorted(p.name for p in (there / "segments").iterdir())
    assert len([n for n in names if n.endswith(".meta.json")]) >= 5  # sealed segments with Merkle roots
    match, mismatch, errors = filecmp.cmpfiles(here / "segments", there / "segments", names, shallow=False)
    assert (mismatch, errors) == ([], []) and len(match) == len(names)
    for root in (here, there):
        reader = LogStore(root, readonly=True)
        assert reader.verify() == []
        assert [rec["seq"] for rec, _ in reader.iter_records()] == list(range(1, reader.last_seq + 1))


# Run in a fresh interpreter with the C module built with AddressSanitizer (and UBSan): seeded random
# calls against the reference, the edges of every bound, and the malformed arguments above.
_ASAN_PROBE = r"""
import importlib.util, random, sys
spec = importlib.util.spec_from_file_location("logstore.digest", sys.argv[1])
c = importlib.util.module_from_spec(spec)
spec.loader.exec_module(c)
from tests.logstore.test_digest import MALFORMED, REFERENCE as py
rng = random.Random(7)
for n in [*range(0, 40), 1001, 4096, 4097]:
    packed = rng.randbytes(32 * n)
    assert c.merkle_root_packed(packed) == py.merkle_root_packed(packed), n
for i in range(3000):
    body, tail = rng.randbytes(rng.choice((0, 1, 63, 64, 65, 500, 70000))), rng.randbytes(rng.randrange(80))
    seq = rng.choice((0, 1, -1, 2**63 - 1, -(2**63), rng.randrange(10**12)))
    a, b = bytearray(), bytearray()
    c.leaf_into(a, seq, tail, body)
    py.leaf_into(b, seq, tail, body)
    assert a == b
for size in (64, 65, 70, 127, 128, 1000):
    for hash_at in (0, 6, size - 64):
        last = size - 64 - hash_at
        if last < 0:
            continue
        starts = [0, last, *(rng.randrange(last + 1) for _ in range(50))]
        leaves, prev = rng.randbytes(32 * len(starts)), rng.randbytes(32)
        lines = bytearray(rng.randbytes(size))
        other = bytearray(lines)
        assert c.chain(prev, leaves, lines, starts, hash_at) == py.chain(prev, leaves, other, starts, hash_at)
        assert lines == other
failed = 0
for name, args, error in MALFORMED:
    try:
        getattr(c, name)(*args)
    except error:
        failed += 1
print("asan ok", failed, len(MALFORMED))
"""


def test_the_c_module_under_address_sanitizer(tmp_path: Path) -> None:
    """No read or write outside the buffers, no undefined behaviour (ASan + UBSan abort on the first)."""
    if not STRICT and NATIVE.check().state != "compiled":
        assert str(digest.__file__).endswith("digest.py")  # nothing built here: the reference runs
        return
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    libasan = subprocess.run(
        [*cc, "-print-file-name=libasan.so"], capture_output=True, text=True
    ).stdout.strip()
    assert Path(libasan).is_file(), "the C compiler has no AddressSanitizer runtime"
    ext = tmp_path / f"digest{EXT_SUFFIX}"
    subprocess.run(
        [*cc, "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", f"-I{sysconfig.get_paths()['include']}",
         str(NATIVE.folder / "digest.c"), "-lcrypto", "-o", str(ext)],
        check=True,
    )  # fmt: skip
    env = {
        **os.environ,
        "LD_PRELOAD": libasan,
        "ASAN_OPTIONS": "detect_leaks=0",  # CPython's own allocations at exit are not ours
        "PYTHONMALLOC": "malloc",  # every Python object on malloc: ASan's red zones around each
        "GOVNET_NATIVE": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _ASAN_PROBE, str(ext)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.split() == ["asan", "ok", str(len(MALFORMED)), str(len(MALFORMED))]
