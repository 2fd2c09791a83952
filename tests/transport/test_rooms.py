"""Rooms and broadcasts in-process: Engine.IO sessions without a network, frames read from their outboxes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from attendance_live.transport import EngineSocket, Socket, SocketServer, TransportSettings
from attendance_live.transport.eio_packets import Packet, PacketType


class Lobby:
    """A server whose namespace ``/`` hands each admitted socket to the test."""

    def __init__(self, **settings: Any) -> None:
        self.overflowed: list[str] = []
        self.server = SocketServer(TransportSettings(**settings), on_overflow=self._overflow)
        self.namespace = self.server.namespace("/")
        self._admitted: asyncio.Queue[Socket] = asyncio.Queue()
        self.namespace.on_connect(lambda socket, auth: self._admitted.put_nowait(socket))

    def _overflow(self, engine_socket: EngineSocket) -> None:
        self.overflowed.append(engine_socket.sid)

    async def connect(self) -> tuple[EngineSocket, Socket]:
        """A long-polling session that has joined ``/``, its outbox emptied."""
        engine_socket = self.server.engine.handshake("polling", None)
        engine_socket.receive(Packet(PacketType.MESSAGE, "0"))
        async with asyncio.timeout(5):
            socket = await self._admitted.get()  # the connect handler runs in a task
        engine_socket.outbox.take_all()  # OPEN and the CONNECT reply
        return engine_socket, socket


def events(engine_socket: EngineSocket) -> list[str]:
    return [frame for frame in engine_socket.outbox.take_all() if isinstance(frame, str) and frame != "2"]


async def test_a_broadcast_reaches_each_member_once_and_skips_who_it_is_told_to() -> None:
    setup = Lobby()
    server, lobby = setup.server, setup.namespace
    (a_engine, a), (b_engine, b), (c_engine, _) = [await setup.connect() for _ in range(3)]
    a.join("course:1")
    a.join("course:2")
    b.join("course:2")

    packet = lobby.encode("news", {"n": 1})
    assert lobby.broadcast(packet, to=["course:1", "course:2"]) == 2
    assert events(a_engine) == ['42["news",{"n":1}]']  # in both rooms, once
    assert events(b_engine) == ['42["news",{"n":1}]']
    assert events(c_engine) == []

    assert lobby.broadcast(lobby.encode("news", {"n": 2}), to="course:2", skip=a) == 1
    assert events(a_engine) == []
    assert events(b_engine) == ['42["news",{"n":2}]']

    b.leave("course:2")
    assert lobby.emit("all", to=None) == 3
    assert lobby.broadcast(lobby.encode("news", {"n": 3}), to="course:2") == 1
    assert events(b_engine) == ['42["all"]']
    assert events(a_engine) == ['42["all"]', '42["news",{"n":3}]']
    await server.close()


async def test_a_closed_session_leaves_its_rooms_and_its_namespace() -> None:
    setup = Lobby()
    server, lobby = setup.server, setup.namespace
    engine_socket, socket = await setup.connect()
    socket.join("course:1")
    engine_socket.receive(Packet(PacketType.CLOSE))
    assert list(lobby.adapter.members("course:1")) == []
    assert lobby.sockets == {}
    assert server.engine.sessions == {}
    assert socket.rooms == {"course:1"}  # still readable by a disconnect handler
    await server.close()


async def test_a_polling_client_that_stops_polling_overflows_and_is_counted() -> None:
    setup = Lobby(outgoing_buffer_bytes=10_000)
    server, lobby = setup.server, setup.namespace
    engine_socket, socket = await setup.connect()
    socket.join("room")
    for _ in range(20):
        lobby.broadcast(lobby.encode("big", "x" * 1000), to="room")
    assert setup.overflowed == [engine_socket.sid]
    assert engine_socket.closed
    assert list(lobby.adapter.members("room")) == []
    await server.close()


async def test_events_piling_up_behind_a_busy_handler_close_the_connection() -> None:
    setup = Lobby(max_pending_events=5)
    gate = asyncio.Event()
    handled: list[int] = []

    async def slow(socket: Socket, n: int) -> None:
        await gate.wait()
        handled.append(n)

    setup.namespace.on("slow", slow)
    engine_socket, _ = await setup.connect()
    for n in range(6):  # one running, five waiting: still fine
        engine_socket.receive(Packet(PacketType.MESSAGE, f'2["slow",{n}]'))
    assert not engine_socket.closed
    engine_socket.receive(Packet(PacketType.MESSAGE, '2["slow",6]'))
    assert engine_socket.closed
    gate.set()
    await setup.server.close()
    assert 6 not in handled


async def test_a_disconnect_cancels_a_pending_acknowledgement() -> None:
    setup = Lobby()
    engine_socket, socket = await setup.connect()
    asking = asyncio.create_task(socket.call("question", 1))
    await asyncio.sleep(0)  # the call is sent and waits
    assert events(engine_socket) == ['421["question",1]']
    engine_socket.receive(Packet(PacketType.CLOSE))
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await asking
    await setup.server.close()


async def test_an_acknowledgement_from_the_client_answers_the_call() -> None:
    setup = Lobby()
    engine_socket, socket = await setup.connect()
    asking = asyncio.create_task(socket.call("question", 1))
    await asyncio.sleep(0)
    assert events(engine_socket) == ['421["question",1]']
    engine_socket.receive(Packet(PacketType.MESSAGE, '31["answer",2]'))
    async with asyncio.timeout(5):
        assert await asking == ["answer", 2]
    await setup.server.close()


async def test_a_connection_lost_during_the_connect_handler_is_undone_by_the_disconnect_handler() -> None:
    server = SocketServer(TransportSettings())
    lobby = server.namespace("/")
    release = asyncio.Event()
    gone: asyncio.Queue[str] = asyncio.Queue()

    async def admit(socket: Socket, auth: dict[str, Any]) -> None:
        socket.join("course:1")
        await release.wait()  # e.g. a token check against a key server

    lobby.on_connect(admit)
    lobby.on_disconnect(lambda socket, reason: gone.put_nowait(reason))
    engine_socket = server.engine.handshake("polling", None)
    engine_socket.receive(Packet(PacketType.MESSAGE, "0"))
    await asyncio.sleep(0)  # the connect handler is waiting
    engine_socket.receive(Packet(PacketType.CLOSE))
    release.set()
    async with asyncio.timeout(5):
        assert await gone.get() == "transport close"
    assert lobby.sockets == {}
    assert lobby.adapter.room_size("course:1") == 0
    await server.close()
