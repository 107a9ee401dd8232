"""End to end: the lab with injected faults, a real `govnet run` subprocess with an `alerts:` section,
a local webhook receiver and a real SMTP server (aiosmtpd) as the fallback channel.

The tests run in order on one lab and one state file (a scenario): uplink down (through webhook 503s),
core down with 50 devices below it, escalation, ack + silence + kill -9 + restart, webhook 400.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from alerts.cli import ack_command, list_command, silence_command
from lab.runner import LabProcess
from tests.support.alerting import CHILDREN, fast_rules, inventory_doc
from tests.support.govnet_run import GovnetNode, Hook, free_port, wait_for, webhook

HOST = "127.33.0.1"
LAB_BASE = "127.33.1.0"
AGG_UPLINK = "GigabitEthernet1/0/48"  # agg-1's uplink to core-2 (its other one goes to core-1)
ESCALATE_II = 12.0


class Mailbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@dataclass
class Scenario:
    """Everything the tests share."""

    tmp: Path
    lab: LabProcess
    hook: Hook
    mail: Mailbox
    node: GovnetNode
    core_incident: str | None = None

    @property
    def config(self) -> Path:
        return self.node.config

    def start(self) -> None:
        self.node.start()
        wait_for(
            lambda: self.node.scrape().count("\ngovnet_up{") >= 54, 60, "govnet run polling every device"
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.node.stop(sig)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's series on /metrics whose labels include `labels` (0 when there is none)."""
        return self.node.metric(name, **labels) or 0.0

    def state(self) -> dict[str, Any]:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert list_command(self.config, as_json=True, all_incidents=True) == 0
        (self.tmp / "list.json").write_text(buf.getvalue())
        return dict(json.loads(buf.getvalue()))


@pytest.fixture(scope="module")
def sc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("alerts_e2e")
    inv = tmp / "inventory.yaml"
    inv.write_text(yaml.safe_dump(inventory_doc()), encoding="utf-8")
    fast_rules(tmp / "rules.yaml")
    stack = contextlib.ExitStack()
    hook, hook_url = stack.enter_context(webhook(HOST))
    mail = Mailbox()
    smtp_port = free_port(HOST)
    smtp = Controller(mail, hostname=HOST, port=smtp_port)
    smtp.start()
    (tmp / "hook.url").write_text(hook_url + "\n")
    metrics_port = free_port(HOST)
    lab = LabProcess(inv, tmp / "lab", base=LAB_BASE, snmp_port=free_port(HOST), ssh_port=0, progress=None)
    config = {
        "inventory": str(lab.inventory_path),
        "prometheus": {"listen": f"{HOST}:{metrics_port}"},
        "scheduler": {"timeout": "1s", "retries": 1, "unreachable_after": 3, "unreachable_recheck": "2s"},
        "log_level": "warning",
        "alerts": {
            "rules": ["rules.yaml"],
            "state_db": "state/alerts.db",
            "evaluate_interval": "1s",
            "report_category": "state",
            # The rota starts an hour before this run (the test's own clock), so 王工 is on call
            # whatever the date and time of day: no dependence on the calendar.
            "rota": {"people": ["王工", "刘工", "陈科长"], "shift": "1d", "start": int(time.time()) - 3600},
            "escalate_after": {"I": "1h", "II": f"{ESCALATE_II:.0f}s", "III": "1h", "IV": "1h"},
            "channels": [
                {"type": "webhook", "name": "hook", "url": "file:hook.url"},
                {
                    "type": "email",
                    "name": "mail",
                    "host": HOST,
                    "port": smtp_port,
                    "starttls": False,
                    "sender": "govnet@example.gov.cn",
                    "to": ["noc@example.gov.cn"],
                },
            ],
            "route": ["hook"],
            "fallback": "mail",
            "retry": {"backoff": ["1s", "2s"], "give_up_after": "10m"},
        },
    }
    cfg_path = tmp / "govnet.yaml"
    cfg_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    node = GovnetNode(cfg_path, f"http://{HOST}:{metrics_port}/metrics", tmp / "govnet.log")
    scenario = Scenario(tmp, lab, hook, mail, node)
    try:
        lab.start()
        scenario.start()
        # A calm baseline: every device up and no open incident (a loaded machine can make the first
        # polls of the big cores time out; those incidents resolve before the scenario starts).
        wait_for(lambda: scenario.metric("govnet_up") == 54, 60, "every device up")
        wait_for(
            lambda: not [i for i in scenario.state()["incidents"] if i["resolved_at"] is None], 60, "calm"
        )
        time.sleep(2)
        hook.clear()
        yield scenario
    finally:
        scenario.stop()
        lab.stop()
        smtp.stop()
        stack.close()
        if os.environ.get("GOVNET_KEEP_E2E"):
            print(f"\ne2e files in {tmp}")


def _settle(sc: Scenario, seconds: float = 4.0) -> None:
    time.sleep(seconds)


def test_uplink_down_one_redundancy_alert_through_webhook_503s(sc: Scenario) -> None:
    """(b) one uplink of two down: one UplinkRedundancyLost at level IV, no site-down; (c) the webhook
    answers 503 twice: the notification arrives exactly once after it recovers."""
    if sc.core_incident is not None:
        _clear_core(sc)  # another test's core outage would page beside this one
    before = len(sc.hook.accepted())
    n_requests = len(sc.hook.requests)
    retries_before = sc.metric("govnet_notifications_retries_total", channel="hook")
    sc.hook.script[:] = [503, 503]
    t0 = time.time()
    sc.lab.fault("agg-1", "link_down", interface=AGG_UPLINK)
    firing = wait_for(
        lambda: [p for p in sc.hook.accepted()[before:] if p["govnet"]["kind"] == "firing"], 40, "firing"
    )
    print(f"\n[e2e] uplink down -> redundancy-lost page after {time.time() - t0:.1f} s")
    _settle(sc, 4)
    pages = [p for p in sc.hook.accepted()[before:] if p["govnet"]["kind"] == "firing"]
    assert len(pages) == 1, [p["govnet"]["text"] for p in pages]
    page = firing[0]
    names = {a["labels"]["alertname"] for a in page["alerts"]}
    assert names == {"UplinkRedundancyLost"} and page["commonLabels"]["device"] == "agg-1"
    assert page["govnet"]["level"] == "IV" and "上联冗余丢失" in page["govnet"]["text"]
    statuses = [
        s
        for _, s, p in sc.hook.requests[n_requests:]
        if p["groupKey"] == page["groupKey"] and p["govnet"]["kind"] == "firing"
    ]
    assert statuses == [503, 503, 200], [(s, p["govnet"]["kind"]) for _, s, p in sc.hook.requests]
    assert sc.metric("govnet_notifications_retries_total", channel="hook") - retries_before == 2
    assert sc.metric("govnet_alerts_firing", level="III") == 0  # no AggregationDown
    sc.lab.clear("agg-1")
    wait_for(lambda: ("resolved", page["groupKey"]) in sc.hook.kinds(), 30, "resolved notice")
    wait_for(lambda: sc.metric("govnet_alerts_firing", level="IV") == 0, 30, "all clear")
    assert sc.hook.kinds().count(("firing", page["groupKey"])) == 1


def _open(sc: Scenario, inc: str | None) -> bool:
    return inc is not None and any(
        i["id"] == inc and i["resolved_at"] is None for i in sc.state()["incidents"]
    )


def _clear_core(sc: Scenario) -> None:
    """End a core outage another test left open and wait until its incident resolves."""
    inc = sc.core_incident
    sc.lab.clear("core-1")
    for name in CHILDREN:
        sc.lab.clear(name)
    if inc is not None:
        wait_for(lambda: not _open(sc, inc), 60, "earlier core incident resolved")
    wait_for(lambda: sc.metric("govnet_up") == 54, 60, "every device up again")
    sc.core_incident = None


def _core_incident(sc: Scenario) -> str:
    """The open core-down incident: the one a previous test opened, or a new one (each test runs alone)."""
    if _open(sc, sc.core_incident):
        assert sc.core_incident is not None
        return sc.core_incident
    _clear_core(sc)
    before = len(sc.hook.accepted())
    sc.lab.fault("core-1", "dead")
    for name in CHILDREN:
        sc.lab.fault(name, "dead")
    page = wait_for(
        lambda: [p for p in sc.hook.accepted()[before:] if p["govnet"]["kind"] == "firing"], 40, "core page"
    )[0]
    sc.core_incident = str(page["groupKey"])
    return sc.core_incident


def test_core_down_with_50_below_pages_once_children_unreachable(sc: Scenario) -> None:
    """(a) core-1 dead; the 50 access switches below it stop answering too (their path crossed it):
    exactly one page (CoreDeviceDown, level II), the 50 shown unreachable and not paged."""
    if sc.core_incident is not None:
        _clear_core(sc)
    before = len(sc.hook.accepted())
    t0 = time.time()
    sc.lab.fault("core-1", "dead")
    for name in CHILDREN:
        sc.lab.fault(name, "dead")
    wait_for(lambda: len(sc.hook.accepted()) > before, 40, "core page")
    print(f"\n[e2e] core down -> page after {time.time() - t0:.1f} s")
    _settle(sc, 5)
    new = sc.hook.accepted()[before:]
    firing = [p for p in new if p["govnet"]["kind"] in ("firing", "update")]
    assert len(firing) == 1, [p["govnet"]["text"] for p in firing]
    page = firing[0]
    assert {a["labels"]["alertname"] for a in page["alerts"]} == {"CoreDeviceDown"}
    assert page["commonLabels"]["device"] == "core-1" and page["govnet"]["level"] == "II"
    assert page["govnet"]["recipients"] == ["王工"]
    # The 50 unreachable children are named on the page (the degraded aggregations join the list
    # once their own `for` has passed).
    shown = re.search(r"受影响（不单独告警）：(\d+) 台设备", page["govnet"]["text"])
    assert shown is not None and int(shown.group(1)) >= 50, page["govnet"]["text"]
    state = sc.state()
    inc = next(i for i in state["incidents"] if i["id"] == page["groupKey"])
    assert set(CHILDREN) | {"agg-1", "agg-2"} == set(inc["affected"])
    # The console view: each child is DeviceUnreachable, inhibited by core-1 (shown, never paged).
    unreachable = {
        a["labels"]["device"]: a["inhibited_by"] for a in state["alerts"] if a["alert"] == "DeviceUnreachable"
    }
    assert unreachable == dict.fromkeys(CHILDREN, "core-1")
    degraded = {
        a["labels"]["device"]: a["inhibited_by"]
        for a in state["alerts"]
        if a["alert"] == "UplinkRedundancyLost"
    }
    assert degraded == {"agg-1": "core-1", "agg-2": "core-1"}
    assert sc.metric("govnet_alerts_firing", level="IV") >= 50  # DeviceUnreachable x50 (not paged)
    assert sc.metric("govnet_up", device="acc-07") == 0
    sc.core_incident = str(page["groupKey"])


def test_unacknowledged_level_ii_escalates_to_next_on_rota(sc: Scenario) -> None:
    """(e) nobody acks the level II incident: after escalate_after.II it goes to the next person."""
    inc = _core_incident(sc)
    esc = wait_for(
        lambda: [
            p for p in sc.hook.accepted() if p["groupKey"] == inc and p["govnet"]["kind"] == "escalation"
        ],
        ESCALATE_II + 20,
        "escalation",
    )
    first = next(
        t for t, s, p in sc.hook.requests if p["groupKey"] == inc and p["govnet"]["kind"] == "firing"
    )
    at = next(
        t for t, s, p in sc.hook.requests if p["groupKey"] == inc and p["govnet"]["kind"] == "escalation"
    )
    print(f"\n[e2e] escalation {at - first:.1f} s after the page (configured {ESCALATE_II:.0f} s)")
    assert esc[0]["govnet"]["recipients"] == ["刘工"] and "已升级至：刘工" in esc[0]["govnet"]["text"]
    assert ESCALATE_II - 1 <= at - first <= ESCALATE_II + 8


def test_kill9_restart_keeps_ack_and_silence_and_sends_no_duplicate(sc: Scenario) -> None:
    """(d) ack (owner + comment) and a silence through the CLI functions, kill -9 of govnet run,
    restart: nothing is sent again, the ack and the silence hold, the resolved notice names the owner."""
    inc = _core_incident(sc)
    assert ack_command(sc.config, inc, "王工", "已到现场，更换电源", wait=10) == 0
    step_at_ack = next(i for i in sc.state()["incidents"] if i["id"] == inc)["escalation_step"]
    assert silence_command(sc.config, ['device="agg-2"'], "1h", "刘工", "agg-2 割接", wait=10) == 0
    sent_before = list(sc.hook.requests)
    sc.stop(signal.SIGKILL)
    sc.start()
    _settle(sc, 6)  # several evaluation cycles with the core still down
    assert sc.hook.requests[len(sent_before) :] == []  # no duplicate page, no new escalation
    state = sc.state()
    inc_doc = next(i for i in state["incidents"] if i["id"] == inc)
    assert (inc_doc["acked_by"], inc_doc["ack_comment"]) == ("王工", "已到现场，更换电源")
    assert [s["comment"] for s in state["silences"] if s["active"]] == ["agg-2 割接"]
    # The escalation stopped with the ack: no step after the one reached before it.
    assert inc_doc["escalation_step"] == step_at_ack
    # The silence works after the restart: agg-2 losing an uplink fires but is not paged.
    sc.lab.clear("core-1")
    for name in CHILDREN:
        sc.lab.clear(name)
    resolved = wait_for(
        lambda: [p for p in sc.hook.accepted() if p["groupKey"] == inc and p["govnet"]["kind"] == "resolved"],
        40,
        "core resolved",
    )
    assert "已确认：王工（已到现场，更换电源）" in resolved[0]["govnet"]["text"]
    wait_for(lambda: sc.metric("govnet_alerts_firing", level="IV") == 0, 30, "all clear")
    n = len(sc.hook.requests)
    sc.lab.fault("agg-2", "link_down", interface=AGG_UPLINK)
    wait_for(lambda: sc.metric("govnet_alerts_firing", level="IV") >= 1, 30, "agg-2 redundancy alert firing")
    _settle(sc, 3)
    assert sc.hook.requests[n:] == []
    sc.lab.clear("agg-2")
    wait_for(lambda: sc.metric("govnet_alerts_firing", level="IV") == 0, 30, "all clear")
    sc.core_incident = None
    kinds = sc.hook.kinds()
    assert kinds.count(("firing", inc)) == 1 and kinds.count(("resolved", inc)) == 1


def test_webhook_400_is_not_retried_counted_and_falls_back_to_email(sc: Scenario) -> None:
    """(c) the webhook refuses with 400: one attempt only, counted, the email fallback delivers."""
    if sc.core_incident is not None:
        _clear_core(sc)
    sc.hook.script[:] = [400]
    failed_before = sc.metric("govnet_notifications_failed_total", channel="hook")
    sent_before = sc.metric("govnet_notifications_sent_total", channel="mail")
    n = len(sc.hook.requests)
    mails = len(sc.mail.messages)
    sc.lab.fault("agg-1", "link_down", interface=AGG_UPLINK)
    wait_for(lambda: len(sc.mail.messages) > mails, 40, "fallback mail")
    _settle(sc, 4)
    new = sc.hook.requests[n:]
    refused = [p for _, status, p in new if status == 400]
    assert len(refused) == 1  # the first notification after the fault was refused...
    key = (refused[0]["groupKey"], refused[0]["govnet"]["kind"])
    assert [p for p in new if (p[2]["groupKey"], p[2]["govnet"]["kind"]) == key] == [new[0]]  # ...once
    assert sc.metric("govnet_notifications_failed_total", channel="hook") - failed_before == 1
    assert sc.metric("govnet_notifications_sent_total", channel="mail") - sent_before == 1
    text = sc.mail.messages[mails].get_body(("plain",)).get_content()
    assert text.strip() == refused[0]["govnet"]["text"].strip()  # the same notice, by the fallback
    assert refused[0]["govnet"]["text"].splitlines()[0] in str(sc.mail.messages[mails]["Subject"])
    sc.lab.clear("agg-1")
