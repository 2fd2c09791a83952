"""Our Socket.IO server against python-socketio's client, over each transport.

Each test starts a real uvicorn on a free loopback port (the ``serve`` fixture)
and talks to it with ``socketio.AsyncClient``: websocket only, long-polling
only, and long-polling upgraded to websocket.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio

from attendance_live.transport import ConnectRefused, Socket, SocketServer, TransportSettings
from tests.transport.conftest import Serve

TRANSPORTS = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "upgrade": ["polling", "websocket"],
}
# A guard against a hung test, never an assertion about speed.
GUARD = 10


class Inbox:
    """Every event a client receives, to be awaited in order."""

    def __init__(self, client: socketio.AsyncClient, *events: str, namespace: str = "/") -> None:
        self.queues: dict[str, asyncio.Queue[tuple[Any, ...]]] = defaultdict(asyncio.Queue)
        for event in events:
            client.on(event, self._handler(event), namespace=namespace)

    def _handler(self, event: str) -> Callable[..., None]:
        def handle(*args: Any) -> None:
            self.queues[event].put_nowait(args)

        return handle

    async def next(self, event: str) -> tuple[Any, ...]:
        async with asyncio.timeout(GUARD):
            return await self.queues[event].get()

    def pending(self, event: str) -> int:
        return self.queues[event].qsize()


def build_server() -> SocketServer:
    server = SocketServer(TransportSettings(ping_interval_ms=2_000, ping_timeout_ms=2_000))
    lobby = server.namespace("/")
    admin = server.namespace("/admin")

    @lobby.on_connect
    async def admit(socket: Socket, auth: dict[str, Any]) -> None:
        if auth.get("token") != "good":
            raise ConnectRefused("Authentication required")
        socket.data = {"name": auth.get("name", "anonymous")}
        socket.emit("welcome", socket.data["name"])

    @lobby.on("join")
    def join(socket: Socket, room: str) -> str:
        socket.join(room)
        return "joined " + room

    @lobby.on("shout")
    def shout(socket: Socket, room: str, text: str) -> None:
        lobby.broadcast(lobby.encode("news", {"from": socket.data["name"], "text": text}), to=room)
        lobby.emit("shouted")

    @lobby.on("echo-binary")
    async def echo_binary(socket: Socket, blob: bytes) -> tuple[str, bytes]:
        socket.emit("binary-back", blob[::-1])
        return "len", bytes([len(blob)])

    @lobby.on("ask-me")
    async def ask_me(socket: Socket, question: str) -> None:
        answer = await socket.call("question", question)
        socket.emit("answer-was", *answer)

    @lobby.on("kick-me")
    def kick_me(socket: Socket) -> None:
        socket.disconnect()

    @admin.on("whoami")
    def whoami(socket: Socket) -> str:
        return "admin:" + socket.namespace.name

    return server


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[], socketio.AsyncClient]]:
    made: list[socketio.AsyncClient] = []

    def make() -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)
        made.append(client)
        return client

    yield make
    for client in made:
        if client.connected:
            await client.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_events_acks_and_rooms(
    serve: Serve, clients: Callable[[], socketio.AsyncClient], transport: str
) -> None:
    live = await serve(build_server())
    alice, bob = clients(), clients()
    alice_inbox = Inbox(alice, "welcome", "news", "shouted")
    bob_inbox = Inbox(bob, "welcome", "news", "shouted")
    await alice.connect(live.url, auth={"token": "good", "name": "alice"}, transports=TRANSPORTS[transport])
    await bob.connect(live.url, auth={"token": "good", "name": "bob"}, transports=TRANSPORTS[transport])
    assert alice.transport() == TRANSPORTS[transport][-1]

    # What the connect handler emitted arrives after the CONNECT reply.
    assert await alice_inbox.next("welcome") == ("alice",)
    assert await alice.call("join", "course-1", timeout=GUARD) == "joined course-1"

    await bob.emit("shout", ("course-1", "hello"))
    assert await alice_inbox.next("news") == ({"from": "bob", "text": "hello"},)
    assert await alice_inbox.next("shouted") == ()
    # Bob is not in the room: "shouted" went to everyone after "news" went to the room.
    assert await bob_inbox.next("shouted") == ()
    assert bob_inbox.pending("news") == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_binary_both_ways_and_acks_from_the_server(
    serve: Serve, clients: Callable[[], socketio.AsyncClient], transport: str
) -> None:
    live = await serve(build_server())
    client = clients()
    inbox = Inbox(client, "binary-back", "answer-was")

    def question(text: str) -> str:
        return text.upper()

    client.on("question", question)

    await client.connect(live.url, auth={"token": "good"}, transports=TRANSPORTS[transport])
    assert await client.call("echo-binary", b"\x01\x02\x03", timeout=GUARD) == ("len", b"\x03")
    assert await inbox.next("binary-back") == (b"\x03\x02\x01",)

    await client.emit("ask-me", "are you there?")
    assert await inbox.next("answer-was") == ("ARE YOU THERE?",)


async def test_a_refused_connection_gets_the_handlers_message(
    serve: Serve, clients: Callable[[], socketio.AsyncClient]
) -> None:
    live = await serve(build_server())
    client = clients()
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError, match="namespaces failed to connect"):
        await client.connect(live.url, auth={"token": "bad"}, transports=["websocket"])
    assert errors == [{"message": "Authentication required"}]


async def test_a_custom_namespace_and_a_server_side_disconnect(
    serve: Serve, clients: Callable[[], socketio.AsyncClient]
) -> None:
    server = build_server()
    live = await serve(server)
    client = clients()
    gone: asyncio.Queue[str] = asyncio.Queue()

    def on_disconnect(*reason: Any) -> None:
        gone.put_nowait("/")

    client.on("disconnect", on_disconnect, namespace="/")

    await client.connect(
        live.url, auth={"token": "good"}, namespaces=["/", "/admin"], transports=["websocket"]
    )
    assert await client.call("whoami", namespace="/admin", timeout=GUARD) == "admin:/admin"

    await client.emit("kick-me")
    async with asyncio.timeout(GUARD):
        assert await gone.get() == "/"
    # The server forgot the socket; the other namespace is still connected.
    assert server.namespaces["/"].sockets == {}
    assert len(server.namespaces["/admin"].sockets) == 1
    assert await client.call("whoami", namespace="/admin", timeout=GUARD) == "admin:/admin"


class CountingServer(SocketServer):
    """Tells the test when the server has received a number of Socket.IO messages."""

    def __init__(self, settings: TransportSettings) -> None:
        super().__init__(settings)
        self.received = 0
        self.received_enough = asyncio.Event()
        self.enough = 0

    def on_message(self, socket: Any, data: str | bytes) -> None:
        super().on_message(socket, data)
        self.received += 1
        if self.received >= self.enough:
            self.received_enough.set()


@pytest.mark.parametrize("in_order", [True, False])
async def test_one_sockets_events_are_handled_in_order(
    serve: Serve, clients: Callable[[], socketio.AsyncClient], in_order: bool
) -> None:
    server = CountingServer(TransportSettings(handlers_in_order=in_order))
    server.enough = 3  # CONNECT, "subscribe", "unsubscribe"
    lobby = server.namespace("/")
    gate = asyncio.Event()
    steps: list[str] = []

    @lobby.on("subscribe")
    async def subscribe(socket: Socket) -> None:
        steps.append("subscribe started")
        await gate.wait()  # a slow authorization check
        steps.append("subscribe done")

    @lobby.on("unsubscribe")
    def unsubscribe(socket: Socket) -> str:
        steps.append("unsubscribe")
        return "left"

    live = await serve(server)
    client = clients()
    await client.connect(live.url, transports=["websocket"])
    await client.emit("subscribe")
    left: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    await client.emit("unsubscribe", callback=left.set_result)
    async with asyncio.timeout(GUARD):
        await server.received_enough.wait()
    gate.set()
    async with asyncio.timeout(GUARD):
        assert await left == "left"
    if in_order:
        assert steps == ["subscribe started", "subscribe done", "unsubscribe"]
    else:  # python-socketio's async_handlers=True: the later event overtakes the slow one
        assert steps.index("unsubscribe") < steps.index("subscribe done")
