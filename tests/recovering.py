"""A Socket.IO client that recovers its connection state as socket.io-client 4.6+ does, on the wire.

python-socketio's client does not speak connection state recovery, and
socket.io-client hides the pid, so the Python tests speak Engine.IO and
Socket.IO themselves (websocket or long-polling): the CONNECT reply's
``pid`` is kept, every event whose last argument is a string updates the
offset, and ``connect()`` after a drop sends ``auth: {token, pid, offset}``,
exactly what socket.io-client sends. Everything received is recorded in order
(``Received``), so a test asserts exactly-once and order by waiting on
events, never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import wait_for_entry

__all__ = ["COURSE_EVENTS", "Received", "RecoveringClient"]

COURSE_EVENTS = ("courseSessionStarted", "courseSessionEnded", "activeSessionsData")
RECORD_SEPARATOR = "\x1e"


@dataclass(frozen=True, slots=True)
class Received:
    seq: int
    name: str  # an event name, or "connect" (data: the CONNECT reply), "connect_error", "disconnect"
    data: Any
    offset: str | None = None  # the event's extra last argument, when it has one


class _Wire(Protocol):
    async def send(self, packet: str) -> None: ...
    async def receive(self) -> list[str]: ...  # the next packets; [] when the transport closed
    async def close(self) -> None: ...


class _Websocket:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, packet: str) -> None:
        await self.connection.send(packet)

    async def receive(self) -> list[str]:
        try:
            frame = await self.connection.recv()
        except ConnectionClosed:
            return []
        return [frame if isinstance(frame, str) else frame.decode()]

    async def close(self) -> None:
        await self.connection.close()


class _Polling:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url
        self.closed = False
        self._poll: asyncio.Future[httpx.Response] | None = None  # the GET in flight

    async def send(self, packet: str) -> None:
        response = await self.http.post(self.url, content=packet.encode())
        if response.status_code != 200:
            self.closed = True

    async def receive(self) -> list[str]:
        if self.closed:
            return []
        self._poll = poll = asyncio.ensure_future(self.http.get(self.url, timeout=60))
        try:
            response: httpx.Response | None = await poll
        except httpx.TransportError:
            response = None
        except asyncio.CancelledError:
            reader = asyncio.current_task()
            if self.closed and poll.cancelled() and reader is not None and not reader.cancelling():
                return []  # close() dropped the poll in flight: the connection is gone
            raise
        if response is None or response.status_code != 200:  # "Invalid session" from another node
            self.closed = True
            return []
        return response.text.split(RECORD_SEPARATOR)

    async def close(self) -> None:
        self.closed = True
        # A pending long-poll is not ended by closing the client's pool: the server would answer
        # it only at its next ping, after the reader had waited for its disconnect in vain.
        if self._poll is not None:
            self._poll.cancel()
        await self.http.aclose()


class RecoveringClient:
    """One client (a token) over successive connections, recovering between them."""

    def __init__(self, name: str, token: str) -> None:
        self.name = name
        self.token = token
        self.pid: str | None = None
        self.offset: str | None = None
        self.seen: list[Received] = []
        self.replies: list[dict[str, Any]] = []  # every CONNECT reply, in order
        self._changed = asyncio.Condition()
        self._wire: _Wire | None = None
        self._reader: asyncio.Task[None] | None = None
        self._acks: dict[int, asyncio.Future[list[Any]]] = {}
        self._ack_id = 0

    # --- connecting ---

    @property
    def recovered(self) -> bool:
        """As socket.io-client's ``socket.recovered``: the last CONNECT reply kept the pid."""
        if len(self.replies) < 2:
            return False
        pid = self.replies[-1].get("pid")
        return pid is not None and pid == self.replies[-2].get("pid")

    def auth(self) -> dict[str, Any]:
        """What socket.io-client sends in CONNECT: ``{pid, offset}`` once it has a pid, and the token."""
        auth: dict[str, Any] = {"token": self.token}
        if self.pid is not None:
            auth["pid"] = self.pid
            if self.offset is not None:
                auth["offset"] = self.offset
        return auth

    async def connect(
        self, url: str, transport: str = "websocket", auth: dict[str, Any] | None = None
    ) -> Received:
        """Open a transport and join the namespace; the CONNECT reply (or connect_error) received."""
        if self._wire is not None:  # the previous transport died under us: release it
            await self._wire.close()
            self._wire = None
        mark = self.mark()
        base = f"{url}/socket.io/?EIO=4&transport="
        if transport == "websocket":
            connection = await connect(base.replace("http", "ws", 1) + "websocket", compression=None)
            wire: _Wire = _Websocket(connection)
            opening = (await wire.receive())[0]
        else:
            http = httpx.AsyncClient(timeout=10)
            handshake = await http.get(base + "polling")
            assert handshake.status_code == 200, handshake.text
            opening = handshake.text
            sid = orjson.loads(opening[1:])["sid"]
            wire = _Polling(http, f"{base}polling&sid={sid}")
        assert opening.startswith("0{"), opening
        self._wire = wire
        self._reader = asyncio.create_task(self._read(wire), name=f"reader:{self.name}")
        await wire.send("40" + orjson.dumps(auth if auth is not None else self.auth()).decode())
        return await self.wait(
            lambda r: r.name in ("connect", "connect_error"), since=mark, what="the CONNECT reply"
        )

    async def drop(self) -> None:
        """Close the transport abruptly, as a network blip does (``socket.io.engine.close()``)."""
        mark = self.mark()
        wire, self._wire = self._wire, None
        reading = self._reader is not None and not self._reader.done()
        if wire is not None:
            await wire.close()
            if reading:
                await self.wait(lambda r: r.name == "disconnect", since=mark, what="the disconnect")

    async def close(self) -> None:
        await self.drop()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    # --- sending ---

    async def emit(self, event: str, payload: Any) -> None:
        assert self._wire is not None, "not connected"
        await self._wire.send("42" + orjson.dumps([event, payload]).decode())

    async def call(self, event: str, payload: Any, timeout: float = 10) -> list[Any]:
        """Emit with an ack; the ack's arguments."""
        assert self._wire is not None, "not connected"
        self._ack_id += 1
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._acks[self._ack_id] = future
        await self._wire.send(f"42{self._ack_id}" + orjson.dumps([event, payload]).decode())
        return await asyncio.wait_for(future, timeout)

    # --- receiving ---

    async def _read(self, wire: _Wire) -> None:
        while True:
            packets = await wire.receive()
            if not packets:
                break
            for packet in packets:
                if packet == "2":
                    await wire.send("3")
                elif packet.startswith("40"):
                    reply = orjson.loads(packet[2:])
                    self.replies.append(reply)
                    self.pid = reply.get("pid")
                    await self._record("connect", reply)
                elif packet.startswith("44"):
                    await self._record("connect_error", orjson.loads(packet[2:]))
                elif packet.startswith("42"):
                    await self._event(orjson.loads(packet[2:]))
                elif packet.startswith("43"):
                    body = packet[2:]
                    split = body.index("[")
                    future = self._acks.pop(int(body[:split]), None)
                    if future is not None and not future.done():
                        future.set_result(orjson.loads(body[split:]))
                elif packet in ("41", "1"):
                    break
        await self._record("disconnect", None)

    async def _event(self, args: list[Any]) -> None:
        name, rest = args[0], args[1:]
        offset = rest[-1] if len(rest) > 1 and isinstance(rest[-1], str) else None
        # socket.io-client: with a pid, an event whose last argument is a string moves the offset.
        if self.pid is not None and offset is not None:
            self.offset = offset
        await self._record(name, rest[0] if rest else None, offset)

    async def _record(self, name: str, data: Any, offset: str | None = None) -> None:
        async with self._changed:
            self.seen.append(Received(len(self.seen), name, data, offset))
            self._changed.notify_all()

    # --- reading what was received ---

    def mark(self) -> int:
        return len(self.seen)

    def since(self, mark: int, names: tuple[str, ...] = COURSE_EVENTS) -> list[Received]:
        return [r for r in self.seen[mark:] if r.name in names]

    async def wait(
        self, predicate: Callable[[Received], bool], *, since: int, timeout: float = 10, what: str
    ) -> Received:
        return await wait_for_entry(
            self._changed,
            self.seen,
            predicate,
            since=since,
            timeout=timeout,
            failure=lambda: f"{self.name}: {what}: saw {self.describe(since)}",
        )

    async def next(
        self, name: str, *, since: int, where: Callable[[Any], bool] | None = None, timeout: float = 10
    ) -> Received:
        return await self.wait(
            lambda r: r.name == name and (where is None or where(r.data)),
            since=since,
            timeout=timeout,
            what=name,
        )

    def describe(self, since: int = 0) -> str:
        return (
            ", ".join(f"{r.name}@{r.offset}" if r.offset else r.name for r in self.seen[since:]) or "nothing"
        )
