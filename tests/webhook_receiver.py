"""A webhook receiver on loopback: verifies each request with the Standard Webhooks reference
verifier (``standardwebhooks.Webhook.verify``) and records what it accepted, in arrival order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.infra import free_port

__all__ = ["Received", "Receiver"]


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]
    verified: bool


@dataclass
class Receiver:
    """Answers 204 to verified requests; ``down`` makes it answer 503 (and record nothing); ``hold``
    makes it keep each request unanswered until the event is set (then 503, recording nothing)."""

    secret: str | None = None
    down: bool = False
    hold: asyncio.Event | None = None
    held: int = 0
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.hold is not None:
            hold = self.hold
            async with self._changed:
                self.held += 1
                self._changed.notify_all()
            await hold.wait()
            return web.Response(status=503, text="held")
        async with self._changed:
            if self.down:
                self.refused += 1
                self._changed.notify_all()
                return web.Response(status=503, text="down for maintenance")
            assert self.secret is not None, "set Receiver.secret to the endpoint's secret"
            try:
                body = Webhook(self.secret).verify(raw, dict(request.headers))
                verified = True
            except WebhookVerificationError:
                body, verified = {}, False
            self.received.append(Received(request.headers["webhook-id"], body, verified))
            self._changed.notify_all()
        return web.Response(status=204) if verified else web.Response(status=401, text="bad signature")

    async def wait_count(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until ``count`` requests were accepted; all of them."""
        await self._wait(lambda: len(self.received) >= count, timeout, f"{count} accepted")
        return list(self.received)

    async def wait_held(self, count: int, timeout: float = 10.0) -> None:
        await self._wait(lambda: self.held >= count, timeout, f"{count} held")

    async def wait_refused(self, count: int, timeout: float = 10.0) -> None:
        await self._wait(lambda: self.refused >= count, timeout, f"{count} refused")

    async def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(done), timeout)
            except TimeoutError:
                types = [r.body.get("type") for r in self.received]
                raise AssertionError(
                    f"receiver: not {what} within {timeout} s (accepted {types}, refused {self.refused})"
                ) from None
