"""Request ids and HTTP metrics, as a plain ASGI middleware.

Plain ASGI rather than ``@app.middleware("http")``: Starlette's
``BaseHTTPMiddleware`` adds a task and a pair of memory streams to every
request, which showed in the check-in burst's profile.
"""

from __future__ import annotations

import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attendance_live.logs import request_id
from attendance_live.metrics import Metrics

__all__ = ["Observe"]


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if 0 < len(text) <= 64 and text.isascii() and text.isprintable():
                return text
            break
    return uuid.uuid4().hex[:16]


class Observe:
    """Tags each request with an id (the client's ``X-Request-ID`` if sane) and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (b"x-request-id", rid.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # The route's template (/api/sessions/{session_id}), never the raw path.
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            self.metrics.http_seconds.labels(scope["method"], route, f"{status // 100}xx").observe(
                time.perf_counter() - started
            )
            if status >= 400:
                self.metrics.errors.labels(f"http_{status}").inc()
            request_id.reset(token)
