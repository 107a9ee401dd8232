"""Request guards before any route runs: body size and time per route, cross-site requests."""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.state import ApiState

# Bodies per route (bytes); every other route gets ApiState.max_body_bytes. No route takes uploads.
BODY_LIMITS = {"/api/v1/auth/login": 4096, "/login": 4096}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class BodyLimit:
    """ASGI wrapper: a request body larger than its route's limit, or too slow to arrive, is refused.

    The body (bounded by the limit) is read here before the app runs, so the app never holds more; a
    Content-Length over the limit is refused before a byte is read.
    """

    def __init__(self, app: ASGIApp, state: ApiState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        state = self.state
        limit = BODY_LIMITS.get(scope["path"], state.max_body_bytes)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await self._refuse(send, 413, "request body too large", "too_large")
            return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(state.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        await self._refuse(send, 413, "request body too large", "too_large")
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await self._refuse(send, 408, "request body too slow", "too_slow")
            return
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # after the body: wait for the disconnect as usual
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, code: int, detail: str, reason: str) -> None:
        self.state.refused[reason] = self.state.refused.get(reason, 0) + 1
        await JSONResponse({"detail": detail}, status_code=code, headers={"Connection": "close"})(
            {"type": "http"}, _no_body, send
        )


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def cross_site(request: Request) -> bool:
    """True for a state-changing request a browser sent from another site (login CSRF included)."""
    if request.method in SAFE_METHODS:
        return False
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser, or a same-origin navigation of an old one: cookies are SameSite
    host = request.headers.get("host", "")
    return origin == "null" or origin.split("://", 1)[-1] != host
