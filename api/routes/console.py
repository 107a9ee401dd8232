"""Server-rendered console pages (Chinese first; every value autoescaped; forms carry a CSRF token)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api import hardware, ops, services_ops
from api.deps import (
    SESSION_COOKIE,
    api_state,
    audit,
    client_of,
    guard,
    login_wait,
    principal_of,
    render,
    run_export,
)
from api.deps import export_download as deps_export_download
from api.ops import OpError
from api.policy import home_of
from api.topomap import layout

router = APIRouter(include_in_schema=False, dependencies=[Depends(guard)])
STATIC = Path(__file__).resolve().parent.parent / "static"
STATIC_FILES = {"app.css": "text/css", "app.js": "text/javascript"}
PAGE = 50

Text = Annotated[str, Form(max_length=1000)]
Opt = Annotated[str | None, Query(max_length=200)]


def _next(target: str) -> str:
    # Only local paths: never redirect to another site after login.
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's stylesheet and script (fixed names only)."""
    if name not in STATIC_FILES:
        return Response(status_code=404)
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name])


@router.get("/login")
def login_page(request: Request, next: Opt = None) -> Response:
    """The login form."""
    return render(request, "login.html", next=_next(next or "/"), error=None)


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Check the password (rate-limited), set an HttpOnly SameSite=Strict session cookie."""
    state = api_state(request)
    client, now = client_of(request), state.clock()
    if login_wait(state, username, client, now, "console"):
        return render(request, "login.html", http_status=429, next=_next(next), error="login_limited")
    role = await asyncio.to_thread(state.auth.verify_login, username, password)
    if role is None:
        state.limiter.failed(username, client, now)
        state.audit.record(username, "login", "console", "failure", client, "")
        return render(request, "login.html", http_status=401, next=_next(next), error="login_failed")
    state.limiter.succeeded(username, client)
    _, token = state.auth.issue(username, "session", state.session_seconds, "console")
    state.audit.record(username, "login", "console", "success", client, "")
    target = _next(next)
    resp = RedirectResponse(home_of(role) if target == "/" else target, status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=state.secure_cookies,
        max_age=int(state.session_seconds),
        path="/",
    )
    return resp


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session."""
    principal = principal_of(request)
    api_state(request).auth.revoke(principal.token_id)
    audit(request, "logout", principal.user)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/")
def home(request: Request) -> Response:
    """Send each role to its page."""
    return RedirectResponse(home_of(principal_of(request).role), status_code=303)


@router.get("/incidents")
async def incidents(request: Request, status: Opt = "active") -> Response:
    """The on-call board: level colour, report-deadline countdown, acknowledge, silence, runbook."""
    state = api_state(request)
    engine_up = state.engine() is not None
    rows: list[dict[str, Any]] = []
    if engine_up:
        flt = status if status in ("open", "acked", "resolved", "active") else None
        rows = ops.list_incidents(state, flt, None, None)
    return render(request, "incidents.html", incidents=rows, engine_up=engine_up, status=status)


@router.get("/incidents/{incident_id}")
async def incident_page(incident_id: str, request: Request) -> Response:
    """One incident on its own page: the link every notification carries (made for a phone screen)."""
    state = api_state(request)
    if state.engine() is None:
        raise OpError(503, "alert engine not running")
    return render(request, "incident.html", inc=ops.get_incident(state, incident_id))


@router.post("/incidents/{incident_id}/ack")
async def ack(
    incident_id: str,
    request: Request,
    comment: Text = "",
    back: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Acknowledge from the board (or from the incident's own page: `back` returns there)."""
    ops.acknowledge(api_state(request), incident_id, principal_of(request).user, comment)
    audit(request, "incident_ack", incident_id, "success", comment)
    target = _next(back) if back.startswith("/incidents/") else f"/incidents#{quote(incident_id)}"
    return RedirectResponse(target, status_code=303)


@router.post("/incidents/{incident_id}/silence")
async def silence(
    incident_id: str,
    request: Request,
    minutes: Annotated[int, Form(ge=1, le=30 * 1440)] = 60,
    comment: Text = "",
) -> Response:
    """Silence an incident's alerts for some minutes."""
    user = principal_of(request).user
    sid = ops.silence_incident(api_state(request), incident_id, minutes * 60.0, user, comment or "console")
    audit(request, "silence_add", sid, "success", f"incident={incident_id} {minutes}min {comment}")
    return RedirectResponse("/incidents", status_code=303)


@router.post("/incidents/{incident_id}/escalate")
async def escalate(incident_id: str, request: Request, comment: Text = "") -> Response:
    """Escalate to the next person on the rota."""
    to = ops.escalate(api_state(request), incident_id, principal_of(request).user, comment)
    audit(request, "incident_escalate", incident_id, "success", f"to={to} {comment}")
    return RedirectResponse("/incidents", status_code=303)


@router.get("/devices")
def devices(
    request: Request,
    status: Opt = None,
    site: Opt = None,
    q: Opt = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Device list with status filters."""
    rows = [
        d
        for d in ops.view(api_state(request)).devices.values()
        if (not status or d.status == status)
        and (not site or d.site == site)
        and (not q or q.lower() in d.name.lower())
    ]
    return render(
        request,
        "devices.html",
        devices=rows[offset : offset + PAGE],
        total=len(rows),
        offset=offset,
        page=PAGE,
        status=status or "",
        site=site or "",
        q=q or "",
    )


@router.get("/devices/{name}")
async def device(name: str, request: Request) -> Response:
    """One device: status, identity as the device reports it (untrusted text), uplinks, incidents."""
    state = api_state(request)
    found = ops.view(state).devices.get(name)
    if found is None:
        raise OpError(404, "no such device")
    rows = ops.list_incidents(state, "active", None, name) if state.engine() is not None else []
    return render(request, "device.html", d=found, incidents=rows)


@router.get("/topology")
def topology(request: Request) -> Response:
    """The map page (the SVG is drawn inline, server-side)."""
    state = api_state(request)
    m = layout(state.inventory, state.topology, ops.view(state), ops.link_states(state))
    return render(request, "topology.html", m=m)


@router.get("/topology.svg")
def topology_svg(request: Request) -> Response:
    """The map alone, as an SVG document."""
    state = api_state(request)
    m = layout(state.inventory, state.topology, ops.view(state), ops.link_states(state))
    resp = render(request, "topology.svg.j2", m=m)
    return Response(
        resp.body, media_type="image/svg+xml", headers={"Content-Security-Policy": "default-src 'none'"}
    )


@router.get("/hardware")
def hardware_page(request: Request, q: Opt = None) -> Response:
    """Hardware and firmware inventory (models, versions, serials, modules) with CSV/XLSX export."""
    state = api_state(request)
    rows = hardware.hardware_rows(state.inventory, ops.latest_samples(state))
    if q:
        rows = [r for r in rows if q.lower() in r["device"].lower()]
    return render(request, "hardware.html", rows=rows, q=q or "")


@router.get("/hardware/export")
def hardware_download(
    request: Request, format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv"
) -> Response:
    """The inventory as a file."""
    from api.routes.api import hardware_file

    state = api_state(request)
    return hardware_file(hardware.hardware_rows(state.inventory, ops.latest_samples(state)), format)


@router.get("/backups")
def backups(request: Request) -> Response:
    """Backup jobs and files; configuration versions per device."""
    state = api_state(request)
    devices = [d.name for d in state.inventory.devices if d.ssh is not None or state.inventory.defaults.ssh]
    return render(
        request,
        "backups.html",
        jobs=ops.backup_jobs(state),
        files=ops.backup_files(state, 200),
        devices=devices,
        repo=state.config_repo is not None,
    )


@router.get("/reports")
def reports(request: Request) -> Response:
    """Past monthly reports for download."""
    state = api_state(request)
    return render(
        request, "reports.html", files=ops.report_files(state), configured=state.report_dir is not None
    )


@router.get("/backups/{device}")
def backup_device(device: str, request: Request, back: Annotated[int, Query(ge=1, le=1000)] = 1) -> Response:
    """Configuration versions of one device and the diff to the newest."""
    state = api_state(request)
    versions = ops.config_versions(state, device)
    diff = ops.config_diff(state, device, back) if versions else ""
    return render(
        request, "backup_device.html", device=device, versions=versions, diff=diff.splitlines(), back=back
    )


@router.get("/services")
def services(request: Request) -> Response:
    """Websites and services: up/down, certificate days left, content changes, defacement."""
    return render(request, "services.html", services=services_ops.list_services(api_state(request)))


@router.get("/services/{name}")
def service(name: str, request: Request) -> Response:
    """One service: the last check, its timings and certificate, the last diff, the baselines."""
    s = services_ops.get_service(api_state(request), name)
    return render(request, "service.html", s=s)


@router.post("/services/{name}/baseline")
async def accept_baseline(name: str, request: Request) -> Response:
    """Accept the current page as the baseline."""
    user = principal_of(request).user
    commit = await asyncio.to_thread(services_ops.accept_baseline, api_state(request), name, user)
    audit(request, "baseline_accept", name, "success", f"commit={commit}")
    return RedirectResponse(f"/services/{quote(name)}", status_code=303)


@router.get("/logs")
def logs(
    request: Request,
    from_ts: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to_ts: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    device: Opt = None,
    event_type: Opt = None,
    q: Opt = None,
    after: Annotated[int, Query(ge=0, le=10**12)] = 0,
) -> Response:
    """The auditor's page: search the security logs, export a range, download exports."""
    state = api_state(request)
    result: dict[str, Any] = {"items": [], "next_after": None}
    error = None
    available = state.logstore() is not None
    if available:
        try:
            result = ops.search_logs(
                state,
                from_ts or None,
                to_ts or None,
                device or None,
                event_type or None,
                q or None,
                after,
                PAGE,
            )
        except OpError as exc:
            error = exc.message
    exports = ops.list_exports(state) if principal_of(request).role == "auditor" else []
    form = {
        "from": from_ts or "",
        "to": to_ts or "",
        "device": device or "",
        "event_type": event_type or "",
        "q": q or "",
    }
    return render(
        request,
        "logs.html",
        result=result,
        error=error,
        form=form,
        exports=exports,
        available=available,
        export=None,
    )


@router.get("/where")
def where(request: Request, q: Annotated[str | None, Query(max_length=1000)] = None) -> Response:
    """The search box's page: an address traced to its switch port, with its history."""
    state = api_state(request)
    result, error, status = None, None, 200
    if q:
        try:
            result = ops.where_lookup(state, q)
        except OpError as exc:
            error, status = exc.message, exc.status
    return render(request, "where.html", http_status=status, q=q or "", result=result, error=error)


@router.post("/logs/export")
def export(
    request: Request,
    from_ts: Annotated[str, Form(alias="from", max_length=40)],
    to_ts: Annotated[str, Form(alias="to", max_length=40)],
    device: Annotated[str, Form(max_length=64)] = "",
    event_type: Annotated[str, Form(max_length=32)] = "",
    fmt: Annotated[str, Form(alias="format", max_length=8)] = "csv",
) -> Response:
    """Run a signed export and show its files."""
    state = api_state(request)
    result = run_export(request, from_ts, to_ts, device or None, event_type or None, fmt)
    form = {"from": from_ts, "to": to_ts, "device": device, "event_type": event_type, "q": ""}
    shown = ops.search_logs(state, from_ts, to_ts, device or None, event_type or None, None, 0, PAGE)
    return render(
        request,
        "logs.html",
        result=shown,
        error=None,
        form=form,
        exports=ops.list_exports(state),
        available=True,
        export=result,
    )


@router.get("/logs/exports/{export_id}/{filename}")
def export_download(export_id: str, filename: str, request: Request) -> Response:
    """Download one file of an export."""
    return deps_export_download(request, export_id, filename)


@router.get("/audit")
def audit_page(
    request: Request,
    user: Opt = None,
    action: Opt = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """The audit trail (who did what, when, from where, with what outcome)."""
    total, rows = api_state(request).audit.page(offset, PAGE, user or None, action or None)
    return render(
        request,
        "audit.html",
        rows=rows,
        total=total,
        offset=offset,
        page=PAGE,
        user=user or "",
        action=action or "",
    )
