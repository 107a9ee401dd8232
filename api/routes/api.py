"""JSON API under /api/v1 (roles per route: api.policy.POLICY)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api import hardware, ops, services_ops
from api.auth import AuthError
from api.deps import api_state, audit, client_of, guard, login_wait, principal_of, run_export
from api.deps import export_download as deps_export_download
from api.ops import OpError
from api.policy import Role

router = APIRouter(prefix="/api/v1", dependencies=[Depends(guard)])

Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
ShortText = Annotated[str | None, Query(max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Login(_Body):
    """User name and password; answers a Bearer session token."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Comment(_Body):
    """A free-text comment kept with the action."""

    comment: str = Field("", max_length=1000)


class NewSilence(_Body):
    """Matchers (`name="value"`, `name!=value`, `name=~regex`), duration, comment."""

    matchers: list[Annotated[str, Field(min_length=3, max_length=300)]] = Field(min_length=1, max_length=20)
    duration_seconds: float = Field(ge=60, le=30 * 86400)
    comment: str = Field(min_length=1, max_length=500)
    maintenance: bool = False


class NewExport(_Body):
    """A time range (ISO 8601), optional filters and the file format."""

    from_ts: str = Field(alias="from", min_length=1, max_length=40)
    to_ts: str = Field(alias="to", min_length=1, max_length=40)
    device: str | None = Field(None, max_length=64)
    event_type: str | None = Field(None, max_length=32)
    format: Literal["csv", "ndjson"] = "csv"


class NewUser(_Body):
    """A user with a role and an initial password (at least 12 characters)."""

    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(min_length=12, max_length=1024)


class NewToken(_Body):
    """An API token for the caller, valid for `days` (`user`, if given, must be the caller)."""

    user: str | None = Field(None, min_length=1, max_length=64)
    days: float = Field(gt=0, le=366)
    label: str = Field("", max_length=100)


def page(items: list[Any], offset: int, limit: int) -> dict[str, Any]:
    """The standard page envelope."""
    return {"total": len(items), "offset": offset, "limit": limit, "items": items[offset : offset + limit]}


@router.post("/auth/login")
async def login(body: Login, request: Request) -> JSONResponse:
    """Exchange a user name and password for a session token (rate-limited per user and per client)."""
    state = api_state(request)
    client, now = client_of(request), state.clock()
    wait = login_wait(state, body.username, client, now, "api")
    if wait:
        return JSONResponse(
            {"detail": "too many failed logins from this address"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    role = await asyncio.to_thread(state.auth.verify_login, body.username, body.password)
    if role is None:
        state.limiter.failed(body.username, client, now)
        state.audit.record(body.username[:64], "login", "api", "failure", client, "")
        return JSONResponse({"detail": "wrong user name or password"}, status_code=401)
    state.limiter.succeeded(body.username, client)
    _, token = state.auth.issue(body.username, "api", state.session_seconds, "login")
    state.audit.record(body.username, "login", "api", "success", client, "")
    return JSONResponse({"token": token, "role": role.value, "expires_in": state.session_seconds})


@router.post("/auth/logout")
def logout(request: Request) -> dict[str, str]:
    """Revoke the token or session used for this call."""
    principal = principal_of(request)
    api_state(request).auth.revoke(principal.token_id)
    audit(request, "logout", principal.user)
    return {"status": "ok"}


@router.get("/me")
def me(request: Request) -> dict[str, str]:
    """Who is calling, with which role."""
    p = principal_of(request)
    return {"user": p.user, "role": p.role.value, "via": p.kind}


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    """Which parts of the monitor this API can reach."""
    state = api_state(request)
    return {
        "status": "ok",
        "devices": len(state.inventory.devices),
        "polled_devices": len(state.latest.devices()) if state.latest is not None else 0,
        "alert_engine": state.engine() is not None,
        "logstore": state.logstore() is not None,
        "config_repo": state.config_repo is not None,
        "audit_backend": state.audit.backend,
    }


@router.get("/devices")
def devices(
    request: Request,
    offset: Offset = 0,
    limit: Limit = 100,
    status: Literal["up", "degraded", "unreachable", "down", "unknown"] | None = None,
    role: ShortText = None,
    site: ShortText = None,
    q: ShortText = None,
) -> dict[str, Any]:
    """Inventory with status (up, degraded, unreachable, down, unknown), HA role and last poll."""
    rows = [
        d.to_json()
        for d in ops.view(api_state(request)).devices.values()
        if (status is None or d.status == status)
        and (role is None or d.role == role)
        and (site is None or d.site == site)
        and (q is None or q.lower() in d.name.lower())
    ]
    return page(rows, offset, limit)


@router.get("/devices/{name}")
def device(name: str, request: Request) -> dict[str, Any]:
    """One device's status."""
    found = ops.view(api_state(request)).devices.get(name)
    if found is None:
        raise OpError(404, "no such device")
    return found.to_json()


@router.get("/topology")
def topology(request: Request) -> dict[str, Any]:
    """Devices with status and links with state and LLDP verdict (for maps other than the console's)."""
    state = api_state(request)
    v = ops.view(state)
    lldp = ops.link_states(state)
    return {
        "devices": [
            {"name": d.name, "role": d.role, "site": d.site, "status": d.status} for d in v.devices.values()
        ],
        "links": [
            {
                "id": link.id,
                "a": link.a,
                "b": link.b,
                "kind": link.kind,
                "state": "down" if link.id in v.links_down else "up",
                "lldp": lldp.get(link.id, "unknown"),
            }
            for link in state.topology.links
        ],
    }


@router.get("/links")
def links(request: Request) -> dict[str, Any]:
    """Each declared link checked against LLDP/CDP, and the neighbours no declared link explains."""
    state = api_state(request)
    return hardware.links_json(hardware.link_view(state.inventory, ops.latest_samples(state)))


@router.get("/hardware")
def hardware_inventory(request: Request, offset: Offset = 0, limit: Limit = 500) -> dict[str, Any]:
    """Hardware and firmware inventory: per device its model, version, release, serial, then its modules."""
    state = api_state(request)
    return page(hardware.hardware_rows(state.inventory, ops.latest_samples(state)), offset, limit)


@router.get("/hardware/export")
def hardware_export(request: Request, format: Literal["csv", "xlsx"] = "csv") -> Response:
    """The hardware inventory as CSV or XLSX (every cell plain text)."""
    state = api_state(request)
    return hardware_file(hardware.hardware_rows(state.inventory, ops.latest_samples(state)), format)


def hardware_file(rows: list[dict[str, str]], fmt: str) -> Response:
    """A download of the inventory rows in `fmt` (csv or xlsx)."""
    if fmt == "xlsx":
        body, media = (
            hardware.to_xlsx(rows),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        body, media = hardware.to_csv(rows), "text/csv; charset=utf-8"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="hardware.{fmt}"'}
    )


@router.get("/alerts")
async def alerts(request: Request, offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
    """Pending and firing alerts with why they are (not) paged."""
    state = api_state(request)
    engine = ops.need_engine(state)
    rows = [
        {
            "alert": a.alert,
            "labels": a.labels,
            "state": a.state,
            "value": a.value,
            "since": a.since,
            "inhibited_by": a.inhibited_by,
            "silenced_by": a.silenced_by,
            "flapping": a.flapping,
            "summary": a.summary,
        }
        for a in engine.alerts(state.clock())
    ]
    return page(rows, offset, limit)


@router.get("/incidents")
async def incidents(
    request: Request,
    offset: Offset = 0,
    limit: Limit = 100,
    status: Literal["open", "acked", "resolved", "active"] | None = None,
    level: Literal["I", "II", "III", "IV"] | None = None,
    device: ShortText = None,
) -> dict[str, Any]:
    """Incidents (open first, most severe first) with report deadlines and runbooks."""
    return page(ops.list_incidents(api_state(request), status, level, device), offset, limit)


@router.get("/incidents/{incident_id}")
async def incident(incident_id: str, request: Request) -> dict[str, Any]:
    """One incident."""
    return ops.get_incident(api_state(request), incident_id)


@router.post("/incidents/{incident_id}/ack")
async def ack(incident_id: str, body: Comment, request: Request) -> dict[str, Any]:
    """Acknowledge: the caller owns the incident; escalation stops."""
    try:
        ops.acknowledge(api_state(request), incident_id, principal_of(request).user, body.comment)
    except OpError as exc:
        audit(request, "incident_ack", incident_id, "failure", exc.message)
        raise
    audit(request, "incident_ack", incident_id, "success", body.comment)
    return ops.get_incident(api_state(request), incident_id)


@router.post("/incidents/{incident_id}/escalate")
async def escalate(incident_id: str, body: Comment, request: Request) -> dict[str, Any]:
    """Escalate now to the next person on the rota."""
    to = ops.escalate(api_state(request), incident_id, principal_of(request).user, body.comment)
    audit(request, "incident_escalate", incident_id, "success", f"to={to} {body.comment}")
    return {"escalated_to": to}


@router.post("/incidents/{incident_id}/reported")
async def reported(incident_id: str, body: Comment, request: Request) -> dict[str, Any]:
    """Record that the incident was reported to the authorities (stops deadline reminders)."""
    ops.mark_reported(api_state(request), incident_id, principal_of(request).user)
    audit(request, "incident_reported", incident_id, "success", body.comment)
    return ops.get_incident(api_state(request), incident_id)


@router.get("/silences")
async def silences(request: Request, offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
    """Silences and maintenance windows, active first."""
    return page(ops.list_silences(api_state(request)), offset, limit)


@router.post("/silences", status_code=201)
async def create_silence(body: NewSilence, request: Request) -> dict[str, str]:
    """Mute matching alerts from now for `duration_seconds`."""
    sid = ops.add_silence(
        api_state(request),
        body.matchers,
        body.duration_seconds,
        principal_of(request).user,
        body.comment,
        body.maintenance,
    )
    audit(
        request, "silence_add", sid, "success", f"{body.matchers} {body.duration_seconds:g}s {body.comment}"
    )
    return {"id": sid}


@router.post("/silences/{silence_id}/expire")
async def expire(silence_id: str, request: Request) -> dict[str, str]:
    """End a silence now."""
    ops.expire_silence(api_state(request), silence_id)
    audit(request, "silence_expire", silence_id)
    return {"status": "ok"}


@router.get("/backups")
def backups(request: Request, offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
    """Backup jobs with their age, and backup files under the backup root."""
    state = api_state(request)
    files = ops.backup_files(state)
    return {"jobs": ops.backup_jobs(state), "files": page(files, offset, limit)}


@router.get("/backups/files/{path:path}")
def backup_file(path: str, request: Request) -> FileResponse:
    """Download one backup file (only below the backup root)."""
    target = ops.safe_file(api_state(request).backup_dir, path)
    audit(request, "backup_download", path)
    return FileResponse(target, filename=target.name, media_type="application/octet-stream")


@router.get("/reports")
def reports(request: Request, offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
    """Monthly reports (PDF and XLSX) kept by the `reports:` section, newest first."""
    return page(ops.report_files(api_state(request)), offset, limit)


@router.get("/reports/files/{path:path}")
def report_file(path: str, request: Request) -> FileResponse:
    """Download one report file (only below the report root); every download is audited."""
    target = ops.safe_file(api_state(request).report_dir, path)
    audit(request, "report_download", path)
    media = "application/pdf" if target.suffix == ".pdf" else "application/octet-stream"
    return FileResponse(target, filename=f"govnet-{target.parent.name}-{target.name}", media_type=media)


@router.get("/configs/{device}/versions")
def config_versions(device: str, request: Request, offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
    """Stored configuration versions of a device, newest first."""
    return page(ops.config_versions(api_state(request), device), offset, limit)


@router.get("/configs/{device}/diff")
def config_diff(
    device: str, request: Request, back: Annotated[int, Query(ge=1, le=1000)] = 1
) -> PlainTextResponse:
    """Unified diff of the configuration from `back` versions ago to the newest."""
    return PlainTextResponse(ops.config_diff(api_state(request), device, back))


@router.get("/services")
def services(request: Request) -> dict[str, Any]:
    """Every service check with its latest verdict (`running` false without a `services:` section)."""
    items = services_ops.list_services(api_state(request))
    return {"items": items or [], "running": items is not None}


@router.get("/services/{name}")
def service(name: str, request: Request) -> dict[str, Any]:
    """One service: latest result, timings, certificate, DNS answers, last page diff, baselines."""
    return services_ops.get_service(api_state(request), name)


@router.post("/services/{name}/baseline")
async def accept_baseline(name: str, request: Request) -> dict[str, Any]:
    """Accept the page last seen as the service's new baseline (committed under the caller's name)."""
    user = principal_of(request).user
    try:
        commit = await asyncio.to_thread(services_ops.accept_baseline, api_state(request), name, user)
    except OpError as exc:
        audit(request, "baseline_accept", name, "failure", exc.message)
        raise
    audit(request, "baseline_accept", name, "success", f"commit={commit}")
    return {"service": name, "commit": commit}


@router.get("/logs")
def logs(
    request: Request,
    from_ts: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to_ts: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    device: ShortText = None,
    event_type: ShortText = None,
    q: ShortText = None,
    after_seq: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Security-log records in sequence order; page on with `after_seq=next_after`."""
    return ops.search_logs(api_state(request), from_ts, to_ts, device, event_type, q, after_seq, limit)


@router.get("/where")
def where(request: Request, q: Annotated[str, Query(max_length=1000)]) -> dict[str, Any]:
    """Where is an IP or MAC address: MAC(s) with vendor, switch port, VLAN, history (400 if malformed)."""
    return ops.where_lookup(api_state(request), q)


@router.post("/logs/exports", status_code=201)
def create_export(body: NewExport, request: Request) -> dict[str, Any]:
    """Signed, offline-verifiable export of a time range (records, proofs, manifest)."""
    return run_export(request, body.from_ts, body.to_ts, body.device, body.event_type, body.format)


@router.get("/logs/exports")
def exports(request: Request, offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
    """Existing exports, newest first."""
    return page(ops.list_exports(api_state(request)), offset, limit)


@router.get("/logs/exports/{export_id}/{filename}")
def export_download(export_id: str, filename: str, request: Request) -> FileResponse:
    """Download one file of an export."""
    return deps_export_download(request, export_id, filename)


@router.get("/audit")
def audit_trail(
    request: Request, offset: Offset = 0, limit: Limit = 100, user: ShortText = None, action: ShortText = None
) -> dict[str, Any]:
    """Audit records (logins, changes, exports), newest first."""
    total, rows = api_state(request).audit.page(offset, limit, user, action)
    return {"total": total, "offset": offset, "limit": limit, "items": [r.to_json() for r in rows]}


@router.get("/users")
def users(request: Request) -> dict[str, Any]:
    """Every user (no password hashes)."""
    return {"items": api_state(request).auth.users()}


@router.post("/users", status_code=201)
def create_user(body: NewUser, request: Request) -> dict[str, str]:
    """Create a user."""
    try:
        api_state(request).auth.add_user(body.name, body.role.value, body.password)
    except AuthError as exc:
        audit(request, "user_add", body.name, "failure", str(exc))
        raise OpError(409 if "exists" in str(exc) else 422, str(exc)) from None
    audit(request, "user_add", body.name, "success", f"role={body.role.value}")
    return {"name": body.name}


@router.post("/users/{username}/disable")
def disable_user(username: str, request: Request) -> dict[str, str]:
    """Disable a user and revoke their tokens and sessions."""
    if not api_state(request).auth.disable_user(username):
        raise OpError(404, "no such user")
    audit(request, "user_disable", username)
    return {"status": "ok"}


@router.get("/tokens")
def tokens(request: Request) -> dict[str, Any]:
    """API tokens (ids, owners, expiry; never the tokens)."""
    return {"items": api_state(request).auth.tokens()}


@router.post("/tokens", status_code=201)
def create_token(body: NewToken, request: Request) -> dict[str, Any]:
    """Create an API token for the caller; the token text is shown only in this answer.

    Nobody mints a token for someone else (三权分立: an administrator acting as an auditor would be
    audited under the auditor's name); administrators manage users and revoke tokens.
    """
    me = principal_of(request).user
    if body.user is not None and body.user != me:
        audit(request, "token_add", body.user, "denied", "a token for another user")
        raise OpError(403, "tokens are issued only to the caller: the user creates their own")
    try:
        token_id, token = api_state(request).auth.issue(me, "api", body.days * 86400, body.label)
    except AuthError as exc:
        raise OpError(404, str(exc)) from None
    audit(request, "token_add", token_id, "success", f"user={me} days={body.days:g}")
    return {"id": token_id, "token": token}


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: str, request: Request) -> dict[str, str]:
    """Revoke a token."""
    if not api_state(request).auth.revoke(token_id):
        raise OpError(404, "no such token")
    audit(request, "token_revoke", token_id)
    return {"status": "ok"}
