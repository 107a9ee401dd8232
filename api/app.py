"""The FastAPI application: one guard enforces the policy table on every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.persist import NotLeader
from api.deps import check_access, error_response, guard, is_api, make_env, render
from api.guards import BodyLimit, cross_site
from api.ops import OpError
from api.routes.api import router as api_router
from api.routes.console import router as console_router
from api.state import ApiState


def create_app(state: ApiState) -> FastAPI:
    """The app: JSON API under /api/v1, console pages elsewhere, every route behind `guard`."""
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
    async def operror_response(request: Request, exc: OpError) -> Response:
        if is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        return render(request, "error.html", http_status=exc.status, message=exc.message, code=exc.status)

    @app.exception_handler(NotLeader)
    async def not_leader(request: Request, exc: NotLeader) -> Response:
        # A govnet HA standby must not change alert state: say where to act instead of a 500.
        return await operror_response(
            request, OpError(503, "this govnet node is the HA standby: act on the active node")
        )

    @app.exception_handler(StarletteHTTPException)
    async def httperror_response(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.middleware("http")
    async def policy(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if cross_site(request):
            state.refused["cross_site"] = state.refused.get("cross_site", 0) + 1
            resp: Response = JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        else:
            denied = check_access(request)
            resp = denied if denied is not None else await call_next(request)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        if not request.url.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-store"  # pages and answers may carry what a role may see
        return resp

    app.add_middleware(BodyLimit, state=state)
    return app
