"""The alerting configuration: every channel type loads, references are checked, the pipeline runs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.config import AlertingConfig, build, load_alerting
from alerts.rules import DEFAULT_RULES
from core.samples import Sample, labels_of
from tests.support.paths import TESTDATA

DATA = TESTDATA / "alerts"


def _write(tmp_path: Path, **changes: Any) -> Path:
    doc = yaml.safe_load((DATA / "alerting.yaml").read_text(encoding="utf-8"))
    doc.update(changes)
    path = tmp_path / "alerting.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_example_config_loads_every_channel_type(tmp_path: Path) -> None:
    cfg = load_alerting(_write(tmp_path))
    assert [c.type for c in cfg.channels] == ["webhook", "wecom", "dingtalk", "email", "alertmanager", "sms"]
    assert cfg.state_db == tmp_path / "alerts.db" and cfg.report_category == "state"
    assert cfg.rules == [DEFAULT_RULES]  # `default` names the shipped rules
    assert cfg.rota is not None and cfg.rota.shift == 86400


@pytest.mark.parametrize(
    ("changes", "expect"),
    [
        ({"route": ["nope"]}, "route/fallback name unknown channels: nope"),
        ({"fallback": "pager"}, "unknown channels: pager"),
        ({"channels": [{"type": "webhook", "name": "a", "url": "http://x"}]}, "channels.0.webhook.url"),
        ({"channels": [{"type": "fax", "name": "a"}]}, "does not match any of the expected tags"),
        ({"report_category": "province"}, "report_category"),
        ({"escalate_after": {"V": "5m"}}, "escalate_after.V"),
    ],
)
def test_bad_configs_are_refused(tmp_path: Path, changes: dict[str, Any], expect: str) -> None:
    if "channels" in changes:
        changes = {**changes, "route": [], "fallback": None}
    with pytest.raises(ValueError) as err:
        load_alerting(_write(tmp_path, **changes))
    assert expect in str(err.value)


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.25.0.2", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.25.0.2:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def test_built_pipeline_pages_the_rota_and_escalates(
    tmp_path: Path, hook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, got = hook
    monkeypatch.setenv("GOVNET_TEST_HOOK", url)
    cfg = load_alerting(_write(tmp_path))
    assert isinstance(cfg, AlertingConfig)
    engine, dispatcher = build(cfg, topology=None)
    lab = labels_of(device="ups-1", site="idc", role="ups", vendor="generic")
    for t in range(0, 1200, 30):
        engine.publish("ups-1", [Sample("govnet_ups_on_battery", lab, 1.0, t)])
        engine.evaluate(t)
        dispatcher.run_due(t)
    assert [(b["govnet"]["kind"], b["govnet"]["recipients"]) for b in got] == [
        ("firing", ["王工"]),
        ("escalation", ["刘工"]),
    ]
    assert "中央和国家机关" in got[0]["govnet"]["text"]


def test_run_alerts_loop_evaluates_delivers_and_stops(
    tmp_path: Path, hook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from alerts.service import run_alerts

    url, got = hook
    monkeypatch.setenv("GOVNET_TEST_HOOK", url)
    engine, dispatcher = build(load_alerting(_write(tmp_path)), topology=None)
    lab = labels_of(device="ups-1", site="idc", role="ups", vendor="generic")
    ticks = iter(range(0, 10_000, 30))

    async def main() -> int:
        stop = asyncio.Event()

        def clock() -> float:
            t = float(next(ticks))
            engine.publish("ups-1", [Sample("govnet_ups_on_battery", lab, 1.0, t)])
            if t >= 150:
                stop.set()
            return t

        return await run_alerts(engine, dispatcher, 0.0, stop, clock)

    assert asyncio.run(main()) == 6
    assert [b["govnet"]["kind"] for b in got] == ["firing"]
