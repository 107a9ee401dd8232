"""The `syslog:` section of `govnet run`: a real `logger` message lands in the store and in the metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from collectors.syslog.service import SyslogSection, SyslogService, build
from core.config import validate_section
from inventory.model import Inventory
from tests.support.require import require_cmd

HOST = "127.38.9.1"


def _inventory() -> Inventory:
    return Inventory.model_validate(
        {
            "sites": [{"name": "ncc"}],
            "devices": [
                {
                    "name": "fw-1",
                    "site": "ncc",
                    "role": "firewall",
                    "vendor": "huawei",
                    "address": "127.0.0.1",
                }
            ],
        }
    )


def _section(tmp_path: Path, data: dict[str, object]) -> SyslogSection:
    return validate_section(SyslogSection, data, tmp_path, "syslog")


def _build(tmp_path: Path, data: dict[str, object]) -> SyslogService:
    (svc,) = build(_section(tmp_path, data), inventory=_inventory())
    return svc


async def _start(svc: SyslogService) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """Run the service until the returned event is set; returns once its receiver listens."""
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    for _ in range(100):
        if svc.receiver is not None:
            break
        await asyncio.sleep(0.05)
    assert svc.receiver is not None
    return stop, task


def test_bad_section_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        _section(tmp_path, {"store": "logs", "retention_days": 30})
    with pytest.raises(ValueError, match="bogus"):
        _section(tmp_path, {"store": "logs", "bogus": 1})


def test_logger_message_is_stored_and_exported(tmp_path: Path) -> None:
    require_cmd("logger")
    svc = _build(tmp_path, {"store": "logs", "listen": HOST, "tcp_port": 0, "udp_port": None})
    assert svc.store.root == tmp_path / "logs"  # relative to the config file's folder

    async def go() -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        stop, task = await _start(svc)
        assert svc.receiver is not None
        port = svc.receiver.tcp_port
        proc = await asyncio.create_subprocess_exec(
            "logger", "--server", HOST, "--port", str(port), "--tcp", "--octet-count", "--rfc5424",
            "-t", "govnet-test", "policy deny <script>x</script>",
        )  # fmt: skip
        assert await proc.wait() == 0
        for _ in range(100):
            if svc.ingest.stats.durable_total >= 1 and svc.verify_ok is not None:
                break
            await asyncio.sleep(0.05)
        samples = [(s.metric, s.labels, s.value) for s in svc.internal_samples()]
        stop.set()
        await task
        return samples

    samples = asyncio.run(go())
    by = {m: (labels, v) for m, labels, v in samples}
    assert by["govnet_syslog_durable_total"][1] == 1
    labels, ts = by["govnet_syslog_last_message_timestamp_seconds"]
    assert dict(labels)["device"] == "fw-1" and ts > 0
    assert by["govnet_logstore_verify_ok"][1] == 1.0
    assert by["govnet_logstore_compress_errors_total"][1] == 0  # exported, and nothing failed
    assert by["govnet_logstore_renumbered_total"][1] == 0  # exported; no audit record came between
    assert by["govnet_syslog_unknown_sources"][1] == 0


def test_sequence_ids_parsed_from_the_header_only() -> None:
    from collectors.syslog.sequence import SequenceGaps, sequence_id

    assert sequence_id(b'<13>1 2026-01-01T00:00:00Z h a - - [meta sequenceId="42" sysUpTime="9"] x') == 42
    assert sequence_id(b"<13>1 2026-01-01T00:00:00Z h a - - - no numbering") is None
    # Text in the message, another SD-ID, a non-number or an out-of-range value is not a sequenceId.
    assert sequence_id(b'<13>1 2026-01-01T00:00:00Z h a - - - url=/?sequenceId="9"') is None
    assert sequence_id(b'<13>1 2026-01-01T00:00:00Z h a - - [x@1 sequenceId="9"] m') is None
    head = b"<13>1 2026-01-01T00:00:00Z h a - - "
    escaped = head + b'[x@1 v="\\"[meta sequenceId=\\"7\\"\\]"][meta sequenceId="8"] m'
    assert sequence_id(escaped) == 8
    assert sequence_id(b'<13>1 2026-01-01T00:00:00Z h a - - [meta sequenceId="9a"] m') is None
    assert sequence_id(b'<13>1 2026-01-01T00:00:00Z h a - - [meta sequenceId="0"] m') is None
    assert sequence_id(b'<13>Jan  1 00:00:00 h a: [meta sequenceId="9"] bsd') is None
    gaps = SequenceGaps()
    # 1,2,5: 2 missing; 3 is lower (a restart, no gap); 4 next; the same number twice is no gap.
    assert [gaps.observe("h", n) for n in (1, 2, 5, 3, 4, 4, 10)] == [0, 0, 2, 0, 0, 0, 5]
    assert gaps.gaps == {"h": 7}


def test_logger_sequence_gaps_are_exported_per_device(tmp_path: Path) -> None:
    require_cmd("logger")
    host = "127.44.4.1"
    svc = _build(tmp_path, {"store": "logs", "listen": host, "tcp_port": 0, "udp_port": None})

    def gaps() -> list[tuple[dict[str, str], float]]:
        return [
            (dict(s.labels), s.value)
            for s in svc.internal_samples()
            if s.metric == "govnet_syslog_sequence_gaps_total"
        ]

    async def send(*args: str) -> None:
        assert svc.receiver is not None
        proc = await asyncio.create_subprocess_exec(
            "logger", "--server", host, "--port", str(svc.receiver.tcp_port), "--tcp", "--octet-count",
            "--rfc5424", "-t", "govnet-seq", *args,
        )  # fmt: skip
        assert await proc.wait() == 0

    async def durable(n: int) -> None:
        for _ in range(200):
            if svc.ingest.stats.durable_total >= n:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"only {svc.ingest.stats.durable_total}/{n} durable")

    async def go() -> list[list[tuple[dict[str, str], float]]]:
        stop, task = await _start(svc)
        try:
            seen = []
            await send("unnumbered message")  # no sequenceId: no series yet
            await durable(1)
            seen.append(gaps())
            sent = 1
            for n in (1, 2, 5):
                await send("--sd-id", "meta", "--sd-param", f'sequenceId="{n}"', f"numbered {n}")
                sent += 1
                await durable(sent)  # one at a time: each logger run is its own connection
                seen.append(gaps())
            for n in (1, 2):  # the device restarted: numbering starts again, no gap
                await send("--sd-id", "meta", "--sd-param", f'sequenceId="{n}"', f"after restart {n}")
                sent += 1
                await durable(sent)
            seen.append(gaps())
            return seen
        finally:
            stop.set()
            await task

    seen = asyncio.run(go())
    assert seen[0] == []
    assert [[v for _, v in g] for g in seen[1:]] == [[0.0], [0.0], [2.0], [2.0]]
    labels = seen[-1][0][0]
    assert labels["device"] == "fw-1" and labels["site"] == "ncc" and labels["role"] == "firewall"


def test_section_forwards_durable_frames_like_govnet_syslog(tmp_path: Path) -> None:
    """One assembly: the `syslog:` section forwards (as `govnet syslog --forward` does) to a TCP peer."""
    require_cmd("logger")
    host = "127.44.4.2"

    async def go() -> bytes:
        got = bytearray()
        arrived = asyncio.Event()

        async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                got.extend(data)
                if b"forward me" in got:
                    arrived.set()
            writer.close()

        server = await asyncio.start_server(upstream, host, 0)
        up_port = server.sockets[0].getsockname()[1]
        svc = _build(
            tmp_path,
            {
                "store": "logs",
                "listen": host,
                "tcp_port": 0,
                "udp_port": None,
                "forward": f"{host}:{up_port}",
            },
        )
        stop, task = await _start(svc)
        assert svc.receiver is not None
        proc = await asyncio.create_subprocess_exec(
            "logger", "--server", host, "--port", str(svc.receiver.tcp_port), "--tcp", "--octet-count",
            "-t", "govnet-test", "forward me",
        )  # fmt: skip
        assert await proc.wait() == 0
        await asyncio.wait_for(arrived.wait(), 20)
        stop.set()
        await task
        server.close()
        await server.wait_closed()
        return bytes(got)

    forwarded = asyncio.run(go())
    assert b"govnet-test" in forwarded and b"forward me" in forwarded
