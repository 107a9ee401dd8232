"""Poller workers: a real `govnet run` with `scheduler.workers: 2` polling the lab; kill -9 of a worker
moves its devices to the other at once (govnet_up stays 1), and the worker comes back and takes its
share again. Plus the wire format between worker and supervisor."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.workers import SampleBatcher, read_frame
from core.samples import Sample
from tests.support.govnet_run import GovnetNode, polling_lab, wait_for

HOST = "127.61.0.2"
LAB_BASE = "127.61.2.0"
N_DEVICES = 12


def test_batches_round_trip_with_help_sent_once() -> None:
    frames: list[bytes] = []
    batcher = SampleBatcher(frames.append, max_devices=2)
    labels = (("device", "r1"), ("site", "ncc"))
    for i in range(3):
        batcher.publish(f"r{i}", [Sample("govnet_up", labels, 1.0, 5.0, "gauge", "up?")])
    batcher.flush()
    assert len(frames) == 2  # two devices per frame, then the rest

    async def decode() -> list[Any]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"".join(frames))
        reader.feed_eof()
        return [await read_frame(reader), await read_frame(reader)]

    first, second = asyncio.run(decode())
    assert first[0] == "samples" and first[1] == {"govnet_up": "up?"} and second[1] == {}
    assert [d for d, _ in first[2] + second[2]] == ["r0", "r1", "r2"]
    assert first[2][0][1] == [("govnet_up", labels, 1.0, 5.0, "gauge")]


def test_sample_sets_cross_the_pipe_with_their_layout_sent_once() -> None:
    from array import array

    from collectors.workers import WorkerPool, _Worker
    from core.samples import SampleSet

    def poll(value: float) -> SampleSet:
        labels = (("device", "r1"), ("ifname", "Gi0/1"), ("site", "ncc"))
        return SampleSet.of(
            [
                Sample("govnet_if_in_octets_total", labels, value, 5.0, "counter", "in"),
                Sample("govnet_up", labels[:1] + labels[2:], 1.0, 5.0, "gauge", "up?"),
            ]
        )

    first = poll(1.0)
    second = SampleSet(first.layout, array("d", [2.0, 1.0]), 6.0)
    changed = poll(3.0)  # an equal but new layout object: sent again
    frames: list[bytes] = []
    batcher = SampleBatcher(frames.append, max_devices=1)
    for ss in (first, second, changed):
        batcher.publish("r1", ss)

    async def decode() -> list[Any]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"".join(frames))
        reader.feed_eof()
        return [await read_frame(reader) for _ in frames]

    messages = asyncio.run(decode())
    wires = [m[2][0][1] for m in messages]
    assert wires[0][0] is not None and wires[1][0] is None and wires[2][0] is not None
    w = _Worker(0)
    got = [WorkerPool._decode(w, "r1", wire) for wire in wires]
    assert all(isinstance(g, SampleSet) for g in got)
    assert [[(s.metric, s.labels, s.value, s.timestamp, s.type, s.help) for s in g] for g in got if g] == [
        [(s.metric, s.labels, s.value, s.timestamp, s.type, s.help) for s in ss]
        for ss in (first, second, changed)
    ]
    assert isinstance(got[1], SampleSet) and isinstance(got[0], SampleSet) and got[1].layout is got[0].layout
    # A layout-less set for a device the supervisor has no layout of is dropped, never guessed.
    assert WorkerPool._decode(_Worker(1), "r1", wires[1]) is None


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GovnetNode]:
    with polling_lab(tmp_path_factory.mktemp("workers"), HOST, LAB_BASE, N_DEVICES, 12, workers=2) as n:
        yield n


def test_two_workers_split_the_devices_and_each_device_is_published_once(node: GovnetNode) -> None:
    shares = wait_for(
        lambda: (s := node.series("govnet_worker_devices")) and sum(s.values()) == N_DEVICES and s,
        30,
        "both workers with a share",
    )
    assert sorted(shares) == ['{worker="0"}', '{worker="1"}'] and all(v > 0 for v in shares.values())
    assert len(node.children()) == 2
    up = node.series("govnet_up")
    assert len(up) == N_DEVICES and set(up.values()) == {1.0}  # one series per device, no duplicates
    assert node.series("govnet_scheduler_devices") == {"": float(N_DEVICES)}


def test_kill9_of_a_worker_its_devices_keep_being_polled_and_it_comes_back(node: GovnetNode) -> None:
    shares = node.series("govnet_worker_devices")
    victim_worker, victim_share = max(shares.items(), key=lambda kv: kv[1])
    index = re.search(r'"(\d+)"', victim_worker).group(1)  # type: ignore[union-attr]
    before_children = node.children()
    before_polls = node.series("govnet_polls_total")
    # Which child is that worker: its command line names its index.
    victim = next(
        pid for pid in before_children if f"--index\0{index}\0" in Path(f"/proc/{pid}/cmdline").read_text()
    )
    os.kill(victim, signal.SIGKILL)
    # Its devices move at once to the other worker, polled there now.
    wait_for(lambda: node.series("govnet_worker_takeovers_total").get("", 0) >= victim_share, 20, "takeover")
    # Meanwhile and after: every device keeps a fresh poll (its counter moved) and stays up, once each.
    seen: dict[str, set[float]] = {k: {v} for k, v in before_polls.items()}

    def all_polled_again() -> bool:
        for k, v in node.series("govnet_polls_total").items():
            seen.setdefault(k, set()).add(v)
        up = node.series("govnet_up")
        assert len(up) == N_DEVICES and set(up.values()) == {1.0}, up
        return len(seen) == N_DEVICES and all(len(v) >= 2 for v in seen.values())

    wait_for(all_polled_again, 30, "every device polled after the kill")
    # The worker comes back (a new process) and takes its share again.
    wait_for(
        lambda: node.series("govnet_worker_restarts_total").get(victim_worker) == 1.0, 30, "worker restarted"
    )
    wait_for(lambda: node.series("govnet_workers_up") == {"": 2.0}, 30, "both workers up")
    wait_for(lambda: node.series("govnet_worker_devices").get(victim_worker, 0) > 0, 30, "share taken back")
    after = node.children()
    assert len(after) == 2 and victim not in after
    up = node.series("govnet_up")
    assert len(up) == N_DEVICES and set(up.values()) == {1.0}


def test_sigterm_stops_the_workers_with_the_supervisor(node: GovnetNode) -> None:
    children = node.children()
    assert node.proc is not None
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(30) == 0
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in children), 15, "workers gone")


def test_a_layout_sent_while_the_device_was_elsewhere_is_still_recorded() -> None:
    # The worker counts a layout as sent even if the supervisor skips that set (the device moved to
    # another worker meanwhile); when the device comes back with "same layout" the supervisor must
    # use that layout, not drop the set or, worse, read the values with an older one.
    from array import array
    from types import SimpleNamespace

    from collectors.scheduler import SchedulerSettings
    from collectors.workers import WorkerPool
    from core.samples import SampleSet

    published: list[tuple[str, list[tuple[str, float]]]] = []

    class Sink:
        def publish(self, device: str, samples: Any) -> None:
            published.append((device, [(s.metric, s.value) for s in samples]))

    pool = WorkerPool(Path("unused.yaml"), SchedulerSettings(), 2, Sink(), [])
    w, other = pool._workers
    labels = (("device", "r1"), ("site", "ncc"))
    old = SampleSet.of([Sample("govnet_up", labels, 1.0, 5.0, "gauge", "up")])
    new = SampleSet.of(
        [Sample("govnet_cpu_ratio", labels, 0.5, 6.0, "gauge", "cpu"), Sample("govnet_up", labels, 1.0, 6.0)]
    )
    frames: list[bytes] = []
    batcher = SampleBatcher(frames.append, max_devices=1)
    batcher.publish("r1", old)  # r1 is w's: published
    batcher.publish("r1", new)  # r1 has moved to the other worker: not published, layout recorded
    batcher.publish("r1", SampleSet(new.layout, array("d", [0.75, 1.0]), 7.0))  # back to w: layout None

    async def run() -> None:
        reader = asyncio.StreamReader()
        w.proc = SimpleNamespace(stdout=reader, returncode=None)  # type: ignore[assignment]
        pool._owner = {"r1": w}
        reader.feed_data(frames[0])
        await asyncio.sleep(0)
        task = asyncio.create_task(pool._read(w))
        await asyncio.sleep(0.05)
        pool._owner = {"r1": other}
        reader.feed_data(frames[1])
        await asyncio.sleep(0.05)
        pool._owner = {"r1": w}
        reader.feed_data(frames[2])
        reader.feed_eof()
        await task

    asyncio.run(run())
    assert published == [
        ("r1", [("govnet_up", 1.0)]),
        ("r1", [("govnet_cpu_ratio", 0.75), ("govnet_up", 1.0)]),
    ]
