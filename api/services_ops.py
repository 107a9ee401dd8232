"""Service checks in the API and console: list, one service with its last diff, accept a baseline."""

from __future__ import annotations

import re
from typing import Any

from api.ops import OpError
from api.state import ApiState
from collectors.services.runner import ServiceChecker, ServiceState
from collectors.services.tls import seconds_left

_USER = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def checker(state: ApiState) -> ServiceChecker | None:
    """The running service checker (None when `services:` is not configured)."""
    found = state.services()
    return found if isinstance(found, ServiceChecker) else None


def _state(state: ApiState, name: str) -> ServiceState:
    found = checker(state)
    st = found.states.get(name) if found is not None else None
    if st is None:
        raise OpError(404, "no such service")
    return st


def _row(st: ServiceState) -> dict[str, Any]:
    c, r = st.check, st.result
    v = st.watch.verdict if st.watch is not None else None
    return {
        "name": c.name,
        "type": c.type,
        "target": c.target,
        "unit": c.owner.unit,
        "site": c.owner.site,
        "up": None if r is None else r.up,
        "reason": "" if r is None else r.reason,
        "checked_at": st.checked_at,
        "status": None if r is None else r.status,
        "cert_days_left": (
            round(seconds_left(r.cert, st.checked_at) / 86400, 1) if r and r.cert and st.checked_at else None
        ),
        "content_changed": None if v is None or v.checked_at is None else v.changed,
        "defacement": [] if v is None else [*v.forbidden, *v.new_hosts, *v.hidden_links],
    }


def list_services(state: ApiState) -> list[dict[str, Any]] | None:
    """Every service with its latest verdict (None when service checks are not running)."""
    found = checker(state)
    return None if found is None else [_row(st) for st in found.states.values()]


def get_service(state: ApiState, name: str) -> dict[str, Any]:
    """One service: latest result, phases, certificate, DNS answers, last diff, baseline versions."""
    st = _state(state, name)
    out = _row(st)
    r = st.result
    out["phases"] = dict(r.phases) if r is not None else {}
    out["redirects"] = r.redirects if r is not None else 0
    out["dns_answers"] = dict(r.dns_answers) if r is not None else {}
    out["cert"] = None
    if r is not None and r.cert is not None:
        c = r.cert
        out["cert"] = {
            "subject": c.subject, "issuer": c.issuer, "names": list(c.names), "not_after": c.not_after,
            "not_before": c.not_before, "chain_ok": c.chain_ok, "chain_error": c.chain_error,
            "hostname_ok": c.hostname_ok, "protocol": c.protocol, "sha256": c.fingerprint_sha256,
        }  # fmt: skip
    out["history"] = [{"at": at, "up": up, "reason": reason} for at, up, reason in reversed(st.history)]
    out["watch"] = None
    if st.watch is not None:
        v = st.watch.verdict
        out["watch"] = {
            "changed": v.changed, "changed_since": v.changed_since, "diff": list(v.diff),
            "forbidden_words": list(v.forbidden), "new_hosts": list(v.new_hosts),
            "hidden_links": list(v.hidden_links),
            "baselines": [
                {"commit": b.commit, "timestamp": b.timestamp, "author": b.author, "subject": b.subject}
                for b in st.watch.repo.versions(name)[:50]
            ],
        }  # fmt: skip
    return out


def accept_baseline(state: ApiState, name: str, user: str) -> str | None:
    """Accept the page last seen as the service's baseline, committed as `user`; the commit id."""
    st = _state(state, name)
    if st.watch is None:
        raise OpError(409, "this service has no content watch")
    if not _USER.match(user):
        raise OpError(400, "user name cannot sign a baseline")
    try:
        return st.watch.accept(f"{user} <{user}@govnet>", state.clock())
    except ValueError as exc:
        raise OpError(409, str(exc)) from None
