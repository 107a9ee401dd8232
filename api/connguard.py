"""uvicorn's h11 protocol with two guards for slow or many connections (slowloris on the API).

uvicorn holds a connection that never completes its request headers forever, and `limit_concurrency`
answers 503 to everyone once the slow ones fill it. Here each client address may hold at most
`max_per_source` connections, and a connection must complete a request's headers within
`header_timeout` seconds of opening (or of its previous response); bodies are bounded by api.app.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class ConnectionGuard:
    """Shared counters of the guarded protocol (one per API server)."""

    def __init__(self, max_per_source: int, header_timeout: float, refused: dict[str, int]) -> None:
        self.max_per_source = max_per_source
        self.header_timeout = header_timeout
        self.refused = refused  # reason -> count (ApiState.refused, exported as govnet_api_refused_total)
        self.per_source: dict[str, int] = {}

    def count(self, reason: str) -> None:
        """Count one refused or cut connection."""
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def protocol(self) -> type[H11Protocol]:
        """The protocol class for `uvicorn.Config(http=...)`."""
        guard = self

        class GuardedH11(H11Protocol):
            _source: str | None = None
            _deadline: asyncio.TimerHandle | None = None
            _armed_cycle: Any = None

            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                host = self.client[0] if self.client else ""
                if guard.per_source.get(host, 0) >= guard.max_per_source:
                    guard.count("source_full")
                    transport.abort()
                    return
                guard.per_source[host] = guard.per_source.get(host, 0) + 1
                self._source = host
                self._arm()

            def _arm(self) -> None:
                if self._deadline is not None:
                    self._deadline.cancel()
                self._armed_cycle = self.cycle
                self._deadline = self.loop.call_later(guard.header_timeout, self._expire)

            def _expire(self) -> None:
                self._deadline = None
                # Still no new request since the deadline was set: headers too slow (or idle).
                if self.cycle is self._armed_cycle and (self.cycle is None or self.cycle.response_complete):
                    guard.count("header_timeout")
                    self.transport.close()

            def on_response_complete(self) -> None:
                super().on_response_complete()
                if self._source is not None and not self.transport.is_closing():
                    self._arm()

            def connection_lost(self, exc: Exception | None) -> None:
                if self._deadline is not None:
                    self._deadline.cancel()
                    self._deadline = None
                if self._source is not None:
                    left = guard.per_source[self._source] - 1
                    if left:
                        guard.per_source[self._source] = left
                    else:
                        del guard.per_source[self._source]
                    self._source = None
                super().connection_lost(exc)

        return GuardedH11
