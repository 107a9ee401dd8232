"""Acceptance: real nginx (HTTPS, certificates made here) and dnsmasq; each scenario raises exactly its
alert once and resolves. Checks are real; the alert engine gets the time passed in (30 s steps)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts.engine import Engine, Notification
from alerts.maintenance import MaintenanceWindow
from alerts.rules import DEFAULT_RULES, load_rules
from collectors.services.runner import ServiceChecker
from collectors.services.watch import BaselineRepo
from inventory.services import ServiceEntry
from tests.support.services_env import HOST, NAME, Dnsmasq, Nginx, Pki

PAGE = """<!doctype html><html><head><title>某区人民政府门户网站</title>
<script src="/js/site.js"></script><link rel="stylesheet" href="https://cdn.gov.test/site.css"></head>
<body><h1>某区人民政府</h1><p>政务公开 · 办事服务 · 互动交流</p>
<p class="clock">更新时间 {clock}</p>
<ul><li>关于开展安全生产检查的通知</li><li>2026年政府工作报告</li></ul></body></html>"""
STEP = 30.0
DNS_NAME = "zwfw.gov.test"  # the DNS check's own name: changing it must not take the portal down


@dataclass
class Env:
    pki: Pki
    nginx: Nginx
    dns: Dnsmasq

    def reset(self, clock: str = "08:00") -> None:
        self.nginx.page(PAGE.format(clock=clock))
        if self.nginx.cert != "good" or self.nginx.proc is None:
            self.nginx.use_cert("good")
        self.dns.set({NAME: HOST, DNS_NAME: HOST})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("services")
    pki = Pki(root / "pki")
    nginx = Nginx(root / "nginx", pki)
    nginx.page(PAGE.format(clock="08:00"))
    nginx.start()
    dns = Dnsmasq(root / "dns")
    dns.set({NAME: HOST, DNS_NAME: HOST})
    dns.start()
    try:
        yield Env(pki, nginx, dns)
    finally:
        nginx.stop()
        dns.stop()


def _checks(env: Env) -> list[Any]:
    owner = {"unit": "区政务服务管理局", "site": "ncc"}
    entries = [
        {"name": "portal", "owner": owner, "type": "https", "interval": "30s", "timeout": "5s",
         "target": f"https://{NAME}:{env.nginx.https_port}/", "resolvers": [env.dns.server],
         "tls": {"ca_file": str(env.pki.ca_file)}, "expect": {"contains": ["政务公开"]},
         "content": {"volatile_selectors": [".clock"], "allow_domains": ["cdn.gov.test"]}},
        {"name": "portal-dns", "owner": owner, "type": "dns", "interval": "30s", "timeout": "5s",
         "target": DNS_NAME, "servers": [env.dns.server], "expect": {"answers": [HOST]}},
    ]  # fmt: skip
    return [ServiceEntry.model_validate(e).root for e in entries]


class Run:
    """A checker and an engine stepped together at a clock the test advances."""

    def __init__(self, env: Env, tmp: Path, maintenance: list[MaintenanceWindow] | None = None) -> None:
        import time

        self.now = float(int(time.time()))  # certificates are real: the clock starts at the real time
        self.repo = BaselineRepo(tmp / "baselines")
        self.checker = ServiceChecker(_checks(env), self.repo, clock=lambda: self.now)
        self.engine = Engine(load_rules(DEFAULT_RULES), maintenance=maintenance or ())
        self.checker.register_details(self.engine)
        self.sent: list[Notification] = []

    def step(self, n: int = 1) -> list[Notification]:
        out: list[Notification] = []
        for _ in range(n):
            self.now += STEP
            asyncio.run(self.checker.check_all())
            self.engine.publish_internal("services", self.checker.internal_samples())
            out += self.engine.evaluate(self.now)
        self.sent += out
        return out

    def fired(self) -> list[tuple[str, str]]:
        """(kind, alertname) of every alert in every firing/resolved notification so far."""
        return [(n.kind, str(a["labels"]["alertname"])) for n in self.sent for a in n.alerts]  # type: ignore[index]


def _scenario(env: Env, tmp: Path, inject: Callable[[Run], None], heal: Callable[[Run], None]) -> Run:
    env.reset()
    run = Run(env, tmp)
    assert run.step(3) == [], "a healthy service raised an alert"
    assert run.checker.states["portal"].result is not None and run.checker.states["portal"].result.up
    inject(run)
    run.step(6)
    heal(run)
    run.step(8)
    return run


def _exactly(run: Run, alert: str) -> None:
    assert run.fired() == [("firing", alert), ("resolved", alert)], run.fired()


def test_server_stopped(env: Env, tmp_path: Path) -> None:
    run = _scenario(env, tmp_path, lambda r: env.nginx.stop(), lambda r: env.nginx.start())
    _exactly(run, "ServiceDown")
    assert run.checker.states["portal"].history[-9][2] == "connection refused"


def test_certificate_expiring_in_10_days(env: Env, tmp_path: Path) -> None:
    run = _scenario(env, tmp_path, lambda r: env.nginx.use_cert("soon"), lambda r: env.nginx.use_cert("good"))
    _exactly(run, "CertificateExpiresSoon")
    firing = next(n for n in run.sent if n.kind == "firing")
    assert "9.9" in firing.text or "10.0" in firing.text, firing.text  # days left in the summary


def test_page_text_changed_then_accepted(env: Env, tmp_path: Path) -> None:
    def change(r: Run) -> None:
        env.nginx.page(PAGE.format(clock="08:00").replace("互动交流", "互动交流 · 网上信访"))

    def accept(r: Run) -> None:
        watch = r.checker.states["portal"].watch
        assert watch is not None
        assert any("+政务公开 · 办事服务 · 互动交流 · 网上信访" in line for line in watch.verdict.diff)
        watch.accept("Li Lei <lilei@gov.test>", r.now)

    run = _scenario(env, tmp_path, change, accept)
    _exactly(run, "ServiceContentChanged")
    firing = next(n for n in run.sent if n.kind == "firing")
    assert "详情：" in firing.text and "+政务公开 · 办事服务 · 互动交流 · 网上信访" in firing.text, (
        firing.text
    )
    versions = run.repo.versions("portal")
    assert [v.author for v in versions] == ["Li Lei <lilei@gov.test>", "govnet <govnet@localhost>"]


def test_volatile_part_changing_raises_nothing(env: Env, tmp_path: Path) -> None:
    env.reset()
    run = Run(env, tmp_path)
    run.step(2)
    env.nginx.page(PAGE.format(clock="09:30"))  # only the `.clock` element changed
    run.step(4)
    assert run.sent == []
    watch = run.checker.states["portal"].watch
    assert watch is not None and not watch.verdict.changed


def test_script_from_new_domain(env: Env, tmp_path: Path) -> None:
    evil = PAGE.format(clock="08:00").replace(
        "</body>", '<script src="https://js.evil-cdn.example/a.js"></script></body>'
    )
    run = _scenario(env, tmp_path, lambda r: env.nginx.page(evil), lambda r: env.reset())
    _exactly(run, "DefacementSuspected")
    firing = next(n for n in run.sent if n.kind == "firing")
    assert firing.level.value == "III" and firing.alerts[0]["labels"]["reason"] == "new_script_domain"  # type: ignore[index]


def test_forbidden_word_hidden_text(env: Env, tmp_path: Path) -> None:
    hidden = '<div style="display:none">澳门新葡京 百家乐 在线投注</div>'
    bad = PAGE.format(clock="08:00").replace("</body>", hidden + "</body>")
    run = _scenario(env, tmp_path, lambda r: env.nginx.page(bad), lambda r: env.reset())
    _exactly(run, "DefacementSuspected")
    firing = next(n for n in run.sent if n.kind == "firing")
    assert firing.alerts[0]["labels"]["reason"] == "forbidden_word"  # type: ignore[index]
    assert "违规词 forbidden words: 澳门新葡京, 百家乐" in firing.text, firing.text


def test_whole_page_replaced(env: Env, tmp_path: Path) -> None:
    """A defacer replaces the page: its keyword is gone (ServiceDown), the diff and the words are shown."""
    hacked = "<html><body><h1>Hacked by someone</h1><p>澳门新葡京 在线投注</p></body></html>"
    run = _scenario(env, tmp_path, lambda r: env.nginx.page(hacked), lambda r: env.reset())
    # One incident: at once the content alerts, 60 s later ServiceDown joins it, then all resolve.
    assert [n.kind for n in run.sent] == ["firing", "update", "resolved"], run.fired()
    names = [sorted(str(a["labels"]["alertname"]) for a in n.alerts) for n in run.sent]  # type: ignore[index]
    assert names[0] == ["DefacementSuspected", "ServiceContentChanged"]
    assert names[1] == names[2] == ["DefacementSuspected", "ServiceContentChanged", "ServiceDown"]
    assert len({n.incident_id for n in run.sent}) == 1  # one incident for the service
    first = run.sent[0]
    assert "+Hacked by someone" in first.text and "澳门新葡京" in first.text, first.text


def test_hidden_link(env: Env, tmp_path: Path) -> None:
    """暗链: a link visitors cannot see, to a host the page never linked, with harmless words."""
    planted = (
        '<div style="position:absolute;display: none"><a href="https://seo-spam.example/x">友情链接</a></div>'
    )
    bad = PAGE.format(clock="08:00").replace("</body>", planted + "</body>")
    run = _scenario(env, tmp_path, lambda r: env.nginx.page(bad), lambda r: env.reset())
    _exactly(run, "DefacementSuspected")
    firing = next(n for n in run.sent if n.kind == "firing")
    assert firing.alerts[0]["labels"]["reason"] == "hidden_link"  # type: ignore[index]
    assert "hidden links to: seo-spam.example" in firing.text, firing.text


def test_dns_answer_changed(env: Env, tmp_path: Path) -> None:
    run = _scenario(
        env, tmp_path, lambda r: env.dns.set({NAME: HOST, DNS_NAME: "127.0.0.99"}), lambda r: env.reset()
    )
    _exactly(run, "DnsAnswerWrong")
    wrong = [a for n in run.sent if n.kind == "firing" for a in n.alerts]
    assert wrong[0]["labels"]["server"] == env.dns.server  # type: ignore[index]


def test_maintenance_window_suppresses_content_alert(env: Env, tmp_path: Path) -> None:
    import time

    start = float(int(time.time()))
    window = MaintenanceWindow(
        name="portal-update", match=['service="portal"'], start=start + 60, end=start + 400
    )
    env.reset()
    run = Run(env, tmp_path, [window])
    run.now = start
    run.step(3)  # now = start + 90: inside the window
    env.nginx.page(PAGE.format(clock="08:00").replace("2026年政府工作报告", "2027年政府工作报告"))
    run.step(20)  # well past the end of the window: the change was made inside it
    watch = run.checker.states["portal"].watch
    assert watch is not None and watch.verdict.changed  # the change is seen ...
    assert run.fired() == []  # ... and expected
    # A further change after the window is not covered.
    env.nginx.page(PAGE.format(clock="08:00").replace("2026年政府工作报告", "2028年政府工作报告"))
    run.step(2)
    assert run.fired() == [("firing", "ServiceContentChanged")]
