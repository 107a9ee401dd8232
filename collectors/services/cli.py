"""`govnet check-services`: run the inventory's service checks once and print each verdict."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TextIO

from collectors.services.checks import run_check
from collectors.services.result import CheckResult
from collectors.services.tls import seconds_left
from inventory.services import ServiceCheck


def _line(check: ServiceCheck, r: CheckResult) -> str:
    parts = [f"{check.name}: {'up' if r.up else 'DOWN'}"]
    if r.status is not None:
        parts.append(f"HTTP {r.status}")
    if r.cert is not None:
        parts.append(f"cert {seconds_left(r.cert) / 86400:.1f} d ({r.cert.protocol})")
    for server, answers in sorted(r.dns_answers.items()):
        parts.append(f"{server} -> {', '.join(answers) or '(none)'}")
    parts.append(f"{r.phases.get('total', 0.0) * 1000:.0f} ms")
    if r.reason:
        parts.append(r.reason)
    return " · ".join(parts)


def _json(check: ServiceCheck, r: CheckResult) -> dict[str, object]:
    cert = r.cert
    return {
        "service": check.name, "type": check.type, "target": check.target, "up": r.up, "reason": r.reason,
        "status": r.status, "redirects": r.redirects, "phases": r.phases, "dns_answers": r.dns_answers,
        "dns_ok": r.dns_ok,
        "cert": None if cert is None else {
            "not_after": cert.not_after, "issuer": cert.issuer, "chain_ok": cert.chain_ok,
            "chain_error": cert.chain_error, "hostname_ok": cert.hostname_ok, "protocol": cert.protocol,
        },
    }  # fmt: skip


def check_services_command(
    inventory: Path, names: list[str], json_out: bool = False, out: TextIO | None = None
) -> int:
    """One round of the named (or all) service checks; exit 0 all up, 1 some down, 2 bad input."""
    from inventory.cli import load_or_report

    out = out or sys.stdout
    inv = load_or_report(inventory, sys.stderr)
    if inv is None:
        return 2
    known = {s.name: s for s in inv.services}
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.stderr.write(f"govnet: unknown service(s): {', '.join(unknown)}\n")
        return 2
    chosen = [known[n] for n in names] if names else list(inv.services)
    base = inventory if inventory.is_dir() else inventory.parent

    async def all_checks() -> list[CheckResult]:
        return list(await asyncio.gather(*(run_check(c, base) for c in chosen)))

    results = asyncio.run(all_checks())
    for check, r in zip(chosen, results, strict=True):
        out.write((json.dumps(_json(check, r), ensure_ascii=False) if json_out else _line(check, r)) + "\n")
    return 0 if all(r.up for r in results) else 1
