"""`govnet test-rules FILE...`: run rule unit tests (promtool style); exit 0 when all pass, 1 otherwise."""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from alerts.persist import AlertStore, incident_to_json, silence_to_json
from alerts.promtest import TestFileError, run_test_file
from alerts.rules import RuleError
from alerts.silences import Silence, parse_matcher


def test_rules_command(files: list[Path]) -> int:
    """Run each test file, print `FILE: SUCCESS` or the failures, and return the exit code."""
    failed = False
    for path in files:
        try:
            results = run_test_file(path)
        except (TestFileError, RuleError) as exc:
            print(f"{path}: FAILED: {exc}")
            failed = True
            continue
        bad = [r for r in results if r.failures]
        if not bad:
            print(f"{path}: SUCCESS ({len(results)} tests)")
            continue
        failed = True
        print(f"{path}: FAILED")
        for r in bad:
            print(f"  {r.name}:")
            for f in r.failures:
                print(f"    {f}")
    return 1 if failed else 0


test_rules_command.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


# -- operator commands on the state file of `govnet run --config F` ---------------------------------
# They queue the action in the alert state database (durable at once); the running engine applies it
# within one evaluation interval (or at its next start), so an ack or silence is never lost and never
# overwritten by the running process.


def _state(config: Path) -> AlertStore:
    from alerts.config import AlertingConfig, open_store
    from core.config import load_document

    alerting = load_document(config).section("alerts", AlertingConfig)
    if alerting is None:
        raise ValueError(f"{config}: no alerts: section")
    if alerting.state is None and not alerting.state_db.exists():
        raise ValueError(f"{alerting.state_db}: no alert state yet (has govnet run started?)")
    try:
        # HA pair: the shared PostgreSQL store; the leader applies the command, whichever node it is.
        return open_store(alerting, create=False)
    except ConnectionError as exc:
        raise ValueError(f"state.postgres: {exc}") from None


def _state_or_report(config: Path) -> AlertStore | None:
    """The alert state store, or None after saying on stderr why it cannot be opened."""
    try:
        return _state(config)
    except ValueError as exc:
        print(f"govnet: {exc}", file=sys.stderr)
        return None


def _wait_applied(db: AlertStore, command_id: int, wait: float) -> tuple[float | None, str | None]:
    deadline = time.monotonic() + wait
    applied, error = db.command(command_id)
    while applied is None and time.monotonic() < deadline:
        time.sleep(0.2)
        applied, error = db.command(command_id)
    return applied, error


def _queue(config: Path, doc: dict[str, Any], wait: float, what: str) -> int:
    db = _state_or_report(config)
    if db is None:
        return 2
    try:
        if doc["kind"] in ("ack", "report"):
            inc = db.incident(str(doc["incident"]))
            if inc is None or not inc.open:
                print(f"govnet: no open incident {doc['incident']}", file=sys.stderr)
                return 1
        command_id = db.queue_command(doc, time.time())
        applied, error = _wait_applied(db, command_id, wait)
    finally:
        db.close()
    if error is not None:
        print(f"govnet: {what} refused: {error}", file=sys.stderr)
        return 1
    state = "applied" if applied is not None else "queued (the engine applies it at its next cycle)"
    print(f"{what}: {state}")
    return 0


def ack_command(config: Path, incident: str, owner: str, comment: str = "", wait: float = 0.0) -> int:
    """`govnet alerts ack INCIDENT --owner NAME --comment TEXT`: stop escalation; the resolved notice still
    goes out, naming the owner."""
    if not owner.strip():
        print("govnet: --owner is required", file=sys.stderr)
        return 2
    doc = {"kind": "ack", "incident": incident, "owner": owner, "comment": comment}
    return _queue(config, doc, wait, f"ack {incident} by {owner}")


def report_command(config: Path, incident: str, by: str, wait: float = 0.0) -> int:
    """`govnet alerts reported INCIDENT --by NAME`: the event was reported to the authorities."""
    return _queue(config, {"kind": "report", "incident": incident, "by": by}, wait, f"report {incident}")


def silence_command(
    config: Path,
    matchers: list[str],
    duration: str,
    author: str,
    comment: str = "",
    maintenance: bool = False,
    wait: float = 0.0,
) -> int:
    """`govnet alerts silence 'device=core-1' ... --for 2h --author NAME --comment TEXT [--maintenance]`."""
    from core.config import parse_duration

    try:
        parsed = tuple(parse_matcher(m) for m in matchers)
        seconds = parse_duration(duration)
    except ValueError as exc:
        print(f"govnet: {exc}", file=sys.stderr)
        return 2
    if not parsed or seconds <= 0 or not author.strip():
        print("govnet: a silence needs matchers, a positive --for and an --author", file=sys.stderr)
        return 2
    now = time.time()
    silence = Silence(f"S-{secrets.token_hex(4)}", parsed, now, now + seconds, author, comment, maintenance)
    print(silence.id)
    doc = {"kind": "silence", "silence": silence_to_json(silence)}
    return _queue(config, doc, wait, f"silence {silence.id}")


def expire_command(config: Path, silence_id: str, wait: float = 0.0) -> int:
    """`govnet alerts expire SILENCE_ID`: end a silence now."""
    return _queue(config, {"kind": "expire", "id": silence_id}, wait, f"expire {silence_id}")


def list_command(config: Path, as_json: bool = False, all_incidents: bool = False) -> int:
    """`govnet alerts list [--json] [--all]`: incidents (with ack, escalation, affected devices), the
    current alerts (with what inhibits or silences them, as of the engine's last evaluation), silences,
    and queued actions not applied yet."""
    db = _state_or_report(config)
    if db is None:
        return 2
    try:
        now = time.time()
        incidents = [incident_to_json(i) for i in db.incidents(open_only=not all_incidents)]
        silences = [{**silence_to_json(s), "active": s.active(now)} for s in db.silences()]
        pending = [doc for _, doc in db.pending_commands()]
        alerts = json.loads(db.get_meta("alerts", "[]"))
    finally:
        db.close()
    if as_json:
        doc = {"incidents": incidents, "alerts": alerts, "silences": silences, "pending": pending}
        print(json.dumps(doc, ensure_ascii=False))
        return 0
    for inc in incidents:
        names = ", ".join(sorted({a["rule"] for a in inc["alerts"]}))
        ack = f"acked by {inc['acked_by']} ({inc['ack_comment']})" if inc["acked_by"] else "NOT acked"
        state = "open" if inc["resolved_at"] is None else "resolved"
        print(f"{inc['id']} level {inc['level']} {state} {dict(map(tuple, inc['key']))} {names}; {ack}; "
              f"escalation step {inc['escalation_step']}; affected {len(inc['affected'])}")  # fmt: skip
    for s in silences:
        matchers = " ".join(f"{n}{op}{v!r}" for n, v, op in s["matchers"])
        kind = "maintenance" if s["maintenance"] else "silence"
        print(f"{s['id']} {kind} {'active' if s['active'] else 'inactive'} {matchers} by {s['created_by']}: "
              f"{s['comment']}")  # fmt: skip
    counts: dict[tuple[str, str], int] = {}
    for a in alerts:
        why = "inhibited" if a["inhibited_by"] else "silenced" if a["silenced_by"] else a["state"]
        counts[(a["alert"], why)] = counts.get((a["alert"], why), 0) + 1
    for (name, why), n in sorted(counts.items()):
        print(f"alerts: {name} {why}: {n}")
    for doc in pending:
        print(f"queued: {doc['kind']}")
    return 0
