"""HTTP requests per client address and per user, per node (``HTTP_RATE_LIMITS``).

So that one client cannot take the API's whole capacity: past
``HTTP_ADDRESS_RATE_LIMIT`` requests from one address (the client's, behind
``TRUSTED_PROXIES``) or ``HTTP_USER_RATE_LIMIT`` from one user (its verified
token) in ``HTTP_RATE_WINDOW_SECONDS``, the answer is 429 with ``Retry-After``
and ``{"detail", "reason": "rate_limited"}`` until the window ends.

Counted in this process (``limits.MemoryLimiter``): with several nodes behind a
balancer a client gets up to the limit on each. That is on purpose: a shared
counter would cost every request a Redis round trip, and these limits only
keep one client from crowding the others out of a node. The limits that guard
a secret (wrong check-in codes) are shared by every node (``service.limiter``).

Socket.IO's own traffic (``/socket.io/``, which has its per-connection event
rate and per-user socket cap) and the probes (``/healthz``, ``/readyz``,
``/metrics``) are not counted.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from attendance_live.api.client_address import address_of
from attendance_live.config import Settings
from attendance_live.limits import MemoryLimiter, Rate, Verdict
from attendance_live.service.errors import RateLimited

__all__ = ["EXEMPT_PREFIXES", "HttpLimits", "RequestLimits"]

EXEMPT_PREFIXES = ("/socket.io", "/healthz", "/readyz", "/metrics")


class HttpLimits:
    """The per-address and per-user request counts of this node."""

    def __init__(self, settings: Settings, limiter: MemoryLimiter | None = None) -> None:
        self.enabled = settings.http_rate_limits
        self.window = settings.http_rate_window_seconds
        self.per_user = Rate(settings.http_user_rate_limit, self.window)
        self.per_address = Rate(settings.http_address_rate_limit, self.window)
        self.trusted = settings.trusted_proxies
        self.limiter = limiter or MemoryLimiter()

    def check_user(self, user_id: str) -> None:
        """Count one request of ``user_id``; :class:`RateLimited` past its limit."""
        if not self.enabled:
            return
        verdict = self.limiter.hit_now("user:" + user_id, self.per_user)
        if not verdict.allowed:
            message = self.message("this user", "HTTP_USER_RATE_LIMIT", verdict)
            raise RateLimited("rate_limited", message, verdict.retry_after)

    def check_address(self, address: str) -> Verdict:
        return self.limiter.hit_now("address:" + address, self.per_address)

    def message(self, who: str, variable: str, verdict: Verdict) -> str:
        rate = self.per_user if variable == "HTTP_USER_RATE_LIMIT" else self.per_address
        return (
            f"Too many requests from {who}: at most {rate.count} in {self.window:g} s ({variable}); "
            f"try again in {verdict.retry_after_header} s"
        )


class RequestLimits:
    """ASGI middleware: 429 past the per-address limit (the per-user one is in ``deps.authenticate``)."""

    def __init__(self, app: ASGIApp, *, limits: HttpLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits.enabled or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        address = address_of(scope, self.limits.trusted)
        if address is not None:
            verdict = self.limits.check_address(address)
            if not verdict.allowed:
                detail = self.limits.message("this address", "HTTP_ADDRESS_RATE_LIMIT", verdict)
                body = orjson.dumps({"detail": detail, "reason": "rate_limited"})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 429,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"retry-after", verdict.retry_after_header.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
