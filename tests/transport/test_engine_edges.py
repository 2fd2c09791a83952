"""Bad input, limits and timeouts: what closes a connection, and only that one."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.typing import Origin

from attendance_live.transport import RESERVED_EVENTS, Socket, SocketServer, TransportSettings
from tests.transport.conftest import Serve
from tests.transport.raw import GUARD, raw_socket


def lobby_server(**settings: Any) -> tuple[SocketServer, dict[str, Any]]:
    """A server with a ``ping`` event (acked ``pong``) that records connects and disconnects."""
    defaults: dict[str, Any] = {"ping_interval_ms": 60_000, "ping_timeout_ms": 60_000}
    server = SocketServer(TransportSettings(**{**defaults, **settings}))
    lobby = server.namespace("/")
    seen: dict[str, Any] = {"connects": 0, "disconnects": asyncio.Queue()}

    @lobby.on_connect
    def admit(socket: Socket, auth: dict[str, Any]) -> None:
        seen["connects"] += 1

    @lobby.on_disconnect
    def gone(socket: Socket, reason: str) -> None:
        seen["disconnects"].put_nowait(reason)

    @lobby.on("ping")
    def ping(socket: Socket) -> str:
        return "pong"

    return server, seen


async def test_reserved_event_names_never_reach_a_handler(serve: Serve) -> None:
    server, seen = lobby_server()
    live = await serve(server)
    async with raw_socket(live.ws_url) as client:
        await client.join_namespace()
        for ack_id, name in enumerate(sorted(RESERVED_EVENTS), start=1):
            await client.send(f'42{ack_id}["{name}",{{"token":"again"}}]')
        await client.send('4299["ping"]')
        # Unknown events get no ack: the first answer is the ping's.
        assert await client.receive() == '4399["pong"]'
        assert seen["disconnects"].empty()
    assert seen["connects"] == 1
    assert await seen["disconnects"].get() == "transport close"  # only when the websocket closed


def test_a_handler_for_a_reserved_name_is_refused() -> None:
    server = SocketServer()
    for name in RESERVED_EVENTS:
        with pytest.raises(ValueError, match=r"reserved Socket\.IO event name"):
            server.namespace("/").on(name, lambda socket: None)


async def test_an_oversized_websocket_message_closes_that_connection_only(serve: Serve) -> None:
    server, _ = lobby_server(max_payload=1000)
    live = await serve(server)
    async with raw_socket(live.ws_url) as bystander, raw_socket(live.ws_url) as offender:
        await bystander.join_namespace()
        await offender.join_namespace()
        await offender.send('42["ping","' + "x" * 2000 + '"]')
        await offender.closed()
        await bystander.send('421["ping"]')
        assert await bystander.receive() == '431["pong"]'


async def test_an_oversized_polling_post_gets_413_and_closes_the_session(serve: Serve) -> None:
    server, _ = lobby_server(max_payload=1000)
    live = await serve(server)
    endpoint = f"{live.url}/socket.io/?EIO=4&transport=polling"
    async with httpx.AsyncClient(timeout=GUARD) as http:
        opening = await http.get(endpoint)
        sid = orjson.loads(opening.text[1:])["sid"]
        refused = await http.post(f"{endpoint}&sid={sid}", content="4" + "x" * 2000)
        assert refused.status_code == 413
        assert "limit of 1000 bytes" in refused.json()["message"]
        after = await http.get(f"{endpoint}&sid={sid}")
        assert (after.status_code, after.json()) == (400, {"code": 1, "message": "Session ID unknown"})


@pytest.mark.parametrize(
    ("method", "query", "status", "body"),
    [
        ("GET", "transport=polling", 400, {"code": 5, "message": "Unsupported protocol version"}),
        ("GET", "EIO=3&transport=polling", 400, {"code": 5, "message": "Unsupported protocol version"}),
        ("GET", "EIO=4", 400, {"code": 0, "message": "Transport unknown"}),
        ("GET", "EIO=4&transport=abc", 400, {"code": 0, "message": "Transport unknown"}),
        ("POST", "EIO=4&transport=polling", 400, {"code": 2, "message": "Bad handshake method"}),
        ("GET", "EIO=4&transport=polling&sid=nope", 400, {"code": 1, "message": "Session ID unknown"}),
    ],
)
async def test_bad_requests_get_engine_io_error_codes(
    serve: Serve, method: str, query: str, status: int, body: dict[str, Any]
) -> None:
    server, _ = lobby_server(cors_allowed_origins=("https://app.example",))
    live = await serve(server)
    async with httpx.AsyncClient(timeout=GUARD) as http:
        response = await http.request(
            method, f"{live.url}/socket.io/?{query}", headers={"Origin": "https://app.example"}
        )
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["access-control-allow-origin"] == "https://app.example"


async def test_cors_answers_only_the_allowed_origins(serve: Serve) -> None:
    server, _ = lobby_server(cors_allowed_origins=("https://app.example",))
    live = await serve(server)
    endpoint = f"{live.url}/socket.io/?EIO=4&transport=polling"
    async with httpx.AsyncClient(timeout=GUARD) as http:
        preflight = await http.options(endpoint, headers={"Origin": "https://app.example"})
        stranger = await http.get(endpoint, headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    # Refused outright, as python-engineio does: CORS headers alone would only hide the answer.
    assert stranger.status_code == 400
    assert stranger.json() == {"code": 3, "message": "Not an accepted origin"}
    assert "access-control-allow-origin" not in stranger.headers
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(live.ws_url, origin=Origin("https://evil.example")):
            pass
    async with websockets.connect(live.ws_url, origin=Origin("https://app.example")) as welcome:
        assert str(await welcome.recv()).startswith("0{")


async def test_a_connection_that_joins_no_namespace_in_time_is_closed(serve: Serve) -> None:
    server, _ = lobby_server(connect_timeout_ms=200)
    live = await serve(server)
    async with raw_socket(live.ws_url) as punctual, raw_socket(live.ws_url) as silent:
        await punctual.join_namespace()
        await silent.closed()
        # The punctual one's deadline passed too (it was set first), and it is still served.
        await punctual.send('421["ping"]')
        assert await punctual.receive() == '431["pong"]'


async def test_a_client_that_does_not_answer_pings_times_out(serve: Serve) -> None:
    server, seen = lobby_server(ping_interval_ms=50, ping_timeout_ms=50)
    live = await serve(server)
    async with raw_socket(live.ws_url) as client:
        await client.join_namespace()
        async with asyncio.timeout(GUARD):
            assert await client.connection.recv() == "2"  # and no pong from us
            assert await seen["disconnects"].get() == "ping timeout"
        await client.closed()


async def test_a_connect_handler_can_add_a_recovery_pid_to_the_connect_reply(serve: Serve) -> None:
    server, _ = lobby_server()
    recovering = server.namespace("/recovering")

    @recovering.on_connect
    def admit(socket: Socket, auth: dict[str, Any]) -> None:
        socket.pid = auth.get("pid", "new-pid")

    live = await serve(server)
    async with raw_socket(live.ws_url) as client:
        await client.send('40/recovering,{"pid":"old-pid","offset":"7"}')
        reply = await client.receive()
        assert isinstance(reply, str)
        assert reply.startswith("40/recovering,")
        body = orjson.loads(reply[len("40/recovering,") :])
        assert set(body) == {"sid", "pid"}
        assert body["pid"] == "old-pid"
        # A handler that sets no pid: the reply stays {"sid"}, as the protocol suite expects.
        await client.send("40")
        plain = await client.receive()
        assert isinstance(plain, str)
        assert set(orjson.loads(plain[2:])) == {"sid"}
