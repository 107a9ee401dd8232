"""Request helpers shared by the app and its routers: the policy guard, the caller, audit, rendering."""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from starlette.routing import Match

from api import ops
from api.auth import Principal
from api.i18n import translator
from api.ops import OpError
from api.policy import PUBLIC, allowed
from api.state import ApiState

SESSION_COOKIE = "govnet_session"
LANG_COOKIE = "govnet_lang"
CST = timezone(timedelta(hours=8), "CST")
TEMPLATES = Path(__file__).parent / "templates"


def client_of(request: Request) -> str:
    """The TCP peer address; X-Forwarded-For and similar headers are never trusted."""
    return request.client.host if request.client else ""


def login_wait(state: ApiState, user: str, client: str, now: float, channel: str) -> int:
    """Seconds before this client may try this user name again (0: go ahead).

    Refused attempts are audited as one `rate_limited` record per pair and window, with their count.
    """
    wait = state.limiter.blocked(user, client, now)
    if not wait:
        return 0
    count = state.limiter.throttled(user, client, now)
    if count is not None:
        every = state.limiter.audit_every
        detail = f"{count} attempt(s) refused, retry in {math.ceil(wait)} s (one record per {every:g} s)"
        state.audit.record(user[:64], "login", channel, "rate_limited", client, detail)
    return max(1, math.ceil(wait))


def api_state(request: Request) -> ApiState:
    """The ApiState of the app serving this request."""
    state: ApiState = request.app.state.api
    return state


def csrf_token(state: ApiState, principal: Principal) -> str:
    """Per-session CSRF token: HMAC of the session id under the configured session secret."""
    return hmac.new(state.session_secret, principal.token_id.encode(), hashlib.sha256).hexdigest()


def authenticate(request: Request) -> Principal | None:
    """Bearer API token, else the console session cookie."""
    state = api_state(request)
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return state.auth.authenticate(token.strip(), "api")
    cookie = request.cookies.get(SESSION_COOKIE)
    return state.auth.authenticate(cookie, "session") if cookie else None


def route_key(request: Request) -> tuple[str, str] | None:
    """(method, route path template) of the route this request will reach, or None (404/405)."""
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return request.method, str(getattr(route, "path", ""))
    return None


def check_access(request: Request) -> Response | None:
    """Enforce the policy table before any parsing: 401 without valid credentials, 403 for the role."""
    key = route_key(request)
    if key is None or key in PUBLIC:
        return None  # no such route (the router answers 404/405) or a public one
    principal = authenticate(request)
    if principal is None:
        return error_response(request, 401, "authentication required", {"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    if not allowed(key[0], key[1], principal.role):
        audit(
            request, "access_denied", f"{request.method} {request.url.path}"[:200], "denied", principal.role
        )
        return error_response(request, 403, "forbidden for this role", {})
    return None


async def guard(request: Request) -> None:
    """Per-route dependency: the caller was checked by the middleware; console forms need the CSRF token."""
    key = route_key(request) or ("", "")
    if key in PUBLIC:
        return
    principal = getattr(request.state, "principal", None)
    if principal is None or not allowed(key[0], key[1], principal.role):
        raise HTTPException(401, "authentication required")  # defence in depth: never reached via the app
    if principal.kind == "session" and request.method not in ("GET", "HEAD"):
        # Cookies ride along with cross-site requests: console forms must carry the session's token.
        sent = request.headers.get("x-csrf-token", "")
        if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf")
            sent = value if isinstance(value, str) else ""
        if not hmac.compare_digest(sent, csrf_token(api_state(request), principal)):
            raise HTTPException(403, "missing or wrong CSRF token")


def principal_of(request: Request) -> Principal:
    """The authenticated caller (set by the guard)."""
    principal: Principal = request.state.principal
    return principal


def audit(request: Request, action: str, target: str, outcome: str = "success", detail: str = "") -> None:
    """Write an audit record for the caller's action (durable before the response)."""
    principal = getattr(request.state, "principal", None)
    user = principal.user if principal is not None else ""
    api_state(request).audit.record(user, action, target, outcome, client_of(request), detail)


def fmt_time(ts: float | None) -> str:
    """Beijing time for the console (empty for None)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def make_env() -> Environment:
    """Jinja2 with autoescaping ON for every template (device and log text is untrusted)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True)
    env.filters["t"] = fmt_time
    return env


def lang_of(request: Request) -> str:
    """`en` or `zh` from ?lang= or the cookie (default zh)."""
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return "en" if lang == "en" else "zh"


def render(request: Request, template: str, http_status: int = 200, **ctx: Any) -> HTMLResponse:
    """Render a console page with the common context (texts, user, CSRF token, language)."""
    state = api_state(request)
    env: Environment = request.app.state.jinja
    principal = getattr(request.state, "principal", None)
    lang = lang_of(request)
    html = env.get_template(template).render(
        T=translator(lang),
        lang=lang,
        me=principal,
        csrf=csrf_token(state, principal) if principal is not None else "",
        path=request.url.path,
        now=state.clock(),
        **ctx,
    )
    resp = HTMLResponse(html, status_code=http_status)
    if request.query_params.get("lang") in ("en", "zh"):
        resp.set_cookie(LANG_COOKIE, lang, samesite="strict", httponly=True, max_age=365 * 86400)
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return resp


def is_api(request: Request) -> bool:
    """Whether the request is for the JSON API (else a console page)."""
    return request.url.path.startswith("/api/")


def error_response(request: Request, code: int, detail: str, headers: dict[str, str]) -> Response:
    """JSON error for the API, an HTML page (with a login link for 401) for the console."""
    if is_api(request) or code not in (401, 403, 404):
        return JSONResponse({"detail": detail}, status_code=code, headers=headers or None)
    key = {401: "need_login", 403: "forbidden"}.get(code, "")
    resp = render(request, "error.html", http_status=code, message=Markup(""), key=key, code=code)
    resp.headers.update(headers)
    return resp


def run_export(
    request: Request, from_ts: str, to_ts: str, device: str | None, event_type: str | None, fmt: str
) -> dict[str, Any]:
    """A signed log export for the API and the console alike, audited as a success or a failure."""
    what = f"{from_ts}..{to_ts} device={device} type={event_type} format={fmt}"
    try:
        result = ops.run_export(api_state(request), from_ts, to_ts, device, event_type, fmt)
    except OpError as exc:
        audit(request, "log_export", "logs", "failure", f"{what}: {exc.message}")
        raise
    detail = f"{what} records={result['records']} root={result['merkle_root']}"
    audit(request, "log_export", result["id"], "success", detail)
    return result


def export_download(request: Request, export_id: str, filename: str) -> FileResponse:
    """One file of an export, audited (the API and the console serve the same download)."""
    target = ops.export_file(api_state(request), export_id, filename)
    audit(request, "export_download", f"{export_id}/{filename}")
    return FileResponse(target, filename=filename, media_type="application/octet-stream")
