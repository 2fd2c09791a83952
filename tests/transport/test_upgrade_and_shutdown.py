"""The polling → websocket upgrade keeps order; permessage-deflate as configured; shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import socketio
from websockets.asyncio.client import connect

import attendance_live.transport as transport
from attendance_live.transport import Socket, SocketServer, TransportSettings
from tests.transport.conftest import Serve
from tests.transport.raw import GUARD


def quiet_server(**settings: Any) -> SocketServer:
    return SocketServer(TransportSettings(ping_interval_ms=60_000, ping_timeout_ms=60_000, **settings))


async def test_events_queued_during_the_upgrade_arrive_in_order_on_the_websocket(serve: Serve) -> None:
    server = quiet_server()
    lobby = server.namespace("/")
    live = await serve(server)
    endpoint = f"{live.url}/socket.io/?EIO=4&transport=polling"
    async with httpx.AsyncClient(timeout=GUARD) as http:
        sid = orjson.loads((await http.get(endpoint)).text[1:])["sid"]
        session = f"{endpoint}&sid={sid}"
        assert (await http.post(session, content="40")).text == "ok"
        assert (await http.get(session)).text.startswith("40{")
        (socket,) = lobby.sockets.values()
        socket.emit("step", "before the probe")  # waits for a GET that never comes

        async with connect(f"{live.ws_url}&sid={sid}", compression=None) as ws:
            await ws.send("2probe")
            async with asyncio.timeout(GUARD):
                assert await ws.recv() == "3probe"
            socket.emit("step", "during the upgrade")
            await ws.send("5")
            await ws.send('42["hello"]')  # any packet after UPGRADE is the websocket's
            socket.emit("step", "after the upgrade")
            received: list[str | bytes] = []
            async with asyncio.timeout(GUARD):
                while len(received) < 3:
                    frame = await ws.recv()
                    if frame != "2":
                        received.append(frame)
        assert received == [
            '42["step","before the probe"]',
            '42["step","during the upgrade"]',
            '42["step","after the upgrade"]',
        ]
        # The session now belongs to the websocket: long-polling it is refused.
        after = await http.get(session)
        assert after.status_code == 400


async def negotiated_extensions(live_ws_url: str) -> str | None:
    async with connect(live_ws_url, compression="deflate") as ws:
        assert ws.response is not None
        header: str | None = ws.response.headers.get("Sec-WebSocket-Extensions")
        return header


async def test_permessage_deflate_is_off_unless_enabled(serve: Serve) -> None:
    default = await serve(quiet_server())
    enabled = await serve(quiet_server(per_message_deflate=True))
    assert await negotiated_extensions(default.ws_url) is None
    extensions = await negotiated_extensions(enabled.ws_url)
    assert extensions is not None
    assert "permessage-deflate" in extensions


async def test_closing_the_server_disconnects_every_client(serve: Serve) -> None:
    server = quiet_server()
    lobby = server.namespace("/")
    reasons: asyncio.Queue[str] = asyncio.Queue()

    @lobby.on_disconnect
    def gone(socket: Socket, reason: str) -> None:
        reasons.put_nowait(reason)

    live = await serve(server)
    client = socketio.AsyncClient(reconnection=False)
    disconnected = asyncio.Event()
    client.on("disconnect", lambda *reason: disconnected.set())
    await client.connect(live.url, transports=["websocket"])
    await server.close()
    async with asyncio.timeout(GUARD):
        assert await reasons.get() == "forced server close"
        await disconnected.wait()
    assert not client.connected


def test_the_public_interface_is_exactly_what_is_meant() -> None:
    assert set(transport.__all__) == {
        "RESERVED_EVENTS",
        "Adapter",
        "ConnectRefused",
        "EncodedPacket",
        "EngineApp",
        "EngineServer",
        "EngineSocket",
        "EventCheck",
        "InMemoryAdapter",
        "Namespace",
        "PubSubAdapter",
        "RedisAdapter",
        "Socket",
        "SocketServer",
        "TransportSettings",
        "encode_event",
        "uvicorn_options",
    }
    for name in transport.__all__:
        assert getattr(transport, name) is not None
