"""Receiver bounds without the network: the UDP queue drops past its byte bound (counted), batches are
bounded in bytes, and the per-listener source allow-lists."""

from __future__ import annotations

import asyncio
from pathlib import Path

from collectors.syslog.limits import SourcePolicy
from collectors.syslog.receiver import Ingest, Receiver, _Udp
from logstore.store import LogStore


def test_udp_queue_is_bounded_in_bytes_and_drops_are_counted(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "store")

    async def scenario() -> None:
        # The writer is not started: nothing leaves the queue, as when the disk is slower than the flood.
        ingest = Ingest(store, [], {}, max_pending_bytes=1024 * 1024, batch_max_bytes=256 * 1024)
        udp = _Udp(ingest, SourcePolicy(refuse_unknown=False))
        frame = b"<134>Mar 12 10:00:00 fw flood " + b"x" * 60_000
        for _ in range(100):
            udp.datagram_received(frame, ("192.0.2.1", 514))
        assert ingest.pending_bytes < 1024 * 1024 + len(frame)
        kept = ingest.stats.received_total
        assert kept == 18 and ingest.stats.udp_overflow_total == 100 - kept  # dropped, and said so
        ingest.start()
        await ingest.drain()
        assert ingest.pending_bytes == 0 and ingest.stats.durable_total == kept
        assert ingest.stats.batches_total == 5  # 4 frames of 60 KB fill a 256 KiB batch: 4+4+4+4+2
        await ingest.close()

    asyncio.run(scenario())
    store.close()


def test_source_policy_per_listener() -> None:
    policy = SourcePolicy.build(["10.0.0.1", "2001:db8::1"], {"tcp": ["10.9.0.0/16"]}, refuse_unknown=True)
    assert policy.allowed("10.0.0.1", "udp") and policy.allowed("::ffff:10.0.0.1", "udp")
    assert policy.allowed("2001:db8::1", "tls") and not policy.allowed("10.0.0.2", "udp")
    assert policy.allowed("10.9.3.4", "tcp") and not policy.allowed("10.0.0.1", "tcp")  # the list replaces
    assert policy.refused("10.0.0.2", "udp") and not policy.refused("10.0.0.1", "udp")
    assert not policy.allowed("not-an-address", "udp")
    flag_only = SourcePolicy.build(["10.0.0.1"], {}, refuse_unknown=False)
    assert not flag_only.refused("203.0.113.9", "udp")  # kept; the parser flags it unknown_source


def test_dropped_datagrams_are_recorded_in_the_store_once_per_report(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "store")

    async def scenario() -> None:
        ingest = Ingest(store, [], {})
        rx = Receiver(ingest)
        rx.report_drops()  # nothing dropped: no record
        ingest.stats.udp_overflow_total, ingest.stats.udp_refused_total = 82, 3
        rx.report_drops()
        rx.report_drops()  # nothing new since: no second record
        ingest.start()
        await ingest.close()

    asyncio.run(scenario())
    recs = [rec for rec, _ in store.iter_records()]
    store.close()
    assert [r["action"] for r in recs] == ["udp_dropped"]
    assert "82 (queue full)" in recs[0]["msg"] and "3 (sender not allowed)" in recs[0]["msg"]
