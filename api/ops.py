"""Operations shared by the JSON API and the console: incident views and actions, log search and
export, configuration versions, backup files. Callers check roles (policy table) and write audit records."""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.engine import Engine
from alerts.incidents import Incident
from alerts.regex import RegexError
from alerts.render import render_string
from alerts.silences import Silence, parse_matcher
from api.state import ApiState
from api.status import NetworkView, network_view
from logstore.export import export_logs
from logstore.record import EVENT_TYPES, Record

EXPORT_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
EXPORT_FILES = frozenset({"records.csv", "records.ndjson", "proofs.ndjson", "manifest.json"})


class OpError(Exception):
    """An operation that cannot be done: `status` is the HTTP status, `message` safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def latest_samples(state: ApiState) -> list[Any]:
    """The latest poll of every device (empty when no poller runs in this process)."""
    return list(state.latest.snapshot()) if state.latest is not None else []


def where_lookup(state: ApiState, q: str) -> dict[str, Any]:
    """Where is this address (400 for a malformed address or MAC, 503 without address tracking)."""
    from collectors.where.query import QueryError, parse_query

    try:
        query = parse_query(q)
    except QueryError as exc:
        raise OpError(400, str(exc)) from None
    svc = state.where()
    if svc is None:
        raise OpError(503, "address tracking (where:) is not configured on this node")
    return dict(svc.lookup(query))


ADDRESS_LABELS = ("ip", "src_ip", "dst_ip", "source_ip", "mac", "previous_mac")


def view(state: ApiState) -> NetworkView:
    """Current status of every device."""
    return network_view(state.inventory, state.topology, latest_samples(state))


def link_states(state: ApiState) -> dict[str, str]:
    """LLDP/CDP verdict per topology link id (confirmed, wrong_port, down, missing, unknown)."""
    from api.hardware import link_view

    found = link_view(state.inventory, latest_samples(state))
    return {
        f"{c.link.a.device}:{c.link.a.interface}--{c.link.b.device}:{c.link.b.interface}": c.state
        for c in found.links
    }


# --- incidents ------------------------------------------------------------------------------------


def need_engine(state: ApiState) -> Engine:
    """The running alert engine, or 503."""
    engine = state.engine()
    if engine is None:
        raise OpError(503, "alert engine not running in this process")
    return engine


def incident_json(engine: Engine, inc: Incident, now: float) -> dict[str, Any]:
    """An incident as the API and console show it (rendered summaries and runbook steps)."""
    alerts = []
    for st in inc.alerts.values():
        rule = engine.rules.get(st.rule)
        labels = st.label_dict
        alerts.append(
            {
                "alert": st.rule,
                "device": labels.get("device", ""),
                "site": labels.get("site", ""),
                # Addresses an alert names, each a link to "where" in the console.
                "addresses": [labels[k] for k in ADDRESS_LABELS if labels.get(k)],
                "state": st.state,
                "summary": engine.summary(rule, st) if rule else st.rule,
                "runbook": [render_string(step, labels=labels, value=st.value) for step in rule.runbook]
                if rule
                else [],
                "since": st.fired_at,
            }
        )
    deadline = inc.report_deadline
    return {
        "id": inc.id,
        "level": inc.level.value,
        "level_name": inc.level.name_zh,
        "colour": inc.level.colour,
        "opened_at": inc.opened_at,
        "resolved_at": inc.resolved_at,
        "open": inc.open,
        "acked_by": inc.acked_by,
        "ack_comment": inc.ack_comment,
        "acked_at": inc.acked_at,
        "escalation_step": inc.escalation_step,
        "report_category": inc.report_category,
        "report_deadline": deadline,
        "report_seconds_left": (deadline - now) if deadline is not None and inc.reported_at is None else None,
        "reported_by": inc.reported_by,
        "reported_at": inc.reported_at,
        "affected": sorted(inc.affected),
        "key": dict(inc.key),
        "alerts": alerts,
    }


def list_incidents(
    state: ApiState, status: str | None, level: str | None, device: str | None
) -> list[dict[str, Any]]:
    """Incidents known to the engine (open first, most severe first), filtered."""
    engine = need_engine(state)
    now = state.clock()
    rows = []
    for inc in engine.incidents.values():
        st = "resolved" if not inc.open else "acked" if inc.acked_by else "open"
        if status and status != st and not (status == "active" and st != "resolved"):
            continue
        if level and inc.level.value != level:
            continue
        if device and not any(a.label_dict.get("device") == device for a in inc.alerts.values()):
            continue
        rows.append(incident_json(engine, inc, now))
    rows.sort(key=lambda r: (not r["open"], ("I", "II", "III", "IV").index(r["level"]), -r["opened_at"]))
    return rows


def _incident(engine: Engine, incident_id: str) -> Incident:
    inc = engine.incidents.get(incident_id)
    if inc is None:
        raise OpError(404, "no such incident")
    return inc


def get_incident(state: ApiState, incident_id: str) -> dict[str, Any]:
    """One incident."""
    engine = need_engine(state)
    return incident_json(engine, _incident(engine, incident_id), state.clock())


def acknowledge(state: ApiState, incident_id: str, user: str, comment: str) -> None:
    """Acknowledge (owner = the caller): escalation stops; saved before returning."""
    engine = need_engine(state)
    inc = _incident(engine, incident_id)
    if not inc.open:
        raise OpError(409, "incident already resolved")
    engine.acknowledge(incident_id, user, comment, state.clock())


def escalate(state: ApiState, incident_id: str, user: str, comment: str) -> str:
    """Escalate now to the next person on the rota; returns who (empty without a rota)."""
    engine = need_engine(state)
    inc = _incident(engine, incident_id)
    if not inc.open:
        raise OpError(409, "incident already resolved")
    now = state.clock()
    public = getattr(engine, "escalate", None)
    if callable(public):  # the engine's own API, when it has one
        result = public(incident_id, user, comment, now)
        return str(result or "")
    # Until alerts.Engine has `escalate`: same steps as its timed escalation, saved with the notice.
    inc.escalation_step += 1
    person = engine.escalation.rota.person(inc.opened_at, inc.escalation_step) if engine.escalation else ""
    note = engine._notify("escalation", inc, now, (person,) if person else ())
    engine._persist([note])
    return person


def mark_reported(state: ApiState, incident_id: str, user: str) -> None:
    """Record that the incident was reported to the authorities."""
    engine = need_engine(state)
    _incident(engine, incident_id)
    engine.mark_reported(incident_id, user, state.clock())


def add_silence(
    state: ApiState, matchers: list[str], seconds: float, user: str, comment: str, maintenance: bool
) -> str:
    """Create a silence (or maintenance window) from now for `seconds`; returns its id."""
    engine = need_engine(state)
    if not 60 <= seconds <= 30 * 86400:
        raise OpError(422, "duration must be between 1 minute and 30 days")
    if not comment.strip():
        raise OpError(422, "a silence needs a comment")
    try:
        parsed = tuple(parse_matcher(m) for m in matchers)
    except RegexError as exc:
        raise OpError(422, f"matcher regex refused: {exc}") from None
    except ValueError:
        raise OpError(422, 'matchers look like name="value", name!=value, name=~regex') from None
    now = state.clock()
    sid = f"SIL-{secrets.token_hex(6)}"
    try:
        engine.add_silence(Silence(sid, parsed, now, now + seconds, user, comment[:500], maintenance))
    except ValueError as exc:
        raise OpError(422, str(exc)) from None
    return sid


def silence_incident(state: ApiState, incident_id: str, seconds: float, user: str, comment: str) -> str:
    """Silence the alerts of one incident (matchers = its grouping labels)."""
    engine = need_engine(state)
    inc = _incident(engine, incident_id)
    matchers = [f'{k}="{v}"' for k, v in inc.key if v]
    if not matchers:
        heads = {a.rule for a in inc.alerts.values()}
        matchers = [f'alertname=~"{"|".join(sorted(re.escape(h) for h in heads))}"']
    return add_silence(state, matchers, seconds, user, comment, False)


def expire_silence(state: ApiState, silence_id: str) -> None:
    """End a silence now."""
    engine = need_engine(state)
    if silence_id not in engine.silences.items:
        raise OpError(404, "no such silence")
    engine.expire_silence(silence_id, state.clock())


def list_silences(state: ApiState) -> list[dict[str, Any]]:
    """Every silence and maintenance window (active first)."""
    engine = need_engine(state)
    now = state.clock()
    rows: list[dict[str, Any]] = [
        {
            "id": s.id,
            "matchers": [f"{m.name}{m.op}{m.value}" for m in s.matchers],
            "starts": s.starts,
            "ends": s.ends,
            "created_by": s.created_by,
            "comment": s.comment,
            "maintenance": s.maintenance,
            "active": s.active(now),
        }
        for s in engine.silences.items.values()
    ]
    rows.sort(key=lambda r: (not r["active"], -float(r["ends"])))
    return rows


# --- security logs --------------------------------------------------------------------------------


def iso_in(text: str) -> str:
    """A user-given ISO time (naive = UTC) in the store's sortable form, or 422."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise OpError(422, "times look like 2026-03-01T00:00:00+08:00") from None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def need_logstore(state: ApiState) -> Any:
    """The security-log store, or 503."""
    store = state.logstore()
    if store is None:
        raise OpError(503, "security-log store not configured")
    return store


def search_logs(
    state: ApiState,
    from_ts: str | None,
    to_ts: str | None,
    device: str | None,
    event_type: str | None,
    text: str | None,
    after_seq: int,
    limit: int,
) -> dict[str, Any]:
    """Records in seq order after `after_seq` matching the filters; `next_after` pages on."""
    store = need_logstore(state)
    if event_type is not None and event_type not in EVENT_TYPES:
        raise OpError(422, f"event_type must be one of {', '.join(EVENT_TYPES)}")
    start = iso_in(from_ts) if from_ts else ""
    end = iso_in(to_ts) if to_ts else "~"
    needle = (text or "").lower()
    items: list[Record] = []
    more = False
    scanned = 0
    last_seq = after_seq
    for rec, _ in store.iter_records(start, end, device or None, event_type):
        if rec["seq"] <= after_seq:
            continue
        if scanned >= state.max_log_scan:
            # Bounded work per request: a text that matches nothing must not read the whole store in
            # one call. The answer says so and where to go on (next_after = the last record examined).
            return {
                "items": items,
                "next_after": last_seq,
                "complete": False,
                "scanned": scanned,
                "note": f"stopped after examining {scanned} records; page on with after_seq={last_seq}",
            }
        scanned += 1
        last_seq = rec["seq"]
        if needle and needle not in (rec.get("msg") or "").lower():
            continue
        if len(items) == limit:
            more = True
            break
        items.append({k: v for k, v in rec.items() if k != "raw"})
    return {
        "items": items,
        "next_after": items[-1]["seq"] if more and items else None,
        "complete": True,
        "scanned": scanned,
    }


def run_export(
    state: ApiState, from_ts: str, to_ts: str, device: str | None, event_type: str | None, fmt: str
) -> dict[str, Any]:
    """Signed, verifiable export into its own folder under the export root; returns its summary."""
    store = need_logstore(state)
    if state.export_key is None:
        raise OpError(503, "no export signing key configured")
    if fmt not in ("csv", "ndjson"):
        raise OpError(422, "format must be csv or ndjson")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise OpError(422, f"event_type must be one of {', '.join(EVENT_TYPES)}")
    start, end = iso_in(from_ts), iso_in(to_ts)
    if end <= start:
        raise OpError(422, "the range must end after it starts")
    export_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(state.clock())) + "-" + secrets.token_hex(4)
    manifest = export_logs(
        store, state.export_dir / export_id, start, end, device, event_type, fmt, state.export_key
    )
    return {
        "id": export_id,
        "records": manifest["record_count"],
        "range": manifest["range"],
        "filters": manifest["filters"],
        "merkle_root": manifest["span"]["merkle_root"],
        "files": [*sorted(manifest["files"]), "manifest.json"],
    }


def list_exports(state: ApiState) -> list[dict[str, Any]]:
    """Export folders, newest first."""
    out = []
    for p in sorted(state.export_dir.iterdir(), reverse=True):
        if p.is_dir() and EXPORT_ID.match(p.name):
            out.append({"id": p.name, "files": sorted(f.name for f in p.iterdir() if f.name in EXPORT_FILES)})
    return out


def safe_file(root: Path | None, rel: str) -> Path:
    """`rel` inside `root` as an existing regular file, or 404 (no traversal, no symlink escape)."""
    if root is None or not rel or "\x00" in rel or "\\" in rel:
        raise OpError(404, "not found")
    base = root.resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base) or target == base or not target.is_file():
        raise OpError(404, "not found")
    return target


def export_file(state: ApiState, export_id: str, filename: str) -> Path:
    """One file of an export (ids and names from fixed patterns only), or 404."""
    if not EXPORT_ID.match(export_id) or filename not in EXPORT_FILES:
        raise OpError(404, "not found")
    return safe_file(state.export_dir, f"{export_id}/{filename}")


# --- backups and configuration versions ------------------------------------------------------------


def backup_files(state: ApiState, limit: int = 500) -> list[dict[str, Any]]:
    """Files under the backup root (relative path, size, modification time), newest first."""
    root = state.backup_dir
    if root is None or not root.is_dir():
        return []
    base = root.resolve()
    rows: list[dict[str, Any]] = []
    for p in base.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            rows.append({"path": p.relative_to(base).as_posix(), "bytes": st.st_size, "mtime": st.st_mtime})
    rows.sort(key=lambda r: -float(r["mtime"]))
    return rows[:limit]


def report_files(state: ApiState) -> list[dict[str, Any]]:
    """Monthly reports under the report root (`<period>/report.pdf|xlsx`), newest period first."""
    root = state.report_dir
    if root is None or not root.is_dir():
        return []
    base = root.resolve()
    rows: list[dict[str, Any]] = []
    for p in base.glob("*/report.*"):
        if p.is_file() and not p.is_symlink() and p.suffix in (".pdf", ".xlsx"):
            st = p.stat()
            rows.append(
                {"period": p.parent.name, "path": p.relative_to(base).as_posix(), "bytes": st.st_size,
                 "mtime": st.st_mtime}
            )  # fmt: skip
    rows.sort(key=lambda r: (str(r["period"]), str(r["path"])), reverse=True)
    return rows


def backup_jobs(state: ApiState) -> list[dict[str, Any]]:
    """Inventory backup jobs with their age from `govnet_backup_age_seconds` when published."""
    ages: dict[str, float] = {}
    if state.latest is not None:
        for s in state.latest.snapshot():
            if s.metric == "govnet_backup_age_seconds":
                labels = s.label_dict
                ages[labels.get("backup_job", labels.get("device", ""))] = s.value
    rows = []
    for job in state.inventory.backup_jobs:
        age = ages.get(job.name)
        rows.append(
            {
                "name": job.name,
                "host": job.host,
                "path": job.path,
                "mode": job.mode,
                "every": job.every,
                "max_age": job.max_age,
                "age": age,
                "state": "unknown" if age is None else "ok" if age <= job.max_age else "stale",
            }
        )
    return rows


def known_device(state: ApiState, device: str) -> None:
    """404 unless `device` is in the inventory (device names reach git only after this)."""
    if device not in {d.name for d in state.inventory.devices}:
        raise OpError(404, "no such device")


def config_versions(state: ApiState, device: str) -> list[dict[str, Any]]:
    """Stored configuration versions of a device, newest first."""
    known_device(state, device)
    if state.config_repo is None:
        raise OpError(503, "no configuration repository configured")
    return [
        {"commit": v.commit, "timestamp": v.timestamp, "author": v.author, "subject": v.subject}
        for v in state.config_repo.history(device)
    ]


def config_diff(state: ApiState, device: str, back: int) -> str:
    """Unified diff from `back` versions ago to the newest."""
    known_device(state, device)
    if state.config_repo is None:
        raise OpError(503, "no configuration repository configured")
    return state.config_repo.diff(device, back)
