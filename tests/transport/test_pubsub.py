"""The pub/sub adapter, in-process: two nodes on a channel the test controls (the Redis one runs in
tests/faults, with real Redis servers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from attendance_live.transport import EngineSocket, PubSubAdapter, Socket, SocketServer, TransportSettings
from attendance_live.transport.eio_packets import Packet, PacketType
from attendance_live.transport.pubsub import Subscription, decode_message, encode_message


class Channel:
    """A broker for the test: every subscription gets every published message, until it is cut."""

    def __init__(self) -> None:
        self.queues: list[asyncio.Queue[bytes | None]] = []
        self.up = True

    def publish(self, message: bytes) -> None:
        if not self.up:
            raise ConnectionError("the channel is down")
        for queue in self.queues:
            queue.put_nowait(message)

    def cut(self) -> None:
        """Take the channel down: every subscription ends with an error."""
        self.up = False
        for queue in self.queues:
            queue.put_nowait(None)
        self.queues.clear()


class ChannelSubscription:
    def __init__(self, queue: asyncio.Queue[bytes | None]) -> None:
        self.queue = queue

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (message := await self.queue.get()) is not None:
            yield message
        raise ConnectionError("the channel went away")

    async def aclose(self) -> None:
        pass


class ChannelAdapter(PubSubAdapter):
    def __init__(self, channel: Channel, **kwargs: Any) -> None:
        super().__init__("/", **kwargs)
        self.channel = channel

    async def _publish(self, message: bytes) -> None:
        self.channel.publish(message)

    async def _subscribe(self) -> Subscription:
        if not self.channel.up:
            raise ConnectionError("the channel is down")
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.channel.queues.append(queue)
        return ChannelSubscription(queue)


class Node:
    def __init__(self, channel: Channel) -> None:
        self.resynced = asyncio.Event()
        self.adapter = ChannelAdapter(channel, on_resubscribed=self._resync)
        self.server = SocketServer(TransportSettings(), adapter_factory=lambda _name: self.adapter)
        self.namespace = self.server.namespace("/")
        self._admitted: asyncio.Queue[Socket] = asyncio.Queue()
        self.namespace.on_connect(lambda socket, auth: self._admitted.put_nowait(socket))

    async def _resync(self) -> None:
        self.resynced.set()

    async def member(self, room: str) -> EngineSocket:
        engine_socket = self.server.engine.handshake("polling", None)
        engine_socket.receive(Packet(PacketType.MESSAGE, "0"))
        async with asyncio.timeout(5):
            (await self._admitted.get()).join(room)
        engine_socket.outbox.take_all()
        return engine_socket


async def frames_of(engine_socket: EngineSocket, count: int) -> list[str]:
    """The next ``count`` event frames queued for ``engine_socket`` (pings skipped)."""
    seen: list[str] = []
    async with asyncio.timeout(5):
        while len(seen) < count:
            seen += [f for f in engine_socket.outbox.take_all() if isinstance(f, str) and f != "2"]
            await asyncio.sleep(0.01)
    return seen


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) until ``condition`` holds: the adapters' state moves in their own tasks."""
    async with asyncio.timeout(5):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[Channel, Node, Node]]:
    channel = Channel()
    a, b = Node(channel), Node(channel)
    await a.adapter.start()
    await b.adapter.start()
    yield channel, a, b
    for node in (a, b):
        await node.adapter.stop()
        await node.server.close()


def test_a_message_carries_the_frames_as_encoded_binary_included() -> None:
    packet = ('451-["file",{"_placeholder":true,"num":0}]', b"\x00\x01\xff")
    raw = encode_message("node-a", "/", ["course:1"], packet)
    assert decode_message(raw) == ("node-a", "/", ["course:1"], packet)
    with pytest.raises(ValueError, match="not a broadcast message"):
        decode_message(b'{"node": "x"}')


async def test_a_broadcast_reaches_both_nodes_members_once_in_order(
    two_nodes: tuple[Channel, Node, Node],
) -> None:
    _, a, b = two_nodes
    on_a, on_b, elsewhere = await a.member("course:1"), await b.member("course:1"), await b.member("x")
    for n in range(3):
        assert a.namespace.broadcast(a.namespace.encode("news", n), to="course:1") == 1  # local ones
    expected = ['42["news",0]', '42["news",1]', '42["news",2]']
    assert await frames_of(on_a, 3) == expected
    assert await frames_of(on_b, 3) == expected
    # Nothing more arrives: a node ignores its own messages. No waiting a while to see: the channel
    # is ordered, so once b's marker, published after a's messages reached b, has reached a's
    # member, a's listener has already passed over its own three.
    assert b.namespace.broadcast(b.namespace.encode("marker"), to="course:1") == 1
    assert await frames_of(on_a, 1) == ['42["marker"]']
    assert on_a.outbox.take_all() == []
    assert elsewhere.outbox.take_all() == []


async def test_a_gap_is_retried_within_a_second_and_then_resynced(
    two_nodes: tuple[Channel, Node, Node],
) -> None:
    channel, a, b = two_nodes
    on_b = await b.member("course:1")
    channel.cut()
    await until(lambda: not a.adapter.listening and not b.adapter.listening)
    a.namespace.broadcast(a.namespace.encode("lost"), to="course:1")  # dropped and counted
    await until(lambda: a.adapter.publish_failures == 1)
    channel.up = True
    async with asyncio.timeout(5):
        await b.resynced.wait()  # the application resends its snapshots here
    assert b.adapter.listening
    a.namespace.broadcast(a.namespace.encode("again"), to="course:1")
    assert await frames_of(on_b, 1) == ['42["again"]']
