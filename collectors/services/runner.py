"""Runs each service check of the inventory on its interval; results become govnet_service_* samples."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.services.checks import run_check
from collectors.services.content import Page, analyse
from collectors.services.result import PHASES, CheckResult
from collectors.services.tls import seconds_left
from collectors.services.watch import BaselineRepo, PageWatch, Verdict
from core.samples import MetricType, Sample
from inventory.services import HttpService, ServiceCheck

log = logging.getLogger(__name__)

HELP = {
    "govnet_service_up": "1 if the last check of the service passed every expectation, else 0.",
    "govnet_service_duration_seconds": "Last check by phase: dns, connect, tls, first_byte, total.",
    "govnet_service_http_status_code": "HTTP status of the final answer (after redirects).",
    "govnet_service_http_redirects": "Redirects followed in the last check.",
    "govnet_service_cert_expiry_timestamp_seconds": "notAfter of the certificate presented (unix seconds).",
    "govnet_service_cert_expires_in_seconds": "Seconds until the certificate expires, at the last check.",
    "govnet_service_cert_chain_ok": "1 if the chain verifies against the system store or the configured CA.",
    "govnet_service_cert_hostname_ok": "1 if the certificate names the host checked.",
    "govnet_service_cert_info": "Certificate issuer and negotiated protocol (value 1).",
    "govnet_service_dns_answer_ok": "1 if this DNS server's answer equals the expected set.",
    "govnet_service_content_changed": "1 if the page's visible text differs from the accepted baseline.",
    "govnet_service_content_change_timestamp_seconds": "When the current changed page text was first seen.",
    "govnet_service_defacement_suspected": "1 if a forbidden word or a new external script host appeared.",
    "govnet_service_checks_total": "Checks run since start.",
    "govnet_service_check_failures_total": "Checks that found the service down.",
    "govnet_service_last_check_timestamp_seconds": "When the last check finished.",
}


@dataclass
class ServiceState:
    """The latest of one service: result, counters, and its page watch (http/https with `content`)."""

    check: ServiceCheck
    result: CheckResult | None = None
    checked_at: float | None = None
    checks: int = 0
    failures: int = 0
    watch: PageWatch | None = None
    history: list[tuple[float, bool, str]] = field(default_factory=list)  # last results (console)

    def labels(self) -> tuple[tuple[str, str], ...]:
        """service, type, unit, site."""
        c = self.check
        return (("service", c.name), ("site", c.owner.site), ("type", c.type), ("unit", c.owner.unit))


class ServiceChecker:
    """The `services` part of `govnet run`: one task per service, a concurrency cap, samples for /metrics
    and the alert rules. Nothing a target does can stall the loop: each check has its deadline, and page
    analysis runs in a thread."""

    name = "services"

    def __init__(
        self,
        checks: list[ServiceCheck],
        repo: BaselineRepo | None,
        base: Path | None = None,
        max_concurrency: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base = base
        self.repo = repo
        self.clock = clock
        self.sem = asyncio.Semaphore(max_concurrency)
        self.states: dict[str, ServiceState] = {}
        for c in checks:
            st = ServiceState(c)
            if (
                isinstance(c, HttpService)
                and c.content is not None
                and c.content.enabled
                and repo is not None
            ):
                st.watch = PageWatch(c.name, c.content, repo)
            self.states[c.name] = st

    async def check_once(self, name: str) -> ServiceState:
        """Run one service's check now and record it."""
        st = self.states[name]
        async with self.sem:
            result = await run_check(st.check, self.base)
        now = self.clock()
        check = st.check
        # A page served with an expected status is compared even when a keyword check failed: a page
        # replaced whole by a defacer loses its keywords (ServiceDown) and must still show its diff.
        fetched = isinstance(check, HttpService) and result.status in check.expect.status
        if st.watch is not None and fetched and result.body is not None:
            try:
                await asyncio.to_thread(self._watch, st.watch, result, now)
            except Exception:  # a baseline repository failure must not stop the checks
                log.exception("content watch of %s failed", name)
        result.body = None  # the page is not kept: bounded memory per service
        result.body_text = ""
        st.result, st.checked_at = result, now
        st.checks += 1
        st.failures += 0 if result.up else 1
        st.history = [*st.history[-19:], (now, result.up, result.reason)]
        return st

    @staticmethod
    def _watch(watch: PageWatch, result: CheckResult, now: float) -> Verdict:
        assert result.body is not None
        page: Page = analyse(result.body, result.final_url, watch.cfg, result.charset)
        return watch.observe(page, now)

    async def check_all(self) -> None:
        """Run every check once, concurrently (bounded by the semaphore)."""
        await asyncio.gather(*(self.check_once(n) for n in self.states))

    async def run(self, stop: asyncio.Event) -> None:
        """Check every service on its interval until `stop` (first checks spread over the interval)."""
        tasks = [asyncio.create_task(self._loop(n, stop), name=f"service-{n}") for n in self.states]
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, name: str, stop: asyncio.Event) -> None:
        interval = self.states[name].check.interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), random.uniform(0, min(interval, 10.0)))
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                await self.check_once(name)
            except Exception:  # a bug in one check must not end the others
                log.exception("service check %s failed", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, interval - (loop.time() - started)))

    def content_detail(self, labels: dict[str, str]) -> list[str]:
        """The text diff behind a ServiceContentChanged alert (for the notification)."""
        st = self.states.get(labels.get("service", ""))
        if st is None or st.watch is None:
            return []
        return list(st.watch.verdict.diff)

    def defacement_detail(self, labels: dict[str, str]) -> list[str]:
        """The forbidden words or new external hosts behind a DefacementSuspected alert."""
        st = self.states.get(labels.get("service", ""))
        if st is None or st.watch is None:
            return []
        v = st.watch.verdict
        if labels.get("reason") == "forbidden_word":
            return [f"违规词 forbidden words: {', '.join(v.forbidden)}"]
        if labels.get("reason") == "hidden_link":
            return [f"暗链（隐藏元素中的外部链接）hidden links to: {', '.join(v.hidden_links)}"]
        return [f"新增外部脚本/框架域名 new external script hosts: {', '.join(v.new_hosts)}"]

    def register_details(self, engine: Any) -> None:
        """Show diffs and findings in the alert engine's notifications (alerts.engine.Engine.details)."""
        engine.details["ServiceContentChanged"] = self.content_detail
        engine.details["DefacementSuspected"] = self.defacement_detail

    def internal_samples(self) -> list[Sample]:
        """govnet_service_* for every service checked at least once."""
        out: list[Sample] = []
        for st in self.states.values():
            out += service_samples(st)
        return out


def _s(
    metric: str, labels: tuple[tuple[str, str], ...], value: float, ts: float, kind: MetricType = "gauge"
) -> Sample:
    return Sample(metric, tuple(sorted(labels)), float(value), ts, kind, HELP[metric])


def service_samples(st: ServiceState) -> list[Sample]:
    """The samples of one service's latest result (none before its first check)."""
    r = st.result
    if r is None or st.checked_at is None:
        return []
    lab = st.labels()
    ts = st.checked_at
    out = [
        _s("govnet_service_up", lab, 1.0 if r.up else 0.0, ts),
        _s("govnet_service_checks_total", lab, st.checks, ts, "counter"),
        _s("govnet_service_check_failures_total", lab, st.failures, ts, "counter"),
        _s("govnet_service_last_check_timestamp_seconds", lab, ts, ts),
    ]
    for phase in PHASES:
        if phase in r.phases:
            out.append(_s("govnet_service_duration_seconds", (*lab, ("phase", phase)), r.phases[phase], ts))
    if r.status is not None:
        out.append(_s("govnet_service_http_status_code", lab, r.status, ts))
        out.append(_s("govnet_service_http_redirects", lab, r.redirects, ts))
    if r.cert is not None:
        c = r.cert
        out.append(_s("govnet_service_cert_expiry_timestamp_seconds", lab, c.not_after, ts))
        out.append(_s("govnet_service_cert_expires_in_seconds", lab, seconds_left(c, ts), ts))
        out.append(_s("govnet_service_cert_chain_ok", lab, 1.0 if c.chain_ok else 0.0, ts))
        out.append(_s("govnet_service_cert_hostname_ok", lab, 1.0 if c.hostname_ok else 0.0, ts))
        out.append(
            _s("govnet_service_cert_info", (*lab, ("issuer", c.issuer), ("protocol", c.protocol)), 1.0, ts)
        )
    for server, ok in sorted(r.dns_ok.items()):
        out.append(_s("govnet_service_dns_answer_ok", (*lab, ("server", server)), 1.0 if ok else 0.0, ts))
    if st.watch is not None and st.watch.verdict.checked_at is not None:
        v = st.watch.verdict
        vts = v.checked_at or ts
        out.append(_s("govnet_service_content_changed", lab, 1.0 if v.changed else 0.0, vts))
        if v.changed and v.changed_since is not None:
            out.append(_s("govnet_service_content_change_timestamp_seconds", lab, v.changed_since, vts))
        reasons = (
            ("forbidden_word", v.forbidden),
            ("new_script_domain", v.new_hosts),
            ("hidden_link", v.hidden_links),
        )
        for reason, hit in reasons:
            out.append(
                _s(
                    "govnet_service_defacement_suspected",
                    (*lab, ("reason", reason)),
                    1.0 if hit else 0.0,
                    vts,
                )
            )
    return out
