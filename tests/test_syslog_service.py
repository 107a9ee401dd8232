"""The `syslog:` section of `govnet run`: a real `logger` message lands in the store and in the metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import require_cmd

from collectors.syslog.service import build_services
from govnet.service import RunContext
from inventory.model import Inventory

HOST = "127.38.9.1"


def _ctx(tmp_path: Path) -> RunContext:
    inv = Inventory.model_validate(
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
    return RunContext(tmp_path, inv, tmp_path / "inv.yaml", None)


def test_bad_section_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        build_services({"store": "logs", "retention_days": 30}, _ctx(tmp_path))
    with pytest.raises(ValueError, match="bogus"):
        build_services({"store": "logs", "bogus": 1}, _ctx(tmp_path))


def test_logger_message_is_stored_and_exported(tmp_path: Path) -> None:
    require_cmd("logger")
    ctx = _ctx(tmp_path)
    (svc,) = build_services({"store": "logs", "listen": HOST, "tcp_port": 0, "udp_port": None}, ctx)
    assert ctx.extra["logstore"] is svc.store  # the API reads the same store

    async def go() -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop))
        for _ in range(100):
            if svc.receiver is not None:
                break
            await asyncio.sleep(0.05)
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
    assert by["govnet_syslog_unknown_sources"][1] == 0
