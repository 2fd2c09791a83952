"""Fixtures: our transport served by a real uvicorn on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import uvicorn

from attendance_live.transport import SocketServer, uvicorn_options
from attendance_live.transport.asgi import ASGIApp
from tests.infra import free_port


@dataclass(frozen=True)
class Live:
    """A running server: its HTTP base URL and the websocket URL of its Engine.IO endpoint."""

    url: str
    ws_url: str


Serve = Callable[[SocketServer], Awaitable[Live]]


@pytest.fixture(params=["protocol", "asgi"])
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[Serve]:
    """Serve a :class:`SocketServer` on loopback, its websockets through our protocol class
    (below ASGI) or through ASGI; every server is stopped at the end."""
    below_asgi = request.param == "protocol"
    running: list[tuple[SocketServer, uvicorn.Server, asyncio.Task[None]]] = []

    async def start(server: SocketServer, other_app: ASGIApp | None = None) -> Live:
        port = free_port()
        config = uvicorn.Config(
            server.asgi_app(other_app),
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_config=None,
            timeout_graceful_shutdown=2,
            **uvicorn_options(server.engine, below_asgi=below_asgi),
        )
        uvicorn_server = uvicorn.Server(config)
        task = asyncio.create_task(uvicorn_server.serve())
        running.append((server, uvicorn_server, task))
        while not uvicorn_server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        path = server.settings.path
        return Live(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}{path}?EIO=4&transport=websocket")

    yield start
    for server, uvicorn_server, task in running:
        await server.close()
        uvicorn_server.should_exit = True
        await task
