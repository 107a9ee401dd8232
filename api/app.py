"""The FastAPI application: one guard enforces the policy table on every route."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from alerts.persist import NotLeader
from api.auth import Principal
from api.i18n import translator
from api.ops import OpError
from api.policy import PUBLIC, allowed
from api.state import ApiState
from logstore.control import AuditUnavailable

SESSION_COOKIE = "govnet_session"
LANG_COOKIE = "govnet_lang"
CST = timezone(timedelta(hours=8), "CST")
TEMPLATES = Path(__file__).parent / "templates"


def client_of(request: Request) -> str:
    """The TCP peer address; X-Forwarded-For and similar headers are never trusted."""
    return request.client.host if request.client else ""


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
        return _error(request, 401, "authentication required", {"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    if not allowed(key[0], key[1], principal.role):
        audit(
            request, "access_denied", f"{request.method} {request.url.path}"[:200], "denied", principal.role
        )
        return _error(request, 403, "forbidden for this role", {})
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


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, code: int, detail: str, headers: dict[str, str]) -> Response:
    """JSON error for the API, an HTML page (with a login link for 401) for the console."""
    if _is_api(request) or code not in (401, 403, 404):
        return JSONResponse({"detail": detail}, status_code=code, headers=headers or None)
    key = {401: "need_login", 403: "forbidden"}.get(code, "")
    resp = render(request, "error.html", http_status=code, message=Markup(""), key=key, code=code)
    resp.headers.update(headers)
    return resp


def create_app(state: ApiState) -> FastAPI:
    """The app: JSON API under /api/v1, console pages elsewhere, every route behind `guard`."""
    from api.routes.api import router as api_router
    from api.routes.console import router as console_router

    app = FastAPI(
        title="govnet API",
        version="1",
        description="Inventory and status, incidents, backups and configs, security logs, audit trail.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(guard)],
    )
    app.state.api = state
    app.state.jinja = make_env()
    # Routes are added flat (not include_router) so the policy middleware sees every route template.
    for router in (api_router, console_router):
        app.router.routes.extend(router.routes)

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    def openapi_json() -> JSONResponse:
        """The OpenAPI document of the JSON API."""
        if app.openapi_schema is None:
            api_routes = [r for r in app.routes if getattr(r, "path", "").startswith("/api/")]
            app.openapi_schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=api_routes
            )
            app.openapi_schema["components"] = {
                **app.openapi_schema.get("components", {}),
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            }
            app.openapi_schema["security"] = [{"bearer": []}]
        return JSONResponse(app.openapi_schema)

    @app.exception_handler(OpError)
    async def op_error(request: Request, exc: OpError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        return render(request, "error.html", http_status=exc.status, message=exc.message, code=exc.status)

    @app.exception_handler(AuditUnavailable)
    async def audit_unavailable(request: Request, exc: AuditUnavailable) -> Response:
        # No action without its audit record (等保): the log store writer must be running.
        return await op_error(request, OpError(503, f"audit trail unavailable: {exc}"))

    @app.exception_handler(NotLeader)
    async def not_leader(request: Request, exc: NotLeader) -> Response:
        # A govnet HA standby must not change alert state: say where to act instead of a 500.
        return await op_error(
            request, OpError(503, "this govnet node is the HA standby: act on the active node")
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.middleware("http")
    async def policy(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        denied = check_access(request)
        return denied if denied is not None else await call_next(request)

    return app
